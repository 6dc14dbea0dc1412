package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Behaviours of berth-runtime that were implemented but not asserted:
// what exec joins, what a failed create leaves, runc's CLI extras
// (kill --all, update -r, the json log, spec --rootless, --version),
// process.scheduler / ioPriority / domainname, and a bind mount's
// propagation option.

// withoutNamespace drops a namespace type from the spec.
func withoutNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	out := s.Linux.Namespaces[:0]
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			out = append(out, n)
		}
	}
	s.Linux.Namespaces = out
}

// cgroupDirs lists where a container with the absolute cgroupsPath p
// would have a directory: one per hierarchy mounted under /sys/fs/cgroup
// (v1 controllers, name=systemd, and the unified cgroup2).
func cgroupDirs(t *testing.T, p string) []string {
	t.Helper()
	if pureV2() {
		return []string{filepath.Join("/sys/fs/cgroup", p)}
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, en := range entries {
		if en.IsDir() {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", en.Name(), p))
		}
	}
	return dirs
}

// pureV2 reports whether /sys/fs/cgroup is cgroup2 itself (the v2 guest
// of test/vm), not a tmpfs of v1 hierarchies.
func pureV2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// pidsDir is the directory of cgroup p that holds pids.max: the pids
// hierarchy's on v1 and hybrid hosts, the one tree's on v2.
func pidsDir(p string) string {
	if pureV2() {
		return filepath.Join("/sys/fs/cgroup", p)
	}
	return filepath.Join("/sys/fs/cgroup/pids", p)
}

// cgroupProcs reads the PIDs in a cgroup.procs file.
func cgroupProcs(file string) []int {
	b, _ := os.ReadFile(file)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// startDetached runs a container with run -d and waits until its init
// is the user's process (comm).
func (e *env) startDetached(b, id, comm string) int {
	e.t.Helper()
	if r := e.rt("run", "-d", "--bundle", b, id); r.code != 0 {
		e.t.Fatalf("run -d: %d %s", r.code, r.stderr)
	}
	pid := int(e.state(id)["pid"].(float64))
	waitFor(e.t, "the init to exec "+comm, func() bool {
		c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return strings.TrimSpace(string(c)) == comm
	})
	return pid
}

// An exec'd process is in the container's cgroups (every hierarchy, the
// same lines as the init's, read from the host) and under its seccomp
// filter. No cgroup namespace, so both views are the host's paths.
func TestProofExecJoinsCgroupAndSeccomp(t *testing.T) {
	e := newEnv(t)
	cgPath := "/" + newID("berth-test-exec")
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		withoutNamespace(s, specs.CgroupNamespace)
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActErrno}},
		}
	})
	id := newID("proofexec")
	pid := e.startDetached(b, id, "sleep")
	r := e.rt("exec", id, "sh", "-c", "cat /proc/self/cgroup; echo ---; grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null; echo unshare=$?")
	if r.code != 0 {
		t.Fatalf("exec: %d %q %q", r.code, r.stdout, r.stderr)
	}
	cgLines, rest, ok := strings.Cut(r.stdout, "---\n")
	if !ok {
		t.Fatalf("exec output: %q", r.stdout)
	}
	initCg, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if cgLines != string(initCg) {
		t.Errorf("exec'd process cgroups:\n%s\nthe init's:\n%s", cgLines, initCg)
	}
	if (!pureV2() && !strings.Contains(string(initCg), ":pids:"+cgPath+"\n")) || !strings.Contains(string(initCg), "0::"+cgPath+"\n") {
		t.Errorf("the init is not in %s (pids and unified):\n%s", cgPath, initCg)
	}
	if !strings.Contains(rest, "Seccomp:\t2\n") || !strings.Contains(rest, "unshare=1\n") {
		t.Errorf("exec'd process is not under the container's filter:\n%s", rest)
	}
	if r := e.rt("delete", "-f", id); r.code != 0 {
		t.Fatalf("delete -f: %s", r.stderr)
	}
	for _, d := range cgroupDirs(t, cgPath) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left behind", d)
		}
	}
}

