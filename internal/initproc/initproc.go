// Package initproc is the init stage: the code that runs inside a
// container's new namespaces, re-executed from the berth binary by the
// runtime, and turns them into the container the spec describes before
// execve'ing the user's process. It talks to the runtime only through the
// bootstrap sync socket, works on one locked OS thread (capabilities,
// seccomp and some namespaces are per thread), and must not leave a host
// file descriptor or directory reachable from the container.
package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/internal/loopback"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/bootstrap"
	"github.com/berth-dev/berth/internal/procsetup"
	"github.com/berth-dev/berth/internal/seccompglue"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Main runs the init stage and returns an exit status only on failure;
// on success the process has become the container's process.
func Main() int {
	runtime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(bootstrap.EnvSyncFD))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: this is an internal stage of the runtime, not a command")
		return 125
	}
	os.Unsetenv(bootstrap.EnvSyncFD)
	conn := bootstrap.NewConn(os.NewFile(uintptr(fd), "sync"))
	var cfg bootstrap.Config
	if _, err := conn.Recv(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "berth init: read configuration: %v\n", err)
		return 125
	}
	err = run(conn, &cfg)
	// Only failures come back here.
	msg := bootstrap.Msg{Type: bootstrap.MsgError, Error: err.Error(), ExitCode: 125}
	var ee *procsetup.ExecError
	if errors.As(err, &ee) {
		msg.ExitCode = ee.Code
	}
	if sendErr := conn.Send(msg); sendErr != nil {
		// The runtime has gone (after start): stderr is all there is.
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
	}
	return msg.ExitCode
}

