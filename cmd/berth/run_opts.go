package main

// `berth run` and `berth create` flags: docker's names, short forms and
// defaults, turned into the Config/HostConfig/NetworkingConfig body of
// POST /containers/create as the docker CLI sends it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/client"
)

type containerOpts struct {
	fs *pflag.FlagSet

	attach, addHost, capAdd, capDrop, devices, dns, dnsOpt, dnsSearch       listOpt
	env, envFile, expose, groupAdd, labels, labelFile, logOpt, publish      listOpt
	securityOpt, tmpfs, volumes, volumesFrom, links                         listOpt
	sysctls, storageOpt                                                     mapOpt
	memory, memoryReservation, memorySwap, shmSize                          bytesOpt
	cpus                                                                    decimalOpt
	ulimits                                                                 ulimitOpt
	mounts                                                                  mountOpt
	cgroupParent, cgroupns, cidfile, cpusetCpus, cpusetMems, domainname     string
	entrypoint, hostname, ipc, logDriver, name, netMode, pid, platform      string
	pull, restart, runtime, stopSignal, user, userns, uts, workdir, isolate string
	cpuPeriod, cpuQuota, cpuRtPeriod, cpuRtRuntime, cpuShares, pidsLimit    int64
	blkioWeight                                                             uint16
	memorySwappiness                                                        int64
	oomScoreAdj, stopTimeout                                                int
	detach, interactive, tty, rm, privileged, readOnly, init, publishAll    bool
	oomKillDisable, noHealthcheck, quiet, sigProxy                          bool
	detachKeys                                                              string
}

