package cgroups

// Proofs for resources no other test held to their file or their effect:
// memory swappiness and disableOOMKiller, block I/O write and iops
// throttles, per-device weights, and rdma limits. Each runs on this hybrid
// host and in the pure cgroup v2 guest (test/vm), and skips with the reason
// where the layout or the kernel cannot show it.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/cgroups/convert"
	"github.com/berth-dev/berth/internal/testutil"
)

// memHog grows one string by doubling it in user space (busybox awk), so
// its page faults are user faults: the kind the v1 OOM killer, when
// disabled, parks instead of failing.
const memHog = `exec /bin/busybox awk 'BEGIN { s = "0123456789abcdef"; while (1) s = s s }'`

// swappiness is applied on v1 (memory.swappiness) and, as runc and Docker
// do on cgroup v2, which has no such file, not applied there: Create and
// Update accept it and the other memory settings still land.
func TestProofMemorySwappiness(t *testing.T) {
	limit := int64(64 << 20)
	m := newTest(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swappiness: ptr[uint64](17)}})
	dir := ctrlDir(t, m, "memory")
	if layout, _ := DetectLayout(); layout == V2 {
		wantFile(t, dir, "memory.max", fmt.Sprint(limit))
		if fileExists(dir, "memory.swappiness") {
			t.Errorf("%s/memory.swappiness exists: cgroup v2 grew the file, berth should write it", dir)
		}
		if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](60)}}); err != nil {
			t.Errorf("Update swappiness on v2 (ignored, as runc does): %v", err)
		}
		wantFile(t, dir, "memory.max", fmt.Sprint(limit))
		return
	}
	wantFile(t, dir, "memory.swappiness", "17")
	wantFile(t, dir, "memory.limit_in_bytes", fmt.Sprint(limit))
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](0)}}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dir, "memory.swappiness", "0")
	wantFile(t, dir, "memory.limit_in_bytes", fmt.Sprint(limit))
}

// disableOOMKiller on v1 sets oom_kill_disable, and the kernel then parks a
// process over its limit (under_oom 1) instead of killing it. cgroup v2 has
// no such switch and berth, like runc, does not apply it: the OOM killer
// still kills.
func TestProofDisableOOMKiller(t *testing.T) {
	limit := int64(16 << 20)
	m := newTest(t, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, DisableOOMKiller: ptr(true)}})
	dir := ctrlDir(t, m, "memory")
	layout, _ := DetectLayout()
	// No swap escape: memory+swap (v1) or swap (v2) capped at the limit.
	if fileExists(dir, "memory.memsw.limit_in_bytes") || fileExists(dir, "memory.swap.max") {
		if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}); err != nil {
			t.Fatal(err)
		}
	} else if b, _ := os.ReadFile("/proc/swaps"); strings.Count(string(b), "\n") > 1 {
		t.Skip("swap is on and this kernel has no swap accounting: the process would swap instead of reaching its limit")
	}
	if layout == V2 {
		p := startIn(t, m, memHog)
		ws := p.wait(t, 120*time.Second)
		if !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Fatalf("a process growing past 16 MiB on v2 with disableOOMKiller: %v, want killed by SIGKILL (the setting is not applied on v2)", ws)
		}
		// Killed by the cgroup's own OOM killer: the limit was hit ("oom")
		// and a process of the cgroup was killed ("oom_kill").
		ev := map[string]string{}
		for _, l := range strings.Split(readFile(t, dir, "memory.events"), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				ev[k] = v
			}
		}
		if ev["oom"] == "0" || ev["oom"] == "" || ev["oom_kill"] == "0" || ev["oom_kill"] == "" {
			t.Errorf("memory.events %v, want oom and oom_kill ≥ 1", ev)
		}
		return
	}
	oom := func() map[string]string {
		out := map[string]string{}
		for _, l := range strings.Split(readFile(t, dir, "memory.oom_control"), "\n") {
			if k, v, ok := strings.Cut(l, " "); ok {
				out[k] = v
			}
		}
		return out
	}
	if got := oom()["oom_kill_disable"]; got != "1" {
		t.Fatalf("memory.oom_control oom_kill_disable = %q, want 1", got)
	}
	p := startIn(t, m, memHog)
	deadline := time.Now().Add(60 * time.Second)
	for oom()["under_oom"] != "1" {
		select {
		case <-p.done:
			p.done <- nil
			t.Fatalf("the process exited (%v) instead of waiting under OOM", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("under_oom never became 1: %v", oom())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Parked, not killed: still there a while later, nobody OOM-killed.
	select {
	case <-p.done:
		p.done <- nil
		t.Fatalf("the process was ended (%v) although the OOM killer is disabled", p.cmd.ProcessState)
	case <-time.After(500 * time.Millisecond):
	}
	if st := oom(); st["oom_kill"] != "0" || st["under_oom"] != "1" {
		t.Errorf("memory.oom_control %v, want under_oom 1 and oom_kill 0", st)
	}
}

// throttle is one device's rate.
func throttle(maj, min uint32, rate uint64) []specs.LinuxThrottleDevice {
	return []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(maj), Minor: int64(min)}, Rate: rate}}
}

