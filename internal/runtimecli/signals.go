package runtimecli

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// commonSignals are the ones a user sends to `run` or `exec` in practice.
var commonSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGCONT, unix.SIGALRM}

// notifyForward relays every signal to c, as runc's run does, cheaply:
// subscribing to a signal costs a round trip to Go's signal thread, and
// subscribing to all 64 costs over a millisecond of a container's start.
// The common signals are subscribed at once; the rest in the background
// while the container is created. There is no matching signal.Stop: the
// command exits when the container does, and unsubscribing costs as
// much as subscribing.
func notifyForward(c chan os.Signal) {
	signal.Notify(c, commonSignals...)
	go func() {
		var rest []os.Signal
		for s := syscall.Signal(1); s <= 64; s++ {
			switch s {
			case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE,
				unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGPROF:
				continue
			}
			rest = append(rest, s)
		}
		signal.Notify(c, rest...)
	}()
}
