package monitor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/spawnreq"
	"golang.org/x/sys/unix"
)

// spawnEnvHook adds environment to monitors (tests only).
var spawnEnvHook []string

// Spawn starts a monitor for cfg (written to cfgPath) by running
// argv (the berth binary and its "monitor" verb), in its own session so
// it outlives the daemon, and waits until the container is created. It
// returns the monitor's process (the caller must Wait for it while it
// lives) and the container init's pid.
func Spawn(argv []string, cfgPath string, cfg Config) (*os.Process, int, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, 0, err
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, 0, fmt.Errorf("write monitor config: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	cmd := exec.Command(argv[0], append(argv[1:], cfgPath)...)
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOGC=50", "GOMAXPROCS=1"}, spawnEnvHook...)
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, 0, fmt.Errorf("start monitor: %w", err)
	}
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		cmd.Wait()
		return nil, 0, fmt.Errorf("container monitor exited before the container was created")
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		cmd.Wait()
		return nil, 0, fmt.Errorf("%s", msg)
	}
	pidStr, ok := strings.CutPrefix(line, "ready ")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, 0, fmt.Errorf("container monitor: unexpected answer %q", line)
	}
	return cmd.Process, pid, nil
}

func request(socket, req string) (net.Conn, *bufio.Reader, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errMonitorGone, err)
	}
	if _, err := conn.Write([]byte(req + "\n")); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: %v", errMonitorGone, err)
	}
	return conn, bufio.NewReaderSize(conn, 128), nil
}

// Start asks the monitor to start the created container.
func Start(socket string) error {
	conn, br, err := request(socket, "start")
	if err != nil {
		return err
	}
	defer conn.Close()
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("start: %w", errMonitorGone)
	}
	if msg, ok := strings.CutPrefix(strings.TrimSpace(line), "error "); ok {
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// Wait connects a waiter: the returned channel gets the exit once the
// container's init has exited, or an error if the monitor died without
// saying (then read the exit file).
func Wait(socket string) (<-chan WaitResult, error) {
	conn, br, err := request(socket, "wait")
	if err != nil {
		return nil, err
	}
	ch := make(chan WaitResult, 1)
	go func() {
		defer conn.Close()
		line, err := br.ReadString('\n')
		if err != nil {
			ch <- WaitResult{Err: errMonitorGone}
			return
		}
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "exit" {
			ch <- WaitResult{Err: fmt.Errorf("monitor: unexpected answer %q", line)}
			return
		}
		code, _ := strconv.Atoi(f[1])
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		ch <- WaitResult{Exit: Exit{ExitCode: code, FinishedAt: time.Unix(0, ns).UTC(), OOMKilled: f[3] == "true"}}
	}()
	return ch, nil
}

// WaitResult is what Wait delivers.
type WaitResult struct {
	Exit Exit
	Err  error
}

// IsGone reports whether err says the monitor is not there any more.
func IsGone(err error) bool {
	return err != nil && strings.Contains(err.Error(), errMonitorGone.Error())
}

// AttachConn is an attach stream to a monitor.
type AttachConn struct {
	*net.UnixConn
	br *bufio.Reader
}

func (a *AttachConn) Read(p []byte) (int, error) { return a.br.Read(p) }

// Attach opens an attach stream: frames (stdcopy headers) of the chosen
// output streams come back until the container exits; bytes written are
// the container's stdin and CloseWrite ends it. It returns once the
// monitor has registered the stream, so output produced after that is
// never missed.
func Attach(socket string, stdin, stdout, stderr bool) (*AttachConn, error) {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	conn, br, err := request(socket, fmt.Sprintf("attach %s %s %s", b(stdin), b(stdout), b(stderr)))
	if err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := br.ReadString('\n')
	conn.SetReadDeadline(time.Time{})
	if err != nil || line != "ok\n" {
		conn.Close()
		return nil, fmt.Errorf("attach: %w", errMonitorGone)
	}
	return &AttachConn{UnixConn: conn.(*net.UnixConn), br: br}, nil
}

// Resize sets the container terminal's size.
func Resize(socket string, h, w uint) error {
	conn, br, err := request(socket, fmt.Sprintf("resize %d %d", h, w))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = br.ReadString('\n')
	return err
}

// SpawnInit asks a SpawnOnRequest monitor to start a container's init
// (req, with files as its descriptors from 3 up and cgroup, when
// req.IntoCgroup, the cgroup2 directory to clone it into), as its child
// with the container's stdio, and returns the init's pid.
func SpawnInit(socket string, req *spawnreq.Request, files []*os.File, cgroup *os.File) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errMonitorGone, err)
	}
	defer conn.Close()
	fds := make([]int, 0, len(files)+1)
	for _, f := range files {
		fds = append(fds, int(f.Fd()))
	}
	if req.IntoCgroup {
		fds = append(fds, int(cgroup.Fd()))
	}
	msg := append(append([]byte("spawn "), body...), '\n')
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return 0, fmt.Errorf("%w: %v", errMonitorGone, err)
	}
	for _, f := range files {
		runtime.KeepAlive(f)
	}
	runtime.KeepAlive(cgroup)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReaderSize(conn, 128).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("spawn: %w", errMonitorGone)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return 0, fmt.Errorf("%s", msg)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "ok "))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("monitor: unexpected answer %q", line)
	}
	return pid, nil
}

// Abort ends a SpawnOnRequest monitor whose init was not started.
func Abort(socket string) error {
	conn, br, err := request(socket, "abort")
	if err != nil {
		return err
	}
	defer conn.Close()
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("abort: %w", errMonitorGone)
	}
	if msg, ok := strings.CutPrefix(strings.TrimSpace(line), "error "); ok {
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// Pooled is a monitor started ahead of need, waiting for its container.
type Pooled struct {
	proc *os.Process
	conn *os.File
	br   *bufio.Reader
}

// StartPooled starts a monitor (argv: the berth binary and its "monitor"
// verb) that waits for its container; dir names the daemon's exec root in
// the process list. It returns once the monitor is ready to take one.
func StartPooled(argv []string, dir string) (*Pooled, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "pool"), os.NewFile(uintptr(fds[1]), "pool")
	defer theirs.Close()
	cmd := exec.Command(argv[0], append(argv[1:], "pooled", dir)...)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOGC=50", "GOMAXPROCS=1"}, spawnEnvHook...)
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	p := &Pooled{proc: cmd.Process, conn: ours, br: bufio.NewReaderSize(ours, 256)}
	if line, err := p.br.ReadString('\n'); err != nil || line != "idle\n" {
		p.Close()
		return nil, fmt.Errorf("container monitor did not start (%q)", line)
	}
	return p, nil
}

// Use hands the monitor its container, as Spawn does for a new one: it
// returns the monitor's process (the caller must Wait for it) and the
// init's pid. An error wrapping the "gone" error (IsGone) means the
// monitor was not usable; try another.
func (p *Pooled) Use(cfg Config) (*os.Process, int, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, 0, err
	}
	if _, err := p.conn.Write(append(data, '\n')); err != nil {
		p.Close()
		return nil, 0, fmt.Errorf("%w: %v", errMonitorGone, err)
	}
	line, err := p.br.ReadString('\n')
	p.conn.Close()
	if err != nil {
		p.proc.Wait()
		return nil, 0, fmt.Errorf("%w: it exited before the container was created", errMonitorGone)
	}
	pid, err := readyLine(strings.TrimSpace(line))
	if err != nil {
		p.proc.Kill()
		p.proc.Wait()
		return nil, 0, err
	}
	return p.proc, pid, nil
}

// Close ends an unused monitor.
func (p *Pooled) Close() {
	p.conn.Close()
	p.proc.Wait()
}

// readyLine parses "ready PID" or "error MESSAGE".
func readyLine(line string) (int, error) {
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return 0, fmt.Errorf("%s", msg)
	}
	pidStr, ok := strings.CutPrefix(line, "ready ")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil {
		return 0, fmt.Errorf("container monitor: unexpected answer %q", line)
	}
	return pid, nil
}
