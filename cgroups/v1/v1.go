// Package v1 applies OCI resources to cgroup v1 hierarchies and reads their
// statistics. It is given, per controller, the absolute directory of the
// container's cgroup (already created) and writes only files inside those
// directories; it does not create, join or remove cgroups (package cgroups
// does) and knows nothing about containers.
package v1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/cgroups/internal/cgfs"
)

// Controllers are the v1 controllers (and the systemd named hierarchy) a
// container's cgroup is made in when the host mounts them.
var Controllers = []string{
	"cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids",
	"hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "name=systemd",
}

// Paths maps a controller name to the container's cgroup directory in the
// hierarchy that holds it.
type Paths map[string]string

func (p Paths) need(ctrl, what string) (string, error) {
	dir, ok := p[ctrl]
	if !ok || dir == "" {
		return "", fmt.Errorf("%s needs the cgroup v1 %s controller, which is not mounted on this host", what, ctrl)
	}
	return dir, nil
}

// Set applies r. update is true for `update` on a running container
// (enables checkBeforeUpdate and keeps memory/swap write order safe).
// Devices are not handled here (package devices does).
func Set(p Paths, r *specs.LinuxResources, update bool) error {
	if r == nil {
		return nil
	}
	if err := setCPU(p, r.CPU); err != nil {
		return err
	}
	if err := setMemory(p, r.Memory, update); err != nil {
		return err
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		dir, err := p.need("pids", "pids limit")
		if err != nil {
			return err
		}
		v := "max"
		if *r.Pids.Limit > 0 {
			v = strconv.FormatInt(*r.Pids.Limit, 10)
		}
		if err := cgfs.Write(dir, "pids.max", v); err != nil {
			return err
		}
	}
	if err := setBlkio(p, r.BlockIO); err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		dir, err := p.need("hugetlb", "hugepage limit")
		if err != nil {
			return err
		}
		v := strconv.FormatUint(h.Limit, 10)
		if err := cgfs.Write(dir, "hugetlb."+h.Pagesize+".limit_in_bytes", v); err != nil {
			return err
		}
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.limit_in_bytes"; cgfs.Exists(dir, rsvd) {
			if err := cgfs.Write(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			dir, err := p.need("net_cls", "network classID")
			if err != nil {
				return err
			}
			if err := cgfs.Write(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
				return err
			}
		}
		for _, prio := range n.Priorities {
			dir, err := p.need("net_prio", "network priorities")
			if err != nil {
				return err
			}
			if err := cgfs.Write(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", prio.Name, prio.Priority)); err != nil {
				return err
			}
		}
	}
	if len(r.Rdma) > 0 {
		dir, err := p.need("rdma", "rdma limits")
		if err != nil {
			return err
		}
		for _, line := range cgfs.RdmaLines(r.Rdma) {
			if err := cgfs.Write(dir, "rdma.max", line); err != nil {
				return err
			}
		}
	}
	return nil
}