// ioMaxLine is the io.max line for device maj:min ("" when none).
func ioMaxLine(t *testing.T, dir string, maj, min uint32) string {
	t.Helper()
	for _, l := range strings.Split(readFile(t, dir, "io.max"), "\n") {
		if strings.HasPrefix(l, fmt.Sprintf("%d:%d ", maj, min)) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// timedDD runs dd with args in m's cgroup and says how long it took.
func timedDD(t *testing.T, m Manager, args string) time.Duration {
	t.Helper()
	t0 := time.Now()
	p := startIn(t, m, "exec dd "+args+" 2>/dev/null")
	if ws := p.wait(t, 60*time.Second); ws.ExitStatus() != 0 {
		t.Fatalf("dd %s: exit %v", args, ws)
	}
	return time.Since(t0)
}

// A write throttle of 1 MiB/s lands in blkio.throttle.write_bps_device (v1)
// or as wbps in io.max (v2), and holds a writer to it: 3 MiB of direct
// writes to the device take about 3 s.
func TestProofIOWriteBpsEnforced(t *testing.T) {
	m0 := newTest(t, nil) // root check and an unthrottled control cgroup
	dev, maj, min := loopDevice(t, 16<<20)
	rate := uint64(1 << 20)
	m := newTest(t, &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleWriteBpsDevice: throttle(maj, min, rate)}})
	dir := ctrlDir(t, m, "blkio")
	if layout, _ := DetectLayout(); layout == V2 {
		if got, want := ioMaxLine(t, dir, maj, min), fmt.Sprintf("%d:%d rbps=max wbps=%d riops=max wiops=max", maj, min, rate); got != want {
			t.Errorf("io.max line %q, want %q", got, want)
		}
	} else {
		wantFile(t, dir, "blkio.throttle.write_bps_device", fmt.Sprintf("%d:%d %d", maj, min, rate))
		wantFile(t, dir, "blkio.throttle.read_bps_device", "")
	}
	const n = 48 // 64 KiB blocks: 3 MiB
	args := fmt.Sprintf("if=/dev/zero of=%s bs=64k count=%d oflag=direct", dev, n)
	free, limited := timedDD(t, m0, args), timedDD(t, m, args)
	ideal := time.Duration(n*64<<10) * time.Second / time.Duration(rate)
	t.Logf("3 MiB of direct writes: %v unthrottled, %v at 1 MiB/s (ideal %v)", free.Round(time.Millisecond), limited.Round(time.Millisecond), ideal)
	// The throttle lets the first block and one slice's worth through at
	// once; the rest must wait its turn.
	if min := ideal * 8 / 10; limited < min {
		t.Errorf("throttled write took %v, want ≥ %v", limited, min)
	}
	// Reads are not limited by a write throttle.
	if r := timedDD(t, m, fmt.Sprintf("if=%s of=/dev/null bs=64k count=%d iflag=direct", dev, n)); r >= ideal*2/3 {
		t.Errorf("a write throttle slowed reads: 3 MiB took %v", r)
	}
}

