package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/monitor"
	"github.com/berth-dev/berth/internal/spawnreq"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// socketPath is the monitor's socket: short, as unix socket paths are
// limited to 108 bytes.
func (e *Engine) socketPath(id string) string {
	return filepath.Join(e.execRoot, "m", id[:20]+".sock")
}

func (e *Engine) exitPath(id string) string {
	return filepath.Join(e.bundleDir(id), "exit")
}

// Start starts a created or stopped container.
func (e *Engine) Start(ref string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	return e.startLocked(c, false)
}

// startLocked starts c; call with c.op held.
func (e *Engine) startLocked(c *Container, restart bool) error {
	c.mu.Lock()
	if c.removed || c.State.Status == "removing" {
		c.mu.Unlock()
		return errdefs.Conflictf("container %s is marked for removal and cannot be started", c.ID[:12])
	}
	if c.State.Running() {
		c.mu.Unlock()
		return errdefs.NotModifiedf("container %s is already running", c.ID[:12])
	}
	if !restart {
		c.ManualStop = false
	}
	snap := c.snapshot()
	c.mu.Unlock()

	fail := func(err error) error {
		c.mu.Lock()
		c.State.Error = err.Error()
		if c.State.Status == "created" || c.State.Status == "restarting" {
			c.State.Status = "created"
		}
		c.State.ExitCode = exitCodeFor(err)
		c.save()
		c.notify()
		c.mu.Unlock()
		e.opts.RootFS.Unmount(c.ID)
		os.RemoveAll(e.bundleDir(c.ID))
		// Attach requests waiting for this start end now.
		c.mu.Lock()
		pending := c.pending
		c.pending = nil
		auto := c.HostConfig.AutoRemove
		c.mu.Unlock()
		for _, p := range pending {
			close(p.done)
		}
		if auto {
			// docker run --rm waits for the removal after a failed start.
			e.removeLocked(c, true)
		}
		return err
	}
	t0 := time.Now()
	p := e.takePrepared(c)
	if p != nil {
		e.trace(t0, "start %s: prepared ahead", c.ID[:12])
	} else {
		var err error
		if p, err = e.prepare(c, snap, t0); err != nil {
			return fail(err)
		}
	}
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, pa := range pending {
		e.connectAttach(c, pa)
	}
	startErr := error(nil)
	if e.opts.Lib != nil {
		startErr = e.opts.Lib.Start(c.ID)
	} else {
		startErr = monitor.Start(p.socket)
	}
	if err := startErr; err != nil {
		exec := fmt.Errorf("failed to start container: %w", err)
		// The monitor reaps the killed init and exits; its wait answer
		// arrives on waitCh and is dropped with this failed start.
		e.runtime("kill", c.ID, "KILL")
		<-p.waitCh
		return fail(exec)
	}
	e.trace(t0, "start %s: started", c.ID[:12])
	c.mu.Lock()
	c.State = State{Status: "running", Pid: p.pid, MonitorPid: p.proc.Pid, StartedAt: time.Now().UTC(), Exits: c.State.Exits}
	if restart {
		c.RestartCount++
	}
	c.save()
	c.notify()
	e.containerEvent(c, events.ActionStart, nil)
	c.mu.Unlock()
	e.wg.Add(1)
	go e.watch(c, p.waitCh)
	return nil
}

// preparedStart is a start done up to the release of the container's
// process: its monitor runs, the runtime has created it (the init waits
// on the exec fifo) and the daemon is connected as a waiter.
type preparedStart struct {
	proc   *os.Process
	pid    int
	socket string
	waitCh <-chan monitor.WaitResult
	timer  *time.Timer // a start made ahead is undone when it fires
}

