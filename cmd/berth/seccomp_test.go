package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// The talk's seccomp experiments, with berth's instruments and no
// container: compile the deny-unshare profile, run `unshare -U echo hi`
// under it (exit 159), dump the filter of a running process, disassemble
// and explain it.

const denyUnshareJSON = `{ "defaultAction" : "SCMP_ACT_ALLOW",
  "syscalls": [
    { "name" : "unshare", "action" : "SCMP_ACT_KILL" }
  ]
}
`

func berthSeccomp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testutil.BerthBinary(t), append([]string{"seccomp"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
	}
	return string(out), 0
}

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
}

func TestSeccompTalkExperiments(t *testing.T) {
	testutil.RequiresRoot(t)
	needBusybox(t)
	dir := t.TempDir()
	prof := filepath.Join(dir, "deny_unshare.json")
	if err := os.WriteFile(prof, []byte(denyUnshareJSON), 0o644); err != nil {
		t.Fatal(err)
	}

	// By default unshare works; under the profile the process dies of SIGSYS.
	out, code := berthSeccomp(t, "exec", "default", "/bin/busybox", "sh", "-c", "busybox unshare -U echo hi; echo status=$?")
	if code != 0 || !strings.Contains(out, "status=1") || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("default profile: %d %q (Docker's default denies unshare without CAP_SYS_ADMIN)", code, out)
	}
	out, _ = berthSeccomp(t, "exec", prof, "/bin/busybox", "sh", "-c", "busybox unshare -U echo hi; echo status=$?")
	if !strings.Contains(out, "status=159") || strings.Contains(out, "hi\n") {
		t.Fatalf("deny_unshare: %q, want status=159", out)
	}
	out, code = berthSeccomp(t, "exec", prof, "/bin/busybox", "unshare", "-U", "echo", "hi")
	if code != 128+31 && code != -1 {
		t.Fatalf("unshare under deny_unshare: exit %d %q", code, out)
	}

	// compile writes raw BPF; disasm lists it.
	bin := filepath.Join(dir, "bpf.blob")
	out, code = berthSeccomp(t, "compile", prof, "-o", bin)
	if code != 0 || !strings.Contains(out, "Compiled") {
		t.Fatalf("compile: %d %q", code, out)
	}
	raw, err := os.ReadFile(bin)
	if err != nil || len(raw)%8 != 0 || len(raw) == 0 {
		t.Fatalf("compiled file: %d bytes, %v", len(raw), err)
	}
	out, code = berthSeccomp(t, "disasm", bin)
	if code != 0 || !strings.Contains(out, " line  OP   JT   JF   K") || !strings.Contains(out, "ret KILL") || !strings.Contains(out, "unshare") {
		t.Fatalf("disasm:\n%s", out)
	}

	// A running process: dump, disasm, explain, diff.
	sleeper := exec.Command(testutil.BerthBinary(t), "seccomp", "exec", prof, "/bin/busybox", "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	for i := 0; i < 200; i++ {
		if b, _ := os.ReadFile("/proc/" + pid + "/comm"); strings.TrimSpace(string(b)) == "busybox" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	dumped := filepath.Join(dir, "dumped.blob")
	out, code = berthSeccomp(t, "dump", pid, "-o", dumped)
	n := len(raw) / 8
	if code != 0 || !strings.Contains(out, "Dumped "+strconv.Itoa(n)+" BPF instructions") {
		t.Fatalf("dump: %d %q (compiled %d)", code, out, n)
	}
	if d, _ := os.ReadFile(dumped); string(d) != string(raw) {
		t.Fatal("the dumped filter differs from the compiled one")
	}
	out, code = berthSeccomp(t, "explain", pid, "unshare")
	if code != 0 || !strings.Contains(out, "unshare (272) on x86_64, args all 0: KILL after") {
		t.Fatalf("explain unshare: %d\n%s", code, out)
	}
	out, code = berthSeccomp(t, "explain", pid, "write", "1")
	if code != 0 || !strings.Contains(out, ": ALLOW after") {
		t.Fatalf("explain write: %d\n%s", code, out)
	}
	out, code = berthSeccomp(t, "explain", pid, "--profile", prof)
	if code != 0 || !strings.Contains(out, "No difference") {
		t.Fatalf("explain --profile: %d\n%s", code, out)
	}
	out, code = berthSeccomp(t, "explain", pid, "--profile", "default", "--caps", "default")
	if code != 1 || !strings.Contains(out, "x86_64 unshare: KILL vs ERRNO(1)") {
		t.Fatalf("explain --profile default: %d\n%s", code, out)
	}
	out, code = berthSeccomp(t, "explain", pid)
	if code != 0 || !strings.Contains(out, "unshare") || !strings.Contains(out, "kernel's action cache") {
		t.Fatalf("explain table: %d\n%s", code, out)
	}
}

func TestSeccompCLIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["unshar"],"action":"SCMP_ACT_KILL"}]}`), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"compile", bad, "-o", filepath.Join(dir, "x")}, `syscalls[0].names[0]: unknown syscall "unshar"`},
		{[]string{"compile", "default", "--arch", "mips", "-o", filepath.Join(dir, "x")}, "unknown architecture"},
		{[]string{"compile", "default", "--caps", "CAP_NOPE", "-o", filepath.Join(dir, "x")}, "unknown capability"},
		{[]string{"disasm", filepath.Join(dir, "missing")}, "no such"},
		{[]string{"explain", bad}, "not a valid seccomp filter"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"try", "kill", "-1", "9"}, "refusing to make kill"},
		{[]string{"try", "clone3", "0x1000"}, "refusing clone3"},
		{[]string{"try", "nosuchcall"}, "unknown syscall"},
	}
	for _, c := range cases {
		out, code := berthSeccomp(t, c.args...)
		if code != 125 || !strings.Contains(out, c.want) {
			t.Errorf("berth seccomp %v: exit %d, %q; want 125 and %q", c.args, code, out, c.want)
		}
	}
	if out, code := berthSeccomp(t, "compile", "default", "--caps", "sys_admin", "--oci"); code != 0 || !strings.Contains(out, `"defaultAction": "SCMP_ACT_ERRNO"`) || !strings.Contains(out, `"mount"`) {
		t.Errorf("compile --oci: %d %.300s", code, out)
	}
	if out, code := berthSeccomp(t, "try", "setns", "-1", "0"); code != 0 || !strings.Contains(out, "setns(-1, 0) = -1 EBADF") {
		t.Errorf("try setns: %d %q", code, out)
	}
	// compile for other architectures: big-endian s390x too.
	for _, arch := range []string{"x86_64", "aarch64", "arm", "riscv64", "s390x", "ppc64le", "x86"} {
		out, code := berthSeccomp(t, "compile", "default", "--arch", arch, "-o", filepath.Join(dir, arch+".bpf"))
		if code != 0 {
			t.Errorf("compile --arch %s: %d %s", arch, code, out)
			continue
		}
		if out, code := berthSeccomp(t, "disasm", "--arch", arch, filepath.Join(dir, arch+".bpf")); code != 0 || !strings.Contains(out, "# "+arch) {
			t.Errorf("disasm --arch %s: %d\n%.400s", arch, code, out)
		}
	}
}
