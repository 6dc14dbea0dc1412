package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestEngineRunFlags: docker run flags users expect, each checked from
// inside the container or in its cgroup.
func TestEngineRunFlags(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	host := filepath.Join(e.dir, "shared")
	os.MkdirAll(host, 0o755)
	os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644)

	checks := []struct {
		args []string
		want string
	}{
		{[]string{"--init", "busybox", "sh", "-c", "cat /proc/1/comm"}, "docker-init\n"},
		{[]string{"-v", host + ":/data:ro", "busybox", "sh", "-c", "cat /data/f; touch /data/x 2>/dev/null || echo ro"}, "from host\nro\n"},
		{[]string{"--read-only", "--tmpfs", "/run:size=1m", "busybox", "sh", "-c", "touch /x 2>/dev/null || echo ro; touch /run/ok && echo tmpfs"}, "ro\ntmpfs\n"},
		{[]string{"--hostname", "berthy", "busybox", "hostname"}, "berthy\n"},
		{[]string{"-u", "1000:1000", "busybox", "id"}, "uid=1000 gid=1000\n"},
		{[]string{"-e", "A=1", "--env", "B=two", "-w", "/tmp", "busybox", "sh", "-c", "echo $A $B $(pwd)"}, "1 two /tmp\n"},
		{[]string{"--entrypoint", "echo", "busybox", "from", "entrypoint"}, "from entrypoint\n"},
		{[]string{"--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"}, "100\n200\n"},
		{[]string{"--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"}, "lo\n"},
		{[]string{"busybox", "sh", "-c", "ls /sys/class/net"}, "lo\n"},
		{[]string{"--cap-drop", "ALL", "busybox", "sh", "-c", "chown 1 /tmp 2>/dev/null || echo denied"}, "denied\n"},
		{[]string{"--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"}, "NoNewPrivs:\t1\n"},
		{[]string{"--ipc", "host", "busybox", "sh", "-c", "test -d /dev/mqueue && echo mq || echo no-mq"}, "no-mq\n"},
	}
	for _, c := range checks {
		out := e.docker(append([]string{"run", "--rm"}, c.args...)...)
		if out != c.want {
			t.Errorf("run %s: %q, want %q", strings.Join(c.args, " "), out, c.want)
		}
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	if out := e.docker("run", "--rm", "--network", "host", "busybox", "readlink", "/proc/self/ns/net"); strings.TrimSpace(out) != self {
		t.Errorf("--network host: %q, host %q", out, self)
	}
	if out := e.docker("run", "--rm", "--pid", "host", "busybox", "sh", "-c", "test -d /proc/1/ && cat /proc/1/comm"); out == "sh\n" || out == "" {
		t.Errorf("--pid host sees %q as PID 1", out)
	}

	// --cgroup-parent puts the container under the given cgroup instead
	// of the daemon's parent (the cgroup namespace is the host's on v1).
	parent := testutil.OwnCgroup(t, "run")
	if out := e.docker("run", "--rm", "--cgroupns", "host", "--cgroup-parent", parent, "busybox", "grep", "pids", "/proc/self/cgroup"); !strings.Contains(out, ":"+parent+"/") {
		t.Errorf("--cgroup-parent %s: /proc/self/cgroup says %q", parent, out)
	}

	// Resource flags land in the container's cgroup.
	id := strings.TrimSpace(e.docker("run", "-d", "-m", "64m", "--pids-limit", "50", "--cpus", "0.5", "--cpu-shares", "512", "busybox", "sleep", "1000"))
	pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
	read := func(controller, file string) string {
		data, err := os.ReadFile(filepath.Join(cgroupDir(t, pid, controller), file))
		if err != nil {
			return "(" + err.Error() + ")"
		}
		return strings.TrimSpace(string(data))
	}
	for _, c := range []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"pids", "pids.max", "50"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.shares", "512"},
	} {
		if got := read(c.controller, c.file); got != c.want {
			t.Errorf("%s: %s, want %s", c.file, got, c.want)
		}
	}
	// docker update changes a running container's cgroup.
	e.docker("update", "--pids-limit", "60", id)
	if got := read("pids", "pids.max"); got != "60" {
		t.Errorf("after update pids.max = %s", got)
	}
	// --init forwards the stop signal: no 10 s wait for SIGKILL.
	initID := strings.TrimSpace(e.docker("run", "-d", "--init", "busybox", "sleep", "1000"))
	start := time.Now()
	e.docker("stop", initID)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop of an --init container took %s", d)
	}
	if out := e.docker("inspect", "-f", "{{.State.ExitCode}}", initID); out != "143\n" {
		t.Errorf("--init container stopped with %q, want 143", out)
	}
	// --restart on-failure:2 restarts twice, then stays exited.
	rid := strings.TrimSpace(e.docker("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1"))
	waitFor(t, func() bool {
		return e.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", rid) == "2 exited\n"
	})
	e.docker("rm", "-f", id, initID, rid)
}

// TestEngineLogsFollow: logs -f streams until the container exits.
func TestEngineLogsFollow(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"))
	start := time.Now()
	out := e.docker("logs", "-f", id)
	if out != "1\n2\n3\n" {
		t.Fatalf("logs -f: %q", out)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("logs -f returned after %s, before the container ended", d)
	}
	if out := e.docker("logs", "--tail", "1", id); out != "3\n" {
		t.Fatalf("logs --tail 1: %q", out)
	}
}
