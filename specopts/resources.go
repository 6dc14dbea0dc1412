package specopts

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// WithResources maps --cpus, --cpu-period, --cpu-quota, --cpu-shares,
// --cpuset-cpus/-mems, -m, --memory-swap, --memory-reservation,
// --memory-swappiness, --oom-kill-disable, --pids-limit and --blkio-weight
// to linux.resources, with dockerd's validation and messages.
func WithResources(r container.Resources) Opt {
	return func(s *specs.Spec) error {
		res := s.Linux.Resources
		if r.NanoCPUs != 0 && (r.CPUPeriod != 0 || r.CPUQuota != 0) {
			return invalid("conflicting options: Nano CPUs and CPU Period cannot both be set")
		}
		if r.NanoCPUs < 0 {
			return invalid("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu(), ncpu())
		}
		if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
			return invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
		}
		if r.CPUQuota != 0 && r.CPUQuota > 0 && r.CPUQuota < 1000 {
			return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
		}
		if r.CPUShares < 0 {
			return invalid("invalid CPU shares (%d): must be positive", r.CPUShares)
		}
		cpu := &specs.LinuxCPU{}
		setCPU := false
		if r.NanoCPUs > 0 {
			if r.NanoCPUs > int64(ncpu())*1e9 {
				return invalid("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu(), ncpu())
			}
			period := uint64(100000)
			quota := r.NanoCPUs * int64(period) / 1e9
			cpu.Period, cpu.Quota, setCPU = &period, &quota, true
		}
		if r.CPUPeriod > 0 {
			p := uint64(r.CPUPeriod)
			cpu.Period, setCPU = &p, true
		}
		if r.CPUQuota != 0 {
			q := r.CPUQuota
			cpu.Quota, setCPU = &q, true
		}
		if r.CPUShares > 0 {
			sh := uint64(r.CPUShares)
			if sh < 2 {
				sh = 2
			}
			cpu.Shares, setCPU = &sh, true
		}
		if r.CpusetCpus != "" {
			if err := checkCPUSet(r.CpusetCpus, ncpu()); err != nil {
				return invalid("invalid value %s for cpuset cpus: %v", r.CpusetCpus, err)
			}
			cpu.Cpus, setCPU = r.CpusetCpus, true
		}
		if r.CpusetMems != "" {
			if err := checkCPUSet(r.CpusetMems, 1<<10); err != nil {
				return invalid("invalid value %s for cpuset mems: %v", r.CpusetMems, err)
			}
			cpu.Mems, setCPU = r.CpusetMems, true
		}
		if setCPU {
			res.CPU = cpu
		}

		if r.Memory != 0 && r.Memory < 6*1024*1024 {
			return invalid("minimum memory limit allowed is 6MB")
		}
		if r.MemorySwap > 0 && r.Memory == 0 {
			return invalid("you should always set the memory limit when using memoryswap limit")
		}
		if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
			return invalid("minimum memoryswap limit should be larger than memory limit, see usage")
		}
		if r.MemorySwappiness != nil && (*r.MemorySwappiness < -1 || *r.MemorySwappiness > 100) {
			return invalid("invalid value: %d, valid memory swappiness range is 0-100", *r.MemorySwappiness)
		}
		if r.MemoryReservation != 0 && r.MemoryReservation < 6*1024*1024 {
			return invalid("minimum memory reservation allowed is 6MB")
		}
		if r.Memory > 0 && r.MemoryReservation > r.Memory {
			return invalid("minimum memory limit can not be less than memory reservation limit, see usage")
		}
		mem := &specs.LinuxMemory{}
		setMem := false
		if r.Memory > 0 {
			m := r.Memory
			mem.Limit, setMem = &m, true
			// Docker gives as much swap as memory unless told otherwise.
			sw := r.Memory * 2
			if r.MemorySwap != 0 {
				sw = r.MemorySwap
			}
			mem.Swap = &sw
		}
		if r.MemoryReservation > 0 {
			m := r.MemoryReservation
			mem.Reservation, setMem = &m, true
		}
		if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
			v := uint64(*r.MemorySwappiness)
			mem.Swappiness, setMem = &v, true
		}
		if r.OomKillDisable != nil && *r.OomKillDisable {
			t := true
			mem.DisableOOMKiller, setMem = &t, true
		}
		if setMem {
			res.Memory = mem
		}
		if r.PidsLimit != nil && *r.PidsLimit > 0 {
			res.Pids = &specs.LinuxPids{Limit: r.PidsLimit}
		}
		if r.BlkioWeight != 0 {
			if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
				return invalid("range of blkio weight is from 10 to 1000")
			}
			w := r.BlkioWeight
			res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		}
		return nil
	}
}

func ncpu() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
		return set.Count()
	}
	return 1
}

// checkCPUSet validates a list like "0-2,4" against n available ids.
func checkCPUSet(v string, n int) error {
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return fmt.Errorf("invalid format")
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return fmt.Errorf("invalid format")
			}
		}
		if b >= n {
			return fmt.Errorf("requested CPUs are not available - requested %s, available: 0-%d", v, n-1)
		}
	}
	return nil
}

// rlimitNames maps Docker's ulimit names to OCI rlimit types.
var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}

var rlimitNumbers = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": 10, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": 12, "nice": 13, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": 14, "rttime": 15, "sigpending": 11,
	"stack": unix.RLIMIT_STACK, "as": unix.RLIMIT_AS,
}

// WithUlimits sets process rlimits from the daemon's default-ulimits
// overridden by --ulimit. A hard limit above the daemon's own hard limit
// is refused with a clear error when the daemon cannot raise it (no
// CAP_SYS_RESOURCE on this kind of machine), instead of failing later in
// the runtime.
func WithUlimits(defaults, user []*container.Ulimit, canRaise bool) Opt {
	return func(s *specs.Spec) error {
		merged := map[string]*container.Ulimit{}
		var order []string
		for _, list := range [][]*container.Ulimit{defaults, user} {
			for _, u := range list {
				if u == nil {
					continue
				}
				if _, ok := rlimitNames[u.Name]; !ok {
					return invalid("invalid ulimit type: %s", u.Name)
				}
				if u.Soft > u.Hard && u.Hard >= 0 {
					return invalid("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
				}
				if _, seen := merged[u.Name]; !seen {
					order = append(order, u.Name)
				}
				merged[u.Name] = u
			}
		}
		for _, name := range order {
			u := merged[name]
			hard, soft := uint64(u.Hard), uint64(u.Soft)
			if u.Hard < 0 {
				hard = unix.RLIM_INFINITY
			}
			if u.Soft < 0 {
				soft = unix.RLIM_INFINITY
			}
			if !canRaise {
				var cur unix.Rlimit
				if err := unix.Getrlimit(rlimitNumbers[name], &cur); err == nil && hard > cur.Max {
					return invalid("ulimit %s=%d:%d: the hard limit is above the daemon's own (%d) and the daemon lacks CAP_SYS_RESOURCE to raise it; use a hard limit <= %d",
						name, u.Soft, u.Hard, cur.Max, cur.Max)
				}
			}
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: rlimitNames[name], Hard: hard, Soft: soft})
		}
		return nil
	}
}

// WithCgroupsPath places the container's cgroup.
func WithCgroupsPath(p string) Opt {
	return func(s *specs.Spec) error {
		s.Linux.CgroupsPath = p
		return nil
	}
}

// WithSysctls copies namespaced sysctls.
func WithSysctls(m map[string]string) Opt {
	return func(s *specs.Spec) error {
		if len(m) == 0 {
			return nil
		}
		s.Linux.Sysctl = map[string]string{}
		for k, v := range m {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}
}

// WithOOMScoreAdj sets the OOM score adjustment.
func WithOOMScoreAdj(v int) Opt {
	return func(s *specs.Spec) error {
		if v < -1000 || v > 1000 {
			return invalid("invalid value %d, range for oom score adj is [-1000, 1000]", v)
		}
		if v != 0 {
			s.Process.OOMScoreAdj = &v
		}
		return nil
	}
}
