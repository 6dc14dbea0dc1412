package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/engine/monitor"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExitCoder is an error that says which exit status a failed exec gets
// (127 not found, 126 cannot execute), as the runtime's init reports it.
type ExitCoder interface {
	error
	ExitCode() int
}

// execInProcess runs an exec's process through the in-process runtime
// (Options.Lib): no runtime binary is started, only its small nsenter
// helper, which stays the process's parent and exits with its status,
// so the daemon never becomes a subreaper. It returns the exit status;
// an error means the process never ran.
func (e *Engine) execInProcess(c *Container, x *execProc, proc *specs.Process, conn Stream, detach bool, stdout, stderr io.Writer) (int, error) {
	var (
		stdio      [3]*os.File // the process's ends
		closeAfter []*os.File  // our copies of its ends
		copies     sync.WaitGroup
	)
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	devNull := func() (*os.File, error) {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err == nil {
			closeAfter = append(closeAfter, f)
		}
		return f, err
	}
	consoleSocket := ""
	var ptyCh chan *os.File
	if x.Config.Tty {
		sock := filepath.Join(e.execRoot, "m", x.ID[:20]+".exec")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return 126, err
		}
		defer os.Remove(sock)
		defer ln.Close()
		consoleSocket = sock
		ptyCh = make(chan *os.File, 1)
		go func() {
			f, err := monitor.ReceivePty(ln)
			if err != nil {
				f = nil
			}
			ptyCh <- f
		}()
		for i := range stdio {
			f, err := devNull()
			if err != nil {
				return 126, err
			}
			stdio[i] = f
		}
	} else {
		out := []io.Writer{stdout, stderr}
		for i := 1; i <= 2; i++ {
			if detach || conn == nil {
				f, err := devNull()
				if err != nil {
					return 126, err
				}
				stdio[i] = f
				continue
			}
			r, w, err := os.Pipe()
			if err != nil {
				return 126, err
			}
			stdio[i] = w
			closeAfter = append(closeAfter, w)
			copies.Add(1)
			go func(r *os.File, dst io.Writer) {
				defer copies.Done()
				defer r.Close()
				io.Copy(dst, r)
			}(r, out[i-1])
		}
		if x.Config.AttachStdin && conn != nil && !detach {
			r, w, err := os.Pipe()
			if err != nil {
				return 126, err
			}
			stdio[0] = r
			closeAfter = append(closeAfter, r)
			go func() { io.Copy(w, conn); w.Close() }()
		} else {
			f, err := devNull()
			if err != nil {
				return 126, err
			}
			stdio[0] = f
		}
	}
	pid, wait, err := e.opts.Lib.Exec(c.ID, proc, stdio[0], stdio[1], stdio[2], consoleSocket)
	if err != nil {
		var ec ExitCoder
		if errors.As(err, &ec) {
			// The docker CLI shows the error and takes the exit code
			// from exec inspect, as with dockerd.
			fmt.Fprintf(stderr, "OCI runtime exec failed: exec failed: %v: unknown\r\n", err)
			return ec.ExitCode(), nil
		}
		return 126, err
	}
	// Only the process (and the helper) hold its ends now: EOF on the
	// pipes follows its exit.
	for _, f := range closeAfter {
		f.Close()
	}
	closeAfter = nil
	x.mu.Lock()
	x.pid = pid
	x.mu.Unlock()
	var ptyDone sync.WaitGroup
	if ptyCh != nil {
		select {
		case f := <-ptyCh:
			x.mu.Lock()
			x.pty = f
			x.mu.Unlock()
			if f != nil {
				ptyDone.Add(1)
				go func() { defer ptyDone.Done(); io.Copy(stdout, f) }()
				if x.Config.AttachStdin && conn != nil {
					go io.Copy(f, conn)
				}
			}
		case <-time.After(10 * time.Second):
		}
	}
	code, err := wait()
	if err != nil {
		code = 126
	}
	copies.Wait()
	if ptyCh != nil {
		x.mu.Lock()
		pty := x.pty
		if pty != nil {
			// The process is gone; give the pty a moment to drain.
			pty.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
		x.mu.Unlock()
		ptyDone.Wait()
		if pty != nil {
			pty.Close()
		}
	}
	return code, nil
}
