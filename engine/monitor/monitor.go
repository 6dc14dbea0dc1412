// Package monitor is the per-container process that outlives the daemon:
// it creates the container through the OCI runtime's command line (as a
// containerd shim does), holds the container's stdio (pipes, or the pty
// master received over the console socket), writes the json-file log,
// serves attach/start/resize/wait requests on a unix socket in the
// container's exec directory, reaps the container's init as a child
// subreaper, records the exit status atomically in the exit file, and
// deletes the runtime state. It touches only the files named in its
// Config. The daemon side of the protocol is in client.go.
//
// It is kept small on purpose (one is running per container): no
// reflection-heavy encoding on the hot path, buffers sized once.
package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Config is what the daemon tells a monitor, as JSON in a file.
type Config struct {
	ID          string
	Bundle      string
	Runtime     string   // the OCI runtime binary
	RuntimeArgs []string // global runtime options (--root …)
	LogPath     string   // json-file log; empty disables logging
	ExitFile    string   // where the exit status is written
	Socket      string   // the monitor's unix socket
	Tty         bool
	OpenStdin   bool
	StdinOnce   bool
	// SpawnOnRequest: the monitor does not run `runtime create`; the
	// daemon creates the container with the runtime in-process and sends
	// the init to start over the socket ("spawn"), so that the monitor
	// is its parent. The monitor reports "ready 0" once it listens.
	SpawnOnRequest bool `json:",omitempty"`
	// DaemonDeletes: the daemon deletes the runtime's state when told
	// of the exit; the monitor does it only when no daemon was waiting.
	DaemonDeletes bool `json:",omitempty"`
}

// Exit is the content of the exit file.
type Exit struct {
	ExitCode   int
	FinishedAt time.Time
	OOMKilled  bool   `json:",omitempty"`
	Error      string `json:",omitempty"`
}

// Stream numbers in frames, as Docker's stdcopy.
const (
	Stdin  = 0
	Stdout = 1
	Stderr = 2
)

type monitor struct {
	cfg Config
	ln  *net.UnixListener

	mu      sync.Mutex
	clients map[*client]bool
	waiters []net.Conn
	exited  bool
	exit    Exit
	stdin   io.WriteCloser // container stdin (pipe) or pty master
	pty     *os.File
	started bool
	initPid int
	oomFile string // counts the OOM kills in the container's memory cgroup
	// With SpawnOnRequest: the init's stdio ends until it is spawned,
	// the pid (0: aborted) once it is, and the terminal's arrival.
	childStdio [3]*os.File
	spawned    chan int
	spawnOnce  sync.Once
	ptyReady   chan struct{}
	logMu      sync.Mutex
	logFile    *os.File
	outputWG   sync.WaitGroup
	tsBuf      []byte
}

type client struct {
	conn           net.Conn
	stdout, stderr bool
	mu             sync.Mutex
}

// Main runs a monitor; args[0] is the config file ("init" instead makes
// it a container's --init, see InitMain). File descriptor 3, when
// open, is the sync pipe: the monitor writes "ready PID\n" once the
// container is created, or "error MESSAGE\n", then closes it.
//
// Started as "pooled DIR" it is a monitor waiting for its container (the
// daemon keeps one ready, so a container's start does not wait for a
// process to start): fd 3 is then a socket on which it says "idle", reads
// its Config as one JSON line, and answers as above; the daemon closing
// the socket first ends it. DIR only names the daemon's exec root in the
// process list.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "init" {
		return InitMain(args[1:])
	}
	if len(args) == 2 && args[0] == "pooled" {
		return pooled()
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: berth monitor CONFIG.json")
		return 2
	}
	sync := os.NewFile(3, "sync")
	data, err := os.ReadFile(args[0])
	if err != nil {
		return fail(sync, err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fail(sync, fmt.Errorf("monitor config %s: %w", args[0], err))
	}
	return run(cfg, sync)
}

