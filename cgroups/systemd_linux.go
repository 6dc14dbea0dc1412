package cgroups

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/convert"
	"github.com/berth-dev/berth/cgroups/systemd"
)

// startScope has systemd start the container's transient scope with pid
// in it, then writes the resources below it as the cgroupfs driver does.
// The main limits are also unit properties, so a daemon-reload does not
// reset them.
func (m *manager) startScope(pid int) error {
	c, err := systemd.Connect()
	if err != nil {
		return err
	}
	defer c.Close()
	name := m.sd.ScopeName()
	if err := c.StartScope(name, m.sd.Slice, pid, scopeProps(m.cfg.Resources)...); err != nil {
		return err
	}
	if err := m.apply(m.cfg.Resources, false); err != nil {
		c.StopUnit(name)
		return fmt.Errorf("create cgroup for container %s: %w", m.cfg.ContainerID, err)
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

// scopeProps are the resources systemd itself knows as unit properties.
func scopeProps(r *specs.LinuxResources) []systemd.Property {
	if r == nil {
		return nil
	}
	var p []systemd.Property
	if m := r.Memory; m != nil {
		var limit, swap int64
		if m.Limit != nil {
			limit = *m.Limit
		}
		if m.Swap != nil {
			swap = *m.Swap
		}
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
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		p = append(p, systemd.Prop("TasksMax", uint64(*r.Pids.Limit)))
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			p = append(p, systemd.Prop("CPUWeight", convert.SharesToWeight(*c.Shares)))
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
	return p
}
