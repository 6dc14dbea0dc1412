package explain

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/seccomp"
	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// talkProgram is libseccomp's filter for the talk's deny-unshare profile,
// as the talk dumps it.
var talkProgram = []bpf.Instruction{
	bpf.Stmt(0x20, 0x00000004), bpf.Jump(0x15, 0xc000003e, 0, 5), bpf.Stmt(0x20, 0x00000000),
	bpf.Jump(0x35, 0x40000000, 0, 1), bpf.Jump(0x15, 0xffffffff, 0, 2), bpf.Jump(0x15, 0x00000110, 1, 0),
	bpf.Stmt(0x06, 0x7fff0000), bpf.Stmt(0x06, 0x00000000),
}

var denyUnshare = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
	Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}}

func x86_64(t testing.TB) *syscalls.Arch {
	a, err := syscalls.Lookup("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAnnotateTalkProgram(t *testing.T) {
	notes := Annotate(talkProgram)
	want := []string{"architecture", "x86_64", "syscall number", "x32 syscall?", "== -1 (a tracer skipped the syscall)", "unshare", "", ""}
	for i, w := range want {
		if notes[i] != w {
			t.Errorf("instruction %d: note %q, want %q", i, notes[i], w)
		}
	}
}

func TestTraceAndTable(t *testing.T) {
	arch := x86_64(t)
	v, err := Trace(talkProgram, arch, 272, [6]uint64{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Action != bpf.RetKillThread || len(v.Steps) != 6 || v.Steps[5].PC != 7 {
		t.Fatalf("unshare: %s, steps %+v", bpf.ActionString(v.Action), v.Steps)
	}
	rows, err := Table(talkProgram, arch)
	if err != nil {
		t.Fatal(err)
	}
	st := Summarise(rows)
	if st.Denied != 1 || st.Allowed != len(rows)-1 || st.ConstAllow != st.UnconditionalAllow || st.AllowedMax != 6 {
		t.Fatalf("summary %+v", st)
	}
}

// berth's program for the talk's profile does exactly what libseccomp's
// (the talk's dump) does, for every syscall of x86_64, x86 and x32.
func TestDiffBerthVsTalk(t *testing.T) {
	arch := x86_64(t)
	p, err := seccomp.CompileFor(denyUnshare, arch)
	if err != nil {
		t.Fatal(err)
	}
	var arches []*syscalls.Arch
	for _, n := range []string{"x86_64", "x86", "x32"} {
		a, _ := syscalls.Lookup(n)
		arches = append(arches, a)
	}
	d, err := Diff(p.Instructions, talkProgram, arches, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 0 {
		t.Fatalf("differences: %v", d)
	}
	// And the default profile differs, starting with unshare's neighbours.
	def, err := seccomp.DefaultProfile(nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := seccomp.CompileFor(def, arch)
	if err != nil {
		t.Fatal(err)
	}
	d, err = Diff(q.Instructions, talkProgram, arches[:1], 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range d {
		if x.Name == "unshare" {
			found = x.A == bpf.RetErrno|1 && x.B == bpf.RetKillThread
		}
	}
	if len(d) < 40 || !found {
		t.Fatalf("%d differences, unshare ERRNO vs KILL found: %v", len(d), found)
	}
}

// Dump reads the filter a process really runs under.
func TestDumpRunningProcess(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox")
	}
	berth := testutil.BerthBinary(t)
	prof := t.TempDir() + "/deny_unshare.json"
	if err := os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"unshare","action":"SCMP_ACT_KILL"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(berth, "seccomp", "exec", prof, "/bin/busybox", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// Wait until the exec happened (the filter is installed before it).
	for i := 0; i < 200; i++ {
		if b, _ := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/comm"); strings.TrimSpace(string(b)) == "busybox" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	filters, err := Dump(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := seccomp.CompileFor(denyUnshare, x86_64(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(filters) != 1 || len(filters[0]) != len(p.Instructions) {
		t.Fatalf("dumped %d filters (%d instructions), want the %d compiled", len(filters), len(filters[0]), len(p.Instructions))
	}
	for i := range p.Instructions {
		if filters[0][i] != p.Instructions[i] {
			t.Fatalf("instruction %d: dumped %+v, compiled %+v", i, filters[0][i], p.Instructions[i])
		}
	}
	// The process still runs after being inspected.
	if b, err := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/stat"); err != nil || strings.Contains(string(b), ") Z ") {
		t.Fatalf("process gone after dump: %v %s", err, b)
	}
	plain := exec.Command("/bin/busybox", "sleep", "60")
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { plain.Process.Kill(); plain.Wait() }()
	if _, err := Dump(plain.Process.Pid); err == nil || !strings.Contains(err.Error(), "no seccomp filter") {
		t.Errorf("unfiltered process: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