func setCPU(p Paths, c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Cpus != "" || c.Mems != "" {
		dir, err := p.need("cpuset", "cpus/mems")
		if err != nil {
			return err
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
	}
	needCPU := c.Shares != nil && *c.Shares != 0 || c.Quota != nil || c.Period != nil && *c.Period != 0 ||
		c.Burst != nil || c.RealtimeRuntime != nil || c.RealtimePeriod != nil || c.Idle != nil
	if !needCPU {
		return nil
	}
	dir, err := p.need("cpu", "cpu shares/quota/period")
	if err != nil {
		return err
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := cgfs.Write(dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
	}
	// The kernel checks quota/period against the parent's bandwidth on each
	// write, so a period that is refused before the new quota is written is
	// retried after it.
	periodDone := true
	if c.Period != nil && *c.Period != 0 {
		if err := cgfs.Write(dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)); err != nil {
			if !errors.Is(err, unix.EINVAL) || c.Quota == nil {
				return err
			}
			periodDone = false
		}
	}
	if c.Quota != nil {
		q := *c.Quota
		if q == 0 {
			q = -1
		}
		if err := cgfs.Write(dir, "cpu.cfs_quota_us", strconv.FormatInt(q, 10)); err != nil {
			return err
		}
	}
	if !periodDone {
		if err := cgfs.Write(dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := cgfs.Write(dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		if err := cgfs.Write(dir, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		if err := cgfs.Write(dir, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if !cgfs.Exists(dir, "cpu.idle") {
			return errors.New("cpu idle: this kernel has no cpu.idle (needs Linux 5.15)")
		}
		if err := cgfs.Write(dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return nil
}

func setMemory(p Paths, m *specs.LinuxMemory, update bool) error {
	if m == nil {
		return nil
	}
	any := m.Limit != nil || m.Reservation != nil || m.Swap != nil || m.Swappiness != nil ||
		m.DisableOOMKiller != nil || m.KernelTCP != nil || m.UseHierarchy != nil
	if !any {
		return nil
	}
	dir, err := p.need("memory", "memory limits")
	if err != nil {
		return err
	}
	var limit, swap int64
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil {
		swap = *m.Swap
	}
	// Unlimited memory with no swap setting lifts the memory+swap limit too,
	// otherwise an old memsw limit would still cap the container.
	if limit == -1 && swap == 0 && cgfs.Exists(dir, "memory.memsw.limit_in_bytes") {
		swap = -1
	}
	if update && m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate && limit > 0 {
		usage, err := cgfs.ReadUint(dir, "memory.usage_in_bytes")
		if err != nil {
			return err
		}
		if uint64(limit) < usage {
			return fmt.Errorf("memory limit %d is below the current usage %d (checkBeforeUpdate)", limit, usage)
		}
	}
	if swap != 0 && !cgfs.Exists(dir, "memory.memsw.limit_in_bytes") {
		return errors.New("memory+swap limit: this kernel has no swap accounting (memory.memsw.limit_in_bytes; boot with swapaccount=1)")
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return cgfs.Write(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		return cgfs.Write(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
	}
	// memory.limit_in_bytes must stay ≤ memory.memsw.limit_in_bytes at every
	// step: raise memsw first when the new limit is above the current memsw.
	swapFirst := false
	if swap != 0 {
		cur, err := cgfs.ReadUint(dir, "memory.memsw.limit_in_bytes")
		if err != nil {
			return err
		}
		swapFirst = swap == -1 || limit == -1 || (limit > 0 && uint64(limit) > cur)
	}
	if swapFirst {
		if err := writeSwap(); err != nil {
			return err
		}
		if err := writeLimit(); err != nil {
			return err
		}
	} else {
		if err := writeLimit(); err != nil {
			return err
		}
		if err := writeSwap(); err != nil {
			return err
		}
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		if err := cgfs.Write(dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10)); err != nil {
			return err
		}
	}
	if m.KernelTCP != nil && *m.KernelTCP != 0 {
		if err := cgfs.Write(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*m.KernelTCP, 10)); err != nil {
			return err
		}
	}
	if m.Swappiness != nil {
		if err := cgfs.Write(dir, "memory.swappiness", strconv.FormatUint(*m.Swappiness, 10)); err != nil {
			return err
		}
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		if err := cgfs.Write(dir, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	if m.UseHierarchy != nil {
		v := "0"
		if *m.UseHierarchy {
			v = "1"
		}
		if err := cgfs.Write(dir, "memory.use_hierarchy", v); err != nil {
			return err
		}
	}
	return nil
}

func setBlkio(p Paths, b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	if b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 && len(b.ThrottleReadBpsDevice) == 0 &&
		len(b.ThrottleWriteBpsDevice) == 0 && len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0 {
		return nil
	}
	dir, err := p.need("blkio", "blockIO limits")
	if err != nil {
		return err
	}
	weightFile := func(name string) (string, error) {
		for _, f := range []string{"blkio." + name, "blkio.bfq." + name} {
			if cgfs.Exists(dir, f) {
				return f, nil
			}
		}
		return "", fmt.Errorf("blkio %s: not supported by this kernel (no blkio.%s or blkio.bfq.%s: proportional weights need the BFQ I/O scheduler)", name, name, name)
	}
	if b.Weight != nil && *b.Weight != 0 {
		f, err := weightFile("weight")
		if err != nil {
			return err
		}
		if err := cgfs.Write(dir, f, strconv.Itoa(int(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if !cgfs.Exists(dir, "blkio.leaf_weight") {
			return errors.New("blkio leaf weight: not supported by this kernel (blkio.leaf_weight was CFQ-only and is gone)")
		}
		if err := cgfs.Write(dir, "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight))); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil && *wd.Weight != 0 {
			f, err := weightFile("weight_device")
			if err != nil {
				return err
			}
			if err := cgfs.Write(dir, f, fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil && *wd.LeafWeight != 0 {
			if err := cgfs.Write(dir, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := cgfs.Write(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// PrepareCpuset fills cpuset.cpus and cpuset.mems of a freshly made cpuset
// cgroup from its parent: v1 refuses tasks in a cpuset with empty sets.
func PrepareCpuset(dir string) error {
	parent := filepath.Dir(dir)
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := cgfs.Read(dir, f)
		if err != nil {
			return err
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		v, err := cgfs.Read(parent, f)
		if err != nil {
			return err
		}
		if v = strings.TrimSpace(v); v == "" {
			return fmt.Errorf("prepare cpuset %s: parent %s has an empty %s", dir, parent, f)
		}
		if err := cgfs.Write(dir, f, v); err != nil {
			return err
		}
	}
	return nil
}

// Freeze writes FROZEN (or THAWED) to freezer.state.
func Freeze(dir string, frozen bool) error {
	v := "THAWED"
	if frozen {
		v = "FROZEN"
	}
	return cgfs.Write(dir, "freezer.state", v)
}

// FreezerState reads freezer.state: THAWED, FREEZING or FROZEN.
func FreezerState(dir string) (string, error) {
	s, err := cgfs.Read(dir, "freezer.state")
	return strings.TrimSpace(s), err
}

// OOMKills reads the oom_kill counter of memory.oom_control (Linux ≥ 4.13).
func OOMKills(dir string) (uint64, error) {
	m, err := cgfs.ReadKeyed(dir, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	v, ok := m["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("%s/memory.oom_control has no oom_kill counter (kernel older than 4.13)", dir)
	}
	return v, nil
}

// exists reports whether a directory exists (a cgroup may be gone).
func exists(dir string) bool {
	_, err := os.Stat(dir)
	return err == nil
}
