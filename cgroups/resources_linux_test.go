package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ctrlDir is where a controller's files are for this manager: the v1
// hierarchy's directory, or the cgroup2 one.
func ctrlDir(t testing.TB, m Manager, ctrl string) string {
	t.Helper()
	p := m.Paths()
	if layout, _ := DetectLayout(); layout == V2 {
		return p[""]
	}
	if d, ok := p[ctrl]; ok {
		return d
	}
	return p[""]
}

func wantFile(t testing.TB, dir, file, want string) {
	t.Helper()
	if got := strings.TrimSpace(readFile(t, dir, file)); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, file, got, want)
	}
}

// loopDevice attaches a fresh loop device to a file of size bytes and
// detaches it at the end of the test.
func loopDevice(t *testing.T, size int64) (path string, major, minor uint32) {
	t.Helper()
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no loop devices (module not loaded)")
	}
	backing := filepath.Join(t.TempDir(), "disk")
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	for try := 0; try < 10; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Fatalf("LOOP_CTL_GET_FREE: %v", err)
		}
		path = fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_SET_FD, int(f.Fd())); err != nil {
			lf.Close()
			if errors.Is(err, unix.EBUSY) {
				continue // someone else took it first
			}
			t.Fatalf("LOOP_SET_FD %s: %v", path, err)
		}
		t.Cleanup(func() {
			unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
			lf.Close()
		})
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return path, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	t.Fatal("no free loop device")
	return
}

// A read throttle of 1 MiB/s on a device holds a reader to it: 3 MiB of
// direct reads take about 3 s (blkio.throttle on v1, io.max on v2).
func TestIOThrottleEnforced(t *testing.T) {
	m0 := newTest(t, nil) // root check and a control cgroup
	dev, maj, min := loopDevice(t, 16<<20)
	rate := uint64(1 << 20)
	m := newTest(t, &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(maj), Minor: int64(min)}, Rate: rate}},
	}})
	dir := ctrlDir(t, m, "blkio")
	if layout, _ := DetectLayout(); layout == V2 {
		if got := readFile(t, dir, "io.max"); !strings.Contains(got, fmt.Sprintf("%d:%d rbps=%d", maj, min, rate)) {
			t.Errorf("io.max = %q", got)
		}
	} else {
		wantFile(t, dir, "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d %d", maj, min, rate))
	}
	read := func(m Manager) time.Duration {
		t0 := time.Now()
		p := startIn(t, m, "exec dd if="+dev+" of=/dev/null bs=64k count=48 iflag=direct")
		if ws := p.wait(t, 60*time.Second); ws.ExitStatus() != 0 {
			t.Fatalf("dd exit %d", ws.ExitStatus())
		}
		return time.Since(t0)
	}
	free, limited := read(m0), read(m)
	t.Logf("3 MiB of direct reads: %v unlimited, %v at 1 MiB/s", free.Round(time.Millisecond), limited.Round(time.Millisecond))
	if limited < 1500*time.Millisecond {
		t.Errorf("throttled read took only %v", limited)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var read3 uint64
	for _, e := range s.Blkio.IoServiceBytesRecursive {
		if e.Major == uint64(maj) && e.Minor == uint64(min) && e.Op == "Read" {
			read3 += e.Value
		}
	}
	if read3 < 3<<20 {
		t.Errorf("blkio stats count %d bytes read from %s, want ≥ 3 MiB: %+v", read3, dev, s.Blkio)
	}
}

func TestBlkioWeights(t *testing.T) {
	w := uint16(500)
	m, err := New(Config{ContainerID: "x", Path: "/" + testName(t), Resources: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: &w}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		if strings.Contains(err.Error(), "not supported by this kernel") || strings.Contains(err.Error(), "has no io.weight") {
			t.Skipf("no proportional I/O weights here: %v", err)
		}
		t.Fatal(err)
	}
	defer m.Destroy()
	dir := ctrlDir(t, m, "blkio")
	switch {
	case fileExists(dir, "blkio.bfq.weight"):
		wantFile(t, dir, "blkio.bfq.weight", "500")
	case fileExists(dir, "blkio.weight"):
		wantFile(t, dir, "blkio.weight", "500")
	case fileExists(dir, "io.bfq.weight"):
		wantFile(t, dir, "io.bfq.weight", "default 500")
	default:
		wantFile(t, dir, "io.weight", "default 4950")
	}
}

func fileExists(dir, f string) bool {
	_, err := os.Stat(filepath.Join(dir, f))
	return err == nil
}