func run(conn *bootstrap.Conn, cfg *bootstrap.Config) error {
	spec := cfg.Spec
	if spec == nil || spec.Process == nil {
		return errors.New("configuration has no process")
	}
	proc := spec.Process
	for _, j := range cfg.Join {
		if err := setns(j); err != nil {
			return err
		}
	}
	inCgroup := !cfg.CgroupPending
	// ensureCgroup waits until the runtime has put this process in its
	// cgroup (it does so while the root filesystem is being built: the
	// move can take an RCU grace period), then makes the cgroup
	// namespace, rooted there.
	ensureCgroup := func() error {
		if !inCgroup {
			var m bootstrap.Msg
			if _, err := conn.Recv(&m); err != nil {
				return fmt.Errorf("wait for the cgroup: %w", err)
			}
			if m.Type == bootstrap.MsgError {
				return errors.New(m.Error)
			}
			if m.Type != bootstrap.MsgCgroup {
				return fmt.Errorf("wait for the cgroup: unexpected message %q", m.Type)
			}
			inCgroup = true
		}
		for len(cfg.CgroupTaskFDs) > 0 {
			// This goroutine is locked to the main thread, the one that
			// execs: the write moves it.
			fd := cfg.CgroupTaskFDs[0]
			_, err := unix.Write(fd, []byte("0"))
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("join the container's cgroup (fd %d): %w", fd, err)
			}
			cfg.CgroupTaskFDs = cfg.CgroupTaskFDs[1:]
		}
		if cfg.UnshareCgroupNS {
			// Per thread, and this thread is the one that execs.
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("create cgroup namespace: %w", err)
			}
			cfg.UnshareCgroupNS = false
		}
		return nil
	}
	if !cfg.Exec {
		// Only a namespace of its own: a joined one is someone else's.
		if p, ok := nsPath(spec, specs.NetworkNamespace); ok && p == "" {
			if err := loopback.Up(); err != nil {
				return err
			}
		}
	}
	var root *rootfs.Root
	var console *os.File
	if !cfg.Exec {
		var err error
		root, err = rootfs.Prepare(&rootfs.Setup{
			Rootfs: cfg.Rootfs, Spec: spec, CgroupMounts: cfg.CgroupMounts, NewUserNS: cfg.NewUserNS,
			SharedMountNS: cfg.SharedMountNS, BindRootfs: cfg.BindRootfs, BeforeCgroupMount: ensureCgroup,
			IDMapFDs: cfg.IDMapFDs,
		})
		if err != nil {
			return err
		}
		if err := ensureCgroup(); err != nil {
			return err
		}
		if err := oomScoreAdj(proc.OOMScoreAdj); err != nil {
			return err
		}
		// The runtime runs createRuntime (and prestart) hooks now, in its
		// own namespaces, while the mounts are ready and before pivot_root
		// (no round trip when there are none).
		if h := spec.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime) > 0 {
			if err := roundTrip(conn, bootstrap.MsgHooks); err != nil {
				return err
			}
		}
		if spec.Hooks != nil {
			if err := runHooks("createContainer", spec.Hooks.CreateContainer, cfg.StateJSON); err != nil {
				return err
			}
		}
		if proc.Terminal {
			if console, err = setupConsole(root, cfg.ConsoleFD, proc); err != nil {
				return err
			}
		}
		if err := root.Pivot(cfg.NoPivot); err != nil {
			return err
		}
		// Sysctls go through the container's /proc/sys, which Finish
		// makes read-only (Docker's readonlyPaths): they come first.
		if err := applySysctls(spec); err != nil {
			return err
		}
		if err := root.Finish(spec); err != nil {
			return err
		}
		if err := setHostnames(spec); err != nil {
			return err
		}
	} else {
		if err := ensureCgroup(); err != nil {
			return err
		}
		if err := oomScoreAdj(proc.OOMScoreAdj); err != nil {
			return err
		}
		if proc.Terminal {
			var err error
			if console, err = setupConsole(nil, cfg.ConsoleFD, proc); err != nil {
				return err
			}
		}
	}
	_ = console
	if err := procsetup.CheckGrantable(proc.Capabilities); err != nil {
		return err
	}
	if err := procsetup.SetRlimits(proc.Rlimits); err != nil {
		return err
	}
	if !cfg.NoNewKeyring && !cfg.Exec {
		if err := procsetup.JoinSessionKeyring("_ses." + cfg.ID); err != nil {
			return err
		}
	}
	if spec.Linux != nil {
		if err := procsetup.SetPersonality(spec.Linux.Personality); err != nil {
			return err
		}
	}
	if err := procsetup.SetScheduler(proc.Scheduler); err != nil {
		return err
	}
	if err := procsetup.SetIOPriority(proc.IOPriority); err != nil {
		return err
	}
	cwd := proc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := chdirInside(cwd); err != nil {
		return err
	}
	if len(proc.Args) == 0 {
		return &procsetup.ExecError{Code: 127, Msg: "process.args is empty: no command to run"}
	}
	path, err := procsetup.LookPath(proc.Args[0], proc.Env)
	if err != nil {
		return err
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// Every descriptor but stdio and the preserved ones is closed by
	// execve. Marked now, before any seccomp filter is loaded: an old
	// profile may not know close_range.
	if err := markCloseOnExec(3 + cfg.PreserveFDs); err != nil {
		return err
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
	// process is about to lose: load it first. With it, load it as late as
	// possible, so the filter sees the fewest runtime syscalls.
	var seccompRaw = cfg.Seccomp
	if !proc.NoNewPrivileges {
		if err := loadSeccomp(conn, seccompRaw); err != nil {
			return err
		}
		seccompRaw = nil
	}
	becomeUser := func() error {
		setgroups := true
		if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "deny" {
			setgroups = false
		}
		if err := procsetup.SetUser(proc.User, proc.Capabilities, setgroups); err != nil {
			return err
		}
		// chdir again as the user, so permission checks are the user's.
		// The path was proved inside the root above; the proof is not
		// repeated, since a seccomp filter loaded since may deny getcwd
		// (runtime-tools' linux_seccomp test does).
		if err := unix.Chdir(cwd); err != nil {
			return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", cwd, err)
		}
		return nil
	}
	// Without startContainer hooks (which run as root in the container),
	// the user and capabilities are taken before the process waits for
	// its start, as runc does: the start then only releases an execve.
	// The exec fifo is writable by any user.
	early := !cfg.Exec && (spec.Hooks == nil || len(spec.Hooks.StartContainer) == 0)
	if early {
		if err := becomeUser(); err != nil {
			return err
		}
	}
	if err := conn.Send(bootstrap.Msg{Type: bootstrap.MsgReady}); err != nil {
		return fmt.Errorf("tell the runtime the container is created: %w", err)
	}
	if !cfg.Exec {
		if err := waitForStart(cfg.StateDirFD); err != nil {
			return err
		}
		if spec.Hooks != nil {
			if err := runHooks("startContainer", spec.Hooks.StartContainer, withStatus(cfg.StateJSON, specs.StateCreated)); err != nil {
				return err
			}
		}
	}
	if !early {
		if err := becomeUser(); err != nil {
			return err
		}
	}
	if err := loadSeccomp(conn, seccompRaw); err != nil {
		return err
	}
	if proc.User.Umask != nil {
		unix.Umask(int(*proc.User.Umask))
	}
	conn.Close()
	err = unix.Exec(path, proc.Args, proc.Env)
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	fmt.Fprintf(os.Stderr, "berth: exec %s: %v\n", path, err)
	os.Exit(code)
	return nil
}

// markCloseOnExec sets FD_CLOEXEC on every descriptor from first up,
// with close_range(2) where the kernel has it, else one by one.
func markCloseOnExec(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	entries, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w (and %v)", err, rerr)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("mark descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

func roundTrip(conn *bootstrap.Conn, typ string) error {
	if err := conn.Send(bootstrap.Msg{Type: typ}); err != nil {
		return fmt.Errorf("sync with runtime (%s): %w", typ, err)
	}
	var reply bootstrap.Msg
	if _, err := conn.Recv(&reply); err != nil {
		return fmt.Errorf("sync with runtime (%s): %w", typ, err)
	}
	if reply.Type == bootstrap.MsgError {
		return errors.New(reply.Error)
	}
	if reply.Type != bootstrap.MsgOK {
		return fmt.Errorf("sync with runtime (%s): unexpected reply %q", typ, reply.Type)
	}
	return nil
}

func loadSeccomp(conn *bootstrap.Conn, raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	fd, err := seccompglue.Load(raw)
	if err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	if fd >= 0 {
		defer unix.Close(fd)
		if err := conn.Send(bootstrap.Msg{Type: bootstrap.MsgSeccomp}, fd); err != nil {
			return fmt.Errorf("send seccomp listener to the runtime: %w", err)
		}
	}
	return nil
}

// waitForStart blocks until `start` opens the exec fifo for reading.
// The fifo is opened relative to the state directory's descriptor, so it
// works without /proc in the container.
func waitForStart(stateDirFD int) error {
	fd, err := unix.Openat(stateDirFD, "exec.fifo", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	_, err = unix.Write(fd, []byte{0})
	// The fifo stays open, close-on-exec: `start` reads until it closes,
	// so it returns (and runs poststart hooks) once the user's process
	// has been exec'd, as the spec says, or the init has died.
	unix.Close(stateDirFD)
	if err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return nil
}

// chdirInside changes to dir and refuses a working directory outside the
// root (a leaked host descriptor reached through /proc/self/fd would give
// one: CVE-2024-21626).
func chdirInside(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", dir, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container's root", dir)
	}
	return nil
}

func nsPath(spec *specs.Spec, t specs.LinuxNamespaceType) (string, bool) {
	if spec.Linux == nil {
		return "", false
	}
	for _, n := range spec.Linux.Namespaces {
		if n.Type == t {
			return n.Path, true
		}
	}
	return "", false
}

func oomScoreAdj(v *int) error {
	if v == nil {
		return nil
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*v)), 0); err != nil {
		return fmt.Errorf("set oom_score_adj %d: %w", *v, err)
	}
	return nil
}

// withStatus returns the OCI state document with another status: start
// has been called, so startContainer hooks see "created" (the container
// is not running its process yet).
func withStatus(state []byte, status specs.ContainerState) []byte {
	var st specs.State
	if err := json.Unmarshal(state, &st); err != nil {
		return state
	}
	st.Status = status
	b, err := json.Marshal(st)
	if err != nil {
		return state
	}
	return b
}
