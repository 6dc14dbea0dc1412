// Command cgroups-bench measures creating, configuring and removing one
// container's cgroup set — cpu quota/period, memory limit, pids limit and
// Docker's default device policy — with berth's cgroups package and with
// the cgroup library runc uses (github.com/opencontainers/cgroups), side by
// side in one run: several rounds, medians, and the ratio. It is its own
// module so berth itself does not depend on runc's library. Run as root:
//
//	cd bench/cgroups && go run . [-n 200] [-rounds 5]
//
// Every cgroup it makes is named berth-bench-<pid>-<i> and removed.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	rc "github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // registers runc's device controller
	devcfg "github.com/opencontainers/cgroups/devices/config"
	rcmanager "github.com/opencontainers/cgroups/manager"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups"
	"github.com/berth-dev/berth/cgroups/devices"
)

func main() {
	n := flag.Int("n", 200, "cgroup sets per round")
	rounds := flag.Int("rounds", 5, "rounds (the median is reported)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "cgroups-bench: needs root")
		os.Exit(1)
	}
	layout, err := cgroups.DetectLayout()
	if err != nil {
		fail(err)
	}
	var berthT, runcT []time.Duration
	for r := 0; r < *rounds; r++ {
		// Alternate the order so neither side always runs on a warm cache.
		a, b := timeIt(*n, r, berthOnce), timeIt(*n, r, runcOnce)
		if r%2 == 1 {
			b, a = timeIt(*n, r, runcOnce), timeIt(*n, r, berthOnce)
		}
		berthT, runcT = append(berthT, a), append(runcT, b)
	}
	bm, rm := median(berthT), median(runcT)
	fmt.Printf("cgroup set create+configure+delete (%s host, cpu+memory+pids+devices), median of %d rounds of %d:\n", layout, *rounds, *n)
	fmt.Printf("  berth cgroups:                 %8.1f µs/op\n", us(bm))
	fmt.Printf("  opencontainers/cgroups (runc): %8.1f µs/op\n", us(rm))
	fmt.Printf("  ratio runc/berth: %.2fx\n", float64(rm)/float64(bm))
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func timeIt(n, round int, once func(name string) error) time.Duration {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if err := once(fmt.Sprintf("berth-bench-%d-%d-%d", os.Getpid(), round, i)); err != nil {
			fail(err)
		}
	}
	return time.Since(t0) / time.Duration(n)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cgroups-bench:", err)
	os.Exit(1)
}

var (
	quota, memory, pids = int64(50000), int64(256 << 20), int64(100)
	period              = uint64(100000)
)

func berthOnce(name string) error {
	m, err := cgroups.New(cgroups.Config{ContainerID: name, Path: "/" + name, Resources: &specs.LinuxResources{
		CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
		Memory:  &specs.LinuxMemory{Limit: &memory},
		Pids:    &specs.LinuxPids{Limit: &pids},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}})
	if err != nil {
		return err
	}
	if err := m.Create(); err != nil {
		return err
	}
	return m.Destroy()
}

func runcOnce(name string) error {
	// The same rules berth applies: deny all, then runc's default list.
	var rules []*devcfg.Rule
	for _, r := range devices.DockerDefault() {
		rules = append(rules, &devcfg.Rule{Type: devcfg.Type(r.Type), Major: r.Major, Minor: r.Minor,
			Permissions: devcfg.Permissions(r.Access.String()), Allow: r.Allow})
	}
	res := &rc.Resources{CpuQuota: quota, CpuPeriod: period, Memory: memory, PidsLimit: &pids, Devices: rules}
	m, err := rcmanager.New(&rc.Cgroup{Path: "/" + name, Resources: res})
	if err != nil {
		return err
	}
	if err := m.Apply(-1); err != nil {
		return err
	}
	if err := m.Set(res); err != nil {
		m.Destroy()
		return err
	}
	return m.Destroy()
}
