package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/snapshot"
	"golang.org/x/sys/unix"
)

// These tests prove the README's claim that dockerd and containerd drive
// berth-runtime unchanged, in place of runc: Debian's dockerd 20.10 with
// `--add-runtime berth=bin/berth-runtime`, and containerd 1.6's runc shim
// with `--runc-binary bin/berth-runtime`, each on private sockets and
// roots, stopped by PID, everything they made unmounted and removed.

// peerDir makes a private directory under /var/lib (overlayfs does not
// stack on the tmpfs some hosts mount at /tmp) and removes it, with any
// mount left below it, at the end.
func peerDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", fmt.Sprintf("berth-test-%s-%04x-", prefix, rand.Intn(1<<16)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountBelow(dir)
		os.RemoveAll(dir)
	})
	return dir
}

// unmountBelow detaches every mount under dir, deepest first.
func unmountBelow(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}

// daemonProc runs a daemon and stops it by its PID at the end.
func daemonProc(t *testing.T, logPath string, name string, args ...string) {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the daemon has stopped.
	t.Cleanup(func() {
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	testutil.StartStopped(t, cmd, 30*time.Second)
}

func requirePeer(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed (hack/deps.sh installs it)", n)
		}
	}
}

type cli struct {
	t    *testing.T
	name string
	pre  []string
}

func (c cli) run(stdin io.Reader, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.name, append(append([]string(nil), c.pre...), args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	out, errb, code := c.run(nil, args...)
	if code != 0 {
		c.t.Fatalf("%s %s: exit %d\n%s%s", c.name, strings.Join(args, " "), code, out, errb)
	}
	return out
}

// runtimeState lists the containers berth-runtime keeps under root.
func runtimeList(t *testing.T, root string) string {
	out, _ := exec.Command(testutil.RuntimeBinary(t), "--root", root, "list", "-q").CombinedOutput()
	return string(out)
}

func TestDockerdDrivesBerthRuntime(t *testing.T) {
	testutil.RequiresRoot(t)
	requirePeer(t, "dockerd", "docker")
	rt := testutil.RuntimeBinary(t)
	dir := peerDir(t, "dockerd")
	sock := filepath.Join(dir, "docker.sock")
	execRoot := filepath.Join(dir, "exec")
	daemonProc(t, filepath.Join(dir, "dockerd.log"), "dockerd",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", execRoot,
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://"+sock,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false",
		"--add-runtime", "berth="+rt, "--storage-driver", "overlay2", "--cgroup-parent", testutil.OwnCgroup(t, "dockerd"))
	waitUnixHTTP(t, sock, "/_ping", 60*time.Second)
	docker := cli{t: t, name: "docker", pre: []string{"-H", "unix://" + sock}}

	var tarball bytes.Buffer
	if err := busybox.WriteTar(&tarball); err != nil {
		t.Fatal(err)
	}
	if out, errb, code := docker.run(&tarball, "import", "-c", `CMD ["sh"]`, "-", "busybox:berth"); code != 0 {
		t.Fatalf("docker import: %d %s%s", code, out, errb)
	}
	run := []string{"run", "--runtime", "berth", "--network", "none"}

	// run --rm: output, the default user, and the exit status.
	out := docker.must(append(run, "--rm", "busybox:berth", "sh", "-c", "echo hello; id")...)
	if !strings.Contains(out, "hello\n") || !strings.Contains(out, "uid=0(root) gid=0(root)") {
		t.Errorf("docker run: %q", out)
	}
	if _, _, code := docker.run(nil, append(run, "--rm", "busybox:berth", "sh", "-c", "exit 3")...); code != 3 {
		t.Errorf("exit status: got %d, want 3", code)
	}
	if _, errb, code := docker.run(nil, append(run, "--rm", "busybox:berth", "/no/such/binary")...); code != 127 {
		t.Errorf("missing binary: got exit %d, want 127 (%s)", code, errb)
	}
	// A terminal: the shim hands berth a --console-socket.
	if out := docker.must(append(run, "--rm", "-t", "busybox:berth", "tty")...); !strings.HasPrefix(strings.TrimSpace(out), "/dev/pts/") {
		t.Errorf("docker run -t: tty printed %q", out)
	}

	// A long-running container: it is berth's (dockerd 20.10 gives every
	// runtime the state root runtime-runc/moby), exec works, stop kills.
	name := fmt.Sprintf("berth-test-%04x", rand.Intn(1<<16))
	id := strings.TrimSpace(docker.must(append(run, "-d", "--name", name, "busybox:berth", "sleep", "1000")...))
	if l := runtimeList(t, filepath.Join(execRoot, "runtime-runc", "moby")); !strings.Contains(l, id) {
		t.Errorf("container %s is not in berth-runtime's state (%q): was berth used?", id, l)
	}
	if out := docker.must("exec", name, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '"); out != "exec-ok\nsleep 1000 " {
		t.Errorf("docker exec: %q", out)
	}
	if _, _, code := docker.run(nil, "exec", name, "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("docker exec exit status: %d, want 7", code)
	}
	if out := docker.must("exec", "-t", name, "tty"); !strings.HasPrefix(strings.TrimSpace(out), "/dev/pts/") {
		t.Errorf("docker exec -t: tty printed %q", out)
	}
	if out := docker.must("exec", "-u", "1000:1000", name, "id"); !strings.HasPrefix(out, "uid=1000 gid=1000") {
		t.Errorf("docker exec -u: %q", out)
	}
	if out := docker.must("top", name); !strings.Contains(out, "sleep 1000") {
		t.Errorf("docker top (berth-runtime ps): %q", out)
	}
	docker.must("pause", name)
	if out := docker.must("inspect", "-f", "{{.State.Status}}", name); strings.TrimSpace(out) != "paused" {
		t.Errorf("after pause: %q", out)
	}
	docker.must("unpause", name)
	start := time.Now()
	docker.must("stop", "-t", "1", name)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("docker stop took %v", d)
	}
	if out := docker.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name); strings.TrimSpace(out) != "exited 137" {
		t.Errorf("after stop (sleep ignores SIGTERM as PID 1): %q, want exited 137", out)
	}
	docker.must("start", name)
	docker.must("kill", name)
	docker.must("rm", "-f", name)
	if l := runtimeList(t, filepath.Join(execRoot, "runtime-runc", "moby")); strings.Contains(l, id) {
		t.Errorf("container %s still in berth-runtime's state after rm: %q", id, l)
	}
}

