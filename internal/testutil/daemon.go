package testutil

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// StartDaemon runs `berth daemon` on a private socket, data root and exec
// root (under a short temporary directory: unix socket paths are limited
// to 108 bytes), with an empty daemon.json so the host's
// /etc/berth/daemon.json stays out, its containers under a cgroup parent
// of its own, and stops it by its PID when the test ends. extra are
// further daemon flags. It returns the -H value.
func StartDaemon(t testing.TB, extra ...string) string {
	t.Helper()
	RequiresRoot(t)
	dir, err := os.MkdirTemp("", "berth-test-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	// Remapped container roots must reach their layers under the data root.
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "berth.sock")
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Its containers' cgroups go under a parent of the test's own,
	// removed when the test ends (registered first: cleanups run last
	// first, so after the daemon has stopped).
	parent := OwnCgroup(t, "daemon")
	args := append([]string{"daemon", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://" + sock, "--config", filepath.Join(dir, "daemon.json"), "--cgroup-parent", parent}, extra...)
	t.Cleanup(func() { logf.Close() }) // after the daemon has stopped
	cmd := exec.Command(BerthBinary(t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	done := StartStopped(t, cmd, 20*time.Second)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for range 200 {
		if resp, err := client.Get("http://berth/_ping"); err == nil {
			resp.Body.Close()
			return "unix://" + sock
		}
		select {
		case <-done:
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("berth daemon exited: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	out, _ := os.ReadFile(logf.Name())
	t.Fatalf("berth daemon did not answer on %s: %s", sock, out)
	return ""
}

// StartStopped starts cmd and, when the test ends, stops it by its PID:
// SIGTERM, then SIGKILL if it has not exited within grace. The returned
// channel is closed when the process has exited.
func StartStopped(t testing.TB, cmd *exec.Cmd, grace time.Duration) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-done
		}
	})
	return done
}
