// Package integration holds berth's end-to-end tests: real containers run
// by berth-runtime (and the engine), checked the way the talk checks them.
package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/seccomp"
)

// Seccomp through berth-runtime: busybox containers with berth's static
// binary inside, whose `berth seccomp try` makes one syscall and prints
// what the kernel answered, as the talk's experiments do with unshare.

type seccompEnv struct {
	t          *testing.T
	rt, berth  string
	root       string
	containers []string
}

func newSeccompEnv(t *testing.T) *seccompEnv {
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	e := &seccompEnv{t: t, rt: testutil.RuntimeBinary(t), berth: testutil.BerthBinary(t), root: t.TempDir()}
	t.Cleanup(func() {
		for _, id := range e.containers {
			exec.Command(e.rt, "--root", e.root, "delete", "--force", id).Run()
		}
	})
	return e
}

// bundle makes a busybox bundle with berth at /bin/berth running args.
func (e *seccompEnv) bundle(args []string, mutate func(*specs.Spec)) string {
	t := e.t
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	rootfs := testutil.BusyboxRootfs(t)
	if err := os.Rename(rootfs, filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	copyFile(t, e.berth, filepath.Join(dir, "rootfs", "bin", "berth"))
	spec := runtime.DefaultSpec(false, 0, 0)
	spec.Process.Terminal = false
	spec.Process.Args = args
	c := runtime.DockerDefaultCaps()
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
	if mutate != nil {
		mutate(spec)
	}
	b, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func (e *seccompEnv) id() string {
	id := fmt.Sprintf("berth-test-seccomp-%d-%04x", os.Getpid(), rand.Intn(1<<16))
	e.containers = append(e.containers, id)
	return id
}

// runtimeCmd runs berth-runtime to completion with files for stdio.
func (e *seccompEnv) runtimeCmd(args ...string) (string, int) {
	t := e.t
	cmd := exec.Command(e.rt, append([]string{"--root", e.root}, args...)...)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("berth-runtime %v: timed out", args)
	}
	b, _ := os.ReadFile(out.Name())
	return string(b), cmd.ProcessState.ExitCode()
}

func (e *seccompEnv) run(args []string, mutate func(*specs.Spec)) (string, int) {
	return e.runtimeCmd("run", "--bundle", e.bundle(args, mutate), e.id())
}

// withProfile applies Docker's default profile resolved for caps.
func withProfile(t *testing.T, capList []string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		p, err := seccomp.DefaultProfile(capList)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = p
	}
}

