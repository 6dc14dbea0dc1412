package runtime_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CVE-2019-5736: while the init stage runs the berth binary, a process
// in the container could open /proc/PID/exe and overwrite the host's
// runtime. The init must run from a copy that cannot be written.
func TestRuntimeBinaryCannotBeOverwritten(t *testing.T) {
	e := newEnv(t)
	// A private copy of the binary, so a regression damages only it.
	bin := filepath.Join(t.TempDir(), "berth")
	orig, err := os.ReadFile(testutil.BerthBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("berth", filepath.Join(filepath.Dir(bin), "berth-runtime")); err != nil {
		t.Fatal(err)
	}
	e.bin = filepath.Join(filepath.Dir(bin), "berth-runtime")
	b := e.bundle([]string{"sleep", "1000"}, nil)
	id := newID("exe")
	if r := e.rt("create", "--bundle", b, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	pid := int(e.state(id)["pid"].(float64))
	// O_TRUNC asks for write access to the mount before anything else:
	// EROFS proves the protection, where a plain binary would give
	// ETXTBSY (or be truncated).
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		f.Close()
		t.Fatal("the init's executable was opened for writing")
	}
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("open /proc/%d/exe for writing: %v, want EROFS", pid, err)
	}
	after, err := os.ReadFile(bin)
	if err != nil || len(after) != len(orig) {
		t.Fatalf("the runtime binary changed: %d bytes, was %d (%v)", len(after), len(orig), err)
	}
}

// CVE-2024-21626: no host descriptor reaches the container, and a cwd
// that goes through a leaked descriptor is refused.
func TestNoHostFDsOrCwdLeak(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"ls", "/proc/self/fd"}, nil)
	fds := strings.Fields(out)
	// ls's own directory descriptor is the one beyond stdio.
	if len(fds) > 4 {
		t.Fatalf("descriptors in the container: %v", fds)
	}
	for fd := 3; fd <= 8; fd++ {
		// The init's descriptors at that point may include the
		// container's own root ("/", harmless); a host directory would
		// show as "(unreachable)/…" and must be refused.
		r := e.run([]string{"pwd"}, func(s *specs.Spec) { s.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(fd) })
		if r.code == 0 && !strings.HasPrefix(r.stdout, "/proc/") && r.stdout != "/\n" {
			t.Fatalf("cwd /proc/self/fd/%d gave a working directory %q", fd, r.stdout)
		}
	}
}

// CVE-2021-30465 and friends: a mount destination that is a symlink
// pointing out of the rootfs lands inside the rootfs.
func TestMountTargetSymlinkStaysInRoot(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	var bundleDir string
	b := e.bundle([]string{"sh", "-c", "echo inside > /escape/file; cat /escape/file"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/escape", Type: "tmpfs", Source: "tmpfs"})
	})
	bundleDir = b
	for _, target := range []string{outside, "../../../../../../../../" + outside} {
		link := filepath.Join(bundleDir, "rootfs", "escape")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		r := e.rt("run", "--bundle", b, newID("sym"))
		if r.code != 0 || strings.TrimSpace(r.stdout) != "inside" {
			t.Fatalf("run: %d %q %q", r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(outside, "file")); err == nil {
			t.Fatalf("the container wrote into the host directory %s", outside)
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), outside) {
			t.Fatalf("a mount landed on the host path %s", outside)
		}
	}
}

func TestBadConfigsLeaveNothingBehind(t *testing.T) {
	e := newEnv(t)
	cases := map[string]struct {
		mutate func(*specs.Spec)
		want   string
	}{
		"unknown namespace": {func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "unknown namespace type"},
		"overlapping mappings": {func(s *specs.Spec) {
			userns(s)
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 10, HostID: 500000, Size: 5})
		}, "overlap"},
		"mappings without userns": {func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "no user namespace"},
		"relative cwd":         {func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "absolute"},
		"missing rootfs":       {func(s *specs.Spec) { s.Root.Path = "/nonexistent-rootfs" }, "rootfs"},
		"hostname without uts": {func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:2] }, "UTS namespace"},
		"soft above hard": {func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5}}
		}, "soft limit"},
		"unknown rlimit":       {func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} }, "unknown rlimit"},
		"huge oom score":       {func(s *specs.Spec) { v := 100000; s.Process.OOMScoreAdj = &v }, "oomScoreAdj"},
		"unknown capability":   {func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_FLY"} }, "unknown capability"},
		"host sysctl":          {func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} }, "would change the host"},
		"relative hook":        {func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "hook"}}} }, "not absolute"},
		"bad version":          {func(s *specs.Spec) { s.Version = "0.1" }, "ociVersion"},
		"empty args":           {func(s *specs.Spec) { s.Process.Args = nil }, "args"},
		"bad mount option nul": {func(s *specs.Spec) { s.Mounts[0].Destination = "/pr\x00oc" }, "NUL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := e.bundle([]string{"true"}, c.mutate)
			id := newID("bad")
			r := e.rt("create", "--bundle", b, id)
			if r.code == 0 {
				t.Fatal("create succeeded")
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("error %q does not mention %q", r.stderr, c.want)
			}
			if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
				t.Fatalf("state directory left behind")
			}
		})
	}
	for name, body := range map[string]string{"malformed json": "{", "wrong types": `{"ociVersion": 5}`, "empty": ""} {
		t.Run(name, func(t *testing.T) {
			b := e.bundle([]string{"true"}, nil)
			if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			id := newID("bad")
			if r := e.rt("create", "--bundle", b, id); r.code == 0 || !strings.Contains(r.stderr, "config.json") {
				t.Fatalf("create: %d %q", r.code, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
				t.Fatalf("state directory left behind")
			}
		})
	}
	if r := e.rt("create", "--bundle", t.TempDir(), newID("nocfg")); r.code == 0 || !strings.Contains(r.stderr, "no config.json") {
		t.Fatalf("bundle without config: %d %q", r.code, r.stderr)
	}
	if r := e.rt("create", "--bundle", t.TempDir(), "../evil"); r.code == 0 || !strings.Contains(r.stderr, "invalid container id") {
		t.Fatalf("bad id: %d %q", r.code, r.stderr)
	}
	// Every bundle and state directory of this test has the test's name
	// in its path; none may be left holding a mount.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, t.Name()) || strings.Contains(l, e.root) {
			t.Errorf("mount left behind: %s", l)
		}
	}
}
