package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/engine/config"
	"github.com/berth-dev/berth/image"
	berthruntime "github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/snapshot"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{name: "daemon", summary: "Run the berth daemon (serves the Docker Engine API)", run: runDaemon})
}

func runDaemon(args []string) int {
	fs := pflag.NewFlagSet("daemon", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage:  berth daemon [OPTIONS]\n\nRun the berth daemon: the Docker Engine API (version "+api.Version+") on a unix socket.\n\nOptions:\n")
		fs.PrintDefaults()
	}
	cfgFile := fs.String("config", config.DefaultConfigFile, "Daemon configuration file (daemon.json)")
	hosts := fs.StringArrayP("host", "H", nil, "Daemon socket to listen on (unix:///path)")
	group := fs.StringP("group", "G", "", "Group owning the socket (default \"docker\")")
	dataRoot := fs.String("data-root", "", "Root directory of persistent state (default "+config.DefaultDataRoot+")")
	execRoot := fs.String("exec-root", "", "Root directory of execution state (default "+config.DefaultExecRoot+")")
	remap := fs.String("userns-remap", "", "User/Group setting for user namespaces (user, user:group or default)")
	seccompProfile := fs.String("seccomp-profile", "", "Path to the default seccomp profile")
	cgroupParent := fs.String("cgroup-parent", "", "Parent cgroup for all containers (default /berth)")
	runtimeBin := fs.String("runtime", "", "OCI runtime binary (default berth-runtime beside berth)")
	logLevel := fs.StringP("log-level", "l", "", "Logging level (debug, info, warn, error, fatal)")
	liveRestore := fs.Bool("live-restore", true, "Keep containers running when the daemon stops")
	debug := fs.BoolP("debug", "D", false, "Enable debug mode")
	insecure := fs.StringArray("insecure-registry", nil, "Registry (host[:port] or CIDR) reached without TLS verification")
	mirrors := fs.StringArray("registry-mirror", nil, "Preferred Docker Hub mirror (URL)")
	maxDownloads := fs.Int("max-concurrent-downloads", 0, "Layers downloaded at once per pull (default 3)")
	maxUploads := fs.Int("max-concurrent-uploads", 0, "Layers uploaded at once per push (default 5)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "berth daemon:", err)
		return 125
	}
	cfg, err := config.Load(*cfgFile, fs.Changed("config"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth daemon:", err)
		return 1
	}
	if fs.Changed("host") {
		cfg.Hosts = *hosts
	}
	set := func(dst *string, name, v string) {
		if fs.Changed(name) {
			*dst = v
		}
	}
	set(&cfg.Group, "group", *group)
	set(&cfg.DataRoot, "data-root", *dataRoot)
	set(&cfg.ExecRoot, "exec-root", *execRoot)
	set(&cfg.UsernsRemap, "userns-remap", *remap)
	set(&cfg.SeccompProfile, "seccomp-profile", *seccompProfile)
	set(&cfg.Runtime, "runtime", *runtimeBin)
	set(&cfg.CgroupParent, "cgroup-parent", *cgroupParent)
	set(&cfg.LogLevel, "log-level", *logLevel)
	if fs.Changed("live-restore") || !cfg.LiveRestoreSet() {
		cfg.SetLiveRestore(*liveRestore)
	}
	if *debug {
		cfg.Debug = true
	}
	cfg.Insecure = append(cfg.Insecure, *insecure...)
	cfg.Mirrors = append(cfg.Mirrors, *mirrors...)
	if fs.Changed("max-concurrent-downloads") {
		cfg.MaxConcurrentDownloads = *maxDownloads
	}
	if fs.Changed("max-concurrent-uploads") {
		cfg.MaxConcurrentUploads = *maxUploads
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "berth daemon:", err)
		return 1
	}
	if err := serveDaemon(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "berth daemon:", err)
		return 1
	}
	return 0
}

