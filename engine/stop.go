package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"golang.org/x/sys/unix"
)

// runtime runs the OCI runtime with the daemon's state root.
func (e *Engine) runtime(args ...string) ([]byte, error) {
	cmd := exec.Command(e.opts.Runtime, append(e.runtimeArgs(), args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", e.opts.Runtime, args[0], err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// ParseSignal accepts "KILL", "SIGKILL", "kill" and "9".
func ParseSignal(s string) (unix.Signal, error) {
	if s == "" {
		return unix.SIGKILL, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidParameterf("invalid signal: %s", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidParameterf("invalid signal: %s", s)
}

// waitExit waits until c has exited more than `before` times.
func waitExit(c *Container, before int, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		done := c.State.Exits > before || c.removed
		ch := c.changed
		c.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// Kill sends a signal to the container's init.
func (e *Engine) Kill(ref, signal string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.Running()
	paused := c.State.Status == "paused"
	if sig == unix.SIGKILL || sig == unix.SIGTERM {
		c.ManualStop = true
	}
	c.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Cannot kill container: %s: Container %s is not running", ref, c.ID)
	}
	if err := e.signal(c, sig, paused); err != nil {
		return err
	}
	return nil
}

func (e *Engine) signal(c *Container, sig unix.Signal, paused bool) error {
	c.mu.Lock()
	e.containerEvent(c, events.ActionKill, map[string]string{"signal": itoa(int(sig))})
	c.mu.Unlock()
	var err error
	if e.opts.Lib != nil {
		err = e.opts.Lib.Kill(c.ID, sig, false)
	} else {
		_, err = e.runtime("kill", c.ID, itoa(int(sig)))
	}
	if err != nil {
		c.mu.Lock()
		gone := !c.State.Running()
		c.mu.Unlock()
		if gone {
			return nil
		}
		return fmt.Errorf("cannot kill container %s: %w", c.ID[:12], err)
	}
	if paused && sig == unix.SIGKILL {
		e.runtime("resume", c.ID)
	}
	return nil
}

// Stop sends the stop signal, then SIGKILL after the timeout (default
// the container's --stop-timeout, else 10 s; -1 waits forever).
func (e *Engine) Stop(ref string, timeout *int, signal string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	return e.stopLocked(c, timeout, signal)
}

func (e *Engine) stopLocked(c *Container, timeout *int, signal string) error {
	c.mu.Lock()
	if c.State.Status == "restarting" {
		c.ManualStop = true
		c.State.Status = "exited"
		c.save()
		c.notify()
		c.mu.Unlock()
		return nil
	}
	if !c.State.Running() {
		c.mu.Unlock()
		return errdefs.NotModifiedf("container %s is not running", c.ID[:12])
	}
	c.ManualStop = true
	c.save()
	before := c.State.Exits
	paused := c.State.Status == "paused"
	stopSignal := c.Config.StopSignal
	t := 10
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	c.mu.Unlock()
	if timeout != nil {
		t = *timeout
	}
	if signal == "" {
		signal = stopSignal
	}
	sig := unix.SIGTERM
	if signal != "" {
		s, err := ParseSignal(signal)
		if err != nil {
			return err
		}
		sig = s
	}
	if paused {
		e.runtime("resume", c.ID)
	}
	if err := e.signal(c, sig, false); err != nil {
		return err
	}
	wait := time.Duration(t) * time.Second
	if t < 0 {
		wait = 100 * 365 * 24 * time.Hour
	}
	if !waitExit(c, before, wait) {
		if err := e.signal(c, unix.SIGKILL, false); err != nil {
			return err
		}
		if !waitExit(c, before, 30*time.Second) {
			return fmt.Errorf("container %s did not exit after SIGKILL", c.ID[:12])
		}
	}
	c.mu.Lock()
	e.containerEvent(c, events.ActionStop, nil)
	c.mu.Unlock()
	return nil
}

// Restart stops (if running) and starts.
func (e *Engine) Restart(ref string, timeout *int, signal string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if err := e.stopLocked(c, timeout, signal); err != nil && !errdefs.Is(err, errdefs.NotModified) {
		return err
	}
	if err := e.startLocked(c, false); err != nil {
		return err
	}
	c.mu.Lock()
	e.containerEvent(c, events.ActionRestart, nil)
	c.mu.Unlock()
	return nil
}

// Pause freezes a running container.
func (e *Engine) Pause(ref string) error { return e.freeze(ref, true) }

// Unpause thaws a paused container.
func (e *Engine) Unpause(ref string) error { return e.freeze(ref, false) }

func (e *Engine) freeze(ref string, pause bool) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	status := c.State.Status
	c.mu.Unlock()
	switch {
	case pause && status == "paused":
		return errdefs.Conflictf("Container %s is already paused", c.ID)
	case pause && status != "running":
		return errdefs.Conflictf("Container %s is not running", c.ID)
	case !pause && status != "paused":
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	}
	verb, next, action := "pause", "paused", events.ActionPause
	if !pause {
		verb, next, action = "resume", "running", events.ActionUnPause
	}
	switch {
	case e.opts.Lib != nil && pause:
		err = e.opts.Lib.Pause(c.ID)
	case e.opts.Lib != nil:
		err = e.opts.Lib.Resume(c.ID)
	default:
		_, err = e.runtime(verb, c.ID)
	}
	if err != nil {
		return fmt.Errorf("%s container %s: %w", verb, c.ID[:12], err)
	}
	c.mu.Lock()
	if c.State.Running() {
		c.State.Status = next
		c.save()
		c.notify()
	}
	e.containerEvent(c, action, nil)
	c.mu.Unlock()
	return nil
}

// Remove deletes a container; force kills a running one first.
func (e *Engine) Remove(ref string, force, volumes bool) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	running := c.State.Running()
	status := c.State.Status
	before := c.State.Exits
	c.mu.Unlock()
	if status == "removing" {
		return errdefs.Conflictf("removal of container %s is already in progress", c.ID[:12])
	}
	if running {
		if !force {
			verb := "Stop"
			if status == "paused" {
				return errdefs.Conflictf("You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", c.ID)
			}
			return errdefs.Conflictf("You cannot remove a running container %s. %s the container before attempting removal or force remove", c.ID, verb)
		}
		c.mu.Lock()
		c.ManualStop = true
		c.mu.Unlock()
		if err := e.signal(c, unix.SIGKILL, status == "paused"); err != nil {
			return err
		}
		if !waitExit(c, before, 30*time.Second) {
			return fmt.Errorf("could not kill running container %s, cannot remove", c.ID[:12])
		}
	}
	return e.removeLocked(c, false)
}

// removeLocked deletes c's files, root filesystem and name; c.op held.
// The container is gone once its record is: what remains (the runtime's
// state, the rootfs's files, the bundle) is deleted in the background,
// off the path of `docker run --rm`, whose wait answers at the removal.
func (e *Engine) removeLocked(c *Container, auto bool) error {
	e.unprepare(c)
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return nil
	}
	if c.State.Running() {
		c.mu.Unlock()
		return errdefs.Conflictf("container %s is running", c.ID[:12])
	}
	c.State.Status = "removing"
	if !auto {
		// An --rm container needs no mark: one found stopped at start-up
		// is removed.
		c.save()
	}
	sharedPID := c.HostConfig.PidMode != ""
	c.mu.Unlock()
	if sharedPID && e.opts.Lib != nil {
		// Without a PID namespace of its own, processes can outlive the
		// init: they go (the runtime kills its cgroup) before the rootfs.
		e.opts.Lib.Delete(c.ID)
	}
	t0 := time.Now()
	finish, err := e.opts.RootFS.RemoveLater(c.ID)
	e.trace(t0, "remove %s: rootfs away", c.ID[:12])
	if err != nil {
		c.mu.Lock()
		c.State.Status = "dead"
		c.State.Error = err.Error()
		c.save()
		c.notify()
		c.mu.Unlock()
		return fmt.Errorf("remove the root filesystem of %s: %w", c.ID[:12], err)
	}
	// Without its record the directory is nothing (start-up deletes it).
	os.Remove(filepath.Join(c.dir, configFile))
	e.mu.Lock()
	delete(e.byID, c.ID)
	if e.names[c.Name] == c.ID {
		delete(e.names, c.Name)
	}
	e.mu.Unlock()
	c.mu.Lock()
	c.removed = true
	e.containerEvent(c, events.ActionDestroy, nil)
	c.notify()
	c.mu.Unlock()
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		if e.opts.Lib != nil {
			e.opts.Lib.Delete(c.ID)
		}
		os.RemoveAll(e.bundleDir(c.ID))
		finish()
		os.RemoveAll(c.dir)
	}()
	return nil
}

// Rename changes a container's name.
func (e *Engine) Rename(ref, newName string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if newName == "" || !validName.MatchString(newName) {
		return errdefs.InvalidParameterf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	newName = "/" + strings.TrimPrefix(newName, "/")
	e.mu.Lock()
	c.mu.Lock()
	old := c.Name
	if old == newName {
		c.mu.Unlock()
		e.mu.Unlock()
		return errdefs.InvalidParameterf("Renaming a container with the same name as its current name")
	}
	if err := e.reserveName(newName, c.ID); err != nil {
		c.mu.Unlock()
		e.mu.Unlock()
		return err
	}
	delete(e.names, old)
	c.Name = newName
	c.save()
	e.containerEvent(c, events.ActionRename, map[string]string{"oldName": old})
	c.mu.Unlock()
	e.mu.Unlock()
	return nil
}

// Update changes resources and the restart policy; a running container's
// cgroup is updated through the runtime.
func (e *Engine) Update(ref string, u container.UpdateConfig) ([]string, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	c.op.Lock()
	// A start made ahead used the old resources, and so did the create's
	// spec.
	e.unprepare(c)
	c.createSpec = nil
	defer c.op.Unlock()
	c.mu.Lock()
	hc := *c.HostConfig
	r := &hc.Resources
	if u.CPUShares != 0 {
		r.CPUShares = u.CPUShares
	}
	if u.Memory != 0 {
		r.Memory = u.Memory
	}
	if u.MemorySwap != 0 {
		r.MemorySwap = u.MemorySwap
	}
	if u.MemoryReservation != 0 {
		r.MemoryReservation = u.MemoryReservation
	}
	if u.NanoCPUs != 0 {
		r.NanoCPUs, r.CPUPeriod, r.CPUQuota = u.NanoCPUs, 0, 0
	}
	if u.CPUPeriod != 0 {
		r.CPUPeriod = u.CPUPeriod
	}
	if u.CPUQuota != 0 {
		r.CPUQuota = u.CPUQuota
	}
	if u.CpusetCpus != "" {
		r.CpusetCpus = u.CpusetCpus
	}
	if u.CpusetMems != "" {
		r.CpusetMems = u.CpusetMems
	}
	if u.PidsLimit != nil {
		r.PidsLimit = u.PidsLimit
	}
	if u.BlkioWeight != 0 {
		r.BlkioWeight = u.BlkioWeight
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && !u.RestartPolicy.IsNone() {
			c.mu.Unlock()
			return nil, errdefs.InvalidParameterf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	trial := c.snapshot()
	trial.HostConfig = &hc
	running := c.State.Running()
	c.mu.Unlock()
	spec, err := e.buildSpec(trial, "")
	if err != nil {
		return nil, err
	}
	if running {
		data, _ := json.Marshal(spec.Linux.Resources)
		cmd := exec.Command(e.opts.Runtime, append(e.runtimeArgs(), "update", "-r", "-", c.ID)...)
		cmd.Stdin = strings.NewReader(string(data))
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w: %s", c.ID[:12], err, strings.TrimSpace(string(out)))
		}
	}
	c.mu.Lock()
	c.HostConfig = &hc
	c.save()
	e.containerEvent(c, events.ActionUpdate, nil)
	c.mu.Unlock()
	return []string{}, nil
}

// Prune removes every stopped container.
func (e *Engine) Prune() (container.PruneReport, error) {
	rep := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range e.List() {
		c.mu.Lock()
		stopped := c.State.Status == "exited" || c.State.Status == "created" || c.State.Status == "dead"
		c.mu.Unlock()
		if !stopped {
			continue
		}
		c.op.Lock()
		err := e.removeLocked(c, false)
		c.op.Unlock()
		if err == nil {
			rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		}
	}
	return rep, nil
}

// StopAll stops every running container (daemon shutdown without
// live-restore).
func (e *Engine) StopAll(timeout time.Duration) {
	t := int(timeout / time.Second)
	var wg sync.WaitGroup
	for _, c := range e.List() {
		c.mu.Lock()
		running := c.State.Running()
		c.mu.Unlock()
		if running {
			wg.Add(1)
			go func() { defer wg.Done(); e.Stop(c.ID, &t, "") }()
		}
	}
	wg.Wait()
}
