package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStatus returns a field of /proc/PID/status ("" when unreadable).
func procStatus(pid int, field string) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// findProcess returns the pid of the process whose command line is exactly
// args (joined by spaces), or 0.
func findProcess(args string) int {
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err == nil && strings.TrimRight(strings.ReplaceAll(string(cl), "\x00", " "), " ") == args {
			return pid
		}
	}
	return 0
}

// The daemon runs exec's process through the runtime in-process: its
// parent is the small nsenter helper, which reports its exit status (and
// 128+N for a signal), so the daemon never becomes a child subreaper and
// inherits no orphan.
func TestEngineExecHelperReaps(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	name := randomName("berth-test-exec-")
	e.docker("run", "-d", "--name", name, "busybox", "sleep", "1000")
	if _, _, code := e.dockerQuiet("exec", name, "sh", "-c", "exit 9"); code != 9 {
		t.Fatalf("exec exit 9 → %d", code)
	}
	if _, _, code := e.dockerQuiet("exec", name, "sh", "-c", "kill -TERM $$"); code != 143 {
		t.Fatalf("exec killed by SIGTERM → %d, want 143", code)
	}
	// A detached exec: its parent is the helper, not the daemon.
	marker := strconv.Itoa(100000 + int(time.Now().UnixNano()%800000))
	e.docker("exec", "-d", name, "sleep", marker)
	var pid int
	waitFor(t, func() bool { pid = findProcess("sleep " + marker); return pid != 0 })
	ppid, _ := strconv.Atoi(procStatus(pid, "PPid"))
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	if !strings.HasPrefix(string(comm), "berth-nsenter") {
		t.Fatalf("exec'd process %d has parent %d %q, want the berth-nsenter helper", pid, ppid, comm)
	}
	if pp, _ := strconv.Atoi(procStatus(ppid, "PPid")); pp != e.cmd.Process.Pid {
		t.Fatalf("the helper's parent is %d, want the daemon %d", pp, e.cmd.Process.Pid)
	}
	// Orphaned, it must not come to the daemon (it would if the daemon
	// were a child subreaper).
	syscall.Kill(ppid, syscall.SIGKILL)
	waitFor(t, func() bool { p, _ := strconv.Atoi(procStatus(pid, "PPid")); return p != ppid })
	if p, _ := strconv.Atoi(procStatus(pid, "PPid")); p == e.cmd.Process.Pid {
		t.Fatalf("the orphaned exec process was adopted by the daemon: it is a child subreaper")
	}
	e.docker("rm", "-f", name)
}

