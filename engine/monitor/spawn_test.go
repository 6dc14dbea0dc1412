package monitor

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/spawnreq"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/docker/docker/pkg/stdcopy"
)

// pooledMonitor starts a monitor that waits for its container.
func pooledMonitor(t *testing.T) *Pooled {
	t.Helper()
	testutil.RequiresRoot(t)
	old := spawnEnvHook
	spawnEnvHook = []string{"BERTH_TEST_MONITOR=1"}
	defer func() { spawnEnvHook = old }()
	exe, _ := os.Executable()
	p, err := StartPooled([]string{exe}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func spawnConfig(t *testing.T) Config {
	dir := t.TempDir()
	return Config{ID: "berth-test-spawn", Bundle: dir, Runtime: "/bin/false", LogPath: filepath.Join(dir, "log.json"),
		ExitFile: filepath.Join(dir, "exit"), Socket: filepath.Join(dir, "m.sock"), SpawnOnRequest: true, DaemonDeletes: true}
}

// A pooled monitor takes its container's Config, forks the process the
// daemon describes (with the descriptors it sends) as its own child with
// the container's stdio, and reaps it: output reaches attached clients
// and the log, the exit status the waiters.
func TestMonitorPooledSpawnsOnRequest(t *testing.T) {
	p := pooledMonitor(t)
	cfg := spawnConfig(t)
	proc, pid, err := p.Use(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Wait()
	if pid != 0 {
		t.Fatalf("ready before the spawn with pid %d", pid)
	}
	conn, err := Attach(cfg.Socket, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	conn.CloseWrite()
	waitCh, err := Wait(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	// fd 3 of the process is a file the daemon opened.
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := &spawnreq.Request{Path: "/bin/sh", Args: []string{"sh", "-c", "echo out; echo err >&2; test -r /proc/self/fd/3 && exit 7"},
		Env: []string{"PATH=/bin:/usr/bin"}}
	spid, err := SpawnInit(cfg.Socket, req, []*os.File{f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ppid := strings.TrimSpace(statusField(spid, "PPid")); ppid != "" && ppid != itoa(proc.Pid) {
		t.Fatalf("spawned process %d has parent %s, want the monitor %d", spid, ppid, proc.Pid)
	}
	if _, err := SpawnInit(cfg.Socket, req, nil, nil); err == nil {
		t.Fatal("a second spawn succeeded")
	}
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, conn); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	select {
	case r := <-waitCh:
		if r.Err != nil || r.Exit.ExitCode != 7 {
			t.Fatalf("wait: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
	log, _ := os.ReadFile(cfg.LogPath)
	if !strings.Contains(string(log), `{"log":"out\n","stream":"stdout"`) {
		t.Fatalf("log: %s", log)
	}
}

// A monitor whose container never got its process ends on "abort"; one
// whose daemon goes away while it waits in the pool ends too.
func TestMonitorPooledAbortAndOrphan(t *testing.T) {
	p := pooledMonitor(t)
	cfg := spawnConfig(t)
	proc, _, err := p.Use(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Abort(cfg.Socket); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		proc.Kill()
		t.Fatal("aborted monitor did not exit")
	}
	if _, err := os.Stat(cfg.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket left: %v", err)
	}
	idle := pooledMonitor(t)
	done = make(chan struct{})
	go func() { idle.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		idle.proc.Kill()
		t.Fatal("idle monitor did not exit when its daemon's end closed")
	}
}

func statusField(pid int, field string) string {
	data, _ := os.ReadFile("/proc/" + itoa(pid) + "/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }
