package inspect

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/proc"
)

// Cgroup layouts.
const (
	LayoutV1     = "v1"
	LayoutV2     = "v2"
	LayoutHybrid = "hybrid" // v1 controllers plus a cgroup2 mount
)

// CgroupHierarchy is one line of /proc/PID/cgroup and where that cgroup is
// on berth's own mounts.
type CgroupHierarchy struct {
	proc.CgroupEntry
	// Dir is the cgroup's directory on the host, "" when the hierarchy is
	// not mounted where berth can see it.
	Dir string `json:"dir"`
}

// Limit is one value read from a cgroup file. Value is -1 for "max" /
// unlimited.
type Limit struct {
	File  string `json:"file"`
	Value int64  `json:"value"`
}

// CPUInfo is the CPU bandwidth limit and its effect.
type CPUInfo struct {
	Dir         string `json:"dir"`
	QuotaUS     int64  `json:"quota_us"` // -1: no limit
	PeriodUS    int64  `json:"period_us"`
	Weight      int64  `json:"weight,omitempty"` // v2 cpu.weight
	Shares      int64  `json:"shares,omitempty"` // v1 cpu.shares
	NrPeriods   int64  `json:"nr_periods"`
	NrThrottled int64  `json:"nr_throttled"`
	ThrottledUS int64  `json:"throttled_us"`
	// UsageUS is the CPU time consumed by the cgroup (cpuacct.usage or
	// cpu.stat usage_usec), -1 when unknown.
	UsageUS int64 `json:"usage_us"`
}

// MemoryInfo is the memory limit and usage in bytes (-1: unlimited or
// unknown).
type MemoryInfo struct {
	Dir      string `json:"dir"`
	Limit    int64  `json:"limit"`
	Usage    int64  `json:"usage"`
	Peak     int64  `json:"peak"`
	SwapMax  int64  `json:"swap_limit"` // memory+swap (v1) or swap (v2)
	Failures int64  `json:"failures"`   // v1 failcnt, v2 events "max"
	OOMKills int64  `json:"oom_kills"`
}

// PidsInfo is the pids controller's limit and count.
type PidsInfo struct {
	Dir     string `json:"dir"`
	Max     int64  `json:"max"` // -1: no limit
	Current int64  `json:"current"`
}

// CgroupReport is `berth inspect cgroup`.
type CgroupReport struct {
	PID         int               `json:"pid"`
	Layout      string            `json:"layout"`
	Hierarchies []CgroupHierarchy `json:"hierarchies"`
	CPU         *CPUInfo          `json:"cpu,omitempty"`
	Memory      *MemoryInfo       `json:"memory,omitempty"`
	Pids        *PidsInfo         `json:"pids,omitempty"`
}

// cgroupMounts finds the cgroup filesystems mounted in berth's own mount
// namespace (the paths in /proc/PID/cgroup are relative to berth's cgroup
// namespace, so berth's mounts are the ones to resolve them against).
func cgroupMounts() ([]proc.Mount, error) {
	ms, err := proc.ReadMountinfo(os.Getpid())
	if err != nil {
		return nil, err
	}
	var out []proc.Mount
	for _, m := range ms {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			out = append(out, m)
		}
	}
	return out, nil
}

// DetectLayout says how cgroups are mounted here: only v1 hierarchies,
// only cgroup2, or both (hybrid: controllers on v1, cgroup2 alongside).
func DetectLayout() (string, error) {
	ms, err := cgroupMounts()
	if err != nil {
		return "", err
	}
	return layoutOf(ms), nil
}

func layoutOf(ms []proc.Mount) string {
	var v1, v2 bool
	for _, m := range ms {
		v1 = v1 || m.FSType == "cgroup"
		v2 = v2 || m.FSType == "cgroup2"
	}
	switch {
	case v1 && v2:
		return LayoutHybrid
	case v2:
		return LayoutV2
	case v1:
		return LayoutV1
	}
	return "none"
}