// fail reports err on the sync pipe.
func fail(sync *os.File, err error) int {
	if sync != nil {
		fmt.Fprintf(sync, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		sync.Close()
	}
	return 1
}

func run(cfg Config, sync *os.File) int {
	m := &monitor{clients: map[*client]bool{}, cfg: cfg}
	fail := func(err error) int { return fail(sync, err) }
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("set child subreaper: %w", err))
	}
	create := m.create
	if m.cfg.SpawnOnRequest {
		create = m.prepare
	}
	if err := create(); err != nil {
		if !m.cfg.SpawnOnRequest {
			m.cleanupRuntime()
		}
		return fail(err)
	}
	if sync != nil {
		fmt.Fprintf(sync, "ready %d\n", m.initPid)
		sync.Close()
	}
	go m.serve()
	if m.cfg.SpawnOnRequest {
		pid := <-m.spawned
		m.mu.Lock()
		m.initPid = pid
		m.mu.Unlock()
		if pid == 0 {
			// The daemon gave up before the init was started.
			m.ln.Close()
			os.Remove(m.cfg.Socket)
			os.Remove(m.cfg.Socket + ".console")
			return 1
		}
	}
	m.reap()
	return 0
}

// create listens on the socket, sets up stdio and runs `runtime create`.
func (m *monitor) create() error {
	c := m.cfg
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
	dir := c.Bundle
	pidFile := dir + "/init.pid"
	runtimeLog := dir + "/runtime.log"
	os.Remove(pidFile)
	args := append([]string{}, c.RuntimeArgs...)
	args = append(args, "--log", runtimeLog, "--log-format", "json", "create", "--bundle", c.Bundle, "--pid-file", pidFile)
	cmd := exec.Command(c.Runtime, args...)
	cmd.Dir = c.Bundle
	var childEnds []*os.File
	var consoleLn *net.UnixListener
	var errOut strings.Builder
	if c.Tty {
		sock := c.Socket + ".console"
		os.Remove(sock)
		consoleLn, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		defer consoleLn.Close()
		defer os.Remove(sock)
		args = append(args, "--console-socket", sock)
		cmd.Args = append([]string{c.Runtime}, args...)
		cmd.Stdout, cmd.Stderr = &errOut, &errOut
	} else {
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = outW, errW
		childEnds = append(childEnds, outW, errW)
		if c.OpenStdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return err
			}
			cmd.Stdin = inR
			childEnds = append(childEnds, inR)
			m.stdin = inW
		}
		m.outputWG.Add(2)
		go m.pump(outR, Stdout)
		go m.pump(errR, Stderr)
	}
	cmd.Args = append(cmd.Args, c.ID)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s create: %w", c.Runtime, err)
	}
	for _, f := range childEnds {
		f.Close()
	}
	var ptyErr error
	ptyDone := make(chan struct{})
	if c.Tty {
		go func() {
			defer close(ptyDone)
			m.pty, ptyErr = ReceivePty(consoleLn)
		}()
	} else {
		close(ptyDone)
	}
	if err := cmd.Wait(); err != nil {
		if c.Tty {
			consoleLn.Close()
		}
		msg := runtimeError(runtimeLog)
		if msg == "" {
			msg = strings.TrimSpace(errOut.String())
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s", msg)
	}
	if c.Tty {
		select {
		case <-ptyDone:
		case <-time.After(5 * time.Second):
			consoleLn.Close()
			<-ptyDone
		}
		if ptyErr != nil {
			return fmt.Errorf("receive the container's terminal: %w", ptyErr)
		}
		m.stdin = m.pty
		m.outputWG.Add(1)
		go m.pump(m.pty, Stdout)
	}
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("read pid file: %w", err)
	}
	m.initPid, err = strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil || m.initPid <= 0 {
		return fmt.Errorf("bad pid file %s: %q", pidFile, pidData)
	}
	return nil
}

// runtimeError extracts the last error message from a json runtime log.
func runtimeError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range strings.Split(string(data), "\n") {
		var e struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msg = e.Msg
		}
	}
	return msg
}

// ReceivePty accepts the runtime's connection on the console socket and
// receives the pty master with SCM_RIGHTS.
func ReceivePty(ln *net.UnixListener) (*os.File, error) {
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("no control message on console socket")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("no file descriptor on console socket")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// pump copies one output stream to the log and the attached clients.
func (m *monitor) pump(r *os.File, stream byte) {
	defer m.outputWG.Done()
	defer r.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m.writeLog(buf[:n], stream)
			m.broadcast(buf[:n], stream)
		}
		if err != nil {
			return
		}
	}
}

func (m *monitor) broadcast(p []byte, stream byte) {
	m.mu.Lock()
	var list []*client
	for c := range m.clients {
		if (stream == Stdout && c.stdout) || (stream == Stderr && c.stderr) {
			list = append(list, c)
		}
	}
	m.mu.Unlock()
	var hdr [8]byte
	hdr[0] = stream
	hdr[4], hdr[5], hdr[6], hdr[7] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
	for _, c := range list {
		c.mu.Lock()
		c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := c.conn.Write(append(hdr[:], p...))
		c.mu.Unlock()
		if err != nil {
			m.mu.Lock()
			delete(m.clients, c)
			m.mu.Unlock()
			c.conn.Close()
		}
	}
}

// writeLog appends json-file entries, one per line (a trailing partial
// line is an entry of its own, as Docker's json-file driver does).
func (m *monitor) writeLog(p []byte, stream byte) {
	if m.logFile == nil {
		return
	}
	m.logMu.Lock()
	defer m.logMu.Unlock()
	name := "stdout"
	if stream == Stderr {
		name = "stderr"
	}
	ts := time.Now().UTC().AppendFormat(m.tsBuf[:0], time.RFC3339Nano)
	m.tsBuf = ts
	var out []byte
	for len(p) > 0 {
		i := indexByte(p, '\n')
		line := p
		if i >= 0 {
			line = p[:i+1]
		}
		p = p[len(line):]
		out = append(out, `{"log":`...)
		out = appendJSONString(out, line)
		out = append(out, `,"stream":"`...)
		out = append(out, name...)
		out = append(out, `","time":"`...)
		out = append(out, ts...)
		out = append(out, "\"}\n"...)
	}
	m.logFile.Write(out)
}

func indexByte(p []byte, b byte) int {
	for i, c := range p {
		if c == b {
			return i
		}
	}
	return -1
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes p as a JSON string; invalid UTF-8 is kept byte
// for byte as \u00XX escapes of the raw bytes would change the content,
// so it is replaced the way encoding/json does (U+FFFD).
func appendJSONString(out, p []byte) []byte {
	out = append(out, '"')
	s := string(p)
	for _, r := range s {
		switch {
		case r == '"':
			out = append(out, '\\', '"')
		case r == '\\':
			out = append(out, '\\', '\\')
		case r == '\n':
			out = append(out, '\\', 'n')
		case r == '\r':
			out = append(out, '\\', 'r')
		case r == '\t':
			out = append(out, '\\', 't')
		case r < 0x20 || r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029:
			out = append(out, '\\', 'u', hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
		default:
			out = append(out, string(r)...)
		}
	}
	return append(out, '"')
}

// serve answers requests on the socket until the monitor exits.
func (m *monitor) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			return
		}
		go m.handle(conn)
	}
}

func (m *monitor) handle(conn net.Conn) {
	line, fds, br, err := readRequest(conn.(*net.UnixConn))
	if err != nil {
		conn.Close()
		return
	}
	verb, arg, _ := strings.Cut(line, " ")
	if verb == "spawn" {
		pid, err := m.spawn([]byte(arg), fds)
		if err != nil {
			fmt.Fprintf(conn, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(conn, "ok %d\n", pid)
		}
		conn.Close()
		return
	}
	closeAll(fds)
	f := strings.Fields(line)
	if len(f) == 0 {
		conn.Close()
		return
	}
	if m.ptyReady != nil && (f[0] == "attach" || f[0] == "resize") {
		// The terminal arrives while the daemon creates the container;
		// attach and resize need it.
		select {
		case <-m.ptyReady:
		case <-time.After(10 * time.Second):
		}
	}
	switch f[0] {
	case "abort":
		if m.abort() {
			conn.Write([]byte("ok\n"))
		} else {
			conn.Write([]byte("error the container's init was started already\n"))
		}
		conn.Close()
	case "start":
		err := m.start()
		if err != nil {
			fmt.Fprintf(conn, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(conn, "ok %d\n", m.initPid)
		}
		conn.Close()
	case "wait":
		m.mu.Lock()
		if m.oomFile == "" && m.initPid > 0 && !m.exited {
			// The daemon waits once the container is created: the init
			// is in its cgroups, which an exited process no longer shows.
			m.oomFile = oomCounter(m.initPid)
		}
		if m.exited {
			e := m.exit
			m.mu.Unlock()
			writeExit(conn, e)
			conn.Close()
			return
		}
		m.waiters = append(m.waiters, conn)
		m.mu.Unlock()
	case "resize":
		m.mu.Lock()
		pty := m.pty
		m.mu.Unlock()
		if len(f) == 3 && pty != nil {
			h, _ := strconv.Atoi(f[1])
			w, _ := strconv.Atoi(f[2])
			unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(w)})
		}
		conn.Write([]byte("ok\n"))
		conn.Close()
	case "attach":
		// attach STDIN STDOUT STDERR (each 0 or 1)
		if len(f) != 4 {
			conn.Close()
			return
		}
		c := &client{conn: conn, stdout: f[2] == "1", stderr: f[3] == "1"}
		m.mu.Lock()
		if m.exited {
			m.mu.Unlock()
			conn.Close()
			return
		}
		// Acknowledge, then register: the daemon starts the container
		// only after the acknowledgement, so no output is missed, and no
		// frame can come before the "ok" line.
		conn.Write([]byte("ok\n"))
		m.clients[c] = true
		m.mu.Unlock()
		if f[1] == "1" && m.stdin != nil {
			go m.copyStdin(br)
		}
	case "pid":
		fmt.Fprintf(conn, "%d\n", m.initPid)
		conn.Close()
	default:
		conn.Close()
	}
}

