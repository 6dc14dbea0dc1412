package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// berthRun runs the berth binary under test and returns stdout, stderr and
// the exit code.
func berthRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testutil.BerthBinary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run berth %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// startUnshared runs `unshare ARGS --fork --kill-child sleep 300` and
// returns the PID of the sleep; both processes are killed by PID at the end.
func startUnshared(t *testing.T, args ...string) int {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("util-linux unshare not installed")
	}
	cmd := exec.Command("unshare", append(args, "--fork", "--kill-child", "sleep", "300")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inner := 0
	t.Cleanup(func() {
		if inner > 0 {
			syscall.Kill(inner, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	outer := cmd.Process.Pid
	for i := 0; i < 500; i++ {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", outer, outer))
		if f := strings.Fields(string(b)); len(f) == 1 {
			comm, _ := os.ReadFile("/proc/" + f[0] + "/comm")
			if string(comm) == "sleep\n" {
				inner, _ = strconv.Atoi(f[0])
				return inner
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("unshare: no sleep child within 5s")
	return 0
}

// nsOf is what the kernel says: "{dev inode}" of /proc/PID/ns/TYPE.
func nsOf(t *testing.T, pid int, typ string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, typ), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("{%d %d}", st.Dev, st.Ino)
}

// TestInspectNSTalk runs the talk's command on this process and an
// isolated one and checks every line against the kernel.
func TestInspectNSTalk(t *testing.T) {
	testutil.RequiresRoot(t)
	inner := startUnshared(t, "--user", "--map-root-user", "--pid", "--mount-proc", "--ipc", "--uts", "--net", "--mount", "--cgroup")
	self := os.Getpid()
	out, stderr, code := berthRun(t, "inspect", "ns", strconv.Itoa(self), strconv.Itoa(inner))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := fmt.Sprintf("user %s <UID: 0>\n  [ %d ]\n", nsOf(t, self, "user"), self)
	for _, typ := range []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "uts"} {
		members := fmt.Sprint(self)
		if typ == "time" {
			members = fmt.Sprintf("%d %d", min(self, inner), max(self, inner))
		}
		want += fmt.Sprintf("  %s %s\n    [ %s ]\n", typ, nsOf(t, self, typ), members)
	}
	want += fmt.Sprintf("  user %s <UID: 0>\n    [ %d ]\n", nsOf(t, inner, "user"), inner)
	for _, typ := range []string{"cgroup", "ipc", "mnt", "net", "pid", "uts"} {
		want += fmt.Sprintf("    %s %s\n      [ %d ]\n", typ, nsOf(t, inner, typ), inner)
	}
	if out != want {
		t.Errorf("berth inspect ns:\n%s\nwant (from the kernel):\n%s", out, want)
	}

	out, _, code = berthRun(t, "inspect", "ns", "--pidns", strconv.Itoa(self), strconv.Itoa(inner))
	wantPid := fmt.Sprintf("pid %s\n    [ %d ]\n    pid %s\n        [ %d ]\n        NStgid: %d 1\n", nsOf(t, self, "pid"), self, nsOf(t, inner, "pid"), inner, inner)
	if code != 0 || out != wantPid {
		t.Errorf("--pidns (exit %d):\n%s\nwant\n%s", code, out, wantPid)
	}

	out, _, code = berthRun(t, "inspect", "ns", "--format", "json", strconv.Itoa(self), strconv.Itoa(inner))
	var tree struct {
		Roots []struct {
			Type     string
			Inode    uint64
			PIDs     []int
			Children []struct {
				Inode uint64
				Owned []struct{ Type string }
			}
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &tree) != nil || len(tree.Roots) != 1 || len(tree.Roots[0].Children) != 1 ||
		len(tree.Roots[0].Children[0].Owned) != 6 {
		t.Errorf("--format json (exit %d):\n%s", code, out)
	}
}

func TestInspectNSAll(t *testing.T) {
	testutil.RequiresRoot(t)
	inner := startUnshared(t, "--user", "--map-root-user", "--pid", "--mount-proc", "--net")
	out, _, code := berthRun(t, "inspect", "ns", "--all")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// unshare itself is in the new user and net namespaces too.
	in := func(p int) string { return `\[ [0-9 ]*\b` + strconv.Itoa(p) + `\b[0-9 ]*\]` }
	for _, want := range []string{
		`\n  user ` + regexp.QuoteMeta(nsOf(t, inner, "user")) + ` <UID: 0>\n    ` + in(inner) + `\n`,
		`\n    net ` + regexp.QuoteMeta(nsOf(t, inner, "net")) + `\n      ` + in(inner) + `\n`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("--all lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(in(os.Getpid())).MatchString(out) {
		t.Errorf("--all does not list the test process %d", os.Getpid())
	}
	if _, stderr, code := berthRun(t, "inspect", "ns", "--all", "1"); code != 125 || !strings.Contains(stderr, "--all takes no") {
		t.Errorf("--all with a PID: exit %d %s", code, stderr)
	}
}

// TestInspectCapsGetpcaps: a process with Docker's default set, made with
// setpriv, described by berth and by getpcaps.
func TestInspectCapsGetpcaps(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, tool := range []string{"setpriv", "getpcaps"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	set := "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap"
	cmd := exec.Command("setpriv", "--inh-caps="+set, "--bounding-set="+set, "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := strconv.Itoa(cmd.Process.Pid)
	var status []byte
	for i := 0; i < 300; i++ {
		status, _ = os.ReadFile("/proc/" + pid + "/status")
		if strings.Contains(string(status), "Name:\tsleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	gp, err := exec.Command("getpcaps", pid).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := berthRun(t, "inspect", "caps", pid)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(out, "\n")
	if lines[0]+"\n" != string(gp) {
		t.Errorf("first line %q, getpcaps %q", lines[0], gp)
	}
	for _, f := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd"} {
		if !strings.Contains(string(status), f+":\t00000000a80425fb") || !strings.Contains(out, "  "+f+": 00000000a80425fb  cap_chown,cap_dac_override,") {
			t.Errorf("%s: berth\n%s\nkernel\n%s", f, out, status)
		}
	}
	if !strings.Contains(out, "effective: = Docker's default") {
		t.Errorf("not recognized as Docker's default:\n%s", out)
	}
	out, _, _ = berthRun(t, "inspect", "caps", "--format", "{{.Effective.Hex}} {{len .Effective.Names}}", pid)
	if out != "00000000a80425fb 14\n" {
		t.Errorf("template: %q", out)
	}
}

func TestInspectCgroupAndIsolationJSON(t *testing.T) {
	testutil.RequiresRoot(t)
	inner := startUnshared(t, "--user", "--map-root-user", "--pid", "--mount-proc", "--ipc", "--uts", "--net", "--mount")
	out, stderr, code := berthRun(t, "inspect", "cgroup", "--format", "json", strconv.Itoa(inner))
	var cg struct {
		PID         int
		Layout      string
		Hierarchies []struct{ Path, Dir string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &cg) != nil || cg.PID != inner {
		t.Fatalf("cgroup json (exit %d, %s):\n%s", code, stderr, out)
	}
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", inner))
	if len(cg.Hierarchies) != strings.Count(string(raw), "\n") {
		t.Errorf("%d hierarchies, /proc says\n%s", len(cg.Hierarchies), raw)
	}

	out, stderr, code = berthRun(t, "inspect", "isolation", "--format", "json", strconv.Itoa(inner))
	var iso struct {
		Findings []struct {
			Area, Item, Value string
			IsDefault         bool `json:"is_docker_default"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &iso) != nil {
		t.Fatalf("isolation json (exit %d, %s):\n%s", code, stderr, out)
	}
	got := map[string]string{}
	for _, f := range iso.Findings {
		got[f.Area+" "+f.Item] = f.Value
	}
	for _, typ := range []string{"user", "mnt", "pid", "net", "ipc", "uts"} {
		if want := "new " + nsOf(t, inner, typ); got["namespace "+typ] != want {
			t.Errorf("namespace %s: %q, want %q", typ, got["namespace "+typ], want)
		}
	}
	if want := "shared with host " + nsOf(t, inner, "cgroup"); got["namespace cgroup"] != want {
		t.Errorf("namespace cgroup: %q, want %q", got["namespace cgroup"], want)
	}
	text, _, code := berthRun(t, "inspect", "isolation", strconv.Itoa(inner))
	if code != 0 || !regexp.MustCompile(`\nDIFFERS +namespace +user +new `+regexp.QuoteMeta(nsOf(t, inner, "user"))).MatchString(text) {
		t.Errorf("isolation text (exit %d):\n%s", code, text)
	}
}

// TestInspectBadInput: every way to name a process wrongly is a clear
// error and a non-zero exit.
func TestInspectBadInput(t *testing.T) {
	testutil.RequiresRoot(t)
	gone := exec.Command("true")
	gone.Run()
	gonePID := strconv.Itoa(gone.Process.Pid)
	noDaemon := []string{"-H", "unix:///nonexistent/berth.sock", "--runtime-root", "/nonexistent/berth-runtime"}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"inspect", "ns", gonePID}, 1, "no such process: " + gonePID},
		{[]string{"inspect", "caps", gonePID}, 1, "no such process: " + gonePID},
		{[]string{"inspect", "cgroup", "0"}, 1, "invalid PID 0"},
		{[]string{"inspect", "caps", "../etc"}, 1, "invalid PID or container name"},
		{append([]string{"inspect", "isolation", "nosuchcontainer"}, noDaemon...), 1, "no such container or process: nosuchcontainer"},
		{[]string{"inspect", "caps", "1", "2"}, 125, "requires exactly 1"},
		{[]string{"inspect", "ns"}, 125, "requires at least 1"},
		{[]string{"inspect", "caps", "--format", "yaml", "1"}, 125, "--format"},
		{[]string{"inspect", "caps", "--bogus", "1"}, 125, "flag provided but not defined"},
		{[]string{"bench", "cpu", "--seconds", "-1"}, 125, "--seconds"},
		{[]string{"bench", "gpu"}, 125, "unknown benchmark"},
	} {
		_, stderr, code := berthRun(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("berth %v: exit %d, stderr %q; want exit %d with %q", c.args, code, stderr, c.code, c.msg)
		}
	}
}

// TestInspectNoPermission: an unprivileged user may not look into a root
// process's namespaces.
func TestInspectNoPermission(t *testing.T) {
	testutil.RequiresRoot(t)
	dir, err := os.MkdirTemp("", "berth-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "berth")
	data, err := os.ReadFile(testutil.BerthBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "inspect", "ns", strconv.Itoa(os.Getpid()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "permission denied") {
		t.Errorf("as nobody: %v\n%s", err, out)
	}
}

// TestInspectResolvesThroughDockerAPI: a container name is resolved with
// GET /v1.41/containers/{name}/json. The server here answers as the
// Docker API documents it, with the PID of a real process; the berth
// daemon's own test of this path lands with the daemon.
func TestInspectResolvesThroughDockerAPI(t *testing.T) {
	testutil.RequiresRoot(t)
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		switch r.URL.Path {
		case "/v1.41/containers/web/json":
			fmt.Fprintf(w, `{"Id":"b9babde073e3","State":{"Status":"running","Running":true,"Pid":%d}}`, sleeper.Process.Pid)
		case "/v1.41/containers/stopped/json":
			io.WriteString(w, `{"Id":"aa","State":{"Status":"exited","Running":false,"Pid":0}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"No such container"}`)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	host := "unix://" + sock
	out, stderr, code := berthRun(t, "inspect", "caps", "-H", host, "--format", "{{.PID}}", "web")
	if code != 0 || strings.TrimSpace(out) != strconv.Itoa(sleeper.Process.Pid) {
		t.Errorf("web: exit %d out %q err %q", code, out, stderr)
	}
	if _, stderr, code = berthRun(t, "inspect", "caps", "-H", host, "stopped"); code != 1 || !strings.Contains(stderr, "not running") {
		t.Errorf("stopped: exit %d %q", code, stderr)
	}
	if _, stderr, code = berthRun(t, "inspect", "caps", "-H", host, "--runtime-root", "/nonexistent", "ghost"); code != 1 || !strings.Contains(stderr, "no such container") {
		t.Errorf("ghost: exit %d %q", code, stderr)
	}
	if len(asked) != 3 {
		t.Errorf("daemon asked %v", asked)
	}
}