// A failing createRuntime hook fails create and undoes it all: no state
// directory, no mount, no cgroup, though the cgroup existed when the hook
// ran (the hook says so). With and without a mount namespace (without,
// the runtime binds the rootfs in its own namespace).
func TestProofFailingCreateRuntimeHookLeavesNothing(t *testing.T) {
	for _, mntns := range []bool{true, false} {
		name := "mntns"
		if !mntns {
			name = "no-mntns"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			cgPath := "/" + newID("berth-test-hook")
			marker := filepath.Join(t.TempDir(), "cgroup-existed")
			b := e.bundle([]string{"true"}, func(s *specs.Spec) {
				s.Linux.CgroupsPath = cgPath
				if !mntns {
					withoutNamespace(s, specs.MountNamespace)
				}
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
					"test -d " + pidsDir(cgPath) + " && touch " + marker + "; exit 1"}}}}
			})
			id := newID("proofhook")
			r := e.rt("create", "--bundle", b, id)
			if r.code == 0 {
				t.Fatalf("create with a failing createRuntime hook succeeded")
			}
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("the hook did not run, or ran before the cgroup existed: %s", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
				t.Errorf("state directory left behind (%v)", err)
			}
			for _, d := range cgroupDirs(t, cgPath) {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("cgroup %s left behind", d)
				}
			}
			mi, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(mi), "\n") {
				if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], b) {
					t.Errorf("mount left behind: %s", l)
				}
			}
		})
	}
}

