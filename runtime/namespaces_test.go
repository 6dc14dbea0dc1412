package runtime_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A container without a mount namespace (runc allows it; runtime-tools'
// linux_ns_itype asks for it) shares the runtime's: its mounts live under
// one private bind of the rootfs, the root is changed with chroot (a
// pivot_root would move everyone's root), and delete removes them all.
// The runtime runs in a private mount namespace of the test's own, so
// nothing reaches the host's.
func TestNoMountNamespaceMountsGoAwayOnDelete(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		var keep []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.MountNamespace {
				keep = append(keep, n)
			}
		}
		s.Linux.Namespaces = keep
	})
	id := newID("nomnt")
	rootfs := b + "/rootfs"
	script := `set -e
rt() { "$BIN" --root "$ROOT" "$@"; }
rt create --bundle "$BUNDLE" "$ID"
pid=$(rt state "$ID" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "same-mntns=$( [ "$(readlink /proc/$pid/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && echo yes || echo no)"
echo "root=$(readlink /proc/$pid/root)"
echo "mounts-before=$(grep -c " $ROOTFS" /proc/self/mountinfo)"
rt delete --force "$ID"
echo "mounts-after=$(grep -c " $ROOTFS" /proc/self/mountinfo || true)"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BIN=" + e.bin, "ROOT=" + e.root, "BUNDLE=" + b, "ID=" + id, "ROOTFS=" + rootfs}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"same-mntns=yes", "root=" + rootfs + "\n", "mounts-after=0"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
	// proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and the rootfs bind.
	if strings.Contains(got, "mounts-before=0\n") || strings.Contains(got, "mounts-before=1\n") {
		t.Errorf("the container's mounts were not made under its rootfs:\n%s", got)
	}
}

// holder starts `unshare FLAGS --fork sleep 100` and returns the PID of
// the sleep, inside the new namespaces; it is killed at the end.
func holder(t *testing.T, flags ...string) int {
	t.Helper()
	// busybox's unshare lacks --time, --kill-child, …
	if out, err := exec.Command("unshare", "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "util-linux") {
		t.Skip("unshare from util-linux is not installed")
	}
	cmd := exec.Command("unshare", append(flags, "--fork", "--kill-child", "sleep", "100")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var child int
	waitFor(t, "the namespace holder", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if err != nil {
			return false
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return false
		}
		child, _ = strconv.Atoi(f[0])
		// unshare forks before it execs sleep (coreutils' or busybox's:
		// the command name says, the executable may not).
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child))
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	return child
}

func sameNS(t *testing.T, a, b int, kind string) bool {
	t.Helper()
	x, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a, kind))
	y, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", b, kind))
	if err1 != nil || err2 != nil {
		t.Fatalf("readlink ns: %v %v", err1, err2)
	}
	return x == y
}

// Joining mount, PID and time namespaces by path takes a single-threaded
// process (berth-nsenter): the container's init must end up in exactly
// those namespaces, see the holder as PID 1, and leave no mount in the
// test's own namespace.
func TestJoinMountPIDTimeNamespacesByPath(t *testing.T) {
	e := newEnv(t)
	h := holder(t, "--mount", "--pid", "--time", "--boottime", "5000000")
	b := e.bundle([]string{"sh", "-c", "echo pid=$$; cat /proc/uptime; sleep 100"}, func(s *specs.Spec) {
		for i, n := range s.Linux.Namespaces {
			switch n.Type {
			case specs.MountNamespace, specs.PIDNamespace:
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", h, map[specs.LinuxNamespaceType]string{
					specs.MountNamespace: "mnt", specs.PIDNamespace: "pid"}[n.Type])
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace, Path: fmt.Sprintf("/proc/%d/ns/time", h)})
	})
	before, _ := os.ReadFile("/proc/self/mountinfo")
	id := newID("joinns")
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(e.bin, "--root", e.root, "run", "-d", "--bundle", b, id)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		o, _ := os.ReadFile(out)
		t.Fatalf("run -d: %v\n%s", err, o)
	}
	pid := int(e.state(id)["pid"].(float64))
	for _, kind := range []string{"mnt", "pid", "time"} {
		if !sameNS(t, pid, h, kind) {
			t.Errorf("the container is not in the holder's %s namespace", kind)
		}
	}
	if sameNS(t, pid, os.Getpid(), "mnt") {
		t.Errorf("the container shares the test's mount namespace")
	}
	waitFor(t, "the container's output", func() bool {
		o, _ := os.ReadFile(out)
		return strings.Count(string(o), "\n") >= 2
	})
	o, _ := os.ReadFile(out)
	var p int
	var up float64
	fmt.Sscanf(string(o), "pid=%d\n%f", &p, &up)
	if p < 2 {
		t.Errorf("in a joined PID namespace the holder is PID 1, the container's process is not; got %q", o)
	}
	if up < 5000000 {
		t.Errorf("uptime %.0f does not carry the joined time namespace's boottime offset:\n%s", up, o)
	}
	if r := e.rt("delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(after), b) && !strings.Contains(string(before), b) {
		t.Errorf("a mount of the container appeared in the test's namespace")
	}
}

// A joined user namespace owns the container: its maps are the holder's
// (no linux.uidMappings), and the new namespaces the container gets are
// owned by it.
func TestJoinUserNamespaceByPath(t *testing.T) {
	e := newEnv(t)
	h := holder(t, "--user")
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", h, f), []byte("0 100000 65536"), 0); err != nil {
			t.Fatal(err)
		}
	}
	r := e.run([]string{"sh", "-c", "id -u; cat /proc/self/uid_map"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append([]specs.LinuxNamespace{{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", h)}}, s.Linux.Namespaces...)
	})
	if r.code != 0 {
		t.Fatalf("run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if f := strings.Fields(r.stdout); len(f) != 4 || f[0] != "0" || f[1] != "0" || f[2] != "100000" || f[3] != "65536" {
		t.Fatalf("want root of the joined namespace mapped 0 100000 65536, got %q", r.stdout)
	}
}

// A new time namespace with offsets (written by berth-nsenter before any
// process enters it).
func TestTimeNamespaceOffsets(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"sh", "-c", "cat /proc/self/timens_offsets; cat /proc/uptime"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"monotonic": {Secs: 86400}, "boottime": {Secs: 7000000, Nanosecs: 5},
		}
	})
	if !regexp.MustCompile(`monotonic\s+86400\s+0\n`).MatchString(out) || !regexp.MustCompile(`boottime\s+7000000\s+5\n`).MatchString(out) {
		t.Errorf("offsets not applied:\n%s", out)
	}
	var up float64
	if _, err := fmt.Sscanf(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:], "%f", &up); err != nil || up < 7000000 {
		t.Errorf("uptime %.0f: boottime offset not seen (%v)\n%s", up, err, out)
	}
	// Offsets without a new time namespace are refused.
	r := e.run([]string{"true"}, func(s *specs.Spec) {
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1}}
	})
	if r.code == 0 || !strings.Contains(r.stderr, "time namespace") {
		t.Errorf("offsets without a time namespace: exit %d, %q", r.code, r.stderr)
	}
}

// The init places itself in its v1 cgroups (a thread moving itself skips
// the RCU grace period a process move waits for) and is cloned into its
// cgroup2 one: every hierarchy must show the container's cgroup, and the
// process must be one thread, as a process move would leave it.
func TestInitIsInItsCgroupInEveryHierarchy(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, nil)
	id := newID("cgplace")
	if r := e.rt("run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	pid := int(e.state(id)["pid"].(float64))
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(cg)), "\n")
	if len(lines) == 0 {
		t.Fatal("no cgroups")
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, "/"+id) {
			t.Errorf("hierarchy %q: the container is not in its cgroup", l)
		}
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if len(tasks) != 1 {
		t.Errorf("the container's process has %d threads, want 1", len(tasks))
	}
}
