package cgroups

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/devices"
)

// setDevices applies the device rules: the container's own rules followed
// by devices.DefaultAllowed (as runc does), through the v1 devices
// controller where the host has one and through an eBPF program on the
// cgroup2 directory otherwise. No rules means every device stays allowed
// at create, and an unchanged policy at update.
func (m *manager) setDevices(spec []specs.LinuxDeviceCgroup, update bool) error {
	if len(spec) == 0 {
		return nil
	}
	rules, err := devices.FromSpec(spec)
	if err != nil {
		return err
	}
	eff := devices.Effective(rules)
	if dir, ok := m.v1["devices"]; ok {
		return devices.SetV1(dir, eff)
	}
	if m.unified == "" {
		return fmt.Errorf("device rules: no devices controller and no cgroup2 hierarchy on this host")
	}
	return devices.AttachV2(m.unified, devices.Emulate(eff))
}
