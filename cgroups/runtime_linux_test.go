package cgroups_test

// These tests go through the real OCI runtime (berth-runtime run with
// linux.resources on a busybox bundle) and check with this package's own
// manager — built from the same Config, as every runtime command does —
// that the limits land and hold. They run on this host and in the pure v2
// VM (test/vm).

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups"
	"github.com/berth-dev/berth/cgroups/systemd"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/runtime"
)

type rtEnv struct {
	t    *testing.T
	bin  string
	root string
}

func newRtEnv(t *testing.T) *rtEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	e := &rtEnv{t: t, bin: testutil.RuntimeBinary(t), root: t.TempDir()}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(e.root)
		for _, en := range entries {
			if en.IsDir() {
				exec.Command(e.bin, "--root", e.root, "delete", "--force", en.Name()).Run()
			}
		}
	})
	return e
}

func randName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "berth-test-" + hex.EncodeToString(b)
}

// bundle writes a busybox bundle running args with r as its resources and
// /<id> as its cgroupsPath. Masked and read-only paths are dropped: these
// tests are about cgroups.
func (e *rtEnv) bundle(id string, args []string, r *specs.LinuxResources, edit func(*specs.Spec)) (string, cgroups.Config) {
	e.t.Helper()
	dir := e.t.TempDir()
	os.Chmod(dir, 0o755)
	rootfs := testutil.BusyboxRootfs(e.t)
	if err := os.Rename(rootfs, filepath.Join(dir, "rootfs")); err != nil {
		e.t.Fatal(err)
	}
	spec := runtime.DefaultSpec(false, 0, 0)
	spec.Process.Terminal = false
	spec.Process.Args = args
	spec.Root.Readonly = false
	spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
	if r != nil {
		r.Devices = spec.Linux.Resources.Devices // Docker's default device policy
		spec.Linux.Resources = r
	}
	spec.Linux.CgroupsPath = "/" + id
	if edit != nil {
		edit(spec)
	}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir, cgroups.Config{ContainerID: id, Path: spec.Linux.CgroupsPath, Resources: spec.Linux.Resources}
}

type rtResult struct {
	stdout, stderr string
	code           int
}

func (e *rtEnv) rt(timeout time.Duration, args ...string) rtResult {
	e.t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
	// Files, not pipes: a detached container keeps its stdio open.
	out, _ := os.CreateTemp(e.t.TempDir(), "out")
	errf, _ := os.CreateTemp(e.t.TempDir(), "err")
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		// A Go program prints every goroutine's stack on SIGQUIT.
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		er, _ := os.ReadFile(errf.Name())
		e.t.Fatalf("berth-runtime %s: no exit within %v; stderr:\n%s", strings.Join(args, " "), timeout, er)
	}
	o, _ := os.ReadFile(out.Name())
	er, _ := os.ReadFile(errf.Name())
	return rtResult{string(o), string(er), cmd.ProcessState.ExitCode()}
}

func inVM() bool { return os.Getenv("BERTH_VM") == "1" }

// The talk's command: docker run --cpu-period=2000 --cpu-quota=1000 with a
// CPU burner. The files hold the values, and a busy loop is held below
// half a CPU, measured from the cgroup's accounting. The 100 ms period
// case holds 45-55%.
func TestRuntimeRunCPUQuota(t *testing.T) {
	e := newRtEnv(t)
	for _, c := range []struct {
		quota      int64
		period     uint64
		lo, hi     float64
		vmLo, vmHi float64
	}{{1000, 2000, 0.30, 0.55, 0.10, 0.60}, {50000, 100000, 0.45, 0.55, 0.40, 0.60}} {
		id := randName()
		b, cfg := e.bundle(id, []string{"sh", "-c", "while :; do :; done"},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &c.quota, Period: &c.period}}, nil)
		if r := e.rt(time.Minute, "run", "-d", "--bundle", b, id); r.code != 0 {
			t.Fatalf("run -d: %d %s", r.code, r.stderr)
		}
		m, err := cgroups.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		layout, _ := cgroups.DetectLayout()
		if layout == cgroups.V2 {
			if got := readTrim(t, m.Paths()[""], "cpu.max"); got != strings.TrimSpace(formatMax(c.quota, c.period)) {
				t.Errorf("cpu.max = %q", got)
			}
		} else {
			if got := readTrim(t, m.Paths()["cpu"], "cpu.cfs_quota_us"); got != itoa(c.quota) {
				t.Errorf("cpu.cfs_quota_us = %q", got)
			}
			if got := readTrim(t, m.Paths()["cpu"], "cpu.cfs_period_us"); got != itoa(int64(c.period)) {
				t.Errorf("cpu.cfs_period_us = %q", got)
			}
		}
		time.Sleep(300 * time.Millisecond)
		lo, hi, window := c.lo, c.hi, 3*time.Second
		if inVM() {
			lo, hi, window = c.vmLo, c.vmHi, 5*time.Second
		}
		t.Logf("%d/%d:", c.quota, c.period)
		cgroups.CheckCPUShare(t, m, window, lo, hi)
		if r := e.rt(time.Minute, "delete", "-f", id); r.code != 0 {
			t.Fatalf("delete -f: %s", r.stderr)
		}
		for c, p := range m.Paths() {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("delete left the %q cgroup %s", c, p)
			}
		}
	}
}

