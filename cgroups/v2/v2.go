// Package v2 applies OCI resources to a cgroup v2 (unified) directory,
// enables controllers down the tree, freezes, kills and reads statistics.
// It is given the container's cgroup directory (already created) and writes
// only there and in the cgroup.subtree_control of its ancestors up to the
// hierarchy root it is told about; it does not create or remove cgroups.
package v2

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/cgroups/convert"
	"github.com/berth-dev/berth/cgroups/internal/cgfs"
)

// Controllers reads the controllers available in dir (cgroup.controllers).
func Controllers(dir string) ([]string, error) {
	s, err := cgfs.Read(dir, "cgroup.controllers")
	if err != nil {
		return nil, err
	}
	return strings.Fields(s), nil
}

// EnableControllers makes the controllers in want (those available) usable
// in leaf by writing "+ctrl" into cgroup.subtree_control of every cgroup
// from root down to leaf's parent. A non-root cgroup with processes in it
// cannot delegate controllers ("no internal processes"); that case gets an
// error naming the cgroup.
func EnableControllers(root, leaf string, want []string) error {
	rel, err := filepath.Rel(root, leaf)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("enable controllers: %s is not below %s", leaf, root)
	}
	dir := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		avail, err := Controllers(dir)
		if err != nil {
			return err
		}
		cur, err := cgfs.Read(dir, "cgroup.subtree_control")
		if err != nil {
			return err
		}
		enabled := strings.Fields(cur)
		var add []string
		for _, c := range want {
			if slices.Contains(avail, c) && !slices.Contains(enabled, c) {
				add = append(add, "+"+c)
			}
		}
		if len(add) > 0 {
			if err := cgfs.Write(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
				if errors.Is(err, unix.EBUSY) {
					return fmt.Errorf("enable controllers %v below %s: the cgroup has processes of its own and cgroup v2 forbids internal processes; use a cgroupsPath whose parent holds no processes: %w", add, dir, err)
				}
				return err
			}
		}
		dir = filepath.Join(dir, part)
	}
	return nil
}

// Set applies r to dir. update enables checkBeforeUpdate.
// Devices are handled by package devices; network (v1-only) is rejected
// by the caller's validation.
func Set(dir string, r *specs.LinuxResources, update bool) error {
	if r == nil {
		return nil
	}
	if err := setCPU(dir, r.CPU); err != nil {
		return err
	}
	if err := setMemory(dir, r.Memory, update); err != nil {
		return err
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		v := "max"
		if *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := cgfs.Write(dir, "pids.max", v); err != nil {
			return err
		}
	}
	if err := setIO(dir, r.BlockIO); err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		v := strconv.FormatUint(h.Limit, 10)
		if err := cgfs.Write(dir, "hugetlb."+h.Pagesize+".max", v); err != nil {
			return err
		}
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.max"; cgfs.Exists(dir, rsvd) {
			if err := cgfs.Write(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	for _, line := range cgfs.RdmaLines(r.Rdma) {
		if err := cgfs.Write(dir, "rdma.max", line); err != nil {
			return err
		}
	}
	// Unified keys come last so they override what the fields above wrote,
	// as the runtime-spec says.
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !cgfs.Exists(dir, k) {
			return fmt.Errorf("unified resource %q: no such file in %s (is its controller enabled and supported by this kernel?)", k, dir)
		}
		if err := cgfs.Write(dir, k, r.Unified[k]); err != nil {
			return fmt.Errorf("unified resource %q: %w", k, err)
		}
	}
	return nil
}

