package runtime

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/bootstrap"
	"github.com/berth-dev/berth/internal/initbin"
	"github.com/berth-dev/berth/internal/nsjoin"
	"github.com/berth-dev/berth/internal/seccompglue"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	PreserveFDs   int
	IgnorePaused  bool
	// HelperWaits keeps the berth-nsenter helper as the process's parent:
	// it waits for it and exits with its status, so the caller waits for
	// the helper and needs not be a child subreaper (a daemon must not
	// become one: it would inherit every orphan of its children). The
	// helper (a small static C program) lives as long as the process.
	HelperWaits bool
	// Stdio for the process; nil means the runtime's own.
	Stdin, Stdout, Stderr *os.File
}

// Process is a process exec'd into a container by this process.
type Process struct {
	Pid    int
	helper *exec.Cmd // with HelperWaits: the process's parent
}

// Wait waits for the exec'd process (the caller is its subreaper, or,
// with HelperWaits, the parent of the helper that waits for it) and
// returns its exit status as a shell reports it.
func (p *Process) Wait() (int, error) {
	if p.helper != nil {
		err := p.helper.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
				return exitStatus(ws), nil
			}
			return ee.ExitCode(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(p.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		return exitStatus(syscall.WaitStatus(ws)), nil
	}
}

// Exec starts a process inside a running container: it joins all of the
// container's namespaces (through the berth-nsenter helper), its cgroup,
// and gets the process's user, capabilities, rlimits, no_new_privs and
// the container's seccomp filter, as `runc exec` does.
func (r *Runtime) Exec(id string, o ExecOptions) (*Process, error) {
	st, err := r.loadState(id)
	if err != nil {
		return nil, err
	}
	return r.exec(st, o)
}

// ExecCreated is Exec into a container this process created, from the
// state it holds rather than state.json.
func (r *Runtime) ExecCreated(c *Container, o ExecOptions) (*Process, error) {
	return r.exec(c.State, o)
}

func (r *Runtime) exec(st *State, o ExecOptions) (*Process, error) {
	id := st.ID
	status := r.status(st)
	if status != specs.StateRunning && !(status == StatePaused && o.IgnorePaused) {
		return nil, &ErrState{id, "exec in", status}
	}
	if o.Process == nil {
		return nil, fmt.Errorf("exec: no process given")
	}
	if err := validateProcess(o.Process); err != nil {
		return nil, fmt.Errorf("exec: process: %w", err)
	}
	spec := *st.Config
	spec.Process = o.Process
	spec.Hooks = nil
	seccompProg, warnings, err := seccompglue.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "berth-runtime: warning: linux.seccomp: %s\n", w)
	}
	cg, err := r.newCgroup(id, st.Config)
	if err != nil {
		return nil, err
	}
	helper, err := nsjoin.Helper()
	if err != nil {
		return nil, err
	}
	exePath, err := initbin.Path()
	if err != nil {
		return nil, err
	}
	exe, err := os.Open(exePath)
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: init %d: %w", id, st.Pid, err)
	}
	pidfdFile := os.NewFile(uintptr(pidfd), "pidfd")
	defer pidfdFile.Close()
	if !st.alive() {
		return nil, &ErrState{id, "exec in", specs.StateStopped}
	}
	flags, userns, err := nsjoin.Flags(st.Pid)
	if err != nil {
		return nil, err
	}
	parentSock, childSock, err := socketPair()
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer reportR.Close()
	defer reportW.Close()
	// The exec'd process is the helper's child; when the helper exits it
	// becomes ours, so we can wait for it (unless the helper waits).
	if !o.HelperWaits {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	cfg := &bootstrap.Config{
		ID: id, Spec: initSpec(&spec, true), Exec: true, PreserveFDs: o.PreserveFDs, ConsoleFD: -1, StateDirFD: -1,
		Seccomp: seccompProg, NewUserNS: userns,
	}
	cmd := &exec.Cmd{
		Path:   helper,
		Stdin:  orStd(o.Stdin, os.Stdin),
		Stdout: orStd(o.Stdout, os.Stdout),
		Stderr: orStd(o.Stderr, os.Stderr),
	}
	for i := 0; i < o.PreserveFDs; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	nextFD := func(f *os.File) int {
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return 2 + len(cmd.ExtraFiles)
	}
	syncFD := nextFD(childSock)
	pidfdFD := nextFD(pidfdFile)
	exeFD := nextFD(exe)
	reportFD := nextFD(reportW)
	if o.ConsoleSocket != "" {
		cf, err := dialConsole(o.ConsoleSocket)
		if err != nil {
			return nil, err
		}
		defer cf.Close()
		cfg.ConsoleFD = nextFD(cf)
	}
	// Into the container's cgroup without the grace period a move costs
	// where possible (see placement): clone3 by the helper, and the
	// process's own thread into v1 cgroups.
	var place placement
	if cg != nil {
		var closePlace func()
		if place, closePlace, err = planPlacement(cg, userns); err != nil {
			return nil, err
		}
		defer closePlace()
		tasks, err := openTasks(place.tasks)
		if err != nil {
			return nil, err
		}
		for _, f := range tasks {
			defer f.Close()
			cfg.CgroupTaskFDs = append(cfg.CgroupTaskFDs, nextFD(f))
		}
	}
	cmd.Args = []string{"berth-nsenter", "-p", strconv.Itoa(pidfdFD), "-f", strconv.FormatUint(uint64(flags), 10),
		"-e", strconv.Itoa(exeFD), "-o", strconv.Itoa(reportFD)}
	if place.cloneFD >= 0 && cg != nil {
		fd, err := unix.FcntlInt(uintptr(place.cloneFD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), "cgroup")
		defer f.Close()
		cmd.Args = append(cmd.Args, "-c", strconv.Itoa(nextFD(f)))
	}
	if userns {
		cmd.Args = append(cmd.Args, "-r")
	}
	if o.HelperWaits {
		cmd.Args = append(cmd.Args, "-w")
	}
	cmd.Args = append(append(cmd.Args, "--"), initbin.Args...)
	cmd.Env = []string{bootstrap.EnvSyncFD + "=" + strconv.Itoa(syncFD)}
	if o.HelperWaits {
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("join container %s: %w", id, err)
		}
	} else if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("join container %s: %w", id, err)
	}
	reportW.Close()
	childSock.Close()
	line, err := bufio.NewReader(reportR).ReadString('\n')
	if err != nil {
		if o.HelperWaits {
			code, _ := (&Process{helper: cmd}).Wait()
			return nil, fmt.Errorf("join container %s: no process reported (berth-nsenter exit status %d; its error is above)", id, code)
		}
		return nil, fmt.Errorf("join container %s: no process reported: %w", id, err)
	}
	fields := strings.Fields(line)
	pid := 0
	if len(fields) > 0 {
		pid, _ = strconv.Atoi(fields[0])
	}
	if pid <= 0 {
		if o.HelperWaits {
			cmd.Process.Kill()
			cmd.Wait()
		}
		return nil, fmt.Errorf("join container %s: bad pid %q", id, line)
	}
	clonedIn := place.cloneFD >= 0 && len(fields) == 1 // "PID nocg": the kernel refused
	proc := &Process{Pid: pid}
	if o.HelperWaits {
		proc.helper = cmd
	}
	fail := func(err error) (*Process, error) {
		unix.Kill(pid, unix.SIGKILL)
		proc.Wait()
		return nil, err
	}
	if cg != nil && (place.enter || (place.cloneFD >= 0 && !clonedIn)) {
		if err := cg.Enter(pid); err != nil {
			return fail(fmt.Errorf("put exec process in the container's cgroup: %w", err))
		}
	}
	conn := bootstrap.NewConn(parentSock)
	if err := conn.Send(cfg); err != nil {
		return fail(fmt.Errorf("send configuration to the exec process: %w", err))
	}
	if err := r.converse(conn, st); err != nil {
		return fail(err)
	}
	if o.PidFile != "" {
		if err := writeFileAtomic(o.PidFile, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fail(fmt.Errorf("write pid file: %w", err))
		}
	}
	return proc, nil
}
