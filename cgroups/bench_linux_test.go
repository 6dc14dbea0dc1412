package cgroups

import (
	"fmt"
	"os"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// BenchmarkCreateDestroy is one container's cgroup set made, configured
// (cpu, memory, pids, Docker's device policy) and removed. The side-by-side
// with runc's library is bench/cgroups.
func BenchmarkCreateDestroy(b *testing.B) {
	testutil.RequiresRoot(b)
	r := &specs.LinuxResources{
		CPU:     &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](256 << 20)},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](100)},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("berth-test-bench-%d-%d", os.Getpid(), i)
		m, err := New(Config{ContainerID: name, Path: "/" + name, Resources: r})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Create(); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