func TestContainerdDrivesBerthRuntime(t *testing.T) {
	testutil.RequiresRoot(t)
	requirePeer(t, "containerd", "ctr", "containerd-shim-runc-v2")
	rt := testutil.RuntimeBinary(t)
	// The runc shim puts its sockets in /run/containerd/s whatever the
	// configuration: remove what this test made there, if it made it.
	if _, err := os.Stat("/run/containerd"); os.IsNotExist(err) {
		t.Cleanup(func() {
			for _, d := range []string{"/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd"} {
				os.Remove(d) // only when empty
			}
		})
	}
	dir := peerDir(t, "containerd")
	sock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// containerd puts a namespace's containers under the cgroup /NS,
	// which it never removes (removed after containerd stops).
	ns := strings.TrimPrefix(testutil.OwnCgroup(t, "ctr"), "/")
	daemonProc(t, filepath.Join(dir, "containerd.log"), "containerd", "--config", filepath.Join(dir, "config.toml"))
	ctr := cli{t: t, name: "ctr", pre: []string{"--address", sock, "--namespace", ns}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code := ctr.run(nil, "version"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not answer in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A docker-archive of the busybox image, made by berth's image store.
	snaps, err := snapshot.Open(filepath.Join(dir, "berth-snap"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := image.Open(filepath.Join(dir, "berth-image"), snaps)
	if err != nil {
		t.Fatal(err)
	}
	var tarball, archive bytes.Buffer
	if err := busybox.WriteTar(&tarball); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(&tarball, "busybox:berth", []string{`CMD ["sh"]`}, ""); err != nil {
		t.Fatal(err)
	}
	if err := store.Save(&archive, []string{"busybox:berth"}); err != nil {
		t.Fatal(err)
	}
	if out, errb, code := ctr.run(&archive, "images", "import", "-"); code != 0 {
		t.Fatalf("ctr images import: %d %s%s", code, out, errb)
	}
	ref := "docker.io/library/busybox:berth"
	runcRoot := filepath.Join(dir, "runc-root")
	run := []string{"run", "--runtime", "io.containerd.runc.v2", "--runc-binary", rt, "--runc-root", runcRoot,
		"--fifo-dir", filepath.Join(dir, "fifo")}

	id := fmt.Sprintf("berth-test-%04x", rand.Intn(1<<16))
	out := ctr.must(append(run, "--rm", ref, id, "sh", "-c", "echo hello; id")...)
	if !strings.Contains(out, "hello\n") || !strings.Contains(out, "uid=0(root) gid=0(root)") {
		t.Errorf("ctr run: %q", out)
	}
	if _, _, code := ctr.run(nil, append(run, "--rm", ref, id+"-x", "sh", "-c", "exit 5")...); code != 5 {
		t.Errorf("ctr run exit status: %d, want 5", code)
	}

	// Detached: exec, kill, delete.
	long := id + "-d"
	ctr.must(append(run, "-d", ref, long, "sleep", "1000")...)
	// The runc shim keeps the runtime's state under --runc-root/NS.
	if l := runtimeList(t, filepath.Join(runcRoot, ns)); !strings.Contains(l, long) {
		t.Errorf("task %s is not in berth-runtime's state (%q): was berth used?", long, l)
	}
	if out := ctr.must("task", "exec", "--exec-id", "e1", long, "sh", "-c", "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '"); out != "exec-ok\nsleep 1000 " {
		t.Errorf("ctr task exec: %q", out)
	}
	if out := ctr.must("task", "ps", long); len(strings.Fields(out)) < 4 {
		t.Errorf("ctr task ps (berth-runtime ps --format json): %q", out)
	}
	ctr.must("task", "pause", long)
	if out := ctr.must("task", "ls"); !strings.Contains(out, "PAUSED") {
		t.Errorf("after pause: %q", out)
	}
	ctr.must("task", "resume", long)
	ctr.must("task", "kill", "-s", "SIGKILL", long)
	deadline = time.Now().Add(20 * time.Second)
	for {
		out := ctr.must("task", "ls")
		if strings.Contains(out, "STOPPED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task did not stop: %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctr.must("task", "delete", long)
	ctr.must("container", "delete", long)
	ctr.must("images", "rm", ref)
}

// waitUnixHTTP polls GET path on a unix socket until it answers.
func waitUnixHTTP(t *testing.T, sock, path string, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := client.Get("http://d" + path); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing answered on %s in %v", sock, limit)
}
