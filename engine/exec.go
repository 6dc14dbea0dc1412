package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/monitor"
	"github.com/berth-dev/berth/specopts"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/pkg/stdcopy"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

type execProc struct {
	ID          string
	ContainerID string
	Config      container.ExecOptions

	mu       sync.Mutex
	running  bool
	started  bool
	exitCode *int
	pid      int
	pty      *os.File
	done     chan struct{}
}

// ExecCreate registers a process to run in a running container.
func (e *Engine) ExecCreate(ref string, o container.ExecOptions) (string, error) {
	c, err := e.Get(ref)
	if err != nil {
		return "", err
	}
	if len(o.Cmd) == 0 {
		return "", errdefs.InvalidParameterf("No exec command specified")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.State.Status {
	case "running":
	case "paused":
		return "", errdefs.Conflictf("Container %s is paused, unpause the container before exec", c.ID)
	default:
		return "", errdefs.Conflictf("Container %s is not running", c.ID)
	}
	x := &execProc{ID: newID(), ContainerID: c.ID, Config: o, done: make(chan struct{})}
	c.execs[x.ID] = x
	e.mu.Lock()
	e.execs[x.ID] = x
	e.mu.Unlock()
	e.containerEvent(c, events.ActionExecCreate+": "+events.Action(strings.Join(o.Cmd, " ")), map[string]string{"execID": x.ID})
	return x.ID, nil
}

func (e *Engine) getExec(id string) (*execProc, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	x, ok := e.execs[id]
	if !ok {
		return nil, errdefs.NotFoundf("No such exec instance: %s", id)
	}
	return x, nil
}

// ExecStart runs an exec process; with a stream it copies stdio until the
// process ends (stdcopy frames unless tty). Detached, it returns at once.
func (e *Engine) ExecStart(ctx context.Context, id string, conn Stream, detach bool) error {
	x, err := e.getExec(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return errdefs.Conflictf("Error: Exec command %s has already run", id)
	}
	x.started, x.running = true, true
	x.mu.Unlock()
	c, err := e.Get(x.ContainerID)
	if err != nil {
		return err
	}
	finish := func(code int) {
		x.mu.Lock()
		x.running = false
		x.exitCode = &code
		x.mu.Unlock()
		close(x.done)
		c.mu.Lock()
		e.containerEvent(c, events.ActionExecDie, map[string]string{"execID": x.ID, "exitCode": itoa(code)})
		c.mu.Unlock()
	}
	t0 := time.Now()
	defer e.trace(t0, "exec %s: done", x.ID[:12])
	proc, rootfs, err := e.execProcess(c, x.Config)
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if conn != nil && !detach {
		if x.Config.Tty {
			stdout, stderr = conn, conn
		} else {
			stdout, stderr = stdcopy.NewStdWriter(conn, stdcopy.Stdout), stdcopy.NewStdWriter(conn, stdcopy.Stderr)
		}
	}
	if err == nil {
		err = checkExecutable(rootfs, proc)
	}
	if err != nil {
		if errdefs.KindOf(err) == errdefs.System && (strings.Contains(err.Error(), "exec:") || strings.Contains(err.Error(), "unable to find")) {
			// The docker CLI shows the error and takes the exit code
			// from exec inspect, as with dockerd.
			fmt.Fprintf(stderr, "OCI runtime exec failed: exec failed: %v: unknown\r\n", err)
			finish(exitCodeFor(err))
			return nil
		}
		finish(126)
		return err
	}
	c.mu.Lock()
	e.containerEvent(c, events.ActionExecStart+": "+events.Action(strings.Join(x.Config.Cmd, " ")), map[string]string{"execID": x.ID})
	c.mu.Unlock()
	if e.opts.Lib != nil {
		e.trace(t0, "exec %s: in-process runtime exec starts", x.ID[:12])
		code, err := e.execInProcess(c, x, proc, conn, detach, stdout, stderr)
		finish(code)
		return err
	}
	dir := filepath.Join(e.bundleDir(c.ID), "exec")
	os.MkdirAll(dir, 0o700)
	procFile := filepath.Join(dir, x.ID+".json")
	data, _ := json.Marshal(proc)
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		finish(126)
		return err
	}
	args := append(e.runtimeArgs(), "exec", "--process", procFile)
	pidFile := filepath.Join(dir, x.ID+".pid")
	args = append(args, "--pid-file", pidFile)
	var consoleLn *net.UnixListener
	if x.Config.Tty {
		sock := filepath.Join(e.execRoot, "m", x.ID[:20]+".exec")
		consoleLn, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			finish(126)
			return err
		}
		defer os.Remove(sock)
		defer consoleLn.Close()
		args = append(args, "--tty", "--console-socket", sock)
	}
	args = append(args, c.ID)
	cmd := exec.Command(e.opts.Runtime, args...)
	var runtimeErr strings.Builder
	var inW io.WriteCloser
	if x.Config.Tty {
		cmd.Stdout, cmd.Stderr = &runtimeErr, &runtimeErr
	} else {
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if x.Config.AttachStdin && conn != nil && !detach {
			if inW, err = cmd.StdinPipe(); err != nil {
				finish(126)
				return err
			}
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	e.trace(t0, "exec %s: runtime exec starts", x.ID[:12])
	if err := cmd.Start(); err != nil {
		finish(126)
		return fmt.Errorf("run %s exec: %w", e.opts.Runtime, err)
	}
	var wg sync.WaitGroup
	if x.Config.Tty {
		ptyCh := make(chan *os.File, 1)
		go func() {
			f, err := monitor.ReceivePty(consoleLn)
			if err != nil {
				f = nil
			}
			ptyCh <- f
		}()
		select {
		case f := <-ptyCh:
			x.mu.Lock()
			x.pty = f
			x.mu.Unlock()
			if f != nil {
				wg.Add(1)
				go func() { defer wg.Done(); io.Copy(stdout, f) }()
				if x.Config.AttachStdin && conn != nil {
					go io.Copy(f, conn)
				}
			}
		case <-time.After(10 * time.Second):
			consoleLn.Close()
		}
	} else if inW != nil {
		go func() { io.Copy(inW, conn); inW.Close() }()
	}
	go func() {
		if pid, err := readPidFile(pidFile, 200); err == nil {
			x.mu.Lock()
			x.pid = pid
			x.mu.Unlock()
		}
	}()
	err = cmd.Wait()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		} else {
			code = 126
		}
	}
	if x.Config.Tty {
		x.mu.Lock()
		if x.pty != nil {
			// The process is gone; give the pty a moment to drain.
			x.pty.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
		x.mu.Unlock()
		wg.Wait()
		if x.pty != nil {
			x.pty.Close()
		}
		if runtimeErr.Len() > 0 && code != 0 {
			fmt.Fprint(stdout, runtimeErr.String())
		}
	}
	os.Remove(procFile)
	os.Remove(pidFile)
	finish(code)
	return nil
}

