package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// containerFlags are `run`/`create` flags, with Docker's names.
type containerFlags struct {
	detach, interactive, tty, rm, readOnly, privileged, init, noInit                      bool
	name, workdir, user, hostname, network, ipc, pid, uts, userns, cgroupns               string
	entrypoint, restart, stopSignal, cpus, memory, memorySwap, memoryReservation, shmSize string
	cpusetCpus, cpusetMems, logDriver, cgroupParent, platform, pull                       string
	env, envFile, volumes, tmpfs, capAdd, capDrop, securityOpt, ulimits, labels, groupAdd []string
	dns, dnsSearch, dnsOption, addHost, sysctls, attach, publish, expose                  []string
	cpuPeriod, cpuQuota, cpuShares, pidsLimit                                             int64
	stopTimeout, oomScoreAdj                                                              int
	sigProxy                                                                              bool
}

func addContainerFlags(fs *pflag.FlagSet, f *containerFlags, run bool) {
	if run {
		fs.BoolVarP(&f.detach, "detach", "d", false, "Run container in background and print container ID")
		fs.BoolVar(&f.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	}
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&f.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&f.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.BoolVar(&f.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.BoolVar(&f.privileged, "privileged", false, "Give extended privileges to this container")
	fs.BoolVar(&f.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&f.name, "name", "", "Assign a name to the container")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&f.network, "network", "default", "Connect a container to a network (none, host, bridge: loopback only)")
	fs.StringVar(&f.network, "net", "default", "Connect a container to a network")
	fs.MarkHidden("net")
	fs.StringVar(&f.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&f.pid, "pid", "", "PID namespace to use")
	fs.StringVar(&f.uts, "uts", "", "UTS namespace to use")
	fs.StringVar(&f.userns, "userns", "", "User namespace to use")
	fs.StringVar(&f.cgroupns, "cgroupns", "", "Cgroup namespace to use (host|private)")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVar(&f.restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.StringVar(&f.cpus, "cpus", "", "Number of CPUs")
	fs.Int64Var(&f.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&f.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.StringVarP(&f.memory, "memory", "m", "", "Memory limit")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&f.memoryReservation, "memory-reservation", "", "Memory soft limit")
	fs.StringVar(&f.shmSize, "shm-size", "", "Size of /dev/shm")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.StringVar(&f.logDriver, "log-driver", "", "Logging driver for the container (json-file, none)")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&f.platform, "platform", "", "Set platform if server is multi-platform capable")
	fs.StringVar(&f.pull, "pull", "missing", "Pull image before running (\"always\", \"missing\", \"never\")")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "Set environment variables")
	fs.StringArrayVar(&f.envFile, "env-file", nil, "Read in a file of environment variables")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "Bind mount a volume (/host:/container[:ro])")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "Mount a tmpfs directory")
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "Add Linux capabilities")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	fs.StringArrayVar(&f.securityOpt, "security-opt", nil, "Security Options")
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "Ulimit options")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "Set meta data on a container")
	fs.StringArrayVar(&f.groupAdd, "group-add", nil, "Add additional groups to join")
	fs.StringArrayVar(&f.dns, "dns", nil, "Set custom DNS servers")
	fs.StringArrayVar(&f.dnsSearch, "dns-search", nil, "Set custom DNS search domains")
	fs.StringArrayVar(&f.dnsOption, "dns-option", nil, "Set DNS options")
	fs.StringArrayVar(&f.addHost, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&f.sysctls, "sysctl", nil, "Sysctl options")
	fs.StringArrayVarP(&f.attach, "attach", "a", nil, "Attach to STDIN, STDOUT or STDERR")
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "Publish a container's port(s) to the host (needs bridge networking: not yet)")
	fs.StringArrayVar(&f.expose, "expose", nil, "Expose a port or a range of ports")
}

