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

// BenchmarkEnter is the per-start cost the v2 clone-into-cgroup path
// avoids: moving a process into the container's cgroup with a write to
// cgroup.procs in every hierarchy (10 here on the hybrid host, 1 on v2).
func BenchmarkEnter(b *testing.B) {
	ma := newTest(b, nil)
	mb := newTest(b, nil)
	p := startIn(b, ma, "sleep 1000")
	pid := p.cmd.Process.Pid
	for i := 0; b.Loop(); i++ {
		m := mb
		if i%2 == 1 {
			m = ma
		}
		if err := m.Enter(pid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ma.(*manager).dirs())), "hierarchies")
}