// prepare does a start up to the release: the root filesystem, the spec
// and bundle, the monitor, the runtime's create. On failure it has undone
// what it did, but for the root filesystem's mount. What does not depend
// on the mounted root filesystem (the cgroup, the monitor's set-up) runs
// beside it.
func (e *Engine) prepare(c *Container, snap *Container, t0 time.Time) (p *preparedStart, err error) {
	// With the runtime in-process, the daemon creates the container
	// itself and only the init's fork happens in the monitor, which must
	// be its parent: no runtime program starts, and the work is done by
	// a warm process. The create's spec tells already (its namespaces
	// are the start's; only the image's users are missing from it).
	early := c.createSpec
	if early == nil {
		// A container of an earlier daemon: its create's spec is built
		// again (without the root filesystem, cheaply), and kept.
		if early, err = e.buildSpec(snap, ""); err != nil {
			return nil, err
		}
		c.createSpec = early
	}
	inProcess := e.opts.Lib != nil && e.opts.Lib.CanSpawn(early)
	if inProcess {
		// The cgroup (same path and resources) is made while the root
		// filesystem is mounted and the spec built.
		e.opts.Lib.PrepareCgroup(c.ID, early)
		defer func() {
			if err != nil {
				e.opts.Lib.DropCgroup(c.ID)
			}
		}()
	}
	bundle := e.bundleDir(c.ID)
	os.RemoveAll(bundle)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, err
	}
	logPath := snap.LogPath
	if snap.HostConfig.LogConfig.Type == "none" {
		logPath = ""
	}
	mcfg := monitor.Config{
		ID: c.ID, Bundle: bundle, Runtime: e.opts.Runtime, RuntimeArgs: e.runtimeArgs(),
		LogPath: logPath, ExitFile: e.exitPath(c.ID), Socket: e.socketPath(c.ID),
		Tty: snap.Config.Tty, OpenStdin: snap.Config.OpenStdin, StdinOnce: snap.Config.StdinOnce,
		SpawnOnRequest: inProcess, DaemonDeletes: inProcess,
	}
	// The next start's monitor starts once this one's work is done.
	defer e.refillMonitors()
	p = &preparedStart{socket: mcfg.Socket}
	// The monitor takes its configuration meanwhile; the runtime needs it
	// only to fork the init (and, with a terminal, for the console socket
	// it dials first). It does not touch the bundle before the exit.
	type spawned struct {
		proc *os.Process
		pid  int
		err  error
	}
	ready := make(chan spawned, 1)
	startMonitor := func() {
		go func() {
			proc, pid, err := e.spawnMonitor(filepath.Join(bundle, "monitor.json"), mcfg)
			e.trace(t0, "start %s: monitor ready", c.ID[:12])
			ready <- spawned{proc, pid, err}
		}()
	}
	if inProcess {
		startMonitor()
	}
	var monitorErr error
	waited := false
	waitMonitor := func() error {
		if !waited {
			waited = true
			r := <-ready
			p.proc, p.pid, monitorErr = r.proc, r.pid, r.err
			if monitorErr == nil {
				go p.proc.Wait() // the daemon is the monitor's parent until it restarts
			}
		}
		return monitorErr
	}
	initStarted := false
	undo := func(err error) (*preparedStart, error) {
		if inProcess && waitMonitor() == nil && !initStarted {
			monitor.Abort(mcfg.Socket)
		}
		// Otherwise the runtime killed the init (or there was none yet: the
		// classic monitor failed): the monitor reaps it and exits.
		os.RemoveAll(bundle)
		return nil, err
	}
	rootfs, err := e.opts.RootFS.Prepare(c.ID, snap.ImageChain, snap.UIDMaps, snap.GIDMaps, snap.HostConfig.AutoRemove)
	if err != nil {
		return undo(fmt.Errorf("prepare the root filesystem: %w", err))
	}
	e.trace(t0, "start %s: rootfs", c.ID[:12])
	// The next container of this image finds its root filesystem made.
	defer e.prepareRootfsAhead(snap)
	spec, err := e.buildSpec(snap, rootfs)
	if err != nil {
		return undo(err)
	}
	if inProcess {
		if !e.opts.Lib.CanSpawn(spec) {
			return undo(fmt.Errorf("the container's namespaces changed since its create"))
		}
		// Its init joins a network namespace made ahead: set before the
		// bundle is written, let go of once the create is done.
		defer e.netns.Use(spec)()
	}
	e.trace(t0, "start %s: spec", c.ID[:12])
	// config.json is the bundle's record (the runtime has the spec in
	// memory): written beside the create.
	wrote := make(chan error, 1)
	go func() {
		data, err := json.Marshal(spec)
		if err == nil {
			err = os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600)
		}
		wrote <- err
	}()
	if !inProcess {
		// This monitor runs `runtime create` on the bundle.
		if err := <-wrote; err != nil {
			return undo(err)
		}
		wrote <- nil
		startMonitor()
		if err := waitMonitor(); err != nil {
			<-wrote
			return undo(fmt.Errorf("failed to create task for container: %w", err))
		}
	} else {
		console := ""
		if mcfg.Tty {
			console = mcfg.Socket + ".console"
			if err := waitMonitor(); err != nil {
				<-wrote
				return undo(fmt.Errorf("failed to create task for container: %w", err))
			}
		}
		p.pid, err = e.opts.Lib.Create(c.ID, bundle, spec, console, func(req *spawnreq.Request, files []*os.File, cg *os.File) (int, error) {
			if err := waitMonitor(); err != nil {
				return 0, err
			}
			initStarted = true
			return monitor.SpawnInit(mcfg.Socket, req, files, cg)
		})
		if err != nil {
			<-wrote
			return undo(fmt.Errorf("failed to create task for container: %w", err))
		}
	}
	if err := <-wrote; err != nil {
		e.undoCreate(c.ID)
		return undo(err)
	}
	e.trace(t0, "start %s: container created", c.ID[:12])
	if p.waitCh, err = monitor.Wait(mcfg.Socket); err != nil {
		e.undoCreate(c.ID)
		return undo(err)
	}
	return p, nil
}

