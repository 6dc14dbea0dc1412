package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/berth-dev/berth/internal/spawnreq"
	"golang.org/x/sys/unix"
)

// pooled waits on fd 3 for the container to monitor.
func pooled() int {
	conn := os.NewFile(3, "pool")
	if conn == nil {
		return 2
	}
	if _, err := conn.Write([]byte("idle\n")); err != nil {
		return 1
	}
	line, err := bufio.NewReaderSize(conn, 4096).ReadString('\n')
	if err != nil {
		return 0 // the daemon has gone, or no longer needs this monitor
	}
	var cfg Config
	if err := json.Unmarshal([]byte(line), &cfg); err != nil {
		return fail(conn, fmt.Errorf("monitor config: %w", err))
	}
	return run(cfg, conn)
}

// prepare is create for SpawnOnRequest: the socket, the log and the
// init's stdio, which it gets when the daemon sends it to start.
func (m *monitor) prepare() error {
	c := m.cfg
	m.spawned = make(chan int, 1)
	os.Remove(c.Socket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: c.Socket, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Socket, err)
	}
	ln.SetUnlinkOnClose(false)
	m.ln = ln
	if c.LogPath != "" {
		if m.logFile, err = os.OpenFile(c.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640); err != nil {
			return fmt.Errorf("open log: %w", err)
		}
	}
	devNull := func() (*os.File, error) { return os.OpenFile(os.DevNull, os.O_RDWR, 0) }
	if c.Tty {
		// The init sends the terminal's master over the console socket
		// while it is created; its stdio are then the terminal.
		sock := c.Socket + ".console"
		os.Remove(sock)
		consoleLn, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		m.ptyReady = make(chan struct{})
		go func() {
			defer close(m.ptyReady)
			defer os.Remove(sock)
			defer consoleLn.Close()
			consoleLn.SetDeadline(time.Now().Add(60 * time.Second))
			pty, err := ReceivePty(consoleLn)
			if err != nil {
				return
			}
			m.mu.Lock()
			m.pty, m.stdin = pty, pty
			m.mu.Unlock()
			m.outputWG.Add(1)
			go m.pump(pty, Stdout)
		}()
		for i := range m.childStdio {
			if m.childStdio[i], err = devNull(); err != nil {
				return err
			}
		}
		return nil
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	m.childStdio[1], m.childStdio[2] = outW, errW
	if c.OpenStdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return err
		}
		m.childStdio[0], m.stdin = inR, inW
	} else if m.childStdio[0], err = devNull(); err != nil {
		return err
	}
	m.outputWG.Add(2)
	go m.pump(outR, Stdout)
	go m.pump(errR, Stderr)
	return nil
}

// spawn starts the init the daemon describes (a spawnreq.Request in
// JSON, its descriptors received with it) with the container's stdio, as
// this monitor's child, once.
func (m *monitor) spawn(reqJSON []byte, fds []int) (int, error) {
	defer closeAll(fds)
	if !m.cfg.SpawnOnRequest {
		return 0, errors.New("this monitor creates its container itself")
	}
	var req spawnreq.Request
	if err := json.Unmarshal(reqJSON, &req); err != nil {
		return 0, fmt.Errorf("spawn request: %w", err)
	}
	files := make([]uintptr, len(fds))
	for i, fd := range fds {
		files[i] = uintptr(fd)
	}
	cgroupFD := -1
	if req.IntoCgroup {
		if len(files) == 0 {
			return 0, errors.New("spawn request: no cgroup descriptor")
		}
		cgroupFD = int(files[len(files)-1])
		files = files[:len(files)-1]
	}
	pid, err := 0, errors.New("the container's init was started already")
	m.spawnOnce.Do(func() {
		var stdio [3]uintptr
		for i, f := range m.childStdio {
			stdio[i] = f.Fd()
		}
		pid, err = req.Start(stdio, files, cgroupFD)
		for _, f := range m.childStdio {
			f.Close()
		}
		if err != nil {
			pid = 0
		}
		m.spawned <- pid
	})
	return pid, err
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// abort ends a SpawnOnRequest monitor whose init was never started.
func (m *monitor) abort() bool {
	done := false
	m.spawnOnce.Do(func() {
		for _, f := range m.childStdio {
			f.Close()
		}
		m.spawned <- 0
		done = true
	})
	return done
}

// readRequest reads a request's first line and the descriptors sent with
// it; what follows the line is left in the returned reader.
func readRequest(conn *net.UnixConn) (string, []int, *bufio.Reader, error) {
	buf := make([]byte, 8<<10)
	oob := make([]byte, unix.CmsgSpace(4*64))
	var fds []int
	n := 0
	for {
		k, oobn, _, _, err := conn.ReadMsgUnix(buf[n:], oob)
		if oobn > 0 {
			if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
				for _, msg := range msgs {
					if got, perr := unix.ParseUnixRights(&msg); perr == nil {
						fds = append(fds, got...)
					}
				}
			}
		}
		n += k
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			rest := append([]byte(nil), buf[i+1:n]...)
			return string(buf[:i]), fds, bufio.NewReaderSize(io.MultiReader(bytes.NewReader(rest), conn), 256), nil
		}
		if err == nil && k == 0 {
			err = io.EOF
		}
		if err == nil && n == len(buf) {
			err = errors.New("request too long")
		}
		if err != nil {
			closeAll(fds)
			return "", nil, nil, err
		}
	}
}
