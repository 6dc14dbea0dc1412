package cgroups

import (
	"fmt"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/convert"
	"github.com/berth-dev/berth/cgroups/internal/cgfs"
	"github.com/berth-dev/berth/cgroups/systemd"
	v1 "github.com/berth-dev/berth/cgroups/v1"
)

// scopeDir is the scope's cgroup in a hierarchy systemd itself manages:
// the cgroup2 one (V2, and the unified mount of a hybrid host), else
// name=systemd on a v1-only host. It exists once the scope has started.
func (m *manager) scopeDir() string {
	if m.unified != "" {
		return m.unified
	}
	if d, ok := m.v1["name=systemd"]; ok {
		return d
	}
	return m.v1["devices"]
}

// startScope has systemd start the container's transient scope with pid
// in it, then writes the resources below it as the cgroupfs driver does.
// The main limits are also unit properties, so a daemon-reload does not
// reset them. On v1 and hybrid hosts, systemd puts pid in the scope only
// in the hierarchies it manages; joinScope does the rest.
func (m *manager) startScope(pid int) error {
	c, err := systemd.Connect()
	if err != nil {
		return err
	}
	defer c.Close()
	name := m.sd.ScopeName()
	if err := c.StartScope(name, m.sd.Slice, pid, scopeProps(m.layout, m.cfg.Resources)...); err != nil {
		return err
	}
	err = m.joinScope(pid)
	if err == nil {
		err = m.apply(m.cfg.Resources, false)
	}
	if err != nil {
		c.StopUnit(name)
		for _, d := range m.dirs() {
			removeTree(d)
		}
		return fmt.Errorf("create cgroup for container %s: %w", m.cfg.ContainerID, err)
	}
	return nil
}

// joinScope puts pid in the scope's cgroup in every v1 hierarchy, making
// the directories systemd did not (controllers it does not manage, such
// as cpuset, freezer or net_cls). A new cpuset cgroup starts with empty
// cpus and mems, so each one made inherits its parent's first.
func (m *manager) joinScope(pid int) error {
	if m.layout == V2 {
		return nil
	}
	for _, d := range m.dirs() {
		made, err := mkdirAll(d)
		if err != nil {
			return err
		}
		if m.v1["cpuset"] == d {
			for _, c := range made {
				if err := v1.PrepareCpuset(c); err != nil {
					return err
				}
			}
		}
		if err := cgfs.Write(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("put process %d in the scope's cgroup %s: %w", pid, d, err)
		}
	}
	return nil
}

func (m *manager) stopScope() error {
	c, err := systemd.Connect()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.StopUnit(m.sd.ScopeName())
}

// scopeProps are the resources systemd itself knows as unit properties:
// the cgroup v2 ones on a V2 host; on v1 and hybrid hosts the legacy ones
// runc uses there (MemoryLimit, CPUShares, BlockIOWeight), which systemd
// writes to the v1 files unchanged, plus accounting, so systemd realizes
// the scope in those controllers' hierarchies.
func scopeProps(layout Layout, r *specs.LinuxResources) []systemd.Property {
	var p []systemd.Property
	if layout != V2 {
		p = append(p, systemd.Prop("MemoryAccounting", true), systemd.Prop("CPUAccounting", true),
			systemd.Prop("BlockIOAccounting", true), systemd.Prop("TasksAccounting", true))
	}
	if r == nil {
		return p
	}
	if m := r.Memory; m != nil {
		var limit, swap int64
		if m.Limit != nil {
			limit = *m.Limit
		}
		if m.Swap != nil {
			swap = *m.Swap
		}
		switch {
		case layout != V2:
			if limit > 0 {
				p = append(p, systemd.Prop("MemoryLimit", uint64(limit)))
			}
		default:
			if limit > 0 {
				p = append(p, systemd.Prop("MemoryMax", uint64(limit)))
			}
			if s, err := convert.SwapToV2(swap, limit); err == nil && s > 0 {
				p = append(p, systemd.Prop("MemorySwapMax", uint64(s)))
			}
			if m.Reservation != nil && *m.Reservation > 0 {
				p = append(p, systemd.Prop("MemoryLow", uint64(*m.Reservation)))
			}
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		p = append(p, systemd.Prop("TasksMax", uint64(*r.Pids.Limit)))
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if layout != V2 {
				p = append(p, systemd.Prop("CPUShares", *c.Shares))
			} else {
				p = append(p, systemd.Prop("CPUWeight", convert.SharesToWeight(*c.Shares)))
			}
		}
		if c.Quota != nil && *c.Quota > 0 {
			period := uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			// systemd takes CPU time per second of wall time, in µs.
			p = append(p, systemd.Prop("CPUQuotaPerSecUSec", uint64(*c.Quota)*1000000/period),
				systemd.Prop("CPUQuotaPeriodUSec", period))
		}
	}
	if layout != V2 && r.BlockIO != nil && r.BlockIO.Weight != nil && *r.BlockIO.Weight != 0 {
		p = append(p, systemd.Prop("BlockIOWeight", uint64(*r.BlockIO.Weight)))
	}
	return p
}
