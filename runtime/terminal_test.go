package runtime_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A terminal through --console-socket, as containerd's shim asks for one:
// the pty master arrives over the socket (with the slave's name), the
// process's stdio and /dev/console are the slave, and what the process
// writes reads back from the master.
func TestTerminalThroughConsoleSocket(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "tty; readlink /proc/self/fd/1; stat -c %t:%T /dev/console; stty size; echo done"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 33, Width: 99}
	})
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type got struct {
		master *os.File
		name   string
		err    error
	}
	ch := make(chan got, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := ln.AcceptUnix()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 256)
		oob := make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- got{err: err}
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			ch <- got{err: os.ErrInvalid}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			ch <- got{err: os.ErrInvalid}
			return
		}
		ch <- got{master: os.NewFile(uintptr(fds[0]), "master"), name: string(buf[:n])}
	}()
	id := newID("tty")
	if r := e.rt("create", "--bundle", b, "--console-socket", sock, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	g := <-ch
	if g.err != nil {
		t.Fatalf("console socket: %v", g.err)
	}
	defer g.master.Close()
	if !strings.HasPrefix(g.name, "/dev/pts/") {
		t.Errorf("the slave's name sent with the master is %q", g.name)
	}
	if r := e.rt("start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "done") {
		g.master.SetReadDeadline(deadline)
		n, err := g.master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break // EIO once the slave is closed
		}
	}
	lines := strings.Split(strings.ReplaceAll(out.String(), "\r\n", "\n"), "\n")
	if len(lines) < 5 || lines[0] != "/dev/pts/0" || lines[1] != "/dev/pts/0" || lines[3] != "33 99" || lines[4] != "done" {
		t.Errorf("output through the pty:\n%s", out.String())
	}
	// /dev/console is a bind of the pty slave: the pts major (136, 0x88).
	if len(lines) > 2 && !strings.HasPrefix(lines[2], "88:") {
		t.Errorf("/dev/console is %s (major:minor in hex), want the pty's 88:N", lines[2])
	}
}
