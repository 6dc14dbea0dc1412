package cgroups

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/convert"
)

// Limits of what a sane configuration asks; the kernel's own ranges where
// it has them.
const (
	minCFSPeriod = 1000    // µs, kernel minimum
	maxCFSPeriod = 1000000 // µs, kernel maximum
	minCFSQuota  = 1000    // µs, kernel minimum
	maxRTPeriod  = 1 << 31 // µs
)

var (
	cpuListRe  = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	pageSizeRe = regexp.MustCompile(`^[1-9][0-9]*(KB|MB|GB|TB|B)$`)
	unifiedRe  = regexp.MustCompile(`^[a-z_]+\.[A-Za-z0-9_.]+$`)
	rdmaDevRe  = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	ifaceRe    = regexp.MustCompile(`^[^\s/]{1,15}$`)
)

// v2Controllers are the controllers a unified key may address.
var v2Controllers = map[string]bool{
	"cpu": true, "cpuset": true, "io": true, "memory": true, "hugetlb": true,
	"pids": true, "rdma": true, "misc": true,
}

// cgroup.* files a container must not set through "unified": they move
// processes, change delegation, or kill/freeze (the runtime's own job).
var forbiddenCore = map[string]bool{
	"cgroup.procs": true, "cgroup.threads": true, "cgroup.subtree_control": true,
	"cgroup.kill": true, "cgroup.freeze": true, "cgroup.type": true,
	"cgroup.controllers": true, "cgroup.events": true, "cgroup.stat": true,
}

// ValidateResources checks r for values no kernel accepts or no user means
// (negative sizes, periods out of range, malformed lists, unknown unified
// keys), without touching the system. Layout-specific checks are in New.
func ValidateResources(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validateCPU(r.CPU); err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	if err := validateMemory(r.Memory); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit < -1 {
		return fmt.Errorf("pids: limit %d: want -1 or 0 (unlimited) or a positive count", *r.Pids.Limit)
	}
	if err := validateBlkio(r.BlockIO); err != nil {
		return fmt.Errorf("blockIO: %w", err)
	}
	seen := map[string]bool{}
	for _, h := range r.HugepageLimits {
		if !pageSizeRe.MatchString(h.Pagesize) {
			return fmt.Errorf("hugepageLimits: page size %q: want a size like 2MB or 1GB", h.Pagesize)
		}
		if seen[h.Pagesize] {
			return fmt.Errorf("hugepageLimits: page size %s given twice", h.Pagesize)
		}
		seen[h.Pagesize] = true
	}
	if n := r.Network; n != nil {
		for _, p := range n.Priorities {
			if !ifaceRe.MatchString(p.Name) {
				return fmt.Errorf("network: priority for interface %q: not an interface name", p.Name)
			}
		}
	}
	for dev := range r.Rdma {
		if !rdmaDevRe.MatchString(dev) {
			return fmt.Errorf("rdma: device name %q is not valid", dev)
		}
	}
	for k, v := range r.Unified {
		if err := validateUnified(k, v); err != nil {
			return err
		}
	}
	for i, d := range r.Devices {
		if err := validateDevice(d); err != nil {
			return fmt.Errorf("devices[%d]: %w", i, err)
		}
	}
	return nil
}

func validateUnified(k, v string) error {
	if !unifiedRe.MatchString(k) || strings.Contains(k, "..") {
		return fmt.Errorf("unified: key %q is not a cgroup v2 file name (want controller.file, e.g. memory.high)", k)
	}
	ctrl, _, _ := strings.Cut(k, ".")
	if ctrl == "cgroup" {
		if forbiddenCore[k] {
			return fmt.Errorf("unified: key %q may not be set by a container configuration", k)
		}
	} else if !v2Controllers[ctrl] {
		return fmt.Errorf("unified: key %q: unknown controller %q", k, ctrl)
	}
	if strings.ContainsAny(v, "\x00") || len(v) > 4096 {
		return fmt.Errorf("unified: value of %q is not valid", k)
	}
	return nil
}

