package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
)

// addSubIDs appends "name:100000:65536" to /etc/subuid and /etc/subgid
// for the test's remap user and removes exactly that line at the end (and
// the file, if the test created it and nothing else was added).
func addSubIDs(t *testing.T, name string) {
	t.Helper()
	line := name + ":100000:65536\n"
	for _, p := range []string{"/etc/subuid", "/etc/subgid"} {
		_, statErr := os.Stat(p)
		created := os.IsNotExist(statErr)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(line)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			b, err := os.ReadFile(p)
			if err != nil {
				return
			}
			rest := strings.Replace(string(b), line, "", 1)
			if created && rest == "" {
				os.Remove(p)
				return
			}
			os.WriteFile(p, []byte(rest), 0o644)
		})
	}
}

// startDaemon is testutil.StartDaemon: a private daemon, stopped at the end.
func startDaemon(t *testing.T, extra ...string) string { return testutil.StartDaemon(t, extra...) }

// dockerCLI runs the docker CLI against host and fails the test on error.
func dockerCLI(t *testing.T, host string) func(stdin []byte, args ...string) string {
	bin, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("no docker CLI (make deps installs docker.io)")
	}
	return func(stdin []byte, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-H", host}, args...)...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// importBusybox makes the image busybox:berth-test from busybox-static.
func importBusybox(t *testing.T, docker func([]byte, ...string) string) {
	t.Helper()
	var tarball bytes.Buffer
	if err := busybox.WriteTar(&tarball); err != nil {
		t.Fatal(err)
	}
	docker(tarball.Bytes(), "import", "-", "busybox:berth-test")
}

// TestInspectDaemonCPUQuota is the talk's cgroup experiment through the
// docker CLI: a container with a CPU quota, its cgroup and limit shown by
// berth, and the static berth copied in with docker cp and run with
// docker exec as the talk runs cpu_burner. The period is Docker's default
// 100 ms (the talk's 2 ms one is checked in TestBenchCPUUnderQuota).
func TestInspectDaemonCPUQuota(t *testing.T) {
	testutil.RequiresRoot(t)
	host := startDaemon(t)
	docker := dockerCLI(t, host)
	importBusybox(t, docker)
	name := fmt.Sprintf("berth-test-quota-%d", os.Getpid())
	// A high weight keeps other work on this shared machine from
	// starving the burner below its quota.
	docker(nil, "run", "-d", "--name", name, "--cpu-period=100000", "--cpu-quota=50000", "--cpu-shares=262144",
		"busybox:berth-test", "sh", "-c", "sleep 1000")
	t.Cleanup(func() { exec.Command("docker", "-H", host, "rm", "-f", name).Run() })

	out, stderr, code := berthRun(t, "inspect", "cgroup", "-H", host, name)
	if code != 0 || !strings.Contains(out, "cpu     quota 50000us / period 100000us (50% of one CPU)") {
		t.Fatalf("berth inspect cgroup (exit %d, %s):\n%s", code, stderr, out)
	}
	js, _, _ := berthRun(t, "inspect", "cgroup", "-H", host, "--format", "{{.CPU.Dir}}", name)
	if q, err := os.ReadFile(filepath.Join(strings.TrimSpace(js), "cpu.cfs_quota_us")); err == nil && strings.TrimSpace(string(q)) != "50000" {
		t.Errorf("%s/cpu.cfs_quota_us = %q", strings.TrimSpace(js), q)
	}

	docker(nil, "cp", testutil.BerthBinary(t), name+":/berth")
	idle0, wall0 := hostIdleTicks(t), time.Now()
	burn := docker(nil, "exec", name, "/berth", "bench", "cpu", "--seconds", "4", "--format", "json")
	// CPUs left idle on the host while the burner ran (USER_HZ ticks):
	// with none, other work may have taken the burner's share, which says
	// nothing about the quota.
	idleCPUs := float64(hostIdleTicks(t)-idle0) / 100 / time.Since(wall0).Seconds()
	var samples []burnSample
	for _, l := range strings.Split(burn, "\n") {
		var s burnSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		samples = append(samples, s)
	}
	if len(samples) != 4 || samples[0].PID <= 1 {
		t.Fatalf("docker exec /berth bench cpu:\n%s", burn)
	}
	med := medianAfterFirst(samples)
	switch {
	case med > 55:
		t.Errorf("docker exec %s /berth bench cpu: median %.3f %%CPU, above the 50%% quota:\n%s", name, med, burn)
	case med < 45 && idleCPUs >= 0.5:
		t.Errorf("docker exec %s /berth bench cpu: median %.3f %%CPU with %.2f CPUs idle on the host, want 45-55:\n%s", name, med, idleCPUs, burn)
	default:
		t.Logf("[%d] in %s: median %.3f %%CPU (%.2f CPUs idle on the host)", samples[0].PID, name, med, idleCPUs)
	}
}

// hostIdleTicks is the idle time of all CPUs from /proc/stat, in USER_HZ.
func hostIdleTicks(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	if len(f) < 5 || f[0] != "cpu" {
		t.Fatalf("unexpected /proc/stat: %q", f)
	}
	idle, err := strconv.ParseUint(f[4], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return idle
}

// TestInspectDaemonContainerTalk is the talk, end to end: berth's daemon
// with userns-remap, the real docker CLI running busybox's `sh -c 'sleep
// 1000'`, and the instruments naming the container by its name. The
// container's user namespace (mapped 0 100000 65536) owns its new
// namespaces; its capabilities are a80425fb, as getpcaps says.
func TestInspectDaemonContainerTalk(t *testing.T) {
	testutil.RequiresRoot(t)
	remap := fmt.Sprintf("berth-test-remap-%d", os.Getpid())
	addSubIDs(t, remap)
	host := startDaemon(t, "--userns-remap", remap)
	docker := dockerCLI(t, host)
	importBusybox(t, docker)
	name := fmt.Sprintf("berth-test-talk-%d", os.Getpid())
	id := docker(nil, "run", "-d", "--name", name, "busybox:berth-test", "sh", "-c", "sleep 1000")
	t.Cleanup(func() { exec.Command("docker", "-H", host, "rm", "-f", name).Run() })
	pid, err := strconv.Atoi(docker(nil, "inspect", "-f", "{{.State.Pid}}", name))
	if err != nil || pid <= 0 {
		t.Fatalf("docker inspect: pid %d %v", pid, err)
	}
	for i := 0; ; i++ {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); string(comm) == "sleep\n" {
			break
		}
		if i == 500 {
			t.Fatalf("container %s: %d never became sleep", name, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}

	self := os.Getpid()
	out, stderr, code := berthRun(t, "inspect", "ns", "-H", host, strconv.Itoa(self), name)
	if code != 0 {
		t.Fatalf("berth inspect ns: exit %d: %s", code, stderr)
	}
	t.Logf("berth inspect ns $$ %s:\n%s", name, out)
	// Every namespace the container does not share with the host hangs
	// under the container's user namespace, as the kernel says.
	want := fmt.Sprintf("\n  user %s <UID: 0>\n    [ %d ]\n", nsOf(t, pid, "user"), pid)
	newTypes := 0
	for _, typ := range []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "uts"} {
		if nsOf(t, pid, typ) == nsOf(t, self, typ) {
			continue
		}
		newTypes++
		want += fmt.Sprintf("    %s %s\n      [ %d ]\n", typ, nsOf(t, pid, typ), pid)
	}
	if !strings.HasSuffix(out, want) || newTypes < 5 {
		t.Errorf("want the tree to end with the container's user namespace owning %d new namespaces:\n%s", newTypes, want)
	}
	// By ID prefix too, as docker accepts it.
	if byID, _, code := berthRun(t, "inspect", "ns", "-H", host, strconv.Itoa(self), id[:12]); code != 0 || byID != out {
		t.Errorf("by ID %s: exit %d\n%s", id[:12], code, byID)
	}

	out, _, code = berthRun(t, "inspect", "caps", "-H", host, name)
	gp, err := exec.Command("getpcaps", strconv.Itoa(pid)).Output()
	if code != 0 || (err == nil && !strings.HasPrefix(out, string(gp))) || !strings.Contains(out, "  CapEff: 00000000a80425fb") {
		t.Errorf("berth inspect caps (exit %d):\n%s\ngetpcaps: %s", code, out, gp)
	}

	out, _, code = berthRun(t, "inspect", "isolation", "-H", host, name)
	t.Logf("berth inspect isolation %s:\n%s", name, out)
	for _, re := range []string{
		`isolation of container ` + name + `: process ` + strconv.Itoa(pid) + ` \(sleep\)`,
		`DIFFERS +user mapping +uid_map +0 100000 65536 `,
		`default +capabilities +effective +00000000a80425fb `,
		`default +seccomp +profile +Docker's default for its capabilities `,
		`default +masked path +/proc/kcore +(masked|absent) `,
	} {
		if code != 0 || !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("isolation lacks /%s/", re)
		}
	}
}