func setCPU(dir string, c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		return errors.New("cpu realtime runtime/period: cgroup v2 has no realtime group scheduling (cpu.rt_* are v1-only)")
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := cgfs.Write(dir, "cpu.weight", strconv.FormatUint(convert.SharesToWeight(*c.Shares), 10)); err != nil {
			return err
		}
	}
	if c.Quota != nil || c.Period != nil && *c.Period != 0 {
		var quota int64 = -1
		var period uint64
		if c.Quota != nil {
			quota = *c.Quota
		}
		if c.Period != nil {
			period = *c.Period
		}
		// Only a period: keep the current quota.
		if c.Quota == nil {
			if cur, err := cgfs.Read(dir, "cpu.max"); err == nil {
				if f := strings.Fields(cur); len(f) == 2 && f[0] != "max" {
					quota, _ = strconv.ParseInt(f[0], 10, 64)
				}
			}
		}
		if err := cgfs.Write(dir, "cpu.max", convert.CPUMax(quota, period)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := cgfs.Write(dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := cgfs.Write(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if c.Cpus != "" {
		if err := cgfs.Write(dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := cgfs.Write(dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func setMemory(dir string, m *specs.LinuxMemory, update bool) error {
	if m == nil {
		return nil
	}
	var limit, swap int64
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil {
		swap = *m.Swap
	}
	swapMax, err := convert.SwapToV2(swap, limit)
	if err != nil {
		return fmt.Errorf("memory swap: %w", err)
	}
	if update && m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate && limit > 0 {
		cur, err := cgfs.ReadUint(dir, "memory.current")
		if err != nil {
			return err
		}
		if uint64(limit) < cur {
			return fmt.Errorf("memory limit %d is below the current usage %d (checkBeforeUpdate)", limit, cur)
		}
	}
	// With unlimited memory and no swap setting, lift the swap limit too.
	if limit == -1 && swap == 0 {
		swapMax = -1
	}
	if swapMax != 0 || swap != 0 {
		if !cgfs.Exists(dir, "memory.swap.max") {
			if swapMax > 0 {
				return errors.New("memory swap limit: this kernel has no swap accounting (memory.swap.max)")
			}
		} else if err := cgfs.Write(dir, "memory.swap.max", convert.V2Limit(swapMax)); err != nil {
			return err
		}
	}
	if limit != 0 {
		if err := cgfs.Write(dir, "memory.max", convert.V2Limit(limit)); err != nil {
			return err
		}
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		if err := cgfs.Write(dir, "memory.low", convert.V2Limit(*m.Reservation)); err != nil {
			return err
		}
	}
	// swappiness, disableOOMKiller, kernel and kernelTCP have no cgroup v2
	// files; like runc and Docker on v2 hosts, they are not applied.
	return nil
}

func setIO(dir string, b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		return errors.New("blkio leaf weight: not supported on cgroup v2")
	}
	bfq := cgfs.Exists(dir, "io.bfq.weight")
	if b.Weight != nil && *b.Weight != 0 {
		if bfq {
			// io.bfq.weight takes the v1 range [1, 1000] as is.
			if err := cgfs.Write(dir, "io.bfq.weight", strconv.Itoa(int(*b.Weight))); err != nil {
				return err
			}
		} else {
			if !cgfs.Exists(dir, "io.weight") {
				return errors.New("blkio weight: this kernel has no io.weight (needs the io cost model or BFQ)")
			}
			if err := cgfs.Write(dir, "io.weight", "default "+strconv.FormatUint(convert.BlkioWeightToIOWeight(*b.Weight), 10)); err != nil {
				return err
			}
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.LeafWeight != nil && *wd.LeafWeight != 0 {
			return errors.New("blkio leaf weight: not supported on cgroup v2")
		}
		if wd.Weight == nil || *wd.Weight == 0 {
			continue
		}
		file, w := "io.weight", convert.BlkioWeightToIOWeight(*wd.Weight)
		if bfq {
			file, w = "io.bfq.weight", uint64(*wd.Weight)
		}
		if err := cgfs.Write(dir, file, fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, w)); err != nil {
			return err
		}
	}
	for _, line := range IOMaxLines(b) {
		if err := cgfs.Write(dir, "io.max", line); err != nil {
			return err
		}
	}
	return nil
}

// IOMaxLines merges the four OCI throttle lists into io.max lines, one per
// device ("MAJ:MIN rbps=N wbps=N riops=N wiops=N"); rate 0 is "max".
func IOMaxLines(b *specs.LinuxBlockIO) []string {
	type dev struct{ maj, min int64 }
	var order []dev
	vals := map[dev][]string{}
	add := func(key string, list []specs.LinuxThrottleDevice) {
		for _, t := range list {
			d := dev{t.Major, t.Minor}
			if _, ok := vals[d]; !ok {
				order = append(order, d)
			}
			v := "max"
			if t.Rate != 0 {
				v = strconv.FormatUint(t.Rate, 10)
			}
			vals[d] = append(vals[d], key+"="+v)
		}
	}
	add("rbps", b.ThrottleReadBpsDevice)
	add("wbps", b.ThrottleWriteBpsDevice)
	add("riops", b.ThrottleReadIOPSDevice)
	add("wiops", b.ThrottleWriteIOPSDevice)
	var out []string
	for _, d := range order {
		out = append(out, fmt.Sprintf("%d:%d %s", d.maj, d.min, strings.Join(vals[d], " ")))
	}
	return out
}

// Freeze sets cgroup.freeze and, when freezing, waits until cgroup.events
// says the whole subtree is frozen.
func Freeze(dir string, frozen bool, timeout time.Duration) error {
	v := "0"
	if frozen {
		v = "1"
	}
	if err := cgfs.Write(dir, "cgroup.freeze", v); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for delay := 100 * time.Microsecond; ; delay = min(delay*2, 10*time.Millisecond) {
		got, err := Frozen(dir)
		if err != nil {
			return err
		}
		if got == frozen {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s did not reach frozen=%v within %v", dir, frozen, timeout)
		}
		time.Sleep(delay)
	}
}

// Frozen reads the "frozen" key of cgroup.events.
func Frozen(dir string) (bool, error) {
	m, err := cgfs.ReadKeyed(dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return m["frozen"] == 1, nil
}

// Kill writes cgroup.kill (Linux ≥ 5.14), which SIGKILLs every process in
// the subtree at once. ok is false when the file does not exist.
func Kill(dir string) (ok bool, err error) {
	if !cgfs.Exists(dir, "cgroup.kill") {
		return false, nil
	}
	return true, cgfs.Write(dir, "cgroup.kill", "1")
}

// OOMKills reads oom_kill of memory.events.
func OOMKills(dir string) (uint64, error) {
	m, err := cgfs.ReadKeyed(dir, "memory.events")
	if err != nil {
		return 0, err
	}
	return m["oom_kill"], nil
}

// Populated reports whether the subtree has processes (cgroup.events).
func Populated(dir string) (bool, error) {
	m, err := cgfs.ReadKeyed(dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return m["populated"] == 1, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func maxOrZero(v uint64) uint64 {
	if v == math.MaxUint64 {
		return 0
	}
	return v
}
