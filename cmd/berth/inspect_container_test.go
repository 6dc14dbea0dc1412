package main

import (
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

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/seccomp"
)

// runtimeContainer is a container run detached by berth's own runtime
// (`berth runtime --root R run -d`) with a busybox rootfs running sleep.
type runtimeContainer struct {
	root, id string
	pid      int
}

// startContainer makes a bundle from `berth runtime spec`, edits it with
// edit, runs it detached and returns its init PID from `state`. The
// container is deleted (--force) when the test ends.
func startContainer(t *testing.T, edit func(spec map[string]any)) runtimeContainer {
	t.Helper()
	bin := testutil.BerthBinary(t)
	root := t.TempDir()
	bundle := t.TempDir()
	// The container's root may be mapped to an unprivileged host ID: it
	// must be able to reach its rootfs.
	os.Chmod(bundle, 0o755)
	os.Chmod(filepath.Dir(bundle), 0o755)
	if err := os.Rename(testutil.BusyboxRootfs(t), filepath.Join(bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	// bin/berth is static: like the talk's cpu_burner it runs in busybox.
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs", "berth"), self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "runtime", "spec")
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("berth runtime spec: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	process := spec["process"].(map[string]any)
	process["terminal"] = false
	process["args"] = []string{"sleep", "300"}
	spec["root"].(map[string]any)["readonly"] = false
	if edit != nil {
		edit(spec)
	}
	raw, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	c := runtimeContainer{root: root, id: fmt.Sprintf("berth-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	// Files, not pipes, for a detached container's stdio.
	logf, err := os.Create(filepath.Join(t.TempDir(), "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"runtime", "--root", root, "run", "-d", "--bundle", bundle, c.id}
	run := exec.Command(bin, args...)
	run.Stdout, run.Stderr = logf, logf
	t.Cleanup(func() { exec.Command(bin, "runtime", "--root", root, "delete", "--force", c.id).Run() })
	err = run.Run()
	out, _ := os.ReadFile(logf.Name())
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out, err = exec.Command(bin, "runtime", "--root", root, "state", c.id).Output()
	if err != nil {
		t.Fatalf("berth runtime state: %v", err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(out, &st); err != nil || st.Pid <= 0 {
		t.Fatalf("state %s: %v", out, err)
	}
	c.pid = st.Pid
	// As with runc, `run -d` returns once the container is started; its
	// init execs the process a moment later.
	for i := 0; ; i++ {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.pid))
		if string(comm) == "sleep\n" {
			break
		}
		if i == 500 {
			t.Fatalf("container %s: init %d did not exec sleep within 5s (comm %q)", c.id, c.pid, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// dockerSeccomp gives the container Docker's default seccomp profile for
// Docker's default capabilities, as the OCI linux.seccomp berth compiles.
func dockerSeccomp(t *testing.T, spec map[string]any) {
	cfg, err := seccomp.DefaultProfile(caps.DockerDefault)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cfg)
	var m map[string]any
	json.Unmarshal(raw, &m)
	spec["linux"].(map[string]any)["seccomp"] = m
}

func withUserns(spec map[string]any) {
	linux := spec["linux"].(map[string]any)
	nss := linux["namespaces"].([]any)
	linux["namespaces"] = append([]any{map[string]any{"type": "user"}}, nss...)
	m := []any{map[string]any{"containerID": 0, "hostID": 100000, "size": 65536}}
	linux["uidMappings"], linux["gidMappings"] = m, m
}

func dockerDefaultCaps(spec map[string]any) {
	c := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	spec["process"].(map[string]any)["capabilities"] = map[string]any{"bounding": c, "effective": c, "permitted": c}
}

// TestInspectNSRuntimeContainers is the talk's picture with real
// containers: the host shell, a container with a user namespace mapped
// 0 100000 65536 whose user namespace owns its new namespaces, and one
// without, whose new namespaces the host's user namespace owns. The
// containers are named by ID and resolved through the runtime's state.
func TestInspectNSRuntimeContainers(t *testing.T) {
	testutil.RequiresRoot(t)
	withNS := startContainer(t, func(s map[string]any) { withUserns(s); dockerDefaultCaps(s) })
	plain := startContainer(t, dockerDefaultCaps)
	self := os.Getpid()
	types := []string{"cgroup", "ipc", "mnt", "net", "pid", "uts"}

	out, stderr, code := berthRun(t, "inspect", "ns", "--runtime-root", withNS.root, "-H", "unix:///nonexistent.sock", strconv.Itoa(self), withNS.id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := fmt.Sprintf("\n  user %s <UID: 0>\n    [ %d ]\n", nsOf(t, withNS.pid, "user"), withNS.pid)
	for _, typ := range types {
		want += fmt.Sprintf("    %s %s\n      [ %d ]\n", typ, nsOf(t, withNS.pid, typ), withNS.pid)
	}
	if !strings.HasPrefix(out, fmt.Sprintf("user %s <UID: 0>\n  [ %d ]\n", nsOf(t, self, "user"), self)) || !strings.HasSuffix(out, want) {
		t.Errorf("container with a user namespace:\n%s\nwant it to end with\n%s", out, want)
	}
	for _, typ := range types {
		if nsOf(t, withNS.pid, typ) == nsOf(t, self, typ) {
			t.Errorf("the container shares the host's %s namespace", typ)
		}
	}

	out, stderr, code = berthRun(t, "inspect", "ns", "--runtime-root", plain.root, "-H", "unix:///nonexistent.sock", strconv.Itoa(self), plain.id[:len(plain.id)-2])
	if code != 0 {
		t.Fatalf("prefix of the ID: exit %d: %s", code, stderr)
	}
	if strings.Count(out, "user ") != 1 {
		t.Errorf("container without a user namespace shows nested user namespaces:\n%s", out)
	}
	for _, typ := range types {
		if !strings.Contains(out, fmt.Sprintf("\n  %s %s\n    [ %d ]\n", typ, nsOf(t, plain.pid, typ), plain.pid)) {
			t.Errorf("no new %s namespace of %d owned by the host's user namespace:\n%s", typ, plain.pid, out)
		}
	}

	out, _, code = berthRun(t, "inspect", "ns", "--pidns", "--runtime-root", withNS.root, "-H", "unix:///nonexistent.sock", strconv.Itoa(self), withNS.id)
	wantPid := fmt.Sprintf("pid %s\n    [ %d ]\n    pid %s\n        [ %d ]\n        NStgid: %d 1\n", nsOf(t, self, "pid"), self, nsOf(t, withNS.pid, "pid"), withNS.pid, withNS.pid)
	if code != 0 || out != wantPid {
		t.Errorf("--pidns:\n%s\nwant\n%s", out, wantPid)
	}
}

// TestInspectCapsAndIsolationRuntimeContainer: Docker's capability set
// and the runtime's masked and read-only paths, seen by caps and
// isolation, against getpcaps and the kernel.
func TestInspectCapsAndIsolationRuntimeContainer(t *testing.T) {
	testutil.RequiresRoot(t)
	c := startContainer(t, func(s map[string]any) { withUserns(s); dockerDefaultCaps(s); dockerSeccomp(t, s) })
	flags := []string{"--runtime-root", c.root, "-H", "unix:///nonexistent.sock"}
	out, stderr, code := berthRun(t, append([]string{"inspect", "caps", c.id}, flags...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if gp, err := exec.Command("getpcaps", strconv.Itoa(c.pid)).Output(); err == nil && !strings.HasPrefix(out, string(gp)) {
		t.Errorf("caps:\n%s\ngetpcaps:\n%s", out, gp)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if !strings.Contains(string(status), "CapEff:\t00000000a80425fb") || !strings.Contains(out, "effective: = Docker's default") {
		t.Errorf("caps:\n%s\nstatus:\n%s", out, status)
	}

	out, stderr, code = berthRun(t, append([]string{"inspect", "isolation", c.id}, flags...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, re := range []string{
		`DIFFERS +namespace +user +new ` + regexp.QuoteMeta(nsOf(t, c.pid, "user")),
		`default +namespace +pid +new ` + regexp.QuoteMeta(nsOf(t, c.pid, "pid")),
		`DIFFERS +user mapping +uid_map +0 100000 65536 `,
		`default +capabilities +effective +00000000a80425fb `,
		`default +read-only path +/proc/sys +read-only `,
		`default +seccomp +mode +filter `,
		`default +seccomp +filters +1 filter: \d+ instructions \(x86_64`,
		`default +seccomp +profile +Docker's default for its capabilities `,
		`default +mounts +/ +`,
		`isolation of container ` + c.id + `: process ` + strconv.Itoa(c.pid) + ` \(sleep\)`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("isolation lacks /%s/:\n%s", re, out)
		}
	}
	// A masked file is /dev/null in the container.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/proc/timer_list", c.pid)); err == nil &&
		!regexp.MustCompile(`default +masked path +/proc/timer_list +masked`).MatchString(out) {
		t.Errorf("/proc/timer_list not masked:\n%s", out)
	}
}

func cpuLimit(quota, period int) func(map[string]any) {
	return func(spec map[string]any) {
		linux := spec["linux"].(map[string]any)
		res, _ := linux["resources"].(map[string]any)
		if res == nil {
			res = map[string]any{}
			linux["resources"] = res
		}
		// A high weight keeps other work on this shared machine from
		// starving the burner below its quota.
		res["cpu"] = map[string]any{"quota": quota, "period": period, "shares": 262144}
	}
}

// TestInspectCgroupRuntimeContainer is the talk's `docker run
// --cpu-period=2000 --cpu-quota=1000 busybox sleep`: berth shows the
// container's cgroup in each hierarchy and the quota, as the cgroup files
// say.
func TestInspectCgroupRuntimeContainer(t *testing.T) {
	testutil.RequiresRoot(t)
	c := startContainer(t, cpuLimit(1000, 2000))
	out, stderr, code := berthRun(t, "inspect", "cgroup", "--format", "json", "--runtime-root", c.root, "-H", "unix:///nonexistent.sock", c.id)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r struct {
		Hierarchies []struct{ Path, Dir string }
		CPU         struct {
			Dir      string
			QuotaUS  int64 `json:"quota_us"`
			PeriodUS int64 `json:"period_us"`
		} `json:"cpu"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	cr := r
	quota, _ := os.ReadFile(filepath.Join(r.CPU.Dir, "cpu.cfs_quota_us"))
	period, _ := os.ReadFile(filepath.Join(r.CPU.Dir, "cpu.cfs_period_us"))
	if v2 := filepath.Join(r.CPU.Dir, "cpu.max"); len(quota) == 0 {
		b, _ := os.ReadFile(v2)
		if f := strings.Fields(string(b)); len(f) == 2 {
			quota, period = []byte(f[0]), []byte(f[1])
		}
	}
	if cr.CPU.QuotaUS != 1000 || cr.CPU.PeriodUS != 2000 || strings.TrimSpace(string(quota)) != "1000" || strings.TrimSpace(string(period)) != "2000" {
		t.Errorf("cpu quota %d/%d, files say %q/%q (dir %s)", cr.CPU.QuotaUS, cr.CPU.PeriodUS, quota, period, r.CPU.Dir)
	}
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.pid))
	if len(r.Hierarchies) != strings.Count(string(raw), "\n") {
		t.Errorf("%d hierarchies for\n%s", len(r.Hierarchies), raw)
	}
	for _, h := range r.Hierarchies {
		if !strings.Contains(h.Path, c.id) {
			t.Errorf("hierarchy path %s is not the container's own cgroup", h.Path)
		}
		if procs, err := os.ReadFile(filepath.Join(h.Dir, "cgroup.procs")); h.Dir != "" && (err != nil || !strings.Contains(string(procs), strconv.Itoa(c.pid))) {
			t.Errorf("%s/cgroup.procs does not list %d: %v", h.Dir, c.pid, err)
		}
	}
	text, _, _ := berthRun(t, "inspect", "cgroup", "--runtime-root", c.root, "-H", "unix:///nonexistent.sock", c.id)
	if !strings.Contains(text, "cpu     quota 1000us / period 2000us (50% of one CPU)") {
		t.Errorf("text:\n%s", text)
	}
}