func addContainerFlags(fs *pflag.FlagSet, run bool) *containerOpts {
	o := &containerOpts{fs: fs}
	fs.VarP(&o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(&o.addHost, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.cgroupns, "cgroupns", "", "Cgroup namespace to use (host|private)\n'host':    Run the container in the Docker host's cgroup namespace\n'private': Run the container in its own private cgroup namespace\n'':        Use the cgroup namespace as configured by the\n           default-cgroupns-mode option on the daemon (default)")
	fs.StringVar(&o.cidfile, "cidfile", "", "Write the container ID to the file")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&o.cpuRtPeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fs.Int64Var(&o.cpuRtRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	if run {
		fs.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
		fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
		fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
		fs.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	} else {
		fs.BoolVar(&o.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	}
	fs.Var(&o.devices, "device", "Add a host device to the container")
	fs.Var(&o.dns, "dns", "Set custom DNS servers")
	fs.Var(&o.dnsOpt, "dns-option", "Set DNS options")
	fs.Var(&o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	fs.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	fs.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fs.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.isolate, "isolation", "", "Container isolation technology")
	fs.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fs.Var(&o.labelFile, "label-file", "Read in a line delimited file of labels")
	fs.Var(&o.links, "link", "Add link to another container")
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fs.Var(&o.logOpt, "log-opt", "Log driver options")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	o.memorySwap.withMinusOne = true
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.netMode, "network", "", "Connect a container to a network")
	fs.StringVar(&o.netMode, "net", "", "Connect a container to a network")
	fs.MarkHidden("net")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.StringVar(&o.pull, "pull", "missing", "Pull image before running (\"always\", \"missing\", \"never\")")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.Var(&o.securityOpt, "security-opt", "Security Options")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(&o.storageOpt, "storage-opt", "Storage driver options for the container")
	fs.Var(&o.sysctls, "sysctl", "Sysctl options")
	fs.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&o.userns, "userns", "", "User namespace to use")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fs.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return o
}

// body builds the create request from the flags, the image and the
// command; errors are the CLI's (exit 125).
func (o *containerOpts) body(img string, cmd []string) (client.CreateBody, error) {
	var zero client.CreateBody
	changed := o.fs.Changed
	cfg := &container.Config{
		Hostname: o.hostname, Domainname: o.domainname, User: o.user, Tty: o.tty,
		OpenStdin: o.interactive, Image: img, WorkingDir: o.workdir,
		Labels: map[string]string{}, Volumes: map[string]struct{}{}, StopSignal: o.stopSignal,
	}
	if len(cmd) > 0 {
		cfg.Cmd = strslice.StrSlice(cmd)
	}
	if changed("entrypoint") {
		cfg.Entrypoint = strslice.StrSlice{o.entrypoint}
	}
	if o.workdir != "" && !path.IsAbs(o.workdir) {
		return zero, fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", o.workdir)
	}
	if changed("stop-timeout") {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	// Streams: -a picks them; by default stdout and stderr (and stdin
	// with -i) unless detached.
	if !o.detach {
		if len(o.attach.vals) == 0 {
			cfg.AttachStdout, cfg.AttachStderr = true, true
			cfg.AttachStdin = o.interactive
		}
		for _, a := range o.attach.vals {
			switch strings.ToLower(a) {
			case "stdin":
				cfg.AttachStdin = true
			case "stdout":
				cfg.AttachStdout = true
			case "stderr":
				cfg.AttachStderr = true
			default:
				return zero, fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", a)
			}
		}
	} else if len(o.attach.vals) > 0 {
		return zero, fmt.Errorf("conflicting options: cannot specify both --attach and --detach")
	}
	if cfg.AttachStdin {
		cfg.StdinOnce = true
	}
	for _, f := range o.envFile.vals {
		lines, err := readKVFile(f, true)
		if err != nil {
			return zero, err
		}
		cfg.Env = append(cfg.Env, lines...)
	}
	for _, e := range o.env.vals {
		if v, ok := envValue(e); ok {
			cfg.Env = append(cfg.Env, v)
		}
	}
	for _, f := range o.labelFile.vals {
		lines, err := readKVFile(f, false)
		if err != nil {
			return zero, err
		}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			cfg.Labels[k] = v
		}
	}
	for _, l := range o.labels.vals {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	exposed, bindings, err := o.ports()
	if err != nil {
		return zero, err
	}
	if len(exposed) > 0 {
		cfg.ExposedPorts = exposed
	}

	hc := &container.HostConfig{
		ContainerIDFile: o.cidfile, AutoRemove: o.rm, Privileged: o.privileged,
		ReadonlyRootfs: o.readOnly, PublishAllPorts: o.publishAll, PortBindings: bindings,
		NetworkMode: container.NetworkMode(o.netMode), IpcMode: container.IpcMode(o.ipc),
		PidMode: container.PidMode(o.pid), UTSMode: container.UTSMode(o.uts),
		UsernsMode: container.UsernsMode(o.userns), CgroupnsMode: container.CgroupnsMode(o.cgroupns),
		CapAdd: capNames(o.capAdd.vals), CapDrop: capNames(o.capDrop.vals),
		DNS: o.dns.vals, DNSOptions: o.dnsOpt.vals, DNSSearch: o.dnsSearch.vals,
		ExtraHosts: o.addHost.vals, GroupAdd: o.groupAdd.vals, Links: o.links.vals,
		OomScoreAdj: o.oomScoreAdj, ShmSize: o.shmSize.v, Sysctls: o.sysctls.m,
		StorageOpt: o.storageOpt.m, Runtime: o.runtime, VolumesFrom: o.volumesFrom.vals,
		Mounts: o.mounts.vals, Isolation: container.Isolation(o.isolate),
		LogConfig: container.LogConfig{Type: o.logDriver},
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if o.cgroupns != "" && o.cgroupns != "host" && o.cgroupns != "private" {
		return zero, fmt.Errorf("--cgroupns: invalid CGROUP mode %q: want host or private", o.cgroupns)
	}
	if len(o.logOpt.vals) > 0 {
		hc.LogConfig.Config = map[string]string{}
		for _, l := range o.logOpt.vals {
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				return zero, fmt.Errorf("invalid key value pair format in log options: %s", l)
			}
			hc.LogConfig.Config[k] = v
		}
	}
	if changed("init") {
		b := o.init
		hc.Init = &b
	}
	rp, err := restartPolicy(o.restart)
	if err != nil {
		return zero, err
	}
	hc.RestartPolicy = rp
	if o.rm && rp.Name != "" && rp.Name != container.RestartPolicyDisabled {
		return zero, fmt.Errorf("conflicting options: cannot specify both --restart and --rm")
	}
	if hc.SecurityOpt, err = securityOpts(o.securityOpt.vals); err != nil {
		return zero, err
	}
	for _, t := range o.tmpfs.vals {
		dst, opts, _ := strings.Cut(t, ":")
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[dst] = opts
	}
	for _, v := range o.volumes.vals {
		if err := o.volume(v, cfg, hc); err != nil {
			return zero, err
		}
	}
	for _, d := range o.devices.vals {
		dm, err := deviceMapping(d)
		if err != nil {
			return zero, err
		}
		hc.Devices = append(hc.Devices, dm)
	}
	r := &hc.Resources
	r.Memory, r.MemoryReservation, r.MemorySwap = o.memory.v, o.memoryReservation.v, o.memorySwap.v
	r.NanoCPUs, r.CPUPeriod, r.CPUQuota, r.CPUShares = o.cpus.nano, o.cpuPeriod, o.cpuQuota, o.cpuShares
	r.CPURealtimePeriod, r.CPURealtimeRuntime = o.cpuRtPeriod, o.cpuRtRuntime
	r.CpusetCpus, r.CpusetMems, r.BlkioWeight, r.CgroupParent = o.cpusetCpus, o.cpusetMems, o.blkioWeight, o.cgroupParent
	r.Ulimits = o.ulimits.vals
	if o.cpus.nano != 0 && (o.cpuPeriod != 0 || o.cpuQuota != 0) {
		return zero, fmt.Errorf("conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if changed("memory-swappiness") {
		s := o.memorySwappiness
		r.MemorySwappiness = &s
	}
	if changed("pids-limit") {
		p := o.pidsLimit
		r.PidsLimit = &p
	}
	if changed("oom-kill-disable") {
		b := o.oomKillDisable
		r.OomKillDisable = &b
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	if n := string(hc.NetworkMode); n != "" && !hc.NetworkMode.IsContainer() {
		nc.EndpointsConfig[n] = &network.EndpointSettings{}
	}
	return client.CreateBody{Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

// capNames adds the CAP_ prefix the docker CLI adds (ALL stays ALL).
func capNames(caps []string) strslice.StrSlice {
	var out strslice.StrSlice
	for _, c := range caps {
		u := strings.ToUpper(c)
		if u != "ALL" && !strings.HasPrefix(u, "CAP_") {
			u = "CAP_" + u
		}
		out = append(out, u)
	}
	return out
}

func restartPolicy(s string) (container.RestartPolicy, error) {
	var p container.RestartPolicy
	if s == "" {
		return p, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	p.Name = container.RestartPolicyMode(name)
	switch p.Name {
	case "no", "always", "unless-stopped":
		if hasCount {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
		}
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
			}
			p.MaximumRetryCount = n
		}
	default:
		return p, fmt.Errorf("invalid restart policy format: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", name)
	}
	return p, nil
}

// securityOpts inlines a seccomp profile file, as the docker CLI does
// (the daemon may not see the client's files).
func securityOpts(opts []string) ([]string, error) {
	var out []string
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if o == "no-new-privileges" {
			out = append(out, o)
			continue
		}
		if !ok {
			return nil, fmt.Errorf("invalid --security-opt: %q", o)
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + buf.String()
		}
		out = append(out, o)
	}
	return out, nil
}

// volume turns -v into a bind (/host:/ctr[:opts]), a named volume
// (name:/ctr) or an anonymous volume (/ctr).
func (o *containerOpts) volume(v string, cfg *container.Config, hc *container.HostConfig) error {
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		if !path.IsAbs(v) {
			return fmt.Errorf("invalid volume specification: '%s': the destination must be an absolute path", v)
		}
		cfg.Volumes[v] = struct{}{}
		return nil
	case 2, 3:
		if parts[0] == "" || !path.IsAbs(parts[1]) {
			return fmt.Errorf("invalid volume specification: '%s'", v)
		}
		if strings.HasPrefix(parts[0], ".") {
			return fmt.Errorf("invalid volume specification: '%s': a bind source must be an absolute path", v)
		}
		hc.Binds = append(hc.Binds, v)
		return nil
	}
	return fmt.Errorf("invalid volume specification: '%s'", v)
}

func deviceMapping(d string) (container.DeviceMapping, error) {
	parts := strings.Split(d, ":")
	dm := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if strings.Trim(parts[1], "rwm") == "" && parts[1] != "" {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 3:
		dm.PathInContainer, dm.CgroupPermissions = parts[1], parts[2]
	default:
		return dm, fmt.Errorf("invalid device specification: %s", d)
	}
	if !path.IsAbs(dm.PathInContainer) {
		return dm, fmt.Errorf("%s is not an absolute path", dm.PathInContainer)
	}
	return dm, nil
}

// ports parses --expose and -p [ip:][hostPort:]containerPort[/proto].
func (o *containerOpts) ports() (nat.PortSet, nat.PortMap, error) {
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, e := range o.expose.vals {
		port, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s", e)
		}
		exposed[nat.Port(port+"/"+proto)] = struct{}{}
	}
	for _, p := range o.publish.vals {
		spec, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		parts := strings.Split(spec, ":")
		var ip, hostPort, ctrPort string
		switch len(parts) {
		case 1:
			ctrPort = parts[0]
		case 2:
			hostPort, ctrPort = parts[0], parts[1]
		case 3:
			ip, hostPort, ctrPort = parts[0], parts[1], parts[2]
		default:
			return nil, nil, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", p)
		}
		if _, err := strconv.ParseUint(ctrPort, 10, 16); err != nil {
			return nil, nil, fmt.Errorf("invalid containerPort: %s", ctrPort)
		}
		if hostPort != "" {
			if _, err := strconv.ParseUint(hostPort, 10, 16); err != nil {
				return nil, nil, fmt.Errorf("invalid hostPort: %s", hostPort)
			}
		}
		port := nat.Port(ctrPort + "/" + proto)
		exposed[port] = struct{}{}
		bindings[port] = append(bindings[port], nat.PortBinding{HostIP: ip, HostPort: hostPort})
	}
	return exposed, bindings, nil
}