// Swap is memory+swap on v1 and swap alone on v2; raising both limits
// works in either order; checkBeforeUpdate refuses a limit below usage.
func TestMemorySwapAndUpdate(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](128 << 20)}})
	dir := ctrlDir(t, m, "memory")
	layout, _ := DetectLayout()
	check := func(limit, swap int64) {
		t.Helper()
		if layout == V2 {
			wantFile(t, dir, "memory.max", fmt.Sprint(limit))
			if fileExists(dir, "memory.swap.max") {
				wantFile(t, dir, "memory.swap.max", fmt.Sprint(swap-limit))
			}
		} else {
			wantFile(t, dir, "memory.limit_in_bytes", fmt.Sprint(limit))
			wantFile(t, dir, "memory.memsw.limit_in_bytes", fmt.Sprint(swap))
		}
	}
	check(64<<20, 128<<20)
	// Above the current memsw: v1 must raise memsw first.
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](256 << 20), Swap: ptr[int64](512 << 20)}}); err != nil {
		t.Fatal(err)
	}
	check(256<<20, 512<<20)
	// And back down: the limit first.
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](48 << 20), Swap: ptr[int64](96 << 20)}}); err != nil {
		t.Fatal(err)
	}
	check(48<<20, 96<<20)
	// A process holding ~30 MB; a 10 MB limit with checkBeforeUpdate is refused.
	// dd's 30 MB buffer stays resident while it waits to write into a pipe
	// no one reads. (A shell variable filled by $(...) peaked near 48 MB
	// while it grew, so the shell was sometimes OOM-killed, and it held far
	// less afterwards: the test passed only when a poll caught the peak.)
	startIn(t, m, "dd if=/dev/zero bs=30000000 count=1 2>/dev/null | sleep 100")
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Memory.Usage.Usage > 25<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage stays at %d", s.Memory.Usage.Usage)
		}
		time.Sleep(50 * time.Millisecond)
	}
	err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](10 << 20), Swap: ptr[int64](20 << 20), CheckBeforeUpdate: ptr(true)}})
	if err == nil || !strings.Contains(err.Error(), "below the current usage") {
		t.Fatalf("checkBeforeUpdate: %v", err)
	}
	check(48<<20, 96<<20)
}

// cpus pins the container's processes: the kernel's affinity for a
// process in the cgroup is the cpuset.
func TestCPUSetPinsProcesses(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Mems: "0"}})
	p := startIn(t, m, "sleep 100")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "Cpus_allowed_list:\t0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("affinity not pinned to CPU 0:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CPUSet.CPUs) != 1 || s.CPUSet.CPUs[0] != 0 {
		t.Errorf("cpuset stats %+v", s.CPUSet)
	}
}

func TestCPUFiles(t *testing.T) {
	layout, _ := DetectLayout()
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{
		Shares: ptr[uint64](2048), Quota: ptr[int64](20000), Period: ptr[uint64](100000),
		Burst: ptr[uint64](5000), Idle: ptr[int64](0),
	}}
	m := newTest(t, r)
	dir := ctrlDir(t, m, "cpu")
	if layout == V2 {
		wantFile(t, dir, "cpu.weight", "174")
		wantFile(t, dir, "cpu.max", "20000 100000")
		wantFile(t, dir, "cpu.max.burst", "5000")
		wantFile(t, dir, "cpu.idle", "0")
		// Only a new period keeps the quota.
		if err := m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](50000)}}); err != nil {
			t.Fatal(err)
		}
		wantFile(t, dir, "cpu.max", "20000 50000")
		// Realtime needs v1.
		if _, err := New(Config{ContainerID: "x", Path: "/" + testName(t), Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000), RealtimePeriod: ptr[uint64](100000)}}}); err == nil || !strings.Contains(err.Error(), "realtime") {
			t.Errorf("realtime on v2: %v", err)
		}
		return
	}
	wantFile(t, dir, "cpu.shares", "2048")
	wantFile(t, dir, "cpu.cfs_quota_us", "20000")
	wantFile(t, dir, "cpu.cfs_period_us", "100000")
	wantFile(t, dir, "cpu.cfs_burst_us", "5000")
	wantFile(t, dir, "cpu.idle", "0")
	if !fileExists(dir, "cpu.rt_runtime_us") {
		return
	}
	if err := m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: ptr[uint64](1000000), RealtimeRuntime: ptr[int64](10000)}}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dir, "cpu.rt_period_us", "1000000")
	wantFile(t, dir, "cpu.rt_runtime_us", "10000")
}

// Huge page limits land in the hierarchy that has hugetlb: v1's, or on a
// hybrid host like this one, the cgroup2 mount.
func TestHugetlbLimit(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}})
	dir := ctrlDir(t, m, "hugetlb")
	if fileExists(dir, "hugetlb.2MB.max") {
		wantFile(t, dir, "hugetlb.2MB.max", fmt.Sprint(4<<20))
	} else {
		wantFile(t, dir, "hugetlb.2MB.limit_in_bytes", fmt.Sprint(4<<20))
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Hugetlb["2MB"]; !ok {
		t.Errorf("no 2MB entry in hugetlb stats: %+v", s.Hugetlb)
	}
}

