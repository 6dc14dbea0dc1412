package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/busybox"
)

// TestEngineTalk runs the talk's docker commands against berth daemon with
// the real docker CLI, and checks they show what the talk shows.
func TestEngineTalk(t *testing.T) {
	e := newEngine(t)
	e.importBusybox()

	t.Run("hello world", func(t *testing.T) {
		out := e.docker("run", "busybox", "sh", "-c", `echo "hello world"`)
		if out != "hello world\n" {
			t.Fatalf("got %q", out)
		}
	})
	t.Run("pid 1 and credentials", func(t *testing.T) {
		out := e.docker("run", "--rm", "busybox", "sh", "-c", `echo "$$"; id`)
		if out != "1\nuid=0(root) gid=0(root) groups=10(wheel)\n" {
			t.Fatalf("got %q", out)
		}
	})
	t.Run("bin is links to busybox", func(t *testing.T) {
		out := e.docker("run", "--rm", "busybox", "ls", "-l", "bin")
		applets, err := busybox.Applets(busybox.Source)
		if err != nil {
			t.Skip(err)
		}
		fi, _ := os.Stat(busybox.Source)
		want := fmt.Sprintf("%d %d", len(applets)+1, fi.Size())
		found := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 9 && (f[8] == "busybox" || f[8] == "sh" || f[8] == "ls") {
				if f[1]+" "+f[4] != want {
					t.Errorf("%s: links and size %s %s, want %s", f[8], f[1], f[4], want)
				}
				found++
			}
		}
		if found != 3 {
			t.Fatalf("busybox, sh and ls not all listed:\n%s", out)
		}
	})
	t.Run("default capabilities", func(t *testing.T) {
		out := e.docker("run", "--rm", "busybox", "grep", "Cap", "/proc/self/status")
		for _, k := range []string{"CapPrm", "CapEff", "CapBnd"} {
			if !strings.Contains(out, k+":\t00000000a80425fb\n") {
				t.Errorf("%s is not a80425fb:\n%s", k, out)
			}
		}
		if !strings.Contains(out, "CapAmb:\t0000000000000000") {
			t.Errorf("ambient set not empty:\n%s", out)
		}
	})
	t.Run("cap-drop ALL cap-add NET_ADMIN", func(t *testing.T) {
		out := e.docker("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "busybox", "grep", "CapEff", "/proc/self/status")
		if out != "CapEff:\t0000000000001000\n" {
			t.Fatalf("got %q", out)
		}
	})
	t.Run("sleep is PID 1 seen by exec", func(t *testing.T) {
		id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sh", "-c", "sleep 1000"))
		defer e.docker("rm", "-f", id)
		ls := e.docker("container", "ls")
		short := ""
		for _, line := range strings.Split(ls, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] == "busybox" {
				short = f[0]
			}
		}
		if short == "" || !strings.HasPrefix(id, short) {
			t.Fatalf("container ls does not list %s:\n%s", id, ls)
		}
		out := e.docker("exec", short, "sh", "-c", "grep Name /proc/[1-9]*/status")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || lines[0] != "/proc/1/status:Name:\tsleep" || !strings.HasSuffix(lines[1], "Name:\tgrep") {
			t.Fatalf("exec saw:\n%s", out)
		}
		// From the host: NStgid shows the pid in both namespaces.
		pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "NStgid:\t"+pid+"\t1\n") {
			t.Fatalf("host view of %s:\n%s", pid, status)
		}
		// The sleep's capabilities seen from outside.
		if !strings.Contains(string(status), "CapEff:\t00000000a80425fb") {
			t.Fatalf("host view of caps:\n%s", status)
		}
	})
	t.Run("cpu quota in the cgroup", func(t *testing.T) {
		id := strings.TrimSpace(e.docker("run", "-d", "--cpu-period=2000", "--cpu-quota=1000", "busybox", "sh", "-c", "sleep 1000"))
		defer e.docker("rm", "-f", id)
		pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
		dir := cgroupDir(t, pid, "cpu")
		if !strings.HasSuffix(dir, e.cgroupParent+"/"+id) {
			t.Errorf("cgroup %s is not the container's under the daemon's --cgroup-parent %s", dir, e.cgroupParent)
		}
		for file, want := range map[string]string{"cpu.cfs_period_us": "2000", "cpu.max": "1000 2000"} {
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				continue
			}
			if got := strings.TrimSpace(string(data)); got != want {
				t.Errorf("%s = %s, want %s", file, got, want)
			}
		}
		quota := "cpu.cfs_quota_us"
		if _, err := os.Stat(filepath.Join(dir, quota)); err != nil {
			quota = "cpu.max"
		}
		data, err := os.ReadFile(filepath.Join(dir, quota))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(data)), "1000") {
			t.Fatalf("%s: %q %v", quota, data, err)
		}
	})
	t.Run("deny unshare profile", func(t *testing.T) {
		profile := filepath.Join(e.dir, "deny_unshare.json")
		os.WriteFile(profile, []byte(`{ "defaultAction" : "SCMP_ACT_ALLOW",
  "syscalls": [
    { "name" : "unshare", "action" : "SCMP_ACT_KILL" }
  ]
}`), 0o644)
		out, errs, code := e.dockerQuiet("run", "--security-opt=seccomp="+profile, "busybox", "sh", "-c", "unshare -U echo hi")
		if code != 159 || out != "" {
			t.Fatalf("exit %d (want 159), stdout %q stderr %q", code, out, errs)
		}
		out = e.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "unshare -U echo hi")
		if out != "hi\n" {
			t.Fatalf("unconfined: %q", out)
		}
	})
	t.Run("default seccomp filter", func(t *testing.T) {
		out := e.docker("run", "--rm", "busybox", "grep", "Seccomp:", "/proc/self/status")
		if out != "Seccomp:\t2\n" {
			t.Fatalf("got %q", out)
		}
	})
}

// cgroupDir finds pid's cgroup directory of a v1 controller (or the v2
// one).
func cgroupDir(t *testing.T, pid, controller string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				mount := "/sys/fs/cgroup/" + parts[1]
				if _, err := os.Stat(mount); err != nil {
					mount = "/sys/fs/cgroup/" + controller
				}
				return filepath.Join(mount, parts[2])
			}
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "0::") {
			return filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(line, "0::"))
		}
	}
	t.Fatalf("no %s cgroup in %s", controller, data)
	return ""
}

var _ = exec.Command
var _ = strconv.Itoa
