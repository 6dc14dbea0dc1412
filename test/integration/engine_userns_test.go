package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// addRemapUser creates a system user with the talk's subordinate ranges
// (name:100000:65536 in /etc/subuid and /etc/subgid) and removes both at
// the end of the test.
func addRemapUser(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("berth-t%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/bin/false", name).CombinedOutput(); err != nil {
		t.Skipf("useradd: %v %s", err, out)
	}
	line := name + ":100000:65536\n"
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteString(line)
		fh.Close()
	}
	t.Cleanup(func() {
		for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
			data, _ := os.ReadFile(f)
			os.WriteFile(f, []byte(strings.ReplaceAll(string(data), line, "")), 0o644)
		}
		exec.Command("userdel", name).Run()
	})
	return name
}

// TestEngineUsernsRemap is the talk's userns-remap set-up: daemon.json
// names a user whose /etc/subuid and /etc/subgid ranges map container
// root, and the container shows the mapping.
func TestEngineUsernsRemap(t *testing.T) {
	user := addRemapUser(t)
	e := newEngine(t, "--userns-remap", user)
	e.importBusybox()
	if out := e.docker("run", "--rm", "busybox", "sh", "-c", "cat /proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != "0 100000 65536" {
		t.Fatalf("uid_map %q", out)
	}
	if out := e.docker("run", "--rm", "busybox", "sh", "-c", "cat /proc/self/gid_map"); strings.Join(strings.Fields(out), " ") != "0 100000 65536" {
		t.Fatalf("gid_map %q", out)
	}
	// Still root inside, owning its files (idmapped or chowned rootfs).
	if out := e.docker("run", "--rm", "busybox", "sh", "-c", `echo "$$"; id; stat -c %u:%g /bin/busybox /etc/passwd; touch /tmp/x && echo ok`); out != "1\nuid=0(root) gid=0(root) groups=10(wheel)\n0:0\n0:0\nok\n" {
		t.Fatalf("inside: %q", out)
	}
	// From the host, the container's process runs as uid 100000.
	id := strings.TrimSpace(e.docker("run", "-d", "busybox", "sleep", "1000"))
	pid := strings.TrimSpace(e.docker("inspect", "-f", "{{.State.Pid}}", id))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil || !strings.Contains(string(status), "Uid:\t100000\t100000\t100000\t100000") {
		t.Fatalf("host view of the container's uid: %s %v", status, err)
	}
	// A user namespace of its own, owning the others.
	self, _ := os.Readlink("/proc/self/ns/user")
	ctr, _ := os.Readlink("/proc/" + pid + "/ns/user")
	if self == ctr || ctr == "" {
		t.Fatalf("container shares the host user namespace (%s)", ctr)
	}
	out := e.docker("exec", id, "id")
	if out != "uid=0(root) gid=0(root) groups=10(wheel)\n" {
		t.Fatalf("exec id: %q", out)
	}
	// --userns=host opts out.
	if out := e.docker("run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(out), " ") != "0 0 4294967295" {
		t.Fatalf("--userns=host uid_map %q", out)
	}
	// Privileged needs --userns=host, as with dockerd.
	if _, errs, code := e.dockerQuiet("run", "--rm", "--privileged", "busybox", "true"); code != 125 || !strings.Contains(errs, "userns=host") {
		t.Fatalf("privileged with remap: exit %d %s", code, errs)
	}
}