// Read and write IOPS throttles land in their own files (v1) or as riops
// and wiops in the device's io.max line (v2), and each holds its direction:
// direct 4 KiB I/Os, one at a time, go no faster than the limit.
func TestProofIOPSThrottles(t *testing.T) {
	testutil.RequiresRoot(t)
	dev, maj, min := loopDevice(t, 16<<20)
	riops, wiops := uint64(20), uint64(30)
	m := newTest(t, &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		ThrottleReadIOPSDevice:  throttle(maj, min, riops),
		ThrottleWriteIOPSDevice: throttle(maj, min, wiops),
	}})
	dir := ctrlDir(t, m, "blkio")
	if layout, _ := DetectLayout(); layout == V2 {
		if got, want := ioMaxLine(t, dir, maj, min), fmt.Sprintf("%d:%d rbps=max wbps=max riops=%d wiops=%d", maj, min, riops, wiops); got != want {
			t.Errorf("io.max line %q, want %q", got, want)
		}
	} else {
		wantFile(t, dir, "blkio.throttle.read_iops_device", fmt.Sprintf("%d:%d %d", maj, min, riops))
		wantFile(t, dir, "blkio.throttle.write_iops_device", fmt.Sprintf("%d:%d %d", maj, min, wiops))
		wantFile(t, dir, "blkio.throttle.read_bps_device", "")
		wantFile(t, dir, "blkio.throttle.write_bps_device", "")
	}
	for _, c := range []struct {
		what, args string
		ios, iops  uint64
	}{
		{"reads", fmt.Sprintf("if=%s of=/dev/null bs=4k count=40 iflag=direct", dev), 40, riops},
		{"writes", fmt.Sprintf("if=/dev/zero of=%s bs=4k count=60 oflag=direct", dev), 60, wiops},
	} {
		took := timedDD(t, m, c.args)
		ideal := time.Duration(c.ios) * time.Second / time.Duration(c.iops)
		t.Logf("%d direct 4 KiB %s at %d IOPS: %v (ideal %v)", c.ios, c.what, c.iops, took.Round(time.Millisecond), ideal)
		if min := ideal * 8 / 10; took < min {
			t.Errorf("%d %s at %d IOPS took %v, want ≥ %v", c.ios, c.what, c.iops, took, min)
		}
	}
}

