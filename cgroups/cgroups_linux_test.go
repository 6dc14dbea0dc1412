package cgroups

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// The layout as the kernel tells it: cgroup2 at /sys/fs/cgroup is V2, a
// cgroup2 at /sys/fs/cgroup/unified next to v1 mounts is hybrid.
func TestDetectLayoutMatchesStatfs(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Skip(err)
	}
	want := V1
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		want = V2
	} else if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		want = Hybrid
	}
	got, err := DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("DetectLayout = %v, statfs says %v", got, want)
	}
	t.Logf("layout: %v", got)
}

func TestCreateWritesValuesAndDestroyRemoves(t *testing.T) {
	r := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: ptr[int64](1000), Period: ptr[uint64](2000), Shares: ptr[uint64](512)},
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Reservation: ptr[int64](32 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
	}
	m := newTest(t, r)
	p := m.Paths()
	layout, _ := DetectLayout()
	check := func(dir, file, want string) {
		t.Helper()
		if got := strings.TrimSpace(readFile(t, dir, file)); got != want {
			t.Errorf("%s/%s = %q, want %q", dir, file, got, want)
		}
	}
	if layout == V2 {
		u := p[""]
		check(u, "cpu.max", "1000 2000")
		check(u, "cpu.weight", "59")
		check(u, "memory.max", "67108864")
		check(u, "memory.low", "33554432")
		check(u, "pids.max", "42")
	} else {
		check(p["cpu"], "cpu.cfs_quota_us", "1000")
		check(p["cpu"], "cpu.cfs_period_us", "2000")
		check(p["cpu"], "cpu.shares", "512")
		check(p["memory"], "memory.limit_in_bytes", "67108864")
		check(p["memory"], "memory.soft_limit_in_bytes", "33554432")
		check(p["pids"], "pids.max", "42")
		for c, dir := range p {
			if !strings.HasPrefix(filepath.Base(dir), "berth-test-") {
				t.Errorf("%s path %s is not the test's cgroup", c, dir)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("%s: %v", c, err)
			}
		}
	}
	// Update changes the values in place.
	if err := m.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](7)}}); err != nil {
		t.Fatal(err)
	}
	dir := p["pids"]
	if layout == V2 {
		dir = p[""]
	}
	check(dir, "pids.max", "7")
	// New is deterministic: a second manager from the same Config (as a
	// later runtime command builds it) sees the same paths.
	if layout != V2 {
		name := filepath.Base(p["memory"])
		m2, err := New(Config{ContainerID: name, Path: "/" + name, Resources: r})
		if err != nil {
			t.Fatal(err)
		}
		if !mapsEqual(m2.Paths(), p) {
			t.Errorf("second New gives %v, first %v", m2.Paths(), p)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The talk's experiment: quota 1000µs per 2000µs period holds a busy loop
// to half a CPU, measured from the cgroup's own CPU accounting. On this
// project's hosts (Linux 6.18, PREEMPT_NONE) a 2 ms period loses some of
// its quota to tick-granular accounting and per-CPU runtime left behind
// when the loop migrates: such a loop gets 35-45%, never more than half.
// At Docker's default 100 ms period the kernel holds 45-55% exactly. In the
// TCG guest (Debian 6.1, 4 ms ticks) the 2 ms period yields only ~21%.
func TestCPUQuotaEnforced(t *testing.T) {
	for _, c := range []struct {
		quota      int64
		period     uint64
		lo, hi     float64
		vmLo, vmHi float64 // under TCG with Debian's HZ=250 kernel
	}{
		{1000, 2000, 0.30, 0.55, 0.10, 0.60},
		{50000, 100000, 0.45, 0.55, 0.40, 0.60},
	} {
		t.Run(fmt.Sprintf("%d/%d", c.quota, c.period), func(t *testing.T) {
			m := newTest(t, &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &c.quota, Period: &c.period}})
			startIn(t, m, "while :; do :; done")
			time.Sleep(300 * time.Millisecond) // let it start burning
			window := 3 * time.Second
			lo, hi := c.lo, c.hi
			if inVM() {
				window, lo, hi = 5*time.Second, c.vmLo, c.vmHi
			}
			CheckCPUShare(t, m, window, lo, hi)
		})
	}
}