func TestUnifiedKeys(t *testing.T) {
	testName(t)
	layout, _ := DetectLayout()
	switch layout {
	case V2:
		m := newTest(t, &specs.LinuxResources{Unified: map[string]string{"memory.high": "50000000", "pids.max": "77"}})
		wantFile(t, m.Paths()[""], "memory.high", "49999872") // rounded down to pages
		wantFile(t, m.Paths()[""], "pids.max", "77")
	case Hybrid:
		// memory is a v1 controller here: a unified memory key is refused...
		_, err := New(Config{ContainerID: "x", Path: "/" + testName(t), Resources: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}})
		if err == nil || !strings.Contains(err.Error(), "not in the cgroup2 hierarchy") {
			t.Errorf("unified memory.high on hybrid: %v", err)
		}
		// ...but hugetlb lives in cgroup2 and its keys work.
		if !containsField(readFile(t, "/sys/fs/cgroup/unified", "cgroup.controllers"), "hugetlb") {
			return
		}
		m := newTest(t, &specs.LinuxResources{Unified: map[string]string{"hugetlb.2MB.max": "2097152"}})
		wantFile(t, m.Paths()[""], "hugetlb.2MB.max", "2097152")
	case V1:
		if _, err := New(Config{ContainerID: "x", Path: "/" + testName(t), Resources: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}}); err == nil {
			t.Error("unified keys on a v1 host accepted")
		}
	}
}

func containsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}

// Updating the device policy replaces it: kmsg denied, then allowed.
func TestDevicePolicyUpdate(t *testing.T) {
	m := newTest(t, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}})
	dir := t.TempDir()
	if err := unix.Mknod(filepath.Join(dir, "kmsg"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11))); err != nil {
		t.Fatal(err)
	}
	try := func() string {
		p := startIn(t, m, "cd "+dir+"; if true < kmsg; then echo ok > out; else echo no > out; fi")
		p.wait(t, 20*time.Second)
		return strings.TrimSpace(readFile(t, dir, "out"))
	}
	if got := try(); got != "no" {
		t.Fatalf("kmsg under the default policy: %s", got)
	}
	maj, min := int64(1), int64(11)
	if err := m.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: &maj, Minor: &min, Access: "r"},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := try(); got != "ok" {
		t.Fatalf("kmsg after allowing it: %s", got)
	}
}

// The container's view of /sys/fs/cgroup for this layout.
func TestContainerMountsLayout(t *testing.T) {
	m := newTest(t, nil)
	layout, _ := DetectLayout()
	ms, err := m.ContainerMounts("/sys/fs/cgroup", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if layout == V2 {
		if len(ms) != 1 || ms[0].FSType != "cgroup2" || ms[0].Flags&unix.MS_RDONLY == 0 {
			t.Fatalf("v2 with cgroupns: %+v", ms)
		}
		ms, _ = m.ContainerMounts("/sys/fs/cgroup", false, false)
		if len(ms) < 1 || ms[0].Source != m.Paths()[""] || ms[0].FSType != "bind" {
			t.Fatalf("v2 without cgroupns: %+v", ms)
		}
		return
	}
	if ms[0].FSType != "tmpfs" || ms[0].Target != "/sys/fs/cgroup" {
		t.Errorf("first mount %+v, want the tmpfs", ms[0])
	}
	last := ms[len(ms)-1]
	if last.Flags&unix.MS_REMOUNT == 0 || last.Flags&unix.MS_RDONLY == 0 || last.Target != "/sys/fs/cgroup" {
		t.Errorf("last mount %+v, want the read-only remount", last)
	}
	binds := map[string]string{}
	for _, x := range ms {
		if x.FSType == "bind" {
			binds[x.Target] = x.Source
		}
	}
	for c, dir := range m.Paths() {
		if c == "" {
			continue
		}
		found := false
		for _, src := range binds {
			found = found || src == dir
		}
		if !found {
			t.Errorf("no bind mount of the %s cgroup %s: %+v", c, dir, ms)
		}
	}
}

// cgroup v2's "no internal processes" rule: a cgroup with processes of its
// own cannot hand controllers to a child, so a container cgroup below it
// fails with an error that says why, and nothing is left behind.
func TestNoInternalProcesses(t *testing.T) {
	if layout, _ := DetectLayout(); layout != V2 {
		t.Skip("a cgroup v2 rule (hybrid hosts enable no controllers in cgroup2 unless asked)")
	}
	parent := newTest(t, nil)
	startIn(t, parent, "sleep 100")
	dir := parent.Paths()[""]
	child, err := New(Config{ContainerID: "x", Path: "/" + filepath.Base(dir) + "/child", Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}}})
	if err != nil {
		t.Fatal(err)
	}
	err = child.Create()
	if err == nil || !strings.Contains(err.Error(), "internal processes") {
		child.Destroy()
		t.Fatalf("Create below a cgroup with processes: %v", err)
	}
	if fileExists(dir, "child") {
		t.Error("the child cgroup was left behind")
	}
}
