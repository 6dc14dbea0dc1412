package v2

import (
	"strconv"
	"strings"

	"github.com/berth-dev/berth/cgroups/convert"
	"github.com/berth-dev/berth/cgroups/internal/cgfs"
	"github.com/berth-dev/berth/cgroups/stats"
)

// Stats fills s from the files of the controllers enabled in dir.
func Stats(dir string, s *stats.Stats) error {
	ctrls, err := Controllers(dir)
	if err != nil {
		return err
	}
	has := map[string]bool{}
	for _, c := range ctrls {
		has[c] = true
	}
	// cpu.stat exists without the cpu controller too (usage only).
	if m, err := cgfs.ReadKeyed(dir, "cpu.stat"); err == nil {
		s.CPU.Usage.Total = m["usage_usec"] * 1000
		s.CPU.Usage.User = m["user_usec"] * 1000
		s.CPU.Usage.Kernel = m["system_usec"] * 1000
		s.CPU.Throttling = stats.Throttling{
			Periods:          m["nr_periods"],
			ThrottledPeriods: m["nr_throttled"],
			ThrottledTime:    m["throttled_usec"] * 1000,
		}
	} else {
		return err
	}
	if has["cpuset"] {
		if v, err := cgfs.Read(dir, "cpuset.cpus.effective"); err == nil {
			s.CPUSet.CPUs = cgfs.ParseList(v)
		}
		if v, err := cgfs.Read(dir, "cpuset.mems.effective"); err == nil {
			s.CPUSet.Mems = cgfs.ParseList(v)
		}
	}
	if has["memory"] {
		if err := memoryStats(dir, &s.Memory); err != nil {
			return err
		}
	}
	if has["pids"] {
		cur, err := cgfs.ReadUint(dir, "pids.current")
		if err != nil {
			return err
		}
		s.Pids.Current = cur
		if mx, err := cgfs.ReadUint(dir, "pids.max"); err == nil {
			s.Pids.Limit = maxOrZero(mx)
		}
	}
	if has["io"] {
		if v, err := cgfs.Read(dir, "io.stat"); err == nil {
			s.Blkio.IoServiceBytesRecursive, s.Blkio.IoServicedRecursive = ParseIOStat(v)
		}
	}
	if has["hugetlb"] {
		for _, size := range cgfs.HugePageSizes() {
			pre := "hugetlb." + size + "."
			cur, err := cgfs.ReadUint(dir, pre+"current")
			if err != nil {
				continue
			}
			h := stats.Hugetlb{Usage: cur}
			if ev, err := cgfs.ReadKeyed(dir, pre+"events"); err == nil {
				h.Failcnt = ev["max"]
			}
			if s.Hugetlb == nil {
				s.Hugetlb = map[string]stats.Hugetlb{}
			}
			s.Hugetlb[size] = h
		}
	}
	return nil
}

func memoryStats(dir string, m *stats.Memory) error {
	raw, err := cgfs.ReadKeyed(dir, "memory.stat")
	if err != nil {
		return err
	}
	m.Raw = raw
	m.Cache = raw["file"]
	cur, err := cgfs.ReadUint(dir, "memory.current")
	if err != nil {
		return err
	}
	max, _ := cgfs.ReadUint(dir, "memory.max")
	m.Usage = stats.MemoryEntry{Usage: cur, Limit: max}
	if peak, err := cgfs.ReadUint(dir, "memory.peak"); err == nil {
		m.Usage.Max = peak
	}
	if ev, err := cgfs.ReadKeyed(dir, "memory.events"); err == nil {
		m.Usage.Failcnt = ev["max"]
	}
	// runc reports swap as memory+swap on v2 too, like v1's memsw.
	if sc, err := cgfs.ReadUint(dir, "memory.swap.current"); err == nil {
		smax, _ := cgfs.ReadUint(dir, "memory.swap.max")
		m.Swap = stats.MemoryEntry{Usage: sc + cur, Limit: convert.SwapFromV2(smax, max)}
		if ev, err := cgfs.ReadKeyed(dir, "memory.swap.events"); err == nil {
			m.Swap.Failcnt = ev["max"]
		}
	}
	m.Kernel.Usage = raw["kernel"]
	m.KernelTCP.Usage = raw["sock"]
	return nil
}

// ParseIOStat turns io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...")
// into runc's service-bytes and serviced entries (ops Read and Write).
func ParseIOStat(s string) (bytes, ios []stats.BlkioEntry) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 10, 64)
		mi, err2 := strconv.ParseUint(min, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := stats.BlkioEntry{Major: ma, Minor: mi, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				bytes = append(bytes, e)
			case "wbytes":
				e.Op = "Write"
				bytes = append(bytes, e)
			case "rios":
				e.Op = "Read"
				ios = append(ios, e)
			case "wios":
				e.Op = "Write"
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios
}