// A 32 MiB limit kills a process that allocates 100 MiB: exit 137 and an
// OOM kill counted by the cgroup.
func TestMemoryLimitOOMKills(t *testing.T) {
	limit := int64(32 << 20)
	m := newTest(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}})
	before, err := m.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	// dd reads 100 MiB from /dev/zero into one buffer it allocates.
	p := startIn(t, m, "exec dd if=/dev/zero of=/dev/null bs=100M count=1")
	ws := p.wait(t, 60*time.Second)
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code != 137 {
		t.Fatalf("allocating 100 MiB under a 32 MiB limit: exit %d, want 137 (SIGKILL by the OOM killer)", code)
	}
	after, err := m.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("oom_kill counter %d → %d: no OOM kill seen", before, after)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.Usage.Limit != uint64(limit) {
		t.Errorf("stats memory limit %d, want %d", s.Memory.Usage.Limit, limit)
	}
}

// pids.max 20 stops a real fork bomb (every shell forks itself forever;
// busybox sh exits when fork fails, so the bomb churns at the limit), and
// the cgroup stays manageable: it can be listed, frozen, killed, removed.
func TestPidsLimitStopsForkBomb(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](20)}})
	dir := m.Paths()["pids"]
	if dir == "" {
		dir = m.Paths()[""]
	}
	startIn(t, m, "bomb() { bomb & bomb; }; bomb")
	deadline := time.Now().Add(2 * time.Second)
	peak, peakCurrent := 0, uint64(0)
	for time.Now().Before(deadline) {
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Pids.Limit != 20 {
			t.Fatalf("pids limit in stats %d, want 20", s.Pids.Limit)
		}
		n, cur := forkBombSample(t, m)
		peak, peakCurrent = max(peak, n), max(peakCurrent, cur)
		time.Sleep(10 * time.Millisecond)
	}
	ev := readFile(t, dir, "pids.events")
	t.Logf("peak %d processes (pids.current peak %d), pids.events %q", peak, peakCurrent, strings.TrimSpace(ev))
	if peak > 20 {
		t.Errorf("%d processes in the cgroup, above the limit 20", peak)
	}
	if peakCurrent < 15 {
		t.Errorf("the bomb never got near the limit (pids.current peak %d)", peakCurrent)
	}
	if strings.HasPrefix(ev, "max 0") || !strings.HasPrefix(ev, "max ") {
		t.Errorf("pids.events = %q: no fork was refused", ev)
	}
	if err := m.Freeze(); err != nil {
		t.Fatalf("freeze a fork bomb: %v", err)
	}
	if err := m.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, m)
}

// forkBombSample measures a cgroup whose processes fork and exit all the
// time. Alone, neither measure is exact: the kernel charges a fork before
// it checks pids.max and takes the charge back when over, so pids.current
// can read above the limit for a moment, and a listing of cgroup.procs
// can hold a process that exited and the one that replaced it (CI saw 21
// of 20 each way, once). A process count over the limit is reported only
// when pids.current read just before and just after the listing is over
// it too, as more processes than the limit would make it. It returns that
// count and the larger pids.current.
func forkBombSample(t testing.TB, m Manager) (int, uint64) {
	t.Helper()
	current := func() uint64 {
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return s.Pids.Current
	}
	before := current()
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	after := current()
	n := len(pids)
	if lim := min(before, after); uint64(n) > lim {
		n = int(lim)
	}
	return n, max(before, after)
}