// dirFor finds the host directory of cgroup e among mounts ms.
func dirFor(e proc.CgroupEntry, ms []proc.Mount) string {
	for _, m := range ms {
		if e.Unified() != (m.FSType == "cgroup2") {
			continue
		}
		if !e.Unified() {
			all := true
			for _, c := range e.Controllers {
				all = all && m.HasSuperOption(c)
			}
			if !all {
				continue
			}
		}
		rel, ok := strings.CutPrefix(e.Path, m.Root)
		if m.Root == "/" {
			rel, ok = e.Path, true
		}
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
			continue // this mount shows another part of the hierarchy
		}
		return filepath.Join(m.MountPoint, rel)
	}
	return ""
}

// Cgroups reports process pid's cgroups, limits and usage.
func Cgroups(pid int) (*CgroupReport, error) {
	entries, err := proc.ReadCgroup(pid)
	if err != nil {
		return nil, err
	}
	ms, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	r := &CgroupReport{PID: pid, Layout: layoutOf(ms)}
	dirs := map[string]string{} // controller → dir ("" key: unified)
	for _, e := range entries {
		h := CgroupHierarchy{CgroupEntry: e, Dir: dirFor(e, ms)}
		r.Hierarchies = append(r.Hierarchies, h)
		if h.Dir == "" {
			continue
		}
		if e.Unified() {
			dirs[""] = h.Dir
		}
		for _, c := range e.Controllers {
			dirs[c] = h.Dir
		}
	}
	// A controller lives on v1 when a v1 hierarchy has it; otherwise on
	// cgroup2 when the unified cgroup enables it.
	v2 := dirs[""]
	v2has := func(c string) bool {
		if v2 == "" {
			return false
		}
		b, err := os.ReadFile(filepath.Join(v2, "cgroup.controllers"))
		return err == nil && contains(strings.Fields(string(b)), c)
	}
	if d := dirs["cpu"]; d != "" {
		r.CPU = cpuV1(d, dirs["cpuacct"])
	} else if v2has("cpu") {
		r.CPU = cpuV2(v2)
	}
	if d := dirs["memory"]; d != "" {
		r.Memory = memoryV1(d)
	} else if v2has("memory") {
		r.Memory = memoryV2(v2)
	}
	if d := dirs["pids"]; d != "" {
		r.Pids = pidsOf(d)
	} else if v2has("pids") {
		r.Pids = pidsOf(v2)
	}
	// The process may have exited while its files were read.
	if !proc.Exists(pid) {
		return nil, fmt.Errorf("process %d: %w", pid, proc.ErrNoProcess)
	}
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readInt reads a one-number cgroup file; "max" and v1's "unlimited"
// (anything from 2^62 on) are -1, a missing file -1.
func readInt(dir, name string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return -1
	}
	return parseLimit(strings.TrimSpace(string(b)))
}

func parseLimit(s string) int64 {
	if s == "max" {
		return -1
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v >= 1<<62 {
		return -1 // unreadable, or v1's "unlimited" (PAGE_COUNTER_MAX pages)
	}
	return v
}

// readKV reads a "key value" cgroup file (cpu.stat, memory.events).
func readKV(dir, name string) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

func kv(m map[string]int64, k string) int64 {
	if v, ok := m[k]; ok {
		return v
	}
	return -1
}

func cpuV1(dir, acct string) *CPUInfo {
	st := readKV(dir, "cpu.stat")
	c := &CPUInfo{
		Dir: dir, QuotaUS: readInt(dir, "cpu.cfs_quota_us"), PeriodUS: readInt(dir, "cpu.cfs_period_us"),
		Shares: readInt(dir, "cpu.shares"), NrPeriods: kv(st, "nr_periods"), NrThrottled: kv(st, "nr_throttled"),
		ThrottledUS: -1, UsageUS: -1,
	}
	if t := kv(st, "throttled_time"); t >= 0 {
		c.ThrottledUS = t / 1000 // v1 counts nanoseconds
	}
	if acct != "" {
		if u := readInt(acct, "cpuacct.usage"); u >= 0 {
			c.UsageUS = u / 1000
		}
	}
	return c
}

func cpuV2(dir string) *CPUInfo {
	c := &CPUInfo{Dir: dir, QuotaUS: -1, PeriodUS: -1, Weight: readInt(dir, "cpu.weight")}
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			c.QuotaUS, c.PeriodUS = parseLimit(f[0]), parseLimit(f[1])
		}
	}
	st := readKV(dir, "cpu.stat")
	c.NrPeriods, c.NrThrottled = kv(st, "nr_periods"), kv(st, "nr_throttled")
	c.ThrottledUS, c.UsageUS = kv(st, "throttled_usec"), kv(st, "usage_usec")
	return c
}