// Docker's default profile: the syscalls Docker denies fail with EPERM
// (clone3 with ENOSYS, so libc falls back to clone), the rest work.
func TestRuntimeSeccompDefaultProfile(t *testing.T) {
	e := newSeccompEnv(t)
	script := strings.Join([]string{
		"berth seccomp try keyctl 0x7fffffff",
		"berth seccomp try mount",
		"berth seccomp try unshare 0x10000000",
		"berth seccomp try setns -1 0",
		"berth seccomp try clone3",
		"berth seccomp try personality 0x1234",
		"berth seccomp try socket 40 1 0",
		"berth seccomp try add_key",
		"berth seccomp try ptrace -1",
		"berth seccomp try getpid",
		"berth seccomp try personality 0xffffffff",
		"berth seccomp try socket 1 1 0",
		"grep Seccomp: /proc/self/status",
	}, "; ")
	out, code := e.run([]string{"sh", "-c", script}, withProfile(t, runtime.DockerDefaultCaps()))
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want := []string{
		"keyctl(0x7fffffff) = -1 EPERM", "mount() = -1 EPERM", "unshare(0x10000000) = -1 EPERM",
		"setns(-1, 0) = -1 EPERM", "clone3() = -1 ENOSYS", "personality(0x1234) = -1 EPERM",
		"socket(40, 1, 0) = -1 EPERM", "add_key() = -1 EPERM", "Seccomp:\t2",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	// Allowed ones reach the kernel: ptrace (kernel >= 4.8) fails on its
	// own terms, the others succeed.
	for _, w := range []string{"ptrace(-1) = -1 E", "getpid() = ", "personality(0xffffffff) = ", "socket(1, 1, 0) = "} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
	for _, bad := range []string{"getpid() = -1", "personality(0xffffffff) = -1", "socket(1, 1, 0) = -1"} {
		if strings.Contains(out, bad) {
			t.Errorf("allowed syscall failed: %q in:\n%s", bad, out)
		}
	}
	if strings.Contains(out, "ptrace(-1) = -1 EPERM") {
		t.Errorf("ptrace denied by the default profile on a kernel >= 4.8:\n%s", out)
	}
}

// With CAP_SYS_ADMIN the profile lets mount, unshare and clone3 through
// (the kernel answers: bad arguments, not EPERM).
func TestRuntimeSeccompSysAdminProfile(t *testing.T) {
	e := newSeccompEnv(t)
	admin := append([]string{"CAP_SYS_ADMIN"}, runtime.DockerDefaultCaps()...)
	out, code := e.run([]string{"sh", "-c", "berth seccomp try mount; berth seccomp try clone3; berth seccomp try unshare 0xffffffff"}, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: admin, Effective: admin, Permitted: admin}
		withProfile(t, admin)(s)
	})
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, w := range []string{"mount() = -1 EFAULT", "clone3() = -1 EINVAL", "unshare(0xffffffff) = -1 EINVAL"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

// The talk: deny_unshare.json kills unshare (159 from the shell), and
// unconfined means no filter at all.
func TestRuntimeSeccompTalk(t *testing.T) {
	e := newSeccompEnv(t)
	deny := func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}}
	}
	out, code := e.run([]string{"sh", "-c", "unshare -U echo hi; echo status=$?"}, deny)
	if code != 0 || !strings.Contains(out, "status=159") || strings.Contains(out, "hi\n") {
		t.Fatalf("deny_unshare: exit %d %q", code, out)
	}
	out, code = e.run([]string{"grep", "Seccomp:", "/proc/self/status"}, nil)
	if code != 0 || !strings.Contains(out, "Seccomp:\t0") {
		t.Fatalf("unconfined: exit %d %q", code, out)
	}
}

// The filter berth-runtime installs is exactly what berth compiles: dumped
// from the container's process and diffed with the profile.
func TestRuntimeSeccompDumpMatchesProfile(t *testing.T) {
	e := newSeccompEnv(t)
	id := e.id()
	b := e.bundle([]string{"sleep", "60"}, withProfile(t, runtime.DockerDefaultCaps()))
	if out, code := e.runtimeCmd("run", "--detach", "--bundle", b, id); code != 0 {
		t.Fatalf("run --detach: %d %s", code, out)
	}
	out, code := e.runtimeCmd("state", id)
	if code != 0 {
		t.Fatalf("state: %d %s", code, out)
	}
	var st specs.State
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Pid <= 0 {
		t.Fatalf("state %q: %v", out, err)
	}
	pid := fmt.Sprint(st.Pid)
	// run --detach returns once the process is released; with
	// no_new_privs the filter is loaded just before the exec of sleep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s never became sleep", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	berth := func(args ...string) (string, int) {
		cmd := exec.Command(e.berth, args...)
		b, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(b), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(b), 0
	}
	prog, err := seccomp.DefaultProfile(runtime.DockerDefaultCaps())
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := seccomp.Compile(prog)
	if err != nil {
		t.Fatal(err)
	}
	out, code = berth("seccomp", "dump", pid, "-o", filepath.Join(t.TempDir(), "bpf.blob"))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Dumped %d BPF instructions", len(compiled.Instructions))) {
		t.Fatalf("dump: %d %q (compiled: %d instructions)", code, out, len(compiled.Instructions))
	}
	out, code = berth("seccomp", "explain", pid, "--profile", "default", "--caps", "default")
	if code != 0 || !strings.Contains(out, "No difference") {
		t.Fatalf("explain --profile default: %d\n%s", code, out)
	}
	out, code = berth("seccomp", "explain", pid, "keyctl")
	if code != 0 || !strings.Contains(out, "ERRNO(1)") {
		t.Fatalf("explain keyctl: %d\n%s", code, out)
	}
}
