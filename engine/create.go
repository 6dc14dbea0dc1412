package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/specopts"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/strslice"
)

// CreateRequest is POST /containers/create.
type CreateRequest struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
}

// Create makes a container from an image: merges the image's config,
// validates the host config by building its spec, prepares the root
// filesystem, and records it.
func (e *Engine) Create(req CreateRequest) (container.CreateResponse, error) {
	var resp container.CreateResponse
	resp.Warnings = []string{}
	t0 := time.Now()
	defer e.trace(t0, "create")
	if req.Config == nil {
		return resp, errdefs.InvalidParameterf("config cannot be empty in order to create a container")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	cfg, hc := req.Config, req.HostConfig
	if cfg.Image == "" {
		return resp, errdefs.InvalidParameterf("no image specified")
	}
	if req.Name != "" && !validName.MatchString(req.Name) {
		return resp, errdefs.InvalidParameterf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	if err := validateHostConfig(hc, e.opts.Remap != nil); err != nil {
		return resp, err
	}
	img, err := e.opts.Images.Resolve(cfg.Image)
	if err != nil {
		return resp, err
	}
	merged := mergeImageConfig(cfg, img)
	args := append(append([]string{}, merged.Entrypoint...), merged.Cmd...)
	if len(args) == 0 {
		return resp, errdefs.InvalidParameterf("no command specified")
	}
	c := &Container{
		ID: newID(), Created: time.Now().UTC(), Path: args[0], Args: args[1:],
		Config: merged, HostConfig: hc, Image: img.ID, ImageChain: img.Chain, ImageName: cfg.Image,
		State: State{Status: "created"},
	}
	if e.opts.Remap != nil && !hc.UsernsMode.IsHost() {
		c.UIDMaps, c.GIDMaps = e.opts.Remap.UIDs, e.opts.Remap.GIDs
	}
	c.Hostname = merged.Hostname
	if c.Hostname == "" {
		c.Hostname = c.ID[:12]
		if hc.NetworkMode.IsHost() {
			c.Hostname, _ = os.Hostname()
		}
	}
	// Build the spec once now (without the rootfs) so invalid flags are a
	// 400 at create, as dockerd does, not a failure at start.
	createSpec, err := e.buildSpec(c, "")
	if err != nil {
		return resp, errdefs.As(errdefs.InvalidParameter, err)
	}
	c.createSpec = createSpec
	dir := e.containerDir(c.ID)
	c.init(dir)
	c.LogPath = filepath.Join(dir, c.ID+"-json.log")
	c.HostnamePath = filepath.Join(dir, "hostname")
	c.HostsPath = filepath.Join(dir, "hosts")
	c.ResolvPath = filepath.Join(dir, "resolv.conf")

	e.mu.Lock()
	if req.Name == "" {
		for i := 0; ; i++ {
			n := "/" + generateName(i)
			if _, taken := e.names[n]; !taken {
				req.Name = n
				break
			}
		}
	}
	c.Name = "/" + strings.TrimPrefix(req.Name, "/")
	if err := e.reserveName(c.Name, c.ID); err != nil {
		e.mu.Unlock()
		return resp, err
	}
	e.mu.Unlock()
	release := func() {
		e.mu.Lock()
		delete(e.names, c.Name)
		e.mu.Unlock()
	}
	if err := e.setupFiles(c); err != nil {
		release()
		os.RemoveAll(dir)
		return resp, err
	}
	// The root filesystem is made now, or by the start's preparation
	// that follows (it is the first thing it needs).
	ahead := e.aheadPossible(c)
	if !ahead {
		if _, err := e.opts.RootFS.Prepare(c.ID, c.ImageChain, c.UIDMaps, c.GIDMaps, c.HostConfig.AutoRemove); err != nil {
			release()
			os.RemoveAll(dir)
			return resp, fmt.Errorf("prepare the root filesystem: %w", err)
		}
	}
	c.mu.Lock()
	err = c.save()
	c.mu.Unlock()
	if err != nil {
		release()
		e.opts.RootFS.Remove(c.ID)
		os.RemoveAll(dir)
		return resp, fmt.Errorf("save container: %w", err)
	}
	e.mu.Lock()
	e.byID[c.ID] = c
	e.mu.Unlock()
	e.containerEvent(c, events.ActionCreate, nil)
	if ahead {
		e.startAhead(c)
	}
	resp.ID = c.ID
	return resp, nil
}

// setupFiles writes the container's directory: /etc/hostname, /etc/hosts
// and /etc/resolv.conf to bind-mount, and an empty log.
func (e *Engine) setupFiles(c *Container) error {
	if err := os.MkdirAll(c.dir, 0o710); err != nil {
		return fmt.Errorf("create container directory: %w", err)
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	for _, h := range c.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			return errdefs.InvalidParameterf("invalid extra host %q: want host:ip", h)
		}
		hosts += ip + "\t" + name + "\n"
	}
	resolv := hostResolvConf(c.HostConfig)
	files := map[string]string{c.HostnamePath: c.Hostname + "\n", c.HostsPath: hosts, c.ResolvPath: resolv}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	f.Close()
	// With a user namespace, container root must be able to read them.
	if len(c.UIDMaps) > 0 {
		uid, gid := int(c.UIDMaps[0].HostID), int(c.GIDMaps[0].HostID)
		for p := range files {
			os.Chown(p, uid, gid)
		}
		os.Chmod(c.dir, 0o711)
	}
	return nil
}

// hostResolvConf is the host's resolv.conf without loopback resolvers
// (unreachable from the container's network namespace), or --dns values.
func hostResolvConf(hc *container.HostConfig) string {
	var b strings.Builder
	if len(hc.DNS) > 0 || len(hc.DNSSearch) > 0 || len(hc.DNSOptions) > 0 {
		for _, d := range hc.DNS {
			b.WriteString("nameserver " + d + "\n")
		}
		if len(hc.DNSSearch) > 0 {
			b.WriteString("search " + strings.Join(hc.DNSSearch, " ") + "\n")
		}
		if len(hc.DNSOptions) > 0 {
			b.WriteString("options " + strings.Join(hc.DNSOptions, " ") + "\n")
		}
		return b.String()
	}
	data, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") && !hc.NetworkMode.IsHost() {
			continue
		}
		if strings.TrimSpace(line) != "" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// mergeImageConfig fills what the user left empty from the image, as
// dockerd does: env (image first), cmd (unless an entrypoint is given),
// entrypoint, working dir, user, labels, stop signal.
func mergeImageConfig(cfg *container.Config, img *Image) *container.Config {
	m := *cfg
	ic := img.Config
	env := append([]string{}, ic.Env...)
	for _, kv := range cfg.Env {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range env {
			if n, _, _ := strings.Cut(e, "="); n == name {
				env[i], replaced = kv, true
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	m.Env = env
	if len(m.Entrypoint) == 0 && len(m.Cmd) == 0 {
		m.Cmd = strslice.StrSlice(ic.Cmd)
	}
	if len(m.Entrypoint) == 0 && cfg.Entrypoint == nil {
		m.Entrypoint = strslice.StrSlice(ic.Entrypoint)
	}
	if m.WorkingDir == "" {
		m.WorkingDir = ic.WorkingDir
	}
	if m.User == "" {
		m.User = ic.User
	}
	if m.StopSignal == "" {
		m.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		m.Labels = labels
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	return &m
}

// validateHostConfig checks what dockerd checks before anything is made.
func validateHostConfig(hc *container.HostConfig, remap bool) error {
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return errdefs.InvalidParameterf("%v", err)
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() && hc.RestartPolicy.Name != "" {
		return errdefs.InvalidParameterf("can't create 'AutoRemove' container with restart policy")
	}
	switch hc.UsernsMode {
	case "", "host":
	default:
		return errdefs.InvalidParameterf("invalid USER mode: %s", hc.UsernsMode)
	}
	if remap && !hc.UsernsMode.IsHost() {
		if hc.Privileged {
			return errdefs.InvalidParameterf("privileged mode is incompatible with user namespaces; you must run the container in the host namespace when running privileged mode (--userns=host)")
		}
		if hc.NetworkMode.IsHost() {
			return errdefs.InvalidParameterf("cannot share the host's network namespace when user namespaces are enabled (use --userns=host)")
		}
		if hc.PidMode.IsHost() {
			return errdefs.InvalidParameterf("cannot share the host PID namespace when user namespaces are enabled (use --userns=host)")
		}
	}
	if hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file" && hc.LogConfig.Type != "none" {
		return errdefs.InvalidParameterf("logging driver %q is not supported (json-file, none)", hc.LogConfig.Type)
	}
	if len(hc.PortBindings) > 0 {
		return errdefs.InvalidParameterf("publishing ports needs bridge networking, which berth does not have yet")
	}
	_ = specopts.DefaultEnvPath
	return nil
}
