package runtime_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The talk's deny-unshare profile: unshare is killed, so the shell that
// ran it reports 159 (128 + SIGSYS).
func TestSeccompDenyUnshareKills(t *testing.T) {
	e := newEnv(t)
	deny := func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}},
		}
	}
	r := e.run([]string{"sh", "-c", "unshare -U echo hi; echo status=$?"}, deny)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "status=159" {
		t.Fatalf("deny-unshare: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = e.run([]string{"unshare", "-U", "echo", "hi"}, deny)
	if r.code != 159 || r.stdout != "" {
		t.Fatalf("unshare as the container's process: exit %d %q, want 159 and no output", r.code, r.stdout)
	}
	out := e.mustRun([]string{"grep", "Seccomp:", "/proc/self/status"}, deny)
	if !strings.Contains(out, "2") {
		t.Fatalf("no filter mode in status: %q", out)
	}
}

func TestSeccompDockerDefaultDeniesWithEPERM(t *testing.T) {
	e := newEnv(t)
	withDefault := func(s *specs.Spec) {
		dockerCaps(s)
		p, err := seccomp.DefaultProfile(s.Process.Capabilities.Bounding)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = p
		s.Process.NoNewPrivileges = false
	}
	out := e.mustRun([]string{"sh", "-c", "unshare -U true; echo unshare=$?; grep Seccomp: /proc/self/status"}, withDefault)
	if !strings.Contains(out, "unshare=1") || !strings.Contains(out, "Seccomp:\t2") {
		t.Fatalf("default profile:\n%s", out)
	}
	out = e.mustRun([]string{"sh", "-c", "unshare -U true; echo unshare=$?; grep Seccomp: /proc/self/status"}, dockerCaps)
	if !strings.Contains(out, "unshare=0") || !strings.Contains(out, "Seccomp:\t0") {
		t.Fatalf("unconfined:\n%s", out)
	}
}

// A profile may deny what the runtime itself would call after loading
// it: here getcwd, with no_new_privs off so the filter is loaded before
// the user is taken (runtime-tools' linux_seccomp test). The container
// still starts, in its cwd, and the process sees the denial.
func TestSeccompDenyGetcwdStillStarts(t *testing.T) {
	e := newEnv(t)
	denyGetcwd := func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Process.Cwd = "/tmp"
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
		}
	}
	out := e.mustRun([]string{"sh", "-c", "ls -d ../tmp/. >/dev/null && echo in-tmp; /bin/pwd -P || echo pwd-failed"}, denyGetcwd)
	if !strings.Contains(out, "in-tmp") || !strings.Contains(out, "pwd-failed") {
		t.Fatalf("getcwd denied: %q", out)
	}
}