func readPidFile(path string, tries int) (int, error) {
	for i := 0; i < tries; i++ {
		data, err := os.ReadFile(path)
		if err == nil {
			var pid int
			if _, err := fmt.Sscanf(strings.TrimSpace(string(data)), "%d", &pid); err == nil {
				return pid, nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("no pid file")
}

// execProcess builds the exec's OCI process from the running container's
// spec: same capabilities, rlimits, no_new_privileges and environment,
// with the exec's command, user, working dir, env and tty.
func (e *Engine) execProcess(c *Container, o container.ExecOptions) (*specs.Process, string, error) {
	data, err := os.ReadFile(filepath.Join(e.bundleDir(c.ID), "config.json"))
	if err != nil {
		return nil, "", errdefs.Conflictf("Container %s is not running", c.ID)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, "", err
	}
	p := s.Process
	p.Args = append([]string{}, o.Cmd...)
	p.Terminal = o.Tty
	p.ConsoleSize = nil
	// ConsoleSize is a *[2]uint: len() of a nil pointer to an array is 2.
	if o.ConsoleSize != nil && o.Tty && o.ConsoleSize[0] > 0 {
		p.ConsoleSize = &specs.Box{Height: o.ConsoleSize[0], Width: o.ConsoleSize[1]}
	}
	for _, kv := range o.Env {
		spec := &specs.Spec{Process: p}
		specopts.WithEnv([]string{kv})(spec)
	}
	if o.WorkingDir != "" {
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		c.mu.Lock()
		groupAdd := c.HostConfig.GroupAdd
		c.mu.Unlock()
		u, err := specopts.ResolveUser(s.Root.Path, o.User, groupAdd)
		if err != nil {
			return nil, "", errdefs.InvalidParameterf("%v", err)
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	if o.Privileged {
		names := caps.Set(e.held).Names()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: names, Permitted: names, Effective: names}
	}
	return p, s.Root.Path, nil
}

// ExecInfo is GET /exec/{id}/json, as dockerd answers it.
type ExecInfo struct {
	ID            string
	Running       bool
	ExitCode      *int
	ProcessConfig ExecProcessConfig
	OpenStdin     bool
	OpenStderr    bool
	OpenStdout    bool
	CanRemove     bool
	ContainerID   string
	DetachKeys    string
	Pid           int
}

// ExecProcessConfig is the process part of ExecInfo.
type ExecProcessConfig struct {
	Tty        bool     `json:"tty"`
	Entrypoint string   `json:"entrypoint"`
	Arguments  []string `json:"arguments"`
	Privileged *bool    `json:"privileged,omitempty"`
	User       string   `json:"user,omitempty"`
}

// ExecInspect describes an exec.
func (e *Engine) ExecInspect(id string) (ExecInfo, error) {
	x, err := e.getExec(id)
	if err != nil {
		return ExecInfo{}, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	priv := x.Config.Privileged
	r := ExecInfo{
		ID: x.ID, ContainerID: x.ContainerID, Running: x.running, Pid: x.pid, ExitCode: x.exitCode,
		OpenStdin: x.Config.AttachStdin, OpenStdout: x.Config.AttachStdout, OpenStderr: x.Config.AttachStderr,
		CanRemove: !x.running && x.started, DetachKeys: x.Config.DetachKeys,
		ProcessConfig: ExecProcessConfig{Tty: x.Config.Tty, Entrypoint: x.Config.Cmd[0], Arguments: nonNil(x.Config.Cmd[1:]),
			Privileged: &priv, User: x.Config.User},
	}
	return r, nil
}

// ExecResize sets an exec's terminal size.
func (e *Engine) ExecResize(id string, h, w uint) error {
	x, err := e.getExec(id)
	if err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		x.mu.Lock()
		pty, running := x.pty, x.running
		x.mu.Unlock()
		if pty != nil {
			return unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(w)})
		}
		if !running && x.exitCode != nil {
			return errdefs.Conflictf("exec %s is not running", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// cleanupExecs forgets a stopped container's finished execs after a while
// (the CLI inspects them right after they end).
func (e *Engine) cleanupExecs(c *Container) {
	c.mu.Lock()
	ids := make([]string, 0, len(c.execs))
	for id := range c.execs {
		ids = append(ids, id)
	}
	c.execs = map[string]*execProc{}
	c.mu.Unlock()
	time.AfterFunc(time.Minute, func() {
		e.mu.Lock()
		for _, id := range ids {
			delete(e.execs, id)
		}
		e.mu.Unlock()
	})
}