// A 32 MiB container that allocates 100 MiB exits 137 and the cgroup saw
// the OOM kill.
func TestRuntimeRunOOMExit137(t *testing.T) {
	e := newRtEnv(t)
	id := randName()
	lim := int64(32 << 20)
	b, cfg := e.bundle(id, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"},
		&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim, Swap: &lim}}, nil)
	if r := e.rt(time.Minute, "create", "--bundle", b, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	m, err := cgroups.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.rt(time.Minute, "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n, err := m.OOMKills(); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no OOM kill counted in the container's cgroup")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.rt(time.Minute, "delete", "-f", id)
	// The exit status the way `run` reports it.
	id2 := randName()
	b2, _ := e.bundle(id2, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"},
		&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim, Swap: &lim}}, nil)
	if r := e.rt(2*time.Minute, "run", "--bundle", b2, id2); r.code != 137 {
		t.Fatalf("run: exit %d, want 137; stderr %s", r.code, r.stderr)
	}
}

// pids.max 20 holds a fork bomb in a container (its PID 1 execs a sleep,
// so the bomb's dying shells do not end the container); it stays
// manageable: ps, pause and delete -f work.
func TestRuntimeRunForkBomb(t *testing.T) {
	e := newRtEnv(t)
	id := randName()
	lim := int64(20)
	b, cfg := e.bundle(id, []string{"sh", "-c", "(bomb() { bomb & bomb; }; bomb) & exec sleep 1000"}, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lim}}, nil)
	if r := e.rt(time.Minute, "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	m, _ := cgroups.New(cfg)
	peak, peakCurrent := 0, uint64(0)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		n, cur := cgroups.ForkBombSample(t, m)
		peak, peakCurrent = max(peak, n), max(peakCurrent, cur)
	}
	t.Logf("peak %d processes (pids.current peak %d)", peak, peakCurrent)
	if peak > 20 || peakCurrent < 15 {
		t.Errorf("peak %d processes (pids.current peak %d), want up to the limit 20", peak, peakCurrent)
	}
	if r := e.rt(time.Minute, "pause", id); r.code != 0 {
		t.Errorf("pause a fork bomb: %s", r.stderr)
	}
	if r := e.rt(time.Minute, "delete", "-f", id); r.code != 0 {
		t.Fatalf("delete -f: %s", r.stderr)
	}
	for _, p := range m.Paths() {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup %s left behind", p)
		}
	}
}

// Docker's device policy inside a container: mknod works, opening the node
// does not, even as root with every capability.
func TestRuntimeRunDeviceDeniedAfterMknod(t *testing.T) {
	e := newRtEnv(t)
	id := randName()
	b, _ := e.bundle(id, []string{"sh", "-c", "mknod /tmp/kmsg c 1 11 && echo mknod-ok; cat /tmp/kmsg >/dev/null && echo open-ok; echo > /dev/null && echo null-ok"},
		&specs.LinuxResources{}, func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_MKNOD", "CAP_SYSLOG", "CAP_SYS_ADMIN")
			s.Process.Capabilities.Effective = s.Process.Capabilities.Bounding
			s.Process.Capabilities.Permitted = s.Process.Capabilities.Bounding
		})
	r := e.rt(time.Minute, "run", "--bundle", b, id)
	got := strings.Fields(r.stdout)
	if strings.Join(got, " ") != "mknod-ok null-ok" || !strings.Contains(r.stdout+r.stderr, "") {
		t.Fatalf("inside: %q (stderr %q), want mknod-ok null-ok", r.stdout, r.stderr)
	}
}

