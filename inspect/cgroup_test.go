package inspect

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/proc"
)

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCgroupsLimits: a process in cgroups the test made, with the talk's
// CPU quota, a memory limit and a pids limit; berth's report against the
// cgroup files.
func TestCgroupsLimits(t *testing.T) {
	testutil.RequiresRoot(t)
	cg := newTestCgroup(t, "cpu", "memory", "pids")
	if cg.v2 {
		cg.write(t, "cpu", "cpu.max", "1000 2000")
		cg.write(t, "memory", "memory.max", "67108864")
	} else {
		cg.write(t, "cpu", "cpu.cfs_period_us", "2000")
		cg.write(t, "cpu", "cpu.cfs_quota_us", "1000")
		cg.write(t, "memory", "memory.limit_in_bytes", "67108864")
	}
	cg.write(t, "pids", "pids.max", "17")
	// A shell that burns CPU for a moment (to be throttled), then sleeps.
	cmd := exec.Command("sh", "-c", "read x; end=$(($(date +%s)+1)); while [ $(date +%s) -lt $end ]; do :; done; exec sleep 300")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	cg.join(t, pid)
	stdin.Write([]byte("go\n"))
	// Wait for the burn to end (the shell execs sleep); emulated guests
	// are slow to fork, so allow plenty.
	for i := 0; i < 1500; i++ {
		if st, err := proc.ReadStatus(pid); err == nil && st.Name == "sleep" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	// If the shell still burns, the counters move while we read them:
	// what the report says must lie between cpu.stat before and after.
	throttledBefore := nrThrottled(t, cg.dirs["cpu"])
	r, err := Cgroups(pid)
	if err != nil {
		t.Fatal(err)
	}
	throttledAfter := nrThrottled(t, cg.dirs["cpu"])
	if r.CPU == nil || r.CPU.QuotaUS != 1000 || r.CPU.PeriodUS != 2000 || r.CPU.Dir != cg.dirs["cpu"] {
		t.Fatalf("cpu %+v, want quota 1000 period 2000 in %s", r.CPU, cg.dirs["cpu"])
	}
	if r.CPU.NrThrottled <= 0 || r.CPU.NrPeriods < r.CPU.NrThrottled {
		t.Errorf("a second of burning under a 50%% quota was not throttled: %+v", r.CPU)
	}
	if r.CPU.NrThrottled < throttledBefore || r.CPU.NrThrottled > throttledAfter {
		t.Errorf("nr_throttled %d, cpu.stat said %d before and %d after", r.CPU.NrThrottled, throttledBefore, throttledAfter)
	}
	if r.Memory == nil || r.Memory.Limit != 64<<20 || r.Memory.Usage <= 0 || r.Memory.Dir != cg.dirs["memory"] {
		t.Errorf("memory %+v, want limit 64 MiB in %s", r.Memory, cg.dirs["memory"])
	}
	if r.Pids == nil || r.Pids.Max != 17 || r.Pids.Current != 1 {
		t.Errorf("pids %+v, want max 17 current 1", r.Pids)
	}
	// Every line of /proc/PID/cgroup, each resolved to a directory that
	// lists the process.
	raw := readTrim(t, proc.Path(pid, "cgroup"))
	if len(r.Hierarchies) != len(strings.Split(raw, "\n")) {
		t.Errorf("%d hierarchies for\n%s", len(r.Hierarchies), raw)
	}
	for _, h := range r.Hierarchies {
		if !strings.Contains(raw, h.CgroupEntry.String()) {
			t.Errorf("hierarchy %s not in /proc/PID/cgroup", h.CgroupEntry)
		}
		if h.Dir == "" {
			continue
		}
		if procs := readTrim(t, filepath.Join(h.Dir, "cgroup.procs")); !strings.Contains("\n"+procs+"\n", "\n"+strconv.Itoa(pid)+"\n") {
			t.Errorf("%s/cgroup.procs does not list %d", h.Dir, pid)
		}
	}
	var out bytes.Buffer
	WriteCgroups(&out, r)
	for _, want := range []string{"cpu     quota 1000us / period 2000us (50% of one CPU)", "memory  limit 64.0 MiB", "pids    max 17; current 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDetectLayout(t *testing.T) {
	l, err := DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("/proc/self/mountinfo")
	v1 := strings.Contains(string(raw), " - cgroup ")
	v2 := strings.Contains(string(raw), " - cgroup2 ")
	want := map[[2]bool]string{{true, true}: LayoutHybrid, {true, false}: LayoutV1, {false, true}: LayoutV2, {false, false}: "none"}[[2]bool{v1, v2}]
	if l != want {
		t.Errorf("layout %s, want %s", l, want)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{"max": -1, "9223372036854771712": -1, "-1": -1, "1000": 1000, "x": -1} {
		if got := parseLimit(in); got != want {
			t.Errorf("parseLimit(%q) = %d, want %d", in, got, want)
		}
	}
}

// nrThrottled reads nr_throttled from dir/cpu.stat.
func nrThrottled(t *testing.T, dir string) int64 {
	t.Helper()
	for _, l := range strings.Split(readTrim(t, filepath.Join(dir, "cpu.stat")), "\n") {
		if v, ok := strings.CutPrefix(l, "nr_throttled "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no nr_throttled in %s/cpu.stat", dir)
	return 0
}