func writeExit(w io.Writer, e Exit) {
	fmt.Fprintf(w, "exit %d %d %t\n", e.ExitCode, e.FinishedAt.UnixNano(), e.OOMKilled)
}

// copyStdin forwards an attached client's input; its end (half-close)
// closes the container's stdin when StdinOnce is set.
func (m *monitor) copyStdin(r io.Reader) {
	io.Copy(m.stdin, r)
	if m.cfg.StdinOnce && !m.cfg.Tty {
		m.stdin.Close()
	}
}

func (m *monitor) start() error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return nil
	}
	m.started = true
	m.mu.Unlock()
	args := append(append([]string{}, m.cfg.RuntimeArgs...), "start", m.cfg.ID)
	out, err := exec.Command(m.cfg.Runtime, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s start: %w: %s", m.cfg.Runtime, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// reap waits for the container's init, records its status, drains the
// output, and tells everyone.
func (m *monitor) reap() {
	var ws unix.WaitStatus
	code := 255
	for {
		_, err := unix.Wait4(m.initPid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			default:
				continue
			}
		}
		break
	}
	finished := time.Now().UTC()
	// The init is gone: the kernel killed the rest of its PID namespace,
	// so the pipes reach EOF unless a process outside it holds them.
	done := make(chan struct{})
	go func() { m.outputWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if m.stdin != nil {
		m.stdin.Close()
	}
	// Whether the kernel killed one of its processes for memory
	// (Docker's State.OOMKilled): the cgroup is still there.
	m.mu.Lock()
	oomFile := m.oomFile
	m.mu.Unlock()
	e := Exit{ExitCode: code, FinishedAt: finished, OOMKilled: oomKilled(oomFile)}
	if err := writeExitFile(m.cfg.ExitFile, e); err != nil {
		e.Error = err.Error()
	}
	m.mu.Lock()
	m.exited, m.exit = true, e
	waiters := m.waiters
	m.waiters = nil
	clients := m.clients
	m.clients = map[*client]bool{}
	m.mu.Unlock()
	for c := range clients {
		c.mu.Lock()
		c.conn.Close()
		c.mu.Unlock()
	}
	for _, w := range waiters {
		writeExit(w, e)
		w.Close()
	}
	if m.logFile != nil {
		m.logFile.Close()
	}
	m.ln.Close()
	os.Remove(m.cfg.Socket)
	// The runtime's state goes last: the daemon, told of the exit above,
	// releases the container meanwhile (docker run --rm waits for that),
	// and deletes it itself when it says so and was there to hear.
	if !m.cfg.DaemonDeletes || len(waiters) == 0 {
		m.cleanupRuntime()
	}
}

func (m *monitor) cleanupRuntime() {
	args := append(append([]string{}, m.cfg.RuntimeArgs...), "delete", "--force", m.cfg.ID)
	exec.Command(m.cfg.Runtime, args...).Run()
}

func writeExitFile(path string, e Exit) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadExit reads an exit file.
func ReadExit(path string) (Exit, error) {
	var e Exit
	data, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("exit file %s: %w", path, err)
	}
	return e, nil
}

var errMonitorGone = errors.New("container monitor is gone")
