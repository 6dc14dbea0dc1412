package inspect

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/proc"
)

const dockerBounding = "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap"

// startFiltered runs sleep under a seccomp profile with `berth seccomp
// exec`, with Docker's bounding set (setpriv), and returns its PID once
// sleep runs; it is killed by PID at the end.
func startFiltered(t *testing.T, profile string) int {
	t.Helper()
	// busybox has a setpriv too (in the VM guest), without --bounding-set.
	if out, err := exec.Command("setpriv", "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "util-linux") {
		t.Skip("setpriv (util-linux) not installed")
	}
	cmd := exec.Command("setpriv", "--bounding-set="+dockerBounding, testutil.BerthBinary(t), "seccomp", "exec", profile, "sleep", "300")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 500; i++ {
		if st, err := proc.ReadStatus(cmd.Process.Pid); err == nil && st.Name == "sleep" {
			return cmd.Process.Pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("berth seccomp exec %s sleep: did not start", profile)
	return 0
}

// dumpedLen is what `berth seccomp dump` (the seccomp stream's
// instrument) says the filter's length is.
func dumpedLen(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command(testutil.BerthBinary(t), "seccomp", "dump", strconv.Itoa(pid), "-o", filepath.Join(t.TempDir(), "bpf.blob")).CombinedOutput()
	m := regexp.MustCompile(`Dumped (\d+) BPF instructions`).FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("berth seccomp dump %d: %v\n%s", pid, err, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestIsolationSeccompDockerDefault(t *testing.T) {
	testutil.RequiresRoot(t)
	pid := startFiltered(t, "default")
	r, err := Isolation(pid)
	if err != nil {
		t.Fatal(err)
	}
	f := findings(r)
	st, _ := proc.ReadStatus(pid)
	if x := f["seccomp mode"]; x.Value != "filter" || !x.IsDefault || st.Seccomp != proc.SeccompFilter {
		t.Errorf("mode: %+v (kernel: %d)", x, st.Seccomp)
	}
	n := dumpedLen(t, pid)
	if len(r.Seccomp.Filters) != 1 || r.Seccomp.Filters[0].Instructions != n || st.SeccompFilters != 1 {
		t.Fatalf("filters %+v; berth seccomp dump says %d instructions, the kernel %d filters", r.Seccomp.Filters, n, st.SeccompFilters)
	}
	if x := f["seccomp filters"]; !x.IsDefault || !strings.HasPrefix(x.Value, "1 filter: "+strconv.Itoa(n)+" instructions (x86_64") {
		t.Errorf("filters: %+v", x)
	}
	if x := f["seccomp profile"]; !x.IsDefault || !r.Seccomp.DockerDefault {
		t.Errorf("profile: %+v, differences %v", x, r.Seccomp.Differences)
	}
	if x := f["no_new_privs no_new_privs"]; x.Value != "true" || x.IsDefault {
		t.Errorf("no_new_privs (berth seccomp exec sets it): %+v", x)
	}
}

// TestIsolationSeccompTalkProfile: the talk's deny_unshare.json differs
// from Docker's default, and the report says where.
func TestIsolationSeccompTalkProfile(t *testing.T) {
	testutil.RequiresRoot(t)
	p := filepath.Join(t.TempDir(), "deny_unshare.json")
	os.WriteFile(p, []byte(`{ "defaultAction" : "SCMP_ACT_ALLOW",
  "syscalls": [
    { "name" : "unshare", "action" : "SCMP_ACT_KILL" }
  ]
}`), 0o644)
	pid := startFiltered(t, p)
	r, err := Isolation(pid)
	if err != nil {
		t.Fatal(err)
	}
	f := findings(r)
	if len(r.Seccomp.Filters) != 1 || r.Seccomp.Filters[0].Instructions != dumpedLen(t, pid) {
		t.Errorf("filters %+v", r.Seccomp.Filters)
	}
	x := f["seccomp profile"]
	if x.IsDefault || r.Seccomp.DockerDefault || len(r.Seccomp.Differences) == 0 || !strings.HasPrefix(x.Value, "differs: ") {
		t.Errorf("profile: %+v", x)
	}
	if x := f["seccomp filters"]; !x.IsDefault {
		t.Errorf("one filter is Docker's count: %+v", x)
	}
}

func TestSeccompUnfiltered(t *testing.T) {
	st, err := proc.ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Seccomp != proc.SeccompDisabled {
		t.Skip("the test itself runs under seccomp")
	}
	s := Seccomp(os.Getpid(), st)
	if s.Mode != "disabled" || len(s.Filters) != 0 || s.DockerDefault {
		t.Errorf("%+v", s)
	}
}
