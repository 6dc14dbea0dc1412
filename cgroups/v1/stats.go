package v1

import (
	"math"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/cgroups/internal/cgfs"
	"github.com/berth-dev/berth/cgroups/stats"
)

// userHZ is USER_HZ, the unit of cpuacct.stat (100 on every Linux ABI).
const userHZ = 100

// Stats fills s from the controllers in p; controllers that are not
// mounted are left empty.
func Stats(p Paths, s *stats.Stats) error {
	if dir, ok := p["cpuacct"]; ok && exists(dir) {
		if err := cpuacctStats(dir, &s.CPU.Usage); err != nil {
			return err
		}
	}
	if dir, ok := p["cpu"]; ok && exists(dir) {
		if m, err := cgfs.ReadKeyed(dir, "cpu.stat"); err == nil {
			s.CPU.Throttling = stats.Throttling{
				Periods:          m["nr_periods"],
				ThrottledPeriods: m["nr_throttled"],
				ThrottledTime:    m["throttled_time"],
			}
		} else {
			return err
		}
	}
	if dir, ok := p["cpuset"]; ok && exists(dir) {
		if v, err := cgfs.Read(dir, "cpuset.cpus"); err == nil {
			s.CPUSet.CPUs = cgfs.ParseList(v)
		}
		if v, err := cgfs.Read(dir, "cpuset.mems"); err == nil {
			s.CPUSet.Mems = cgfs.ParseList(v)
		}
	}
	if dir, ok := p["memory"]; ok && exists(dir) {
		if err := memoryStats(dir, &s.Memory); err != nil {
			return err
		}
	}
	if dir, ok := p["pids"]; ok && exists(dir) {
		cur, err := cgfs.ReadUint(dir, "pids.current")
		if err != nil {
			return err
		}
		s.Pids.Current = cur
		if max, err := cgfs.ReadUint(dir, "pids.max"); err == nil && max != math.MaxUint64 {
			s.Pids.Limit = max
		}
	}
	if dir, ok := p["blkio"]; ok && exists(dir) {
		blkioStats(dir, &s.Blkio)
	}
	if dir, ok := p["hugetlb"]; ok && exists(dir) {
		for _, size := range cgfs.HugePageSizes() {
			pre := "hugetlb." + size + "."
			u, err := cgfs.ReadUint(dir, pre+"usage_in_bytes")
			if err != nil {
				continue
			}
			mx, _ := cgfs.ReadUint(dir, pre+"max_usage_in_bytes")
			fc, _ := cgfs.ReadUint(dir, pre+"failcnt")
			if s.Hugetlb == nil {
				s.Hugetlb = map[string]stats.Hugetlb{}
			}
			s.Hugetlb[size] = stats.Hugetlb{Usage: u, Max: mx, Failcnt: fc}
		}
	}
	return nil
}

func cpuacctStats(dir string, u *stats.CPUUsage) error {
	total, err := cgfs.ReadUint(dir, "cpuacct.usage")
	if err != nil {
		return err
	}
	u.Total = total
	if v, err := cgfs.Read(dir, "cpuacct.usage_percpu"); err == nil {
		u.Percpu = uints(v)
	}
	if v, err := cgfs.Read(dir, "cpuacct.usage_percpu_sys"); err == nil {
		u.PercpuKernel = uints(v)
	}
	if v, err := cgfs.Read(dir, "cpuacct.usage_percpu_user"); err == nil {
		u.PercpuUser = uints(v)
	}
	if m, err := cgfs.ReadKeyed(dir, "cpuacct.stat"); err == nil {
		u.User = m["user"] * (1e9 / userHZ)
		u.Kernel = m["system"] * (1e9 / userHZ)
	}
	return nil
}

func memoryStats(dir string, m *stats.Memory) error {
	raw, err := cgfs.ReadKeyed(dir, "memory.stat")
	if err != nil {
		return err
	}
	m.Raw = raw
	if v, ok := raw["total_cache"]; ok {
		m.Cache = v
	} else {
		m.Cache = raw["cache"]
	}
	entry := func(prefix string) (stats.MemoryEntry, bool) {
		var e stats.MemoryEntry
		u, err := cgfs.ReadUint(dir, prefix+"usage_in_bytes")
		if err != nil {
			return e, false
		}
		e.Usage = u
		e.Max, _ = cgfs.ReadUint(dir, prefix+"max_usage_in_bytes")
		e.Failcnt, _ = cgfs.ReadUint(dir, prefix+"failcnt")
		e.Limit, _ = cgfs.ReadUint(dir, prefix+"limit_in_bytes")
		return e, true
	}
	usage, ok := entry("memory.")
	if !ok {
		_, err := cgfs.Read(dir, "memory.usage_in_bytes")
		return err
	}
	m.Usage = usage
	m.Swap, _ = entry("memory.memsw.")
	m.Kernel, _ = entry("memory.kmem.")
	m.KernelTCP, _ = entry("memory.kmem.tcp.")
	return nil
}

func blkioStats(dir string, b *stats.Blkio) {
	read := func(file string) []stats.BlkioEntry {
		s, err := cgfs.Read(dir, file)
		if err != nil {
			return nil
		}
		return ParseBlkio(s)
	}
	// CFQ's files are gone from current kernels; the throttle files count
	// every I/O the cgroup issued, whatever the scheduler.
	if e := read("blkio.io_service_bytes_recursive"); len(e) > 0 {
		b.IoServiceBytesRecursive = e
		b.IoServicedRecursive = read("blkio.io_serviced_recursive")
		b.IoQueuedRecursive = read("blkio.io_queued_recursive")
		b.IoServiceTimeRecursive = read("blkio.io_service_time_recursive")
		b.IoWaitTimeRecursive = read("blkio.io_wait_time_recursive")
		b.IoMergedRecursive = read("blkio.io_merged_recursive")
		b.IoTimeRecursive = read("blkio.time_recursive")
		b.SectorsRecursive = read("blkio.sectors_recursive")
		return
	}
	if e := read("blkio.bfq.io_service_bytes_recursive"); len(e) > 0 {
		b.IoServiceBytesRecursive = e
		b.IoServicedRecursive = read("blkio.bfq.io_serviced_recursive")
		return
	}
	b.IoServiceBytesRecursive = read("blkio.throttle.io_service_bytes_recursive")
	b.IoServicedRecursive = read("blkio.throttle.io_serviced_recursive")
}

// ParseBlkio parses "MAJ:MIN Op Value" lines (and "MAJ:MIN Value" lines of
// the time/sectors files); the "Total" summary lines are dropped.
func ParseBlkio(s string) []stats.BlkioEntry {
	var out []stats.BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == "Total" {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := stats.BlkioEntry{}
		var err error
		if e.Major, err = strconv.ParseUint(maj, 10, 64); err != nil {
			continue
		}
		if e.Minor, err = strconv.ParseUint(min, 10, 64); err != nil {
			continue
		}
		val := f[1]
		if len(f) == 3 {
			e.Op, val = f[1], f[2]
		}
		if e.Value, err = strconv.ParseUint(val, 10, 64); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out
}

func uints(s string) []uint64 {
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}
