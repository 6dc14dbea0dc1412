package inspect

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups"
	"github.com/berth-dev/berth/internal/testutil"
)

// sleepInCgroup starts `sleep 300` in a cgroup berth's own manager made
// with r (nil: no limits); the process is killed and the cgroup removed
// when the test ends.
func sleepInCgroup(t *testing.T, r *specs.LinuxResources) int {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "berth-test-" + hex.EncodeToString(b)
	m, err := cgroups.New(cgroups.Config{ContainerID: name, Path: "/" + name, Resources: r})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Kill(syscall.SIGKILL)
		if err := m.Destroy(); err != nil {
			t.Errorf("remove cgroup %s: %v", name, err)
		}
	})
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := m.Enter(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestProofIsolationCgroupLimits: a process given a CPU quota, a memory
// limit and a pids limit by berth's cgroup manager gets three `cgroup
// limit` lines with those values, marked as differing from Docker's
// default; a process in a cgroup without limits gets the same lines as
// the default (unlimited), and no cgroup limit line differs.
func TestProofIsolationCgroupLimits(t *testing.T) {
	testutil.RequiresRoot(t)
	quota, period, mem, pids := int64(50000), uint64(100000), int64(64<<20), int64(17)
	limited := sleepInCgroup(t, &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &pids},
	})
	free := sleepInCgroup(t, nil)

	report := func(pid int) (*IsolationReport, map[string]Finding, string) {
		t.Helper()
		r, err := Isolation(pid)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := WriteIsolation(&out, r); err != nil {
			t.Fatal(err)
		}
		return r, findings(r), out.String()
	}
	lr, lf, ltext := report(limited)
	fr, ff, ftext := report(free)

	for item, want := range map[string]Finding{
		"cpu":    {Value: "quota 50000us / period 100000us (50% of one CPU)", Docker: "no limit"},
		"memory": {Value: "64.0 MiB", Docker: "unlimited"},
		"pids":   {Value: "17", Docker: "max"},
	} {
		x, ok := lf["cgroup limit "+item]
		if !ok {
			t.Errorf("limited process: no cgroup limit %s line", item)
			continue
		}
		if x.Value != want.Value || x.Docker != want.Docker || x.IsDefault {
			t.Errorf("limited process: cgroup limit %s = %+v, want value %q, Docker %q, differing", item, x, want.Value, want.Docker)
		}
		line := regexp.MustCompile(`(?m)^DIFFERS\s+cgroup limit\s+` + item + `\s+` + regexp.QuoteMeta(want.Value) + `\s+` + want.Docker + `$`)
		if !line.MatchString(ltext) {
			t.Errorf("limited process: the text has no DIFFERS line for cgroup limit %s %q:\n%s", item, want.Value, ltext)
		}
	}
	for item, want := range map[string]string{"cpu": "no limit (period 100000us)", "memory": "unlimited", "pids": "max"} {
		x, ok := ff["cgroup limit "+item]
		if !ok {
			t.Errorf("process without limits: no cgroup limit %s line", item)
			continue
		}
		if x.Value != want || !x.IsDefault {
			t.Errorf("process without limits: cgroup limit %s = %+v, want %q as the default", item, x, want)
		}
	}
	for _, l := range strings.Split(ftext, "\n") {
		if strings.HasPrefix(l, "DIFFERS") && strings.Contains(l, "cgroup limit") {
			t.Errorf("process without limits has a differing limit line: %q", l)
		}
	}
	// The two processes differ in nothing else Docker would notice.
	if lr.Differences-fr.Differences != 3 {
		t.Errorf("differences: %d with limits, %d without; want exactly the 3 limits apart", lr.Differences, fr.Differences)
	}
}