func waitEmpty(t testing.TB, m Manager) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := m.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still in the cgroup", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFreezeThaw(t *testing.T) {
	m := newTest(t, nil)
	startIn(t, m, "while :; do :; done")
	time.Sleep(100 * time.Millisecond)
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Fatalf("Frozen = %v, %v after Freeze", f, err)
	}
	s0, _ := m.Stats()
	time.Sleep(300 * time.Millisecond)
	s1, _ := m.Stats()
	if d := s1.CPU.Usage.Total - s0.CPU.Usage.Total; d > uint64(5*time.Millisecond) {
		t.Errorf("frozen loop used %v of CPU", time.Duration(d))
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, _ := m.Frozen(); f {
		t.Fatal("still frozen after Thaw")
	}
	time.Sleep(300 * time.Millisecond)
	s2, _ := m.Stats()
	if s2.CPU.Usage.Total-s1.CPU.Usage.Total < uint64(20*time.Millisecond) {
		t.Errorf("thawed loop used only %v", time.Duration(s2.CPU.Usage.Total-s1.CPU.Usage.Total))
	}
}

func TestKillReachesEveryProcess(t *testing.T) {
	m := newTest(t, nil)
	p := startIn(t, m, "sleep 100 & sleep 100 & (sleep 100 & wait) & wait")
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, _ := m.Pids()
		if len(pids) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v in the cgroup", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := m.Kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)
	waitEmpty(t, m)
}

// A cgroup with processes in it belongs to someone: Create refuses it and
// leaves it alone.
func TestCreateRefusesCgroupInUse(t *testing.T) {
	m := newTest(t, nil)
	startIn(t, m, "sleep 100")
	var dir string
	for _, d := range m.Paths() {
		dir = d
		break
	}
	name := filepath.Base(dir)
	other, err := New(Config{ContainerID: "other", Path: "/" + name})
	if err != nil {
		t.Fatal(err)
	}
	err = other.Create()
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Create on a busy cgroup: %v, want 'already in use'", err)
	}
	pids, _ := m.Pids()
	if len(pids) != 1 {
		t.Errorf("the first container's cgroup was disturbed: %v", pids)
	}
}

// Bad input gives a clear error and creates nothing.
func TestBadInputCreatesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	layout, _ := DetectLayout()
	for _, c := range []struct {
		name string
		path string
		r    *specs.LinuxResources
		want string
	}{
		{"escape", "../../berth-test-escape", nil, "escapes"},
		{"negative memory", "", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-5)}}, "limit -5"},
		{"tiny quota", "", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](10)}}, "below the kernel minimum"},
		{"huge period", "", &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](1 << 40)}}, "out of range"},
		{"absurd shares", "", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1 << 40)}}, "out of range"},
		{"bad cpus", "", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "3-1"}}, "cpus"},
		{"negative pids", "", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-7)}}, "pids"},
		{"unknown unified key", "", &specs.LinuxResources{Unified: map[string]string{"bogus.key": "1"}}, "unknown controller"},
		{"unified procs", "", &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, "may not be set"},
		{"unified slash", "", &specs.LinuxResources{Unified: map[string]string{"memory.max/../x": "1"}}, "not a cgroup v2 file"},
		{"swap below limit", "", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](100 << 20), Swap: ptr[int64](50 << 20)}}, "at least the memory limit"},
		{"bad page size", "", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3XB"}}}, "page size"},
		{"unsupported page size", "", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "4KB", Limit: 1}}}, "not supported"},
		{"bad device access", "", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwx"}}}, "access"},
		{"blkio weight", "", &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](5000)}}, "out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := testName(t)
			p := c.path
			if p == "" {
				p = "/" + name
			}
			_, err := New(Config{ContainerID: name, Path: p, Resources: c.r})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
			assertNoCgroup(t, name)
		})
	}
	// Valid for New, refused by the kernel at Create: nothing left behind.
	t.Run("kernel refuses", func(t *testing.T) {
		name := testName(t)
		r := &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4000"}}
		m, err := New(Config{ContainerID: name, Path: "/" + name + "/nested", Resources: r})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Create(); err == nil {
			m.Destroy()
			t.Fatal("cpus 4000 accepted")
		} else {
			t.Logf("Create: %v", err)
		}
		assertNoCgroup(t, name)
	})
	if layout == V1 || layout == Hybrid {
		t.Run("network without net_cls", func(t *testing.T) {
			if _, err := os.Stat("/sys/fs/cgroup/net_cls"); err == nil {
				t.Skip("net_cls is mounted here")
			}
			name := testName(t)
			m, err := New(Config{ContainerID: name, Path: "/" + name, Resources: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](7)}}})
			if err == nil {
				err = m.Create()
			}
			if err == nil || !strings.Contains(err.Error(), "net_cls") {
				t.Fatalf("classID without net_cls: %v", err)
			}
			assertNoCgroup(t, name)
		})
	}
}