func validateCPU(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares > convert.MaxShares {
		return fmt.Errorf("shares %d out of range [%d, %d]", *c.Shares, convert.MinShares, convert.MaxShares)
	}
	if c.Period != nil && *c.Period != 0 && (*c.Period < minCFSPeriod || *c.Period > maxCFSPeriod) {
		return fmt.Errorf("period %dµs out of range [%d, %d]", *c.Period, minCFSPeriod, maxCFSPeriod)
	}
	if c.Quota != nil {
		q := *c.Quota
		if q < -1 {
			return fmt.Errorf("quota %d: want -1 (unlimited) or at least %dµs", q, minCFSQuota)
		}
		if q > 0 && q < minCFSQuota {
			return fmt.Errorf("quota %dµs is below the kernel minimum of %dµs", q, minCFSQuota)
		}
	}
	if c.Burst != nil && *c.Burst > 0 {
		if c.Quota == nil || *c.Quota <= 0 {
			return fmt.Errorf("burst %dµs needs a quota", *c.Burst)
		}
		if int64(*c.Burst) > *c.Quota {
			return fmt.Errorf("burst %dµs is larger than the quota %dµs", *c.Burst, *c.Quota)
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime < -1 {
		return fmt.Errorf("realtime runtime %d: want -1 or a time in µs", *c.RealtimeRuntime)
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod > maxRTPeriod {
		return fmt.Errorf("realtime period %dµs is out of range", *c.RealtimePeriod)
	}
	if c.RealtimeRuntime != nil && c.RealtimePeriod != nil && *c.RealtimePeriod != 0 && *c.RealtimeRuntime > int64(*c.RealtimePeriod) {
		return fmt.Errorf("realtime runtime %dµs exceeds the realtime period %dµs", *c.RealtimeRuntime, *c.RealtimePeriod)
	}
	if c.Cpus != "" && !validList(c.Cpus) {
		return fmt.Errorf("cpus %q: want a list like 0-3,5", c.Cpus)
	}
	if c.Mems != "" && !validList(c.Mems) {
		return fmt.Errorf("mems %q: want a list like 0-1", c.Mems)
	}
	if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
		return fmt.Errorf("idle %d: want 0 or 1", *c.Idle)
	}
	return nil
}

func validList(s string) bool {
	if !cpuListRe.MatchString(s) {
		return false
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 10, 32)
		b, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil || b < a {
			return false
		}
	}
	return true
}

func validateMemory(m *specs.LinuxMemory) error {
	if m == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}, {"kernel", m.Kernel}, {"kernelTCP", m.KernelTCP}} {
		if f.v != nil && *f.v < -1 {
			return fmt.Errorf("%s %d: want -1 (unlimited) or a size in bytes", f.name, *f.v)
		}
	}
	if m.Swappiness != nil && *m.Swappiness > 100 {
		return fmt.Errorf("swappiness %d out of range [0, 100]", *m.Swappiness)
	}
	if m.Swap != nil && *m.Swap > 0 && m.Limit != nil && *m.Limit > 0 && *m.Swap < *m.Limit {
		return fmt.Errorf("swap (memory+swap) %d must be at least the memory limit %d", *m.Swap, *m.Limit)
	}
	if m.Reservation != nil && *m.Reservation > 0 && m.Limit != nil && *m.Limit > 0 && *m.Reservation > *m.Limit {
		return fmt.Errorf("reservation %d is above the limit %d", *m.Reservation, *m.Limit)
	}
	return nil
}

func validateBlkio(b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	weight := func(what string, w *uint16) error {
		if w != nil && *w != 0 && (*w < convert.MinBlkio || *w > convert.MaxBlkio) {
			return fmt.Errorf("%s %d out of range [%d, %d]", what, *w, convert.MinBlkio, convert.MaxBlkio)
		}
		return nil
	}
	if err := weight("weight", b.Weight); err != nil {
		return err
	}
	if err := weight("leafWeight", b.LeafWeight); err != nil {
		return err
	}
	dev := func(maj, min int64) error {
		if maj < 0 || min < 0 || maj > 0xfff || min > 0xfffff {
			return fmt.Errorf("device %d:%d is not a valid block device number", maj, min)
		}
		return nil
	}
	for _, d := range b.WeightDevice {
		if err := dev(d.Major, d.Minor); err != nil {
			return err
		}
		if err := weight("device weight", d.Weight); err != nil {
			return err
		}
		if err := weight("device leafWeight", d.LeafWeight); err != nil {
			return err
		}
	}
	for _, l := range [][]specs.LinuxThrottleDevice{b.ThrottleReadBpsDevice, b.ThrottleWriteBpsDevice, b.ThrottleReadIOPSDevice, b.ThrottleWriteIOPSDevice} {
		for _, d := range l {
			if err := dev(d.Major, d.Minor); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateDevice(d specs.LinuxDeviceCgroup) error {
	switch d.Type {
	case "", "a", "b", "c":
	default:
		return fmt.Errorf("type %q: want a, b or c", d.Type)
	}
	for _, n := range []*int64{d.Major, d.Minor} {
		if n != nil && (*n < -1 || *n > 0xffffffff) {
			return fmt.Errorf("device number %d out of range", *n)
		}
	}
	if strings.Trim(d.Access, "rwm") != "" {
		return fmt.Errorf("access %q: want a combination of r, w and m", d.Access)
	}
	return nil
}