// runtimePath picks the OCI runtime: the configured one, else
// berth-runtime beside this binary when this binary has the runtime verb,
// else runc.
func runtimePath(cfg *config.Config, self string) (string, error) {
	if cfg.Runtime != "" {
		return exec.LookPath(cfg.Runtime)
	}
	if _, ok := commands["runtime"]; ok {
		p := filepath.Join(filepath.Dir(self), "berth-runtime")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("runc")
	if err != nil {
		return "", fmt.Errorf("no OCI runtime: berth-runtime is not beside %s and runc is not installed", self)
	}
	return p, nil
}

// monitorArgv runs container monitors: berth-monitor beside this binary
// (small: one runs per container), else this binary's monitor verb.
func monitorArgv(self string) []string {
	p := filepath.Join(filepath.Dir(self), "berth-monitor")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return []string{p}
	}
	return []string{self, "monitor"}
}

func serveDaemon(cfg *config.Config) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rt, err := runtimePath(cfg, self)
	if err != nil {
		return err
	}
	var remap *config.Remap
	if cfg.UsernsRemap != "" {
		if remap, err = config.ResolveRemap(cfg.UsernsRemap, config.SystemFiles); err != nil {
			return err
		}
	}
	var profile []byte
	if cfg.SeccompProfile != "" && cfg.SeccompProfile != "unconfined" {
		if profile, err = os.ReadFile(cfg.SeccompProfile); err != nil {
			return fmt.Errorf("seccomp-profile: %w", err)
		}
	}
	// The data root's lock first: opening the snapshotter and the image
	// store cleans up (spares, unpacks) after a daemon that died, which
	// must not happen to one still serving.
	lock, err := engine.LockDataRoot(cfg.DataRoot)
	if err != nil {
		return err
	}
	snaps, err := snapshot.Open(filepath.Join(cfg.DataRoot, "snapshots"))
	if err != nil {
		return err
	}
	store, err := image.Open(filepath.Join(cfg.DataRoot, "image"), snaps)
	if err != nil {
		return err
	}
	var lib engine.RuntimeLib
	if filepath.Base(rt) == "berth-runtime" && filepath.Dir(rt) == filepath.Dir(self) {
		// The runtime is this binary: call it in-process where no new
		// runtime process is needed (start, kill, pause, resume, exec).
		rt := berthruntime.New(filepath.Join(cfg.ExecRoot, "runtime"))
		if cfg.Debug {
			last := time.Now()
			rt.Trace = func(step string) {
				now := time.Now()
				if step == "" {
					last = now
					return
				}
				fmt.Fprintf(os.Stderr, "berth daemon: %s runtime: %s after %s\n", now.Format("15:04:05.000000"), step, now.Sub(last).Round(10*time.Microsecond))
				last = now
			}
		}
		lib = newRuntimeLib(rt)
	}
	eng, err := engine.New(engine.Options{Lib: lib,
		Config: cfg, MonitorArgv: monitorArgv(self), Runtime: rt,
		Images: engine.StoreImages{Store: store}, RootFS: engine.SnapshotRootFS{Snaps: snaps},
		Seccomp: seccompBuilder(cfg), DefaultSeccompProfile: profile, Remap: remap, Version: version,
		DataRootLock: lock,
	})
	if err != nil {
		return err
	}
	// Spare root filesystems are made ahead while the daemon runs: they
	// go after the engine has closed (its clean-ups may still make one).
	defer snaps.DropSpares()
	defer eng.Close()
	store.InUse = eng.ImageUse
	ln, err := api.Listen(cfg.SocketPath(), cfg.Group)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(eng, store, version, gitCommit), ReadHeaderTimeout: 30 * time.Second}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	if cfg.Debug || strings.EqualFold(cfg.LogLevel, "debug") {
		fmt.Fprintf(os.Stderr, "berth daemon: API %s listening on %s (runtime %s, data root %s)\n", api.Version, cfg.SocketPath(), rt, cfg.DataRoot)
	}
	select {
	case <-sigs:
	case err := <-errCh:
		return err
	}
	ln.Close()
	os.Remove(cfg.SocketPath())
	if !cfg.LiveRestore {
		eng.StopAll(10 * time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	return nil
}

// runtimeLib adapts the runtime package to engine.RuntimeLib. It keeps
// the containers it created, so start, exec and delete use the state in
// memory instead of decoding state.json (the whole spec) each time; a
// container of an earlier daemon is found by ID.
type runtimeLib struct {
	*berthruntime.Runtime
	mu      *sync.Mutex
	created map[string]*berthruntime.Container
}

func newRuntimeLib(rt *berthruntime.Runtime) runtimeLib {
	return runtimeLib{Runtime: rt, mu: &sync.Mutex{}, created: map[string]*berthruntime.Container{}}
}

func (l runtimeLib) held(id string) *berthruntime.Container {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.created[id]
}

// Start releases the init.
func (l runtimeLib) Start(id string) error {
	if c := l.held(id); c != nil {
		return l.Runtime.StartCreated(c)
	}
	return l.Runtime.Start(id)
}

// Exec runs p with berth-nsenter as its waiting parent, so the daemon
// never becomes a child subreaper.
func (l runtimeLib) Exec(id string, p *specs.Process, stdin, stdout, stderr *os.File, consoleSocket string) (int, func() (int, error), error) {
	o := berthruntime.ExecOptions{Process: p, ConsoleSocket: consoleSocket,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, HelperWaits: true}
	var proc *berthruntime.Process
	var err error
	if c := l.held(id); c != nil {
		proc, err = l.Runtime.ExecCreated(c, o)
	} else {
		proc, err = l.Runtime.Exec(id, o)
	}
	if err != nil {
		var ie *berthruntime.InitError
		if errors.As(err, &ie) {
			return 0, nil, initExecError{ie}
		}
		return 0, nil, err
	}
	return proc.Pid, proc.Wait, nil
}

// initExecError is a failure inside the container, with the exit status
// Docker gives it.
type initExecError struct{ *berthruntime.InitError }

func (e initExecError) ExitCode() int {
	if e.InitError.ExitCode == 0 {
		return 126
	}
	return e.InitError.ExitCode
}

// CanSpawn: the monitor can start the init unless the berth-nsenter
// helper must (namespaces joined by path that a Go process cannot enter).
func (l runtimeLib) CanSpawn(spec *specs.Spec) bool { return berthruntime.SpawnSupported(spec) }

// Create creates the container in the daemon; spawn starts its init in
// the monitor.
func (l runtimeLib) Create(id, bundle string, spec *specs.Spec, consoleSocket string, spawn engine.SpawnFunc) (int, error) {
	c, err := l.Runtime.Create(id, berthruntime.CreateOptions{Bundle: bundle, Spec: spec, ConsoleSocket: consoleSocket,
		Spawn: func(r *berthruntime.SpawnRequest) (int, error) { return spawn(&r.Request, r.Files, r.Cgroup) }})
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.created[id] = c
	l.mu.Unlock()
	return c.Pid(), nil
}

// Delete force-deletes; a container already gone is not an error.
func (l runtimeLib) Delete(id string) error {
	l.mu.Lock()
	c := l.created[id]
	delete(l.created, id)
	l.mu.Unlock()
	var err error
	if c != nil {
		err = l.Runtime.DeleteCreated(c)
	} else {
		err = l.Runtime.Delete(id, true)
	}
	if err != nil && !errors.Is(err, berthruntime.ErrNotExist) {
		return err
	}
	return nil
}

// PrepareCgroup starts making the cgroup of a container about to be
// created (runtime.Runtime.PrepareCgroup).
func (l runtimeLib) PrepareCgroup(id string, spec *specs.Spec) { l.Runtime.PrepareCgroup(id, spec) }

// DropCgroup undoes PrepareCgroup when no create follows.
func (l runtimeLib) DropCgroup(id string) { l.Runtime.DropCgroup(id) }
