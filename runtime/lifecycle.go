package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/hooks"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrState is returned when an operation does not fit the container's
// current status ("cannot start a container that is running").
type ErrState struct {
	ID     string
	Op     string
	Status specs.ContainerState
}

func (e *ErrState) Error() string {
	return fmt.Sprintf("cannot %s container %s: it is %s", e.Op, e.ID, e.Status)
}

// Start releases a created container's process, as `runc start` does.
func (r *Runtime) Start(id string) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.loadState(id)
	if err != nil {
		return err
	}
	return r.start(st)
}

// StartCreated starts a container this process created (run), from the
// state it holds rather than state.json.
func (r *Runtime) StartCreated(c *Container) error {
	unlock, err := r.lock(c.State.ID)
	if err != nil {
		return err
	}
	defer unlock()
	return r.start(c.State)
}

func (r *Runtime) start(st *State) error {
	id := st.ID
	if status := r.status(st); status != specs.StateCreated {
		return &ErrState{id, "start", status}
	}
	if err := r.openFifo(st); err != nil {
		return err
	}
	// Not written to state.json: without the exec fifo, which openFifo
	// removed, status says running anyway, and the write (the whole
	// spec, marshalled) was on the path of every start.
	st.Started = true
	if h := st.Config.Hooks; h != nil && len(h.Poststart) > 0 {
		// A failing poststart hook is a warning; the rest run and the
		// container goes on (runtime-spec, config.md "Poststart").
		for _, err := range hooks.RunAll("poststart", h.Poststart, ociStateJSON(st, specs.StateRunning)) {
			r.warn(err)
		}
	}
	return nil
}

// warn reports a problem that does not fail the operation.
func (r *Runtime) warn(err error) {
	if r.Warn != nil {
		r.Warn(err)
		return
	}
	fmt.Fprintf(os.Stderr, "warning: %v\n", err)
}

// openFifo reads the exec fifo, which releases the init blocked writing
// it. If the init dies instead, the wait ends with an error rather than
// blocking forever.
func (r *Runtime) openFifo(st *State) error {
	fifo := filepath.Join(r.dir(st.ID), "exec.fifo")
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("container %s: init process %d: %w", st.ID, st.Pid, err)
	}
	defer unix.Close(pidfd)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{0, err}
			return
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		done <- result{len(b), err}
	}()
	// The watcher polls the pidfd and a pipe that ends it once the
	// read is done: a long-lived caller (the daemon) must not keep a
	// thread blocked in poll for every running container.
	stop := make([]int, 2)
	if err := unix.Pipe2(stop, unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(stop[1])
	died := make(chan struct{})
	go func() {
		defer unix.Close(stop[0])
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(stop[0]), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		if fds[0].Revents != 0 || fds[1].Revents == 0 {
			close(died) // the init is gone (or poll failed: check)
		}
	}()
	var res result
	select {
	case res = <-done:
	case <-died:
		// The init is gone. If it got as far as writing the fifo (and then
		// ran and exited quickly), the reader has its byte; if not, the
		// reader is stuck in open: a writer of our own unblocks it.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		res = <-done
	}
	if res.err != nil {
		return fmt.Errorf("open exec fifo: %w", res.err)
	}
	if res.n == 0 {
		return fmt.Errorf("container %s: init exited before start", st.ID)
	}
	return os.Remove(fifo)
}

// StateOf returns a container's state with its live status.
func (r *Runtime) StateOf(id string) (*State, error) {
	st, err := r.loadState(id)
	if err != nil {
		return nil, err
	}
	st.Status = r.status(st)
	if st.Status == specs.StateStopped {
		st.Pid = 0
	}
	return st, nil
}

