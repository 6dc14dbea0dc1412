package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// testName is a cgroup name no one else uses: berth-test- plus random hex.
func testName(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "berth-test-" + hex.EncodeToString(b)
}

// newTest makes a manager for /berth-test-XXXX with r, created, and
// destroyed at the end of the test (after its processes were killed).
func newTest(t testing.TB, r *specs.LinuxResources) Manager {
	t.Helper()
	testutil.RequiresRoot(t)
	name := testName(t)
	m, err := New(Config{ContainerID: name, Path: "/" + name, Resources: r})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.Create(); err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		m.Kill(syscall.SIGKILL)
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		for _, p := range m.Paths() {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("cgroup %s left behind", p)
			}
		}
	})
	return m
}

// proc is a busybox shell started outside the cgroup, placed in it, and
// only then let run its script, so nothing it does escapes the limits.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func startIn(t testing.TB, m Manager, script string) *proc {
	t.Helper()
	cmd := exec.Command("/bin/busybox", "sh", "-c", "read go; "+script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// nil stdio is /dev/null: no copying goroutine that would wait for
	// every child holding the pipe.
	if err := cmd.Start(); err != nil {
		t.Fatalf("start busybox (is busybox-static installed?): %v", err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	if err := m.Enter(cmd.Process.Pid); err != nil {
		t.Fatalf("Enter: %v", err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	return p
}

// wait returns the exit status, failing the test after timeout.
func (p *proc) wait(t testing.TB, timeout time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.done:
		p.done <- nil // let Cleanup's receive return
		return p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	case <-time.After(timeout):
		t.Fatalf("process %d did not exit within %v", p.cmd.Process.Pid, timeout)
	}
	return 0
}

func readFile(t testing.TB, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inVM is set by the test/vm harness: TCG emulation needs wide timing
// tolerances.
func inVM() bool { return os.Getenv("BERTH_VM") == "1" }

func ptr[T any](v T) *T { return &v }