// A create is followed by the start's preparation in the background (the
// runtime creates the container, its process waits to be released):
// visible as the runtime's state. It is undone when no start comes, when
// the container is removed, and when files are copied into it (the
// spec's users came from the image's /etc/passwd); the start then
// prepares anew, so what runs is what the container holds at its start.
func TestEngineStartAhead(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	state := func(id string) string { return filepath.Join(e.dir, "x", "runtime", id, "state.json") }
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	id := strings.TrimSpace(e.docker("create", "busybox", "echo", "started"))
	waitFor(t, func() bool { return exists(state(id)) })
	if out := e.docker("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", id); out != "created 0\n" {
		t.Fatalf("a container prepared ahead shows %q", out)
	}
	// No start within the time allowed: undone.
	deadline := time.Now().Add(10 * time.Second)
	for exists(state(id)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if exists(state(id)) {
		t.Fatal("a start prepared ahead was not undone")
	}
	if out := e.docker("start", "-a", id); out != "started\n" {
		t.Fatalf("start -a after the undo: %q", out)
	}

	// A client attached to a container prepared ahead (its registration
	// goes to that monitor) still gets the output when the preparation is
	// undone before the start: it waits for the start, as with dockerd.
	// (The docker CLI attaches only to running containers: the API's
	// attach, as `docker start -a` sends it, is used directly.)
	id = strings.TrimSpace(e.docker("create", "busybox", "echo", "attached"))
	waitFor(t, func() bool { return exists(state(id)) })
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1.41/containers/%s/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", id)
	br := bufio.NewReader(conn)
	if status, err := br.ReadString('\n'); err != nil || !strings.Contains(status, "101") {
		t.Fatalf("attach: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for exists(state(id)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	e.docker("start", id)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	frames, _ := io.ReadAll(br)
	if len(frames) < 8 || string(frames[8:]) != "attached\n" {
		t.Fatalf("attach across an undone preparation: %q", frames)
	}

	// A copy into the container undoes it: the user is resolved again.
	id = strings.TrimSpace(e.docker("create", "-u", "daemon", "busybox", "id", "-u"))
	waitFor(t, func() bool { return exists(state(id)) })
	passwd := filepath.Join(e.dir, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\ndaemon:x:4242:4242:daemon:/:/bin/false\n"), 0o644)
	e.docker("cp", passwd, id+":/etc/passwd")
	if out := e.docker("start", "-a", id); out != "4242\n" {
		t.Fatalf("user after copying /etc/passwd in: %q, want 4242", out)
	}

	// Removal undoes it, and leaves no runtime state behind.
	id = strings.TrimSpace(e.docker("create", "busybox", "true"))
	waitFor(t, func() bool { return exists(state(id)) })
	e.docker("rm", id)
	waitFor(t, func() bool { return !exists(filepath.Dir(state(id))) })

	// So does a daemon that stops.
	id = strings.TrimSpace(e.docker("create", "busybox", "true"))
	waitFor(t, func() bool { return exists(state(id)) })
	e.stop(syscall.SIGTERM)
	if exists(filepath.Dir(state(id))) {
		t.Fatal("a start prepared ahead survived the daemon's stop")
	}
	e.start()
	if out := e.docker("start", "-a", id); out != "" {
		t.Fatalf("start after the daemon's restart: %q", out)
	}
}

// A container's network namespace may be one the daemon made ahead: each
// container still has its own, with loopback up, none shared with the
// host or another container.
func TestEngineNetnsMadeAhead(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	host, _ := os.Readlink("/proc/self/ns/net")
	seen := map[string]bool{host: true}
	for i := 0; i < 3; i++ {
		id := strings.TrimSpace(e.docker("run", "-d", "--network", "none", "busybox", "sleep", "1000"))
		pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
		ns, err := os.Readlink("/proc/" + pid + "/ns/net")
		if err != nil || seen[ns] {
			t.Fatalf("container %d: network namespace %q (%v) is not its own: seen %v", i, ns, err, seen)
		}
		seen[ns] = true
		if out := e.docker("exec", id, "cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"); !strings.Contains(out, "0x9") {
			t.Fatalf("container %d: loopback not up: %q", i, out)
		}
		if out := e.docker("exec", id, "ls", "/sys/class/net"); strings.TrimSpace(out) != "lo" {
			t.Fatalf("container %d: interfaces %q, want lo alone", i, out)
		}
	}
}

// docker stop right after docker run -d --init: the stop signal may come
// while the --init (a Go program) is still starting; it is forwarded, not
// taken by the Go runtime's default (exit status 2).
func TestEngineInitStopAtOnce(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	for i := 0; i < 5; i++ {
		id := strings.TrimSpace(e.docker("run", "-d", "--init", "busybox", "sleep", "1000"))
		e.docker("stop", id)
		if out := e.docker("inspect", "-f", "{{.State.ExitCode}}", id); out != "143\n" {
			t.Fatalf("round %d: an --init container stopped at once exited %q, want 143", i, out)
		}
		e.docker("rm", id)
	}
}

// A burst of creates does not make a burst of processes: at most eight
// starts are prepared ahead at once.
func TestEngineStartAheadBounded(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, strings.TrimSpace(e.docker("create", "busybox", "true")))
	}
	count := func() int {
		n := 0
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(e.dir, "x", "runtime", id, "state.json")); err == nil {
				n++
			}
		}
		return n
	}
	waitFor(t, func() bool { return count() > 0 })
	most := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		most = max(most, count())
	}
	if most > 8 || most == 0 {
		t.Fatalf("%d starts prepared ahead at once, want 1 to 8", most)
	}
	e.docker(append([]string{"rm"}, ids...)...)
}