// List returns the states of every container under the root.
func (r *Runtime) List() ([]*State, error) {
	entries, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		st, err := r.StateOf(e.Name())
		if err != nil {
			continue // half-created or foreign directory
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// ParseSignal accepts "9", "KILL" and "SIGKILL".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN+") || strings.HasPrefix(name, "SIGRTMAX-") {
		off, err := strconv.Atoi(name[9:])
		if err == nil && off >= 0 && off <= 30 {
			if name[6] == 'I' {
				return syscall.Signal(34 + off), nil
			}
			return syscall.Signal(64 - off), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// Kill sends sig to the container's init, or with all to every process
// in its cgroup.
func (r *Runtime) Kill(id string, sig syscall.Signal, all bool) error {
	st, err := r.loadState(id)
	if err != nil {
		return err
	}
	status := r.status(st)
	if status == specs.StateStopped {
		return &ErrState{id, "kill", status}
	}
	if all {
		cg, err := r.newCgroup(id, st.Config)
		if err != nil {
			return err
		}
		if cg != nil {
			if status == StatePaused && sig == unix.SIGKILL {
				defer cg.Thaw()
			}
			return cg.Kill(sig)
		}
	}
	return signalInit(st, sig)
}

// signalInit signals the init through a pidfd opened after checking the
// start time, so a recycled PID is never hit.
func signalInit(st *State, sig syscall.Signal) error {
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("container %s is not running: %w", st.ID, err)
	}
	defer unix.Close(pidfd)
	if !st.alive() {
		return fmt.Errorf("container %s is not running", st.ID)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d to container %s: %w", sig, st.ID, err)
	}
	return nil
}

// waitGone waits until the init has exited (a zombie counts as exited).
func waitGone(st *State, timeout time.Duration) error {
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return nil // already reaped
	}
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for st.alive() {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("container %s: init %d did not exit within %s", st.ID, st.Pid, timeout)
		}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return err
		}
	}
	return nil
}

// Delete removes a container. A running or paused one needs force, which
// kills it first, as `runc delete --force` does.
func (r *Runtime) Delete(id string, force bool) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer r.unlockAndForget(id, unlock)
	st, err := r.loadState(id)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			if _, serr := os.Stat(r.dir(id)); serr == nil {
				// A crash between mkdir and the first state write.
				return os.RemoveAll(r.dir(id))
			}
		}
		return err
	}
	return r.delete(st, force)
}

// DeleteCreated force-deletes a container this process created (run),
// from the state it holds rather than state.json.
func (r *Runtime) DeleteCreated(c *Container) error {
	unlock, err := r.lock(c.State.ID)
	if err != nil {
		return err
	}
	defer r.unlockAndForget(c.State.ID, unlock)
	if _, err := os.Stat(filepath.Join(r.dir(c.State.ID), "state.json")); err != nil {
		return fmt.Errorf("container %s: %w", c.State.ID, ErrNotExist) // deleted meanwhile
	}
	return r.delete(c.State, true)
}

func (r *Runtime) delete(st *State, force bool) error {
	id := st.ID
	status := r.status(st)
	switch status {
	case specs.StateRunning, StatePaused:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", id, status)
		}
		fallthrough
	case specs.StateCreated:
		cg, _ := r.newCgroup(id, st.Config)
		if cg != nil {
			cg.Kill(unix.SIGKILL)
			cg.Thaw()
		}
		if err := signalInit(st, unix.SIGKILL); err != nil && st.alive() {
			return err
		}
		if err := waitGone(st, 10*time.Second); err != nil {
			return err
		}
	}
	return r.destroy(st)
}

func (r *Runtime) destroy(st *State) error {
	var errs []error
	cg, err := r.newCgroup(st.ID, st.Config)
	if err != nil {
		errs = append(errs, err)
	} else if cg != nil {
		if err := cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if st.RootfsBound {
		if err := rootfs.Unbind(st.Rootfs); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(r.dir(st.ID)); err != nil {
		errs = append(errs, err)
	}
	if h := st.Config.Hooks; h != nil && len(h.Poststop) > 0 {
		// A failing poststop hook is a warning; the rest run and the
		// deletion stands (runtime-spec, config.md "Poststop").
		for _, err := range hooks.RunAll("poststop", h.Poststop, ociStateJSON(st, specs.StateStopped)) {
			r.warn(err)
		}
	}
	return errors.Join(errs...)
}