// A per-device weight lands as a "MAJ:MIN weight" line in BFQ's per-device
// weight file (blkio.bfq.weight_device on v1, io.bfq.weight on v2), or
// io.weight on a v2 kernel without BFQ but with the io cost model. The
// kernel takes such a line only for a device whose queue runs BFQ, so the
// test's own loop device is switched to BFQ for the test.
func TestProofWeightDevice(t *testing.T) {
	testutil.RequiresRoot(t)
	_, maj, min := loopDevice(t, 16<<20)
	sched := fmt.Sprintf("/sys/dev/block/%d:%d/queue/scheduler", maj, min)
	b, err := os.ReadFile(sched)
	if err != nil {
		t.Fatal(err)
	}
	cur := string(b)
	if !containsField(strings.NewReplacer("[", "", "]", "").Replace(cur), "bfq") {
		t.Skipf("the BFQ I/O scheduler is not available (%s: %s): per-device weights need BFQ active on the device", sched, strings.TrimSpace(cur))
	}
	active := "none"
	if i, j := strings.Index(cur, "["), strings.Index(cur, "]"); i >= 0 && j > i {
		active = cur[i+1 : j]
	}
	if err := os.WriteFile(sched, []byte("bfq"), 0); err != nil {
		t.Fatalf("switch %s to bfq: %v", sched, err)
	}
	t.Cleanup(func() { os.WriteFile(sched, []byte(active), 0) })

	w := uint16(300)
	name := testName(t)
	m, err := New(Config{ContainerID: name, Path: "/" + name, Resources: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(maj), Minor: int64(min)}, Weight: &w}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		noneLeft(t, m)
		if strings.Contains(err.Error(), "not supported by this kernel") {
			t.Skipf("this kernel has no per-device weight file: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	dir := ctrlDir(t, m, "blkio")
	line := fmt.Sprintf("%d:%d %d", maj, min, w)
	var file string
	for _, f := range []string{"blkio.bfq.weight_device", "blkio.weight_device", "io.bfq.weight"} {
		if fileExists(dir, f) {
			file = f
			break
		}
	}
	if file == "" && fileExists(dir, "io.weight") {
		// No BFQ files: io.weight on the 1..10000 scale.
		file, line = "io.weight", fmt.Sprintf("%d:%d %d", maj, min, convert.BlkioWeightToIOWeight(w))
	}
	if file == "" {
		t.Fatalf("Create succeeded but %s has no per-device weight file", dir)
	}
	got := readFile(t, dir, file)
	t.Logf("%s: %q", file, got)
	if !containsLine(got, line) {
		t.Errorf("%s/%s = %q, want a line %q", dir, file, got, line)
	}
}

func containsLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// rdma limits: rdma.max holds them for a device the kernel knows. The
// kernel refuses a limit for a device that does not exist (ENODEV), so
// without an RDMA device only berth's error is shown; a host with no rdma
// controller at all gets an error naming it, and Create leaves nothing.
func TestProofRdmaLimits(t *testing.T) {
	testutil.RequiresRoot(t)
	h, err := probe()
	if err != nil {
		t.Fatal(err)
	}
	rdmaDir := "" // which hierarchy has the rdma controller
	if _, ok := h.v1["rdma"]; ok {
		rdmaDir = "v1"
	} else if h.unified != nil && containsField(readFile(t, h.unified.mountpoint, "cgroup.controllers"), "rdma") {
		rdmaDir = "unified"
	}
	// A real device when the host has one; otherwise a name no device has.
	dev, real := "berth_test_nodev", false
	if ents, _ := os.ReadDir("/sys/class/infiniband"); len(ents) > 0 {
		dev, real = ents[0].Name(), true
	}
	r := &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{dev: {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](40)}}}
	name := testName(t)
	m, err := New(Config{ContainerID: name, Path: "/" + name, Resources: r})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Create()
	if err != nil {
		noneLeft(t, m)
	} else {
		t.Cleanup(func() {
			if err := m.Destroy(); err != nil {
				t.Errorf("Destroy: %v", err)
			}
		})
	}
	switch {
	case rdmaDir == "":
		// This project's hybrid hosts: no rdma hierarchy anywhere.
		if err == nil || !strings.Contains(err.Error(), "rdma limits needs the cgroup v1 rdma controller, which is not mounted on this host") {
			t.Fatalf("rdma limits without an rdma controller: Create = %v, want an error naming the missing controller", err)
		}
	case !real:
		if err == nil || !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "rdma.max") || !strings.Contains(err.Error(), dev) {
			t.Fatalf("rdma limit for a device that does not exist: Create = %v, want ENODEV from rdma.max naming %s", err, dev)
		}
		t.Skipf("the kernel takes rdma.max limits only for an existing RDMA device (ENODEV for %q) and this host has none: the value in the file is not shown here", dev)
	default:
		if err != nil {
			t.Fatal(err)
		}
		dir := m.Paths()["rdma"]
		if rdmaDir == "unified" {
			dir = m.Paths()[""]
		}
		got := readFile(t, dir, "rdma.max")
		if want := dev + " hca_handle=3 hca_object=40"; !containsLine(got, want) {
			t.Errorf("%s/rdma.max = %q, want a line %q", dir, got, want)
		}
	}
}

// noneLeft checks that a failed Create removed every cgroup it made.
func noneLeft(t *testing.T, m Manager) {
	t.Helper()
	for _, p := range m.Paths() {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("failed Create left %s behind", p)
			unix.Rmdir(p)
		}
	}
}
