package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/internal/testutil"
)

// The tests below load filters for real: the test binary re-executes
// itself as a child that installs a program on its (locked) thread, sets
// no_new_privs, and execs busybox, the way berth's container init does.

const childEnv = "BERTH_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(loadChild(spec))
	}
	// Keep the tests' compiled programs out of /run/berth.
	dir, err := os.MkdirTemp("", "berth-seccomp-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	CacheDir = filepath.Join(dir, "cache")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childSpec is what the parent asks the child to do.
type childSpec struct {
	Program  *Program
	Argv     []string
	Listener string // send the notify fd here
	// Probes are raw syscalls to make after loading (instead of exec);
	// their errnos are written to Results as JSON.
	Probes  []probe
	Results string
}

// probe is one syscall a prober child makes.
type probe struct {
	Nr   uint32
	Args [6]uint64
}

func loadChild(path string) int {
	runtime.LockOSThread()
	body, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 120
	}
	var cs childSpec
	if err := json.Unmarshal(body, &cs); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 120
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "child: no_new_privs:", err)
		return 120
	}
	fd, err := cs.Program.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 121
	}
	if cs.Listener != "" {
		if fd < 0 {
			fmt.Fprintln(os.Stderr, "child: no listener fd")
			return 122
		}
		st := specs.ContainerProcessState{Pid: os.Getpid(), Metadata: cs.Program.ListenerMetadata,
			State: specs.State{ID: "berth-test", Status: specs.StateCreating, Pid: os.Getpid()}}
		if err := SendToListener(cs.Listener, fd, st); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 123
		}
		unix.Close(fd)
	}
	if cs.Results != "" {
		// Make the probes from this (filtered, locked) thread.
		errnos := make([]int, len(cs.Probes))
		for i, p := range cs.Probes {
			_, _, e := unix.RawSyscall6(uintptr(p.Nr), uintptr(p.Args[0]), uintptr(p.Args[1]), uintptr(p.Args[2]), uintptr(p.Args[3]), uintptr(p.Args[4]), uintptr(p.Args[5]))
			errnos[i] = int(e)
		}
		body, _ := json.Marshal(errnos)
		if err := os.WriteFile(cs.Results, body, 0o600); err != nil {
			return 124
		}
		return 0
	}
	err = unix.Exec(cs.Argv[0], cs.Argv, os.Environ())
	fmt.Fprintln(os.Stderr, "child: exec:", err)
	return 127
}

// runChild runs argv under prog in a child and returns its output and
// wait status.
func runChild(t *testing.T, prog *Program, listener string, argv ...string) (string, syscall.WaitStatus) {
	t.Helper()
	return runSpec(t, childSpec{Program: prog, Argv: argv, Listener: listener})
}

// runProbes makes the probes in a child under prog and returns the errno
// of each (0 for success).
func runProbes(t *testing.T, prog *Program, probes []probe) []int {
	t.Helper()
	res := filepath.Join(t.TempDir(), "results.json")
	out, ws := runSpec(t, childSpec{Program: prog, Probes: probes, Results: res})
	if ws.ExitStatus() != 0 || ws.Signaled() {
		t.Fatalf("prober: %v %s", ws, out)
	}
	body, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	var errnos []int
	if err := json.Unmarshal(body, &errnos); err != nil {
		t.Fatal(err)
	}
	return errnos
}

func runSpec(t *testing.T, cs childSpec) (string, syscall.WaitStatus) {
	t.Helper()
	dir := t.TempDir()
	body, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "child.json")
	if err := os.WriteFile(spec, body, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run child: %v", err)
	}
	return string(out), cmd.ProcessState.Sys().(syscall.WaitStatus)
}

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static, installed by hack/deps.sh)")
	}
}

// The talk: a profile that kills unshare makes `unshare -U echo hi` die of
// SIGSYS (exit 159 from a shell).
func TestLoadDenyUnshareKills(t *testing.T) {
	requireBusybox(t)
	prog, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}})
	if err != nil {
		t.Fatal(err)
	}
	out, ws := runChild(t, prog, "", "/bin/busybox", "unshare", "-U", "echo", "hi")
	if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("unshare -U echo hi: status %v, output %q; want death by SIGSYS", ws, out)
	}
	if strings.Contains(out, "hi") {
		t.Fatalf("echo ran: %q", out)
	}
	// Through a shell, the exit status is the talk's 159.
	out, ws = runChild(t, prog, "", "/bin/busybox", "sh", "-c", "busybox unshare -U echo hi; echo status=$?")
	if !strings.Contains(out, "status=159") {
		t.Fatalf("sh -c 'unshare -U echo hi': %q (status %v), want status=159", out, ws)
	}
	// The same command without the filter prints hi.
	if testing.Verbose() {
		t.Logf("with filter: %q", out)
	}
}

// Docker's default profile for Docker's default capabilities: unshare and
// mount get EPERM, ordinary syscalls work, and the process is in filter
// mode.
func TestLoadDefaultProfileDenies(t *testing.T) {
	testutil.RequiresRoot(t)
	requireBusybox(t)
	cfg, err := DefaultProfile(caps.DockerDefault)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	script := fmt.Sprintf(`busybox unshare -U echo hi; echo unshare=$?; busybox mount -t tmpfs none %s; echo mount=$?; grep Seccomp: /proc/self/status; echo ok`, target)
	out, ws := runChild(t, prog, "", "/bin/busybox", "sh", "-c", script)
	if ws.ExitStatus() != 0 {
		t.Fatalf("status %v, output:\n%s", ws, out)
	}
	for _, want := range []string{"unshare=1", "mount=", "Seccomp:\t2", "ok", "Operation not permitted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mount=0") {
		t.Errorf("mount succeeded under the default profile:\n%s", out)
		unix.Unmount(target, unix.MNT_DETACH)
	}
}
