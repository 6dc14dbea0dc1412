package runtimecli

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ttyProxy is what `run` does for a terminal container when nobody gave a
// console socket: it receives the pty master itself and copies between it
// and its own stdio, with the caller's terminal in raw mode.
type ttyProxy struct {
	dir        string
	socketPath string
	ln         *net.UnixListener
	master     *os.File
	oldState   *term.State
}

func newTTYProxy() (*ttyProxy, error) {
	dir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return nil, err
	}
	p := &ttyProxy{dir: dir, socketPath: filepath.Join(dir, "console.sock")}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.socketPath, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.ln = ln
	return p, nil
}

// Attach receives the master (sent during create) and starts copying.
func (p *ttyProxy) Attach() error {
	p.ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := p.ln.AcceptUnix()
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receive pty master: no descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("receive pty master: no descriptor")
	}
	p.master = os.NewFile(uintptr(fds[0]), "pty-master")
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			p.oldState = st
		}
		p.Resize()
	}
	go io.Copy(p.master, os.Stdin)
	go io.Copy(os.Stdout, p.master)
	return nil
}

// Resize copies the caller's window size to the container's terminal.
func (p *ttyProxy) Resize() {
	if p.master == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

func (p *ttyProxy) Close() {
	if p.oldState != nil {
		term.Restore(int(os.Stdin.Fd()), p.oldState)
		p.oldState = nil
	}
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	os.RemoveAll(p.dir)
}
