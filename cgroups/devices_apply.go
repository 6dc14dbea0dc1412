package cgroups

import (
	"github.com/opencontainers/runtime-spec/specs-go"
)

// setDevices applies the device rules (filled in with the devices package).
func (m *manager) setDevices(rules []specs.LinuxDeviceCgroup, update bool) error {
	return nil
}