// kill --all signals every process in the container's cgroup. The
// container has no PID namespace, so killing its init alone would leave
// the background child running.
func TestProofKillAll(t *testing.T) {
	e := newEnv(t)
	cgPath := "/" + newID("berth-test-killall")
	b := e.bundle([]string{"sh", "-c", "sleep 1000 & exec sleep 1001"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		withoutNamespace(s, specs.PIDNamespace)
	})
	procs := filepath.Join(pidsDir(cgPath), "cgroup.procs")
	t.Cleanup(func() {
		// If kill --all failed, end the processes this test started.
		for _, p := range cgroupProcs(procs) {
			unix.Kill(p, unix.SIGKILL)
		}
	})
	id := newID("proofkill")
	e.startDetached(b, id, "sleep")
	waitFor(t, "two sleeps in the cgroup", func() bool { return len(cgroupProcs(procs)) == 2 })
	if r := e.rt("kill", "--all", id, "KILL"); r.code != 0 {
		t.Fatalf("kill --all: %s", r.stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(cgroupProcs(procs)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := cgroupProcs(procs); len(left) > 0 {
		t.Fatalf("processes left in the container's cgroup after kill --all: %v", left)
	}
	waitFor(t, "the container to stop", func() bool { return e.state(id)["status"] == "stopped" })
	if r := e.rt("delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
}

// update -r takes linux.resources as JSON from a file, and from stdin
// with "-" (as containerd's shim sends it).
func TestProofUpdateResourcesFileAndStdin(t *testing.T) {
	e := newEnv(t)
	cgPath := "/" + newID("berth-test-update")
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		lim := int64(50)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &lim}
	})
	id := newID("proofupd")
	e.startDetached(b, id, "sleep")
	pidsMax := func() string {
		v, err := os.ReadFile(filepath.Join(pidsDir(cgPath), "pids.max"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	if v := pidsMax(); v != "50" {
		t.Fatalf("pids.max %s before update, want 50", v)
	}
	f := filepath.Join(t.TempDir(), "resources.json")
	if err := os.WriteFile(f, []byte(`{"pids":{"limit":33}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.rt("update", "-r", f, id); r.code != 0 {
		t.Fatalf("update -r FILE: %s", r.stderr)
	}
	if v := pidsMax(); v != "33" {
		t.Errorf("pids.max %s after update -r FILE, want 33", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "--root", e.root, "update", "-r", "-", id)
	cmd.Stdin = strings.NewReader(`{"pids":{"limit":44}}`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update -r -: %v %s", err, out)
	}
	if v := pidsMax(); v != "44" {
		t.Errorf("pids.max %s after update -r - (stdin), want 44", v)
	}
	if r := e.rt("delete", "-f", id); r.code != 0 {
		t.Fatalf("delete -f: %s", r.stderr)
	}
}

// --log FILE --log-format json: an error goes to the file as one JSON
// object with level and msg (containerd reads the last one); the text
// format is logfmt.
func TestProofLogFile(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonLog, textLog := filepath.Join(dir, "log.json"), filepath.Join(dir, "log.txt")
	if r := e.rt("--log", jsonLog, "--log-format", "json", "state", "no-such-id"); r.code == 0 {
		t.Fatal("state of a missing container succeeded")
	}
	b, err := os.ReadFile(jsonLog)
	if err != nil {
		t.Fatalf("no log file: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var entry map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &entry); err != nil {
		t.Fatalf("log line is not a JSON object: %v\n%s", err, b)
	}
	if entry["level"] != "error" || !strings.Contains(entry["msg"], "no-such-id") || entry["time"] == "" {
		t.Errorf("log entry %v, want level error, a msg naming the container, a time", entry)
	}
	if r := e.rt("--log", textLog, "state", "no-such-id"); r.code == 0 {
		t.Fatal("state of a missing container succeeded")
	}
	b, _ = os.ReadFile(textLog)
	if !strings.HasPrefix(string(b), "time=") || !strings.Contains(string(b), " level=error msg=") || !strings.Contains(string(b), "no-such-id") {
		t.Errorf("text log: %q", b)
	}
}

// spec --rootless writes a config with a user namespace mapping the
// caller's uid and gid to root; plain spec has neither; a second spec
// into the same directory refuses to overwrite.
func TestProofSpecRootless(t *testing.T) {
	e := newEnv(t)
	load := func(rootless bool) *specs.Spec {
		dir := t.TempDir()
		args := []string{"spec", "--bundle", dir}
		if rootless {
			args = append(args, "--rootless")
		}
		if r := e.rt(args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
		if r := e.rt(args...); r.code == 0 || !strings.Contains(r.stderr, "exists") {
			t.Errorf("second %v: exit %d %q, want a refusal to overwrite", args, r.code, r.stderr)
		}
		return loadBundleSpec(t, dir)
	}
	hasUserns := func(s *specs.Spec) bool {
		for _, n := range s.Linux.Namespaces {
			if n.Type == specs.UserNamespace {
				return true
			}
		}
		return false
	}
	s := load(true)
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if !hasUserns(s) {
		t.Errorf("spec --rootless has no user namespace: %+v", s.Linux.Namespaces)
	}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: uid, Size: 1}) ||
		len(s.Linux.GIDMappings) != 1 || s.Linux.GIDMappings[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: gid, Size: 1}) {
		t.Errorf("spec --rootless mappings: uid %+v gid %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	s = load(false)
	if hasUserns(s) || len(s.Linux.UIDMappings) != 0 || len(s.Linux.GIDMappings) != 0 {
		t.Errorf("plain spec has a user namespace or mappings: %+v %+v", s.Linux.Namespaces, s.Linux.UIDMappings)
	}
}

// --version (and -v) print runc's first lines: the runtime's version and
// the runtime-spec version it implements.
func TestProofVersion(t *testing.T) {
	e := newEnv(t)
	for _, flag := range []string{"--version", "-v"} {
		out, err := exec.Command(e.bin, flag).Output()
		if err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "berth-runtime version ") || len(lines[0]) == len("berth-runtime version ") {
			t.Errorf("%s: first line %q, want \"berth-runtime version X\"", flag, lines[0])
		}
		if !bytes.Contains(out, []byte("\nspec: "+specs.Version+"\n")) || !strings.HasPrefix(specs.Version, "1.") {
			t.Errorf("%s: no \"spec: %s\" line:\n%s", flag, specs.Version, out)
		}
	}
}

// process.scheduler, process.ioPriority and linux domainname: the init
// runs SCHED_BATCH with best-effort I/O priority 5 (both read from the
// host), and the container's UTS namespace has the domain name.
func TestProofSchedulerIOPriorityDomainname(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Priority: 0}
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 5}
		s.Domainname = "berth.test"
	})
	id := newID("proofsched")
	pid := e.startDetached(b, id, "sleep")
	sched, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/sched")
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, l := range strings.Split(string(sched), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "policy" {
			policy = strings.TrimSpace(v)
		}
	}
	if policy != "3" {
		t.Errorf("init's scheduling policy %q, want 3 (SCHED_BATCH)", policy)
	}
	const whoProcess, classBE = 1, 2
	prio, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, whoProcess, uintptr(pid), 0)
	if errno != 0 {
		t.Fatalf("ioprio_get(%d): %v", pid, errno)
	}
	if prio != classBE<<13|5 {
		t.Errorf("init's I/O priority class %d level %d, want best-effort (2) level 5", prio>>13, prio&0x1fff)
	}
	if r := e.rt("exec", id, "cat", "/proc/sys/kernel/domainname"); r.code != 0 || r.stdout != "berth.test\n" {
		t.Errorf("domainname in the container: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := e.rt("delete", "-f", id); r.code != 0 {
		t.Fatalf("delete -f: %s", r.stderr)
	}
}

// A bind mount's options ["rbind","ro",<propagation>]: read-only inside,
// and its propagation as asked. The source is a tmpfs of the test's, made
// shared, so that the option shows against what the container's copy
// would be without it: a slave of the host's peer group (master:N) under
// the default rslave root; a peer of it (shared:N) under a private or
// shared root. Docker's -v SRC:DST:rshared (rshared bind, rootfsPropagation
// shared) is a peer of the host's mount, so mounts made in it reach the
// host.
func TestProofBindMountReadOnlyAndPropagation(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", src, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(src, unix.MNT_DETACH) })
	if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	group := ""
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 7 && f[4] == src && strings.HasPrefix(f[6], "shared:") {
			group = strings.TrimPrefix(f[6], "shared:")
		}
	}
	if group == "" {
		t.Fatalf("the test's tmpfs %s is not shared", src)
	}
	for _, c := range []struct {
		opt, rootProp string
		want          string // the mount's optional fields
	}{
		{"rprivate", "", ""},
		{"rslave", "private", "master:" + group},
		{"rshared", "shared", "shared:" + group},
	} {
		out := e.mustRun([]string{"sh", "-c", `cat /data/hello; echo x > /data/new 2>/dev/null && echo writable
awk '$5=="/data" {f="tags"; for (i=7; $i!="-"; i++) f=f" "$i; print f "|" $6}' /proc/self/mountinfo`}, func(s *specs.Spec) {
			s.Linux.RootfsPropagation = c.rootProp
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "ro", c.opt}})
		})
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || lines[0] != "from the host" {
			t.Errorf("%s: output %q, want the host's file and no write", c.opt, out)
			continue
		}
		tags, opts, _ := strings.Cut(lines[1], "|")
		if !strings.HasPrefix(opts, "ro,") {
			t.Errorf("%s: mount options %q, want read-only", c.opt, opts)
		}
		if got := strings.TrimSpace(strings.TrimPrefix(tags, "tags")); got != c.want {
			t.Errorf("%s (root %q): /data propagation %q, want %q", c.opt, c.rootProp, got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "new")); err == nil {
		t.Error("a write through the read-only mount reached the host")
	}
}