// build turns the flags, image and command into the create request,
// reading --security-opt seccomp=FILE client-side as docker does.
func (f *containerFlags) build(fs *pflag.FlagSet, img string, cmd []string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Image: img, Hostname: f.hostname, User: f.user, WorkingDir: f.workdir,
		Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive && !f.detach,
		AttachStdin: f.interactive && !f.detach, AttachStdout: !f.detach, AttachStderr: !f.detach,
		StopSignal: f.stopSignal, Labels: map[string]string{}, Volumes: map[string]struct{}{},
	}
	if len(cmd) > 0 {
		cfg.Cmd = strslice.StrSlice(cmd)
	}
	if fs.Changed("entrypoint") {
		cfg.Entrypoint = strslice.StrSlice{}
		if f.entrypoint != "" {
			cfg.Entrypoint = strslice.StrSlice{f.entrypoint}
		}
	}
	if fs.Changed("stop-timeout") {
		t := f.stopTimeout
		cfg.StopTimeout = &t
	}
	for _, file := range f.envFile {
		lines, err := readEnvFile(file)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.Env = append(cfg.Env, lines...)
	}
	for _, e := range f.env {
		if !strings.Contains(e, "=") {
			if v, ok := os.LookupEnv(e); ok {
				e += "=" + v
			} else {
				continue
			}
		}
		cfg.Env = append(cfg.Env, e)
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	hc := &container.HostConfig{
		AutoRemove: f.rm, ReadonlyRootfs: f.readOnly, Privileged: f.privileged,
		NetworkMode: container.NetworkMode(f.network), IpcMode: container.IpcMode(f.ipc),
		PidMode: container.PidMode(f.pid), UTSMode: container.UTSMode(f.uts),
		UsernsMode: container.UsernsMode(f.userns), CgroupnsMode: container.CgroupnsMode(f.cgroupns),
		CapAdd: f.capAdd, CapDrop: f.capDrop, GroupAdd: f.groupAdd, DNS: f.dns, DNSSearch: f.dnsSearch,
		DNSOptions: f.dnsOption, ExtraHosts: f.addHost, OomScoreAdj: f.oomScoreAdj,
		LogConfig: container.LogConfig{Type: f.logDriver, Config: map[string]string{}},
	}
	if fs.Changed("init") {
		v := f.init
		hc.Init = &v
	}
	for _, v := range f.volumes {
		if strings.HasPrefix(v, "/") && !strings.Contains(v, ":") {
			return nil, nil, nil, fmt.Errorf("invalid volume %q: anonymous volumes are not supported yet; use /host:/container", v)
		}
		hc.Binds = append(hc.Binds, v)
	}
	if len(f.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range f.tmpfs {
			d, o, _ := strings.Cut(t, ":")
			hc.Tmpfs[d] = o
		}
	}
	for _, o := range f.securityOpt {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if ok && k == "seccomp" && v != "unconfined" {
			data, err := os.ReadFile(v)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + string(data)
		}
		hc.SecurityOpt = append(hc.SecurityOpt, o)
	}
	if len(f.sysctls) > 0 {
		hc.Sysctls = map[string]string{}
		for _, s := range f.sysctls {
			k, v, _ := strings.Cut(s, "=")
			hc.Sysctls[k] = v
		}
	}
	for _, u := range f.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("invalid argument %q for \"--ulimit\" flag: %w", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, ul)
	}
	rp, err := parseRestart(f.restart)
	if err != nil {
		return nil, nil, nil, err
	}
	hc.RestartPolicy = rp
	if len(f.publish) > 0 {
		return nil, nil, nil, fmt.Errorf("publishing ports (-p) needs bridge networking, which berth does not have yet; use --network host")
	}
	r := &hc.Resources
	if f.cpus != "" {
		v, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("invalid argument %q for \"--cpus\" flag: failed to parse %s as a rational number", f.cpus, f.cpus)
		}
		r.NanoCPUs = int64(v * 1e9)
	}
	r.CPUPeriod, r.CPUQuota, r.CPUShares = f.cpuPeriod, f.cpuQuota, f.cpuShares
	r.CpusetCpus, r.CpusetMems, r.CgroupParent = f.cpusetCpus, f.cpusetMems, f.cgroupParent
	mem := func(flag, v string, dst *int64, allowMinus bool) error {
		if v == "" {
			return nil
		}
		if allowMinus && v == "-1" {
			*dst = -1
			return nil
		}
		n, err := units.RAMInBytes(v)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", v, flag, err)
		}
		*dst = n
		return nil
	}
	if err := mem("memory", f.memory, &r.Memory, false); err != nil {
		return nil, nil, nil, err
	}
	if err := mem("memory-swap", f.memorySwap, &r.MemorySwap, true); err != nil {
		return nil, nil, nil, err
	}
	if err := mem("memory-reservation", f.memoryReservation, &r.MemoryReservation, false); err != nil {
		return nil, nil, nil, err
	}
	if err := mem("shm-size", f.shmSize, &hc.ShmSize, false); err != nil {
		return nil, nil, nil, err
	}
	if fs.Changed("pids-limit") {
		v := f.pidsLimit
		r.PidsLimit = &v
	}
	ms := int64(-1)
	r.MemorySwappiness = &ms
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	return cfg, hc, netCfg, nil
}

func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	rp := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch name {
	case "", "no":
		rp.Name = container.RestartPolicyDisabled
		if hasCount {
			return rp, fmt.Errorf("invalid restart policy format: maximum retry count cannot be used with restart policy '%s'", name)
		}
	case "always", "unless-stopped":
		if hasCount {
			return rp, fmt.Errorf("invalid restart policy format: maximum retry count cannot be used with restart policy '%s'", name)
		}
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return rp, fmt.Errorf("invalid restart policy format: maximum retry count must be a positive integer")
			}
			rp.MaximumRetryCount = n
		}
	default:
		return rp, fmt.Errorf("invalid restart policy format: unknown policy '%s'; use no, always, unless-stopped or on-failure", name)
	}
	return rp, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			if v, ok := os.LookupEnv(line); ok {
				line += "=" + v
			} else {
				continue
			}
		}
		out = append(out, line)
	}
	return out, sc.Err()
}
