package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/systemd"
	"github.com/berth-dev/berth/internal/testutil"
)

// Without systemd the driver is a clear error from New, and nothing is made.
func TestSystemdDriverWithoutSystemd(t *testing.T) {
	if systemd.Running() {
		t.Skip("systemd runs here")
	}
	_, err := New(Config{ContainerID: "abc", Systemd: true})
	if !errors.Is(err, systemd.ErrNoSystemd) {
		t.Fatalf("New with --systemd-cgroup: %v", err)
	}
	if _, err := New(Config{ContainerID: "abc", Path: "not-a-unit", Systemd: true}); err == nil || !strings.Contains(err.Error(), "slice:prefix:name") {
		t.Fatalf("bad systemd path: %v", err)
	}
}

// With systemd (the systemd guests of test/vm: pure v2, hybrid and
// legacy v1): the container's cgroup is a transient scope systemd starts
// with the init process in it, at the scope's path in every mounted
// hierarchy (v1 controllers systemd does not manage included); limits land
// in the layout's files; Destroy stops the unit and every directory is
// gone.
func TestSystemdDriverScope(t *testing.T) {
	testutil.RequiresRoot(t)
	if !systemd.Running() {
		t.Skip("systemd does not run on this host (test/vm runs this test under systemd)")
	}
	layout, err := DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	name := testName(t)
	scope := "berth-test-" + name + ".scope"
	cg := "/system.slice/" + scope
	lim, mem := int64(20), int64(48<<20)
	q, p := int64(50000), uint64(100000)
	m, err := New(Config{ContainerID: name, Path: "system.slice:berth-test:" + name, Systemd: true, Resources: &specs.LinuxResources{
		Pids:    &specs.LinuxPids{Limit: &lim},
		Memory:  &specs.LinuxMemory{Limit: &mem},
		CPU:     &specs.LinuxCPU{Quota: &q, Period: &p},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if layout == V2 {
		if want := "/sys/fs/cgroup" + cg; paths[""] != want {
			t.Fatalf("scope cgroup %s, want %s", paths[""], want)
		}
	} else {
		for _, c := range []string{"memory", "pids", "cpu", "cpuset", "devices", "freezer", "name=systemd"} {
			if !strings.HasSuffix(paths[c], cg) {
				t.Errorf("%s cgroup %q, want the scope %s in that hierarchy", c, paths[c], cg)
			}
		}
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.CloneFD(); ok {
		t.Error("CloneFD with the systemd driver: the scope starts with the process")
	}
	proc := startIn(t, m, "sleep 100")
	defer m.Destroy()
	pid := proc.cmd.Process.Pid
	// The process is in the scope in every hierarchy mounted here.
	var dirs []string
	in := map[string]bool{}
	for _, pc := range ProcCgroups(t, pid) {
		if pc.Dir == "" {
			continue
		}
		if pc.Cgroup != cg {
			t.Errorf("/proc/%d/cgroup: %q:%s, want %s", pid, pc.Ctrls, pc.Cgroup, cg)
		}
		dirs = append(dirs, pc.Dir)
		in[pc.Ctrls] = true
	}
	// systemd's own hierarchy: cgroup2 (V2, and the unified mount of a
	// hybrid host), name=systemd on v1 and hybrid.
	if layout != V1 && !in[""] {
		t.Errorf("the process is not in a mounted cgroup2 hierarchy (%v)", dirs)
	}
	if layout != V2 && !in["name=systemd"] {
		t.Errorf("the process is not in the name=systemd hierarchy (%v)", dirs)
	}
	t.Logf("layout: %v, scope in %d hierarchies", layout, len(dirs))
	if want := map[Layout]int{V2: 1, Hybrid: 9, V1: 8}[layout]; len(dirs) < want {
		t.Errorf("the process is in %d hierarchies %v, want at least %d", len(dirs), dirs, want)
	}
	c, err := systemd.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.UnitLoaded(scope); !ok || err != nil {
		t.Errorf("systemd does not know the scope: %v %v", ok, err)
	}
	if layout == V2 {
		wantFile(t, paths[""], "pids.max", "20")
		wantFile(t, paths[""], "cpu.max", "50000 100000")
		wantFile(t, paths[""], "memory.max", "50331648")
	} else {
		wantFile(t, paths["pids"], "pids.max", "20")
		wantFile(t, paths["cpu"], "cpu.cfs_quota_us", "50000")
		wantFile(t, paths["cpu"], "cpu.cfs_period_us", "100000")
		wantFile(t, paths["memory"], "memory.limit_in_bytes", "50331648")
		// The container's policy (deny-all, then the default devices), not
		// the allow-all systemd leaves a scope with DevicePolicy=auto.
		if l := readFile(t, paths["devices"], "devices.list"); strings.Contains(l, "a *:* rwm") || !strings.Contains(l, "c 1:3 rwm") || !strings.Contains(l, "c 136:* rwm") {
			t.Errorf("%s/devices.list = %q, want the default devices only", paths["devices"], l)
		}
		// cpuset is not systemd's: the manager made it with the parent's sets.
		if got := strings.TrimSpace(readFile(t, paths["cpuset"], "cpuset.cpus")); got == "" {
			t.Errorf("%s/cpuset.cpus is empty", paths["cpuset"])
		}
		if got := strings.TrimSpace(readFile(t, paths["cpuset"], "cgroup.procs")); got != fmt.Sprint(pid) {
			t.Errorf("%s/cgroup.procs = %q, want %d", paths["cpuset"], got, pid)
		}
	}
	if err := m.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.wait(t, 10*time.Second)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.UnitLoaded(scope); ok {
		t.Error("the scope unit is still loaded after Destroy")
	}
	for _, d := range append(dirs, slicesOf(paths)...) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s still exists", d)
		}
	}
}

func slicesOf(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