func assertNoCgroup(t *testing.T, name string) {
	t.Helper()
	var found []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Contains(p, name) {
			found = append(found, p)
		}
		// The test's cgroups sit right under a hierarchy root.
		if strings.Count(strings.TrimPrefix(p, "/sys/fs/cgroup"), "/") >= 2 && !strings.Contains(p, name) {
			return filepath.SkipDir
		}
		return nil
	})
	if len(found) > 0 {
		t.Errorf("left behind: %v", found)
	}
}

// Stats marshal to runc's events --stats field names.
func TestStatsJSONShape(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}, Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}})
	startIn(t, m, "while :; do :; done")
	time.Sleep(200 * time.Millisecond)
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	json.Unmarshal(b, &generic)
	for _, k := range []string{"cpu", "memory", "pids", "blkio", "hugetlb"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("stats JSON lacks %q: %s", k, b)
		}
	}
	if s.CPU.Usage.Total == 0 || s.Pids.Current != 1 || s.Pids.Limit != 10 {
		t.Errorf("stats look empty: %s", b)
	}
	if s.Memory.Usage.Limit != 64<<20 {
		t.Errorf("memory limit %d", s.Memory.Usage.Limit)
	}
	if layout, _ := DetectLayout(); layout != V2 && len(s.CPU.Usage.Percpu) == 0 {
		t.Errorf("no per-CPU usage: %s", b)
	}
}

func TestCloneFDOnlyOnV2(t *testing.T) {
	m := newTest(t, nil)
	layout, _ := DetectLayout()
	fd, ok := m.CloneFD()
	if ok != (layout == V2) {
		t.Fatalf("CloneFD ok=%v on %v", ok, layout)
	}
	if !ok {
		return
	}
	defer unix.Close(fd)
	// Clone a process straight into the cgroup.
	pid, err := syscall.ForkExec("/bin/busybox", []string{"sleep", "30"}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}})
	if err != nil {
		t.Fatalf("clone into cgroup: %v", err)
	}
	defer func() { syscall.Kill(pid, syscall.SIGKILL); var ws syscall.WaitStatus; syscall.Wait4(pid, &ws, 0, nil) }()
	pids, _ := m.Pids()
	if !slices.Contains(pids, pid) {
		t.Errorf("cloned pid %d not in cgroup: %v", pid, pids)
	}
}

// Docker's default device policy: mknod of any device works, but a device
// not on the list cannot be opened even after mknod; /dev/null can.
func TestDevicePolicyDeniesAfterMknod(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}})
	dir := t.TempDir()
	p := startIn(t, m, "cd "+dir+"; exec > out; "+
		"if mknod kmsg c 1 11; then echo mknod-ok; else echo mknod-no; fi; "+
		"if true < kmsg; then echo open-ok; else echo open-no; fi; "+
		"if mknod null c 1 3 && true > null; then echo null-ok; else echo null-no; fi")
	p.wait(t, 10*time.Second)
	got := strings.Fields(readFile(t, dir, "out"))
	want := []string{"mknod-ok", "open-no", "null-ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("inside the container: %v, want %v", got, want)
	}
	// The same node opens outside the container.
	f, err := os.Open(filepath.Join(dir, "kmsg"))
	if err != nil {
		t.Fatalf("kmsg outside the cgroup: %v", err)
	}
	f.Close()
}