// With a private cgroup namespace the container sees its cgroup as "/",
// and /sys/fs/cgroup (read-only) shows its own limits.
func TestRuntimeCgroupNamespaceView(t *testing.T) {
	e := newRtEnv(t)
	id := randName()
	lim := int64(33)
	layout, _ := cgroups.DetectLayout()
	pidsMax := "/sys/fs/cgroup/pids/pids.max"
	if layout == cgroups.V2 {
		pidsMax = "/sys/fs/cgroup/pids.max"
	}
	b, _ := e.bundle(id, []string{"sh", "-c", "cat /proc/self/cgroup; cat " + pidsMax + "; echo 1 > " + pidsMax + " || echo ro-ok"},
		&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lim}}, nil)
	r := e.rt(time.Minute, "run", "--bundle", b, id)
	if r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines {
		if parts := strings.SplitN(l, ":", 3); len(parts) == 3 && strings.Contains(parts[1]+parts[2], "berth-test") {
			t.Errorf("the container sees the host's cgroup path: %q", l)
		}
	}
	if !strings.Contains(r.stdout, "0::/\n") && layout != cgroups.V1 {
		t.Errorf("no \"0::/\" in /proc/self/cgroup:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "\n33\n") {
		t.Errorf("%s inside does not show the container's limit 33:\n%s", pidsMax, r.stdout)
	}
	if !strings.Contains(r.stdout, "ro-ok") {
		t.Errorf("/sys/fs/cgroup is writable inside:\n%s", r.stdout)
	}
}

func readTrim(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func itoa(v int64) string { return strings.TrimSpace(formatInt(v)) }

// berth-runtime --systemd-cgroup: the container's cgroup is a transient
// scope systemd made (runs in test/vm's systemd guest), the limit is in it,
// and delete stops the unit.
func TestRuntimeSystemdCgroup(t *testing.T) {
	if !systemd.Running() {
		t.Skip("systemd does not run on this host (test/vm runs this test under systemd)")
	}
	e := newRtEnv(t)
	id := randName()
	lim := int64(21)
	b, _ := e.bundle(id, []string{"sh", "-c", "cat /proc/self/cgroup; sleep 100"}, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lim}}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = "system.slice:berth-test:" + id
		s.Linux.Namespaces = slicesDeleteCgroupNS(s.Linux.Namespaces)
	})
	if r := e.rt(time.Minute, "--systemd-cgroup", "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d --systemd-cgroup: %d %s", r.code, r.stderr)
	}
	st := e.rt(time.Minute, "state", id)
	var state struct{ Pid int }
	if err := json.Unmarshal([]byte(st.stdout), &state); err != nil || state.Pid <= 0 {
		t.Fatalf("state %s: %v %q %s", id, err, st.stdout, st.stderr)
	}
	// The container's init is in the scope in every mounted hierarchy, and
	// the limit is in the pids controller's copy of it.
	cg := "/system.slice/berth-test-" + id + ".scope"
	var dirs []string
	pidsDir := ""
	for _, pc := range cgroups.ProcCgroups(t, state.Pid) {
		if pc.Dir == "" {
			continue
		}
		if pc.Cgroup != cg {
			t.Errorf("container init in %q:%s, want %s", pc.Ctrls, pc.Cgroup, cg)
		}
		dirs = append(dirs, pc.Dir)
		if pc.Ctrls == "pids" || pc.Ctrls == "" && pidsDir == "" {
			pidsDir = pc.Dir
		}
	}
	if got := readTrim(t, pidsDir, "pids.max"); got != "21" {
		t.Errorf("pids.max in the scope (%s) = %q", pidsDir, got)
	}
	c, err := systemd.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.UnitLoaded("berth-test-" + id + ".scope"); !ok {
		t.Errorf("systemd does not know the container's scope: %v", err)
	}
	if r := e.rt(time.Minute, "--systemd-cgroup", "delete", "-f", id); r.code != 0 {
		t.Fatalf("delete -f: %s", r.stderr)
	}
	if ok, _ := c.UnitLoaded("berth-test-" + id + ".scope"); ok {
		t.Error("the scope is still loaded after delete")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind", d)
		}
	}
	t.Logf("scope in %d hierarchies, removed by delete", len(dirs))
}

// slicesDeleteCgroupNS drops the cgroup namespace, so the container's
// /proc/self/cgroup shows the host path of its scope.
func slicesDeleteCgroupNS(ns []specs.LinuxNamespace) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, n := range ns {
		if n.Type != specs.CgroupNamespace {
			out = append(out, n)
		}
	}
	return out
}