func memoryV1(dir string) *MemoryInfo {
	m := &MemoryInfo{
		Dir: dir, Limit: readInt(dir, "memory.limit_in_bytes"), Usage: readInt(dir, "memory.usage_in_bytes"),
		Peak: readInt(dir, "memory.max_usage_in_bytes"), SwapMax: readInt(dir, "memory.memsw.limit_in_bytes"),
		Failures: readInt(dir, "memory.failcnt"), OOMKills: kv(readKV(dir, "memory.oom_control"), "oom_kill"),
	}
	return m
}

func memoryV2(dir string) *MemoryInfo {
	ev := readKV(dir, "memory.events")
	return &MemoryInfo{
		Dir: dir, Limit: readInt(dir, "memory.max"), Usage: readInt(dir, "memory.current"),
		Peak: readInt(dir, "memory.peak"), SwapMax: readInt(dir, "memory.swap.max"),
		Failures: kv(ev, "max"), OOMKills: kv(ev, "oom_kill"),
	}
}

func pidsOf(dir string) *PidsInfo {
	return &PidsInfo{Dir: dir, Max: readInt(dir, "pids.max"), Current: readInt(dir, "pids.current")}
}

func fmtBytes(v int64) string {
	switch {
	case v < 0:
		return "unlimited"
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(v)/(1<<10))
	}
	return fmt.Sprintf("%d B", v)
}

func fmtMax(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// Summary says the CPU limit in words: "quota 1000us / period 2000us
// (50% of one CPU)" or "no limit".
func (c *CPUInfo) Summary() string {
	if c == nil {
		return "no cpu controller"
	}
	if c.QuotaUS < 0 || c.PeriodUS <= 0 {
		return fmt.Sprintf("no limit (period %sus)", fmtMax(c.PeriodUS))
	}
	return fmt.Sprintf("quota %dus / period %dus (%.0f%% of one CPU)", c.QuotaUS, c.PeriodUS, 100*float64(c.QuotaUS)/float64(c.PeriodUS))
}

// WriteCgroups prints the report: /proc/PID/cgroup with the directory of
// each cgroup, then the limits and usage.
func WriteCgroups(w io.Writer, r *CgroupReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cgroups of %d (layout %s)\n", r.PID, r.Layout)
	for _, h := range r.Hierarchies {
		dir := h.Dir
		if dir == "" {
			dir = "(not mounted here)"
		}
		fmt.Fprintf(&b, "  %s\n      %s\n", h.CgroupEntry, dir)
	}
	if c := r.CPU; c != nil {
		fmt.Fprintf(&b, "cpu     %s\n", c.Summary())
		fmt.Fprintf(&b, "        throttled %s of %s periods (%s us)", fmtMax(c.NrThrottled), fmtMax(c.NrPeriods), fmtMax(c.ThrottledUS))
		if c.UsageUS >= 0 {
			fmt.Fprintf(&b, "; usage %.3fs", float64(c.UsageUS)/1e6)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("cpu     no cpu controller\n")
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(&b, "memory  limit %s; usage %s (peak %s); failures %s, oom kills %s\n",
			fmtBytes(m.Limit), fmtBytes(m.Usage), fmtBytes(m.Peak), fmtMax(m.Failures), fmtMax(m.OOMKills))
	} else {
		b.WriteString("memory  no memory controller\n")
	}
	if p := r.Pids; p != nil {
		cur := "unknown"
		if p.Current >= 0 {
			cur = fmt.Sprint(p.Current)
		}
		fmt.Fprintf(&b, "pids    max %s; current %s\n", fmtMax(p.Max), cur)
	} else {
		b.WriteString("pids    no pids controller\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
