package engine

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/monitor"
	"github.com/berth-dev/berth/specopts"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// buildSpec makes the OCI spec of c. rootfs is the mounted root
// filesystem; "" validates without it (users are not resolved).
func (e *Engine) buildSpec(c *Container, rootfs string) (*specs.Spec, error) {
	cfg, hc := c.Config, c.HostConfig
	s := specopts.Default()
	args := append([]string{c.Path}, c.Args...)
	sec, err := specopts.ParseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	user := specopts.User{}
	if rootfs != "" {
		if user, err = specopts.ResolveUser(rootfs, cfg.User, hc.GroupAdd); err != nil {
			return nil, errdefs.InvalidParameterf("%v", err)
		}
	}
	ulimits := []*container.Ulimit{}
	for _, u := range e.opts.Config.DefaultUlimits {
		ulimits = append(ulimits, u)
	}
	opts := []specopts.Opt{
		specopts.WithArgs(args),
		specopts.WithEnv(cfg.Env),
		specopts.WithCwd(cfg.WorkingDir),
		specopts.WithNamespaces(specopts.NamespaceModes{
			IPC: hc.IpcMode, PID: hc.PidMode, UTS: hc.UTSMode, Network: hc.NetworkMode,
			Cgroupns: hc.CgroupnsMode, CgroupV2: e.cgroupV2, PeerPID: e.peerPID,
		}),
		specopts.WithHostname(c.Hostname, cfg.Domainname),
		specopts.WithTTY(cfg.Tty, hc.ConsoleSize[0], hc.ConsoleSize[1]),
		specopts.WithUser(user),
	}
	if hc.Privileged {
		opts = append(opts, specopts.WithPrivileged(e.held))
	} else {
		opts = append(opts, specopts.WithCapabilities(hc.CapAdd, hc.CapDrop))
	}
	opts = append(opts,
		specopts.WithSecurity(sec, hc.Privileged, e.opts.DefaultSeccompProfile, e.opts.Seccomp),
		specopts.WithPaths(hc.MaskedPaths, hc.ReadonlyPaths),
		specopts.WithResources(hc.Resources),
		specopts.WithUlimits(ulimits, hc.Ulimits, e.canRaise),
		specopts.WithOOMScoreAdj(hc.OomScoreAdj),
		specopts.WithSysctls(hc.Sysctls),
		specopts.WithCgroupsPath(cgroupsPath(hc.CgroupParent, e.opts.Config.CgroupParent, c.ID)),
		specopts.WithMounts(specopts.MountSet{
			Binds: hc.Binds, Mounts: hc.Mounts, Tmpfs: hc.Tmpfs, ReadonlyRootfs: hc.ReadonlyRootfs,
			ShmSize: hc.ShmSize, Hostname: c.HostnamePath, Hosts: c.HostsPath, ResolvConf: c.ResolvPath,
		}),
		specopts.WithUserNamespace(c.UIDMaps, c.GIDMaps),
		specopts.WithAnnotations(hc.Annotations),
	)
	if hc.Init != nil && *hc.Init {
		opts = append(opts, e.withInit())
	}
	if err := specopts.Apply(s, opts...); err != nil {
		return nil, errdefs.As(errdefs.InvalidParameter, err)
	}
	if rootfs != "" {
		s.Root.Path = rootfs
		if err := checkExecutable(rootfs, s.Process); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// cgroupsPath is /berth/ID, or under the container's --cgroup-parent, or
// under the daemon's.
func cgroupsPath(parent, daemonParent, id string) string {
	if parent == "" {
		parent = daemonParent
	}
	if parent == "" {
		parent = "/berth"
	}
	return path.Join("/", parent, id)
}

// peerPID resolves --ipc/--pid/--network container:NAME.
func (e *Engine) peerPID(ref string) (int, error) {
	c, err := e.Get(ref)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.Running() || c.State.Pid == 0 {
		return 0, errdefs.Conflictf("cannot join namespace of a non running container %s", ref)
	}
	return c.State.Pid, nil
}

// withInit runs the process under an init that reaps zombies and
// forwards signals (docker-init's job): the monitor binary (or berth monitor),
// bind-mounted read-only at /sbin/docker-init, as `init -- CMD…`.
func (e *Engine) withInit() specopts.Opt {
	return func(s *specs.Spec) error {
		bin := e.opts.MonitorArgv[0]
		s.Mounts = append(s.Mounts, specs.Mount{Destination: initPath, Type: "bind", Source: bin, Options: []string{"bind", "ro"}})
		args := append([]string{initPath}, e.opts.MonitorArgv[1:]...)
		s.Process.Args = append(append(args, "init", "--"), s.Process.Args...)
		return nil
	}
}

const initPath = monitor.InitPath

// checkExecutable finds the command in the rootfs along PATH, so a
// missing or non-executable command fails at start with the messages the
// docker CLI maps to exit codes 127 and 126.
func checkExecutable(rootfs string, p *specs.Process) error {
	name := p.Args[0]
	if name == initPath {
		i := 1
		for i < len(p.Args) && p.Args[i] != "--" {
			i++
		}
		if i+1 >= len(p.Args) {
			return nil
		}
		name = p.Args[i+1]
	}
	var candidates []string
	if strings.Contains(name, "/") {
		if !path.IsAbs(name) {
			name = path.Join(p.Cwd, name)
		}
		candidates = []string{name}
	} else {
		pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range p.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathEnv = v
			}
		}
		for _, d := range strings.Split(pathEnv, ":") {
			if d != "" {
				candidates = append(candidates, path.Join(d, name))
			}
		}
	}
	for _, cand := range candidates {
		full, err := securejoin.SecureJoin(rootfs, cand)
		if err != nil {
			continue
		}
		fi, err := os.Stat(full)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			if strings.Contains(name, "/") {
				return fmt.Errorf("exec: %q: is a directory: permission denied", name)
			}
			continue
		}
		if fi.Mode()&0o111 == 0 {
			return fmt.Errorf("exec: %q: permission denied", name)
		}
		return nil
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("exec: %q: stat %s: no such file or directory", name, name)
	}
	return fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}
