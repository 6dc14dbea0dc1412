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

// With systemd (the systemd guest of test/vm): the container's cgroup is
// a transient scope systemd starts with the init process in it; limits
// hold; Destroy stops the unit and the cgroup is gone.
func TestSystemdDriverScope(t *testing.T) {
	testutil.RequiresRoot(t)
	if !systemd.Running() {
		t.Skip("systemd does not run on this host (test/vm runs this test under systemd)")
	}
	name := testName(t)
	lim := int64(20)
	q, p := int64(50000), uint64(100000)
	m, err := New(Config{ContainerID: name, Path: "system.slice:berth-test:" + name, Systemd: true, Resources: &specs.LinuxResources{
		Pids:    &specs.LinuxPids{Limit: &lim},
		CPU:     &specs.LinuxCPU{Quota: &q, Period: &p},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dir := m.Paths()[""]
	if want := "/sys/fs/cgroup/system.slice/berth-test-" + name + ".scope"; dir != want {
		t.Fatalf("scope cgroup %s, want %s", dir, want)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.CloneFD(); ok {
		t.Error("CloneFD with the systemd driver: the scope starts with the process")
	}
	proc := startIn(t, m, "sleep 100")
	defer m.Destroy()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", proc.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if want := "0::/system.slice/berth-test-" + name + ".scope\n"; string(b) != want {
		t.Errorf("/proc/PID/cgroup = %q, want %q", b, want)
	}
	c, err := systemd.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.UnitLoaded("berth-test-" + name + ".scope"); !ok || err != nil {
		t.Errorf("systemd does not know the scope: %v %v", ok, err)
	}
	wantFile(t, dir, "pids.max", "20")
	wantFile(t, dir, "cpu.max", "50000 100000")
	if err := m.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.wait(t, 10*time.Second)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.UnitLoaded("berth-test-" + name + ".scope"); ok {
		t.Error("the scope unit is still loaded after Destroy")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s still exists", dir)
	}
}
