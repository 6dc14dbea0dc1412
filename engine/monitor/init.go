package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// earlySigs is the --init's subscription to every signal, taken while the
// package initialises, before main: a signal that came between the Go
// runtime's start and InitMain would get the runtime's default instead of
// being forwarded (SIGTERM: exit status 2; docker stop right after docker
// run -d hits that window).
var earlySigs chan os.Signal

func init() {
	args := os.Args
	if len(args) > 1 && args[1] == "monitor" {
		args = args[1:]
	}
	if len(args) > 1 && args[1] == "init" && filepath.Base(os.Args[0]) == filepath.Base(InitPath) {
		earlySigs = make(chan os.Signal, 64)
		signal.Notify(earlySigs)
	}
}

// InitMain is `--init`: PID 1 of a container that runs the user's
// command as its child, forwards every signal it can to it, reaps the
// orphans the kernel hands to PID 1, and exits with the child's status
// (128+N when a signal N killed it), as docker-init (tini) does.
// args is "--" followed by the command.
func InitMain(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: no command")
		return 127
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		return 127
	}
	sigs := earlySigs
	if sigs == nil {
		sigs = make(chan os.Signal, 64)
		signal.Notify(sigs)
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Foreground: false},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if err == syscall.EACCES {
			return 126
		}
		return 127
	}
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig != syscall.SIGCHLD {
			if sig != syscall.SIGURG { // the Go runtime's own preemption signal
				unix.Kill(pid, sig)
			}
			continue
		}
		for {
			var ws unix.WaitStatus
			p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if p <= 0 || err != nil {
				break
			}
			if p == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return 0
}

// InitPath is where the engine mounts the monitor binary as a container's
// docker-init.
const InitPath = "/sbin/docker-init"