// undoCreate kills and deletes a created container in the runtime: its
// monitor reaps the init and exits.
func (e *Engine) undoCreate(id string) {
	if e.opts.Lib != nil {
		e.opts.Lib.Delete(id)
	} else {
		e.runtime("delete", "--force", id)
	}
}

// exitCodeFor maps a start failure to the exit code Docker records.
func exitCodeFor(err error) int {
	s := err.Error()
	switch {
	case strings.Contains(s, "executable file not found"), strings.Contains(s, "no such file or directory"):
		return 127
	case strings.Contains(s, "permission denied"):
		return 126
	}
	return 128
}

// watch waits for the container's exit and handles it.
func (e *Engine) watch(c *Container, waitCh <-chan monitor.WaitResult) {
	defer e.wg.Done()
	r := <-waitCh
	ex := r.Exit
	if r.Err != nil {
		// The monitor is gone without saying: it recorded the exit before
		// going, or it died (then the container is lost: 255).
		var err error
		if ex, err = monitor.ReadExit(e.exitPath(c.ID)); err != nil {
			ex = monitor.Exit{ExitCode: 255, FinishedAt: time.Now().UTC(), Error: "container monitor died"}
		}
	}
	e.handleExit(c, ex)
}

// handleExit records an exit, releases the rootfs, and applies
// --rm and restart policies.
func (e *Engine) handleExit(c *Container, ex monitor.Exit) {
	t0 := time.Now()
	defer e.trace(t0, "exit %s: handled", c.ID[:12])
	exited := func() {
		c.State.Status = "exited"
		c.State.Pid, c.State.MonitorPid = 0, 0
		c.State.ExitCode = ex.ExitCode
		c.State.OOMKilled = ex.OOMKilled
		c.State.Error = ex.Error
		c.State.FinishedAt = ex.FinishedAt
		c.State.Exits++
	}
	c.mu.Lock()
	hc := c.HostConfig
	manual := c.ManualStop
	restarts := c.RestartCount
	c.mu.Unlock()
	if hc.AutoRemove {
		// Removed next, so the exit is not written down: a daemon that
		// stops before the removal removes the container when it starts.
		c.mu.Lock()
		exited()
		e.containerEvent(c, events.ActionDie, map[string]string{"exitCode": itoa(ex.ExitCode)})
		c.notify()
		c.mu.Unlock()
		e.cleanupExecs(c)
		c.op.Lock()
		e.removeLocked(c, true)
		c.op.Unlock()
		return
	}
	// The runtime's state and the mounts go before the exit is told, so
	// that a start that follows finds none of them.
	if e.opts.Lib != nil {
		// A monitor told to leave it to the daemon did not delete the
		// runtime's state (others did: deleting again finds nothing).
		e.opts.Lib.Delete(c.ID)
	}
	e.opts.RootFS.Unmount(c.ID)
	os.RemoveAll(e.bundleDir(c.ID))
	e.cleanupExecs(c)
	c.mu.Lock()
	exited()
	c.save()
	e.containerEvent(c, events.ActionDie, map[string]string{"exitCode": itoa(ex.ExitCode)})
	c.mu.Unlock()
	if !manual && shouldRestart(hc, ex.ExitCode, restarts) {
		c.mu.Lock()
		c.State.Status = "restarting"
		c.notify()
		c.mu.Unlock()
		delay := time.Duration(100<<min(restarts, 8)) * time.Millisecond
		time.AfterFunc(delay, func() {
			c.op.Lock()
			defer c.op.Unlock()
			c.mu.Lock()
			still := c.State.Status == "restarting" && !c.ManualStop && !c.removed
			c.mu.Unlock()
			if still {
				if err := e.startLocked(c, true); err == nil {
					c.mu.Lock()
					e.containerEvent(c, "restart", nil)
					c.mu.Unlock()
				}
			}
		})
		return
	}
	c.mu.Lock()
	c.notify()
	c.mu.Unlock()
}

// shouldRestart applies --restart.
func shouldRestart(hc *container.HostConfig, code, count int) bool {
	p := hc.RestartPolicy
	switch {
	case p.IsAlways(), p.IsUnlessStopped():
		return true
	case p.IsOnFailure():
		return code != 0 && (p.MaximumRetryCount == 0 || count < p.MaximumRetryCount)
	}
	return false
}
