package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// cpuCgroup makes a cgroup with a CPU quota of quota us per period us in
// this machine's cpu hierarchy (v1 where there is one, else cgroup2), and
// on v1 a cpuacct cgroup beside it when cpuacct is mounted separately. It
// returns the cgroup.procs files to write a PID into and a function that
// reads the CPU time the kernel charged to the cgroup; all is removed at
// the end.
func cpuCgroup(t *testing.T, quota, period int) (procs []string, usage func() time.Duration) {
	t.Helper()
	name := fmt.Sprintf("berth-test-bench-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var cpuV1, acctV1, v2 string
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) < 10 || f[3] != "/" {
			continue
		}
		switch f[len(f)-3] {
		case "cgroup":
			for _, o := range strings.Split(f[len(f)-1], ",") {
				switch o {
				case "cpu":
					cpuV1 = f[4]
				case "cpuacct":
					acctV1 = f[4]
				}
			}
		case "cgroup2":
			v2 = f[4]
		}
	}
	mk := func(dir string) string {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		})
		return dir
	}
	write := func(dir, file, v string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0o644); err != nil {
			t.Fatalf("%s/%s: %v", dir, file, err)
		}
	}
	readNum := func(p string, field int) time.Duration {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > field {
				var v int64
				fmt.Sscan(f[field], &v)
				if field == 0 {
					return time.Duration(v) // cpuacct.usage: ns
				}
				if f[0] == "usage_usec" {
					return time.Duration(v) * time.Microsecond
				}
			}
		}
		return -1
	}
	switch {
	case cpuV1 != "":
		dir := mk(filepath.Join(cpuV1, name))
		write(dir, "cpu.cfs_period_us", fmt.Sprint(period))
		write(dir, "cpu.cfs_quota_us", fmt.Sprint(quota))
		// A high weight keeps other work on this shared machine from
		// starving the burner below its quota.
		write(dir, "cpu.shares", "262144")
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
		acct := dir
		if acctV1 != "" && acctV1 != cpuV1 {
			acct = mk(filepath.Join(acctV1, name))
			procs = append(procs, filepath.Join(acct, "cgroup.procs"))
		}
		usage = func() time.Duration { return readNum(filepath.Join(acct, "cpuacct.usage"), 0) }
	case v2 != "":
		if b, _ := os.ReadFile(filepath.Join(v2, "cgroup.subtree_control")); !strings.Contains(string(b), "cpu") {
			t.Skip("cgroup2 without the cpu controller enabled")
		}
		dir := mk(filepath.Join(v2, name))
		write(dir, "cpu.max", fmt.Sprintf("%d %d", quota, period))
		write(dir, "cpu.weight", "10000")
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
		usage = func() time.Duration { return readNum(filepath.Join(dir, "cpu.stat"), 1) }
	default:
		t.Skip("no cpu cgroup hierarchy")
	}
	return procs, usage
}

// burnIn runs `berth bench cpu --seconds n --format json` inside the
// cgroups and returns its samples.
func burnIn(t *testing.T, procs []string, n int) []burnSample {
	t.Helper()
	// The shell joins the cgroups, then becomes the burner.
	script := `for f in $PROCS; do echo $$ > "$f" || exit 1; done; exec "$0" bench cpu --seconds "$1" --format json`
	cmd := exec.Command("sh", "-c", script, testutil.BerthBinary(t), fmt.Sprint(n))
	cmd.Env = append(os.Environ(), "PROCS="+strings.Join(procs, " "))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("burner: %v", err)
	}
	var samples []burnSample
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s burnSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		samples = append(samples, s)
	}
	if len(samples) != n {
		t.Fatalf("%d lines for --seconds %d:\n%s", len(samples), n, out)
	}
	return samples
}

// medianAfterFirst is the median %CPU leaving out the first second
// (start-up).
func medianAfterFirst(s []burnSample) float64 {
	var p []float64
	for _, x := range s[1:] {
		p = append(p, x.PercentCPU)
	}
	sort.Float64s(p)
	return p[len(p)/2]
}

// TestBenchCPUUnderQuota is the talk's experiment: the burner in a cgroup
// with a CPU quota of half a CPU reports 50 %CPU, and what it reports is
// what the kernel charged to the cgroup.
//
// With the talk's tiny period (--cpu-period=2000 --cpu-quota=1000) the
// share a group really gets depends on how promptly the kernel's period
// timer lets the group run again: in this VM the kernel's own accounting
// shows it 41-50 % of a CPU (the lost time is spent throttled, presumably
// by a late timer). So the talk's numbers are checked against
// the kernel (the burner must agree with cpuacct within 2 points and
// never exceed the quota), and the 45-55 % band is required of the same
// 50 % quota with Docker's default period of 100 ms.
func TestBenchCPUUnderQuota(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.BerthBinary(t) // build it before anything is timed
	for _, c := range []struct {
		quota, period int
		strict        bool
	}{{1000, 2000, false}, {50000, 100000, true}} {
		var med, kernel float64
		for attempt := 1; attempt <= 2; attempt++ {
			procs, usage := cpuCgroup(t, c.quota, c.period)
			start := time.Now()
			samples := burnIn(t, procs, 4)
			wall := time.Since(start)
			med = medianAfterFirst(samples)
			var cpu, elapsed float64
			for _, s := range samples {
				cpu += s.CPUSec
				elapsed += s.ElapsedSec
			}
			kernel = 100 * usage().Seconds() / wall.Seconds()
			t.Logf("quota %d/%d attempt %d: burner median %.3f %%CPU, total %.3f %%; kernel charged the cgroup %.3f %% of %v",
				c.quota, c.period, attempt, med, 100*cpu/elapsed, kernel, wall.Round(time.Millisecond))
			if d := 100*cpu/elapsed - kernel; d > 2 || d < -4 { // the kernel's wall time includes start and exit
				t.Errorf("burner says %.3f %%CPU, the kernel charged %.3f %%", 100*cpu/elapsed, kernel)
			}
			if med > 55 {
				t.Errorf("quota %d/%d did not hold: %.3f %%CPU", c.quota, c.period, med)
			}
			if med >= 45 {
				break
			}
		}
		if med < 45 {
			if c.strict {
				t.Errorf("quota %d/%d: median %.3f %%CPU, want 45-55", c.quota, c.period, med)
			} else {
				t.Logf("quota %d/%d: %.3f %%CPU, below the talk's 50: the kernel charged %.3f %% (the loss is the kernel's, not the burner's)", c.quota, c.period, med, kernel)
			}
		}
	}
}
func TestBenchCPUTextLines(t *testing.T) {
	out, stderr, code := berthRun(t, "bench", "cpu", "--seconds", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for i, l := range lines {
		var pid, n int
		var ratio, pct float64
		if _, err := fmt.Sscanf(l, "[%d] %d: elapsed/cpu = %f; %%CPU = %f", &pid, &n, &ratio, &pct); err != nil || n != i+1 || pid <= 0 {
			t.Errorf("line %q: %v", l, err)
		}
		if pct <= 0 || pct > 200 || ratio <= 0 {
			t.Errorf("line %q: implausible", l)
		}
	}
}
