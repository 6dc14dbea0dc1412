package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
)

// engineEnv is a `berth daemon` on a private socket, data root and exec
// root, driven by the real docker CLI. The daemon can be stopped (SIGTERM
// or SIGKILL) and started again on the same directories.
type engineEnv struct {
	t       *testing.T
	dir     string
	sock    string
	args    []string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
	dockerC string // DOCKER_CONFIG directory
	// cgroupParent is the daemon's --cgroup-parent, the test's own.
	cgroupParent string
}

func newEngine(t *testing.T, extra ...string) *engineEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	// Short paths: unix sockets are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "berth-test-")
	if err != nil {
		t.Fatal(err)
	}
	e := &engineEnv{t: t, dir: dir, sock: filepath.Join(dir, "berth.sock"), dockerC: filepath.Join(dir, "docker-config"),
		cgroupParent: testutil.OwnCgroup(t, "engine")}
	os.Mkdir(e.dockerC, 0o700)
	e.args = append([]string{"daemon", "--config", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "x"),
		"-H", "unix://" + e.sock, "--cgroup-parent", e.cgroupParent}, extra...)
	os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o644)
	e.start()
	t.Cleanup(e.cleanup)
	return e
}

func (e *engineEnv) start() {
	e.t.Helper()
	log, err := os.OpenFile(filepath.Join(e.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	e.log = log
	e.cmd = exec.Command(testutil.BerthBinary(e.t), e.args...)
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.done = make(chan struct{})
	go func(c *exec.Cmd, d chan struct{}) { c.Wait(); close(d) }(e.cmd, e.done)
	client := e.httpClient()
	for i := 0; i < 400; i++ {
		if resp, err := client.Get("http://berth/_ping"); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-e.done:
			data, _ := os.ReadFile(filepath.Join(e.dir, "daemon.log"))
			e.t.Fatalf("berth daemon exited: %s", data)
		case <-time.After(25 * time.Millisecond):
		}
	}
	e.t.Fatal("berth daemon did not answer /_ping in 10 s")
}

// stop ends the daemon with sig and waits for it.
func (e *engineEnv) stop(sig syscall.Signal) {
	e.t.Helper()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(sig)
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	e.log.Close()
	e.cmd = nil
}

func (e *engineEnv) cleanup() {
	if e.cmd != nil {
		// Remove every container so no monitor, mount or cgroup is left.
		out, _, _ := e.dockerQuiet("ps", "-aq")
		if ids := strings.Fields(out); len(ids) > 0 {
			e.dockerQuiet(append([]string{"rm", "-f"}, ids...)...)
		}
		e.stop(syscall.SIGTERM)
	}
	if e.t.Failed() {
		data, _ := os.ReadFile(filepath.Join(e.dir, "daemon.log"))
		e.t.Logf("daemon log:\n%s", data)
	}
	// Nothing may stay mounted under the data root.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.dir+"/") {
			e.t.Errorf("left mounted: %s", f[4])
			syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
	os.RemoveAll(e.dir)
}

func (e *engineEnv) host() string { return "unix://" + e.sock }

func (e *engineEnv) httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}}
}

func (e *engineEnv) dockerCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host(), "DOCKER_CONFIG="+e.dockerC)
	cmd.Dir = e.dir
	return cmd
}

// dockerQuiet runs the docker CLI and returns stdout, stderr and the exit
// code.
func (e *engineEnv) dockerQuiet(args ...string) (string, string, int) {
	cmd := e.dockerCmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err.Error(), -1
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String(), errb.String() + "\n(timed out)", -1
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// docker runs the docker CLI and fails the test unless it exits 0.
func (e *engineEnv) docker(args ...string) string {
	e.t.Helper()
	out, errs, code := e.dockerQuiet(args...)
	if code != 0 {
		e.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// importBusybox imports the busybox image (Docker Hub's layout, from
// busybox-static) as "busybox".
func (e *engineEnv) importBusybox() {
	e.t.Helper()
	tarPath := filepath.Join(e.dir, "busybox.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := busybox.WriteTar(f); err != nil {
		e.t.Skip(err)
	}
	f.Close()
	out := e.docker("import", tarPath, "busybox")
	if !strings.HasPrefix(out, "sha256:") {
		e.t.Fatalf("import printed %q", out)
	}
	os.Remove(tarPath)
}

func randomName(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, rand.Int63())
}
