package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCreateStartStateKillDelete(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "1000"}, nil)
	id := newID("life")
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	if r := e.rt("create", "--bundle", b, "--pid-file", pidFile, id); r.code != 0 {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	st := e.state(id)
	if st["status"] != "created" || st["id"] != id || st["bundle"] != b {
		t.Fatalf("state after create: %v", st)
	}
	pid := int(st["pid"].(float64))
	pf, err := os.ReadFile(pidFile)
	if err != nil || string(pf) != strconv.Itoa(pid) {
		t.Fatalf("pid file %q (%v), state pid %d", pf, err, pid)
	}
	// Before start the init is berth, not yet the user's process.
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
		t.Fatal("process already exec'd before start")
	}
	if r := e.rt("create", "--bundle", b, id); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second create with the same id: %d %s", r.code, r.stderr)
	}
	if r := e.rt("start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	waitFor(t, "sleep to exec", func() bool {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("state after start: %v", st)
	}
	if r := e.rt("start", id); r.code == 0 {
		t.Fatal("start of a running container succeeded")
	}
	if r := e.rt("delete", id); r.code == 0 || !strings.Contains(r.stderr, "not stopped") {
		t.Fatalf("delete of a running container: %d %s", r.code, r.stderr)
	}
	r := e.rt("list", "--format", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("list: %v %s", err, r.stdout)
	}
	// PID 1 of a namespace ignores signals it has no handler for, except
	// SIGKILL from an ancestor namespace.
	if r := e.rt("kill", id, "KILL"); r.code != 0 {
		t.Fatalf("kill: %s", r.stderr)
	}
	waitFor(t, "stop", func() bool { return e.state(id)["status"] == "stopped" })
	if r := e.rt("kill", id, "KILL"); r.code == 0 {
		t.Fatal("kill of a stopped container succeeded")
	}
	if r := e.rt("delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	if r := e.rt("state", id); r.code == 0 {
		t.Fatal("state of a deleted container succeeded")
	}
	if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
		t.Fatalf("state dir left behind: %v", err)
	}
}

func TestDeleteForceRunningAndCreated(t *testing.T) {
	e := newEnv(t)
	for _, start := range []bool{false, true} {
		b := e.bundle([]string{"sleep", "1000"}, nil)
		id := newID("force")
		if r := e.rt("create", "--bundle", b, id); r.code != 0 {
			t.Fatalf("create: %s", r.stderr)
		}
		pid := int(e.state(id)["pid"].(float64))
		if start {
			if r := e.rt("start", id); r.code != 0 {
				t.Fatalf("start: %s", r.stderr)
			}
		}
		if r := e.rt("delete", "--force", id); r.code != 0 {
			t.Fatalf("delete --force (started=%v): %s", start, r.stderr)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/ns"); err == nil {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z") {
				t.Fatalf("init %d still alive after delete --force", pid)
			}
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	e := newEnv(t)
	if r := e.run([]string{"sh", "-c", "exit 3"}, nil); r.code != 3 {
		t.Errorf("exit 3 → %d (%s)", r.code, r.stderr)
	}
	b := e.bundle([]string{"sleep", "1000"}, nil)
	id := newID("sig")
	done := make(chan result, 1)
	go func() { done <- e.rt("run", "--bundle", b, id) }()
	waitFor(t, "running", func() bool {
		r := e.rt("state", id)
		return r.code == 0 && strings.Contains(r.stdout, `"running"`)
	})
	if r := e.rt("kill", id, "9"); r.code != 0 {
		t.Fatalf("kill: %s", r.stderr)
	}
	if r := <-done; r.code != 137 {
		t.Errorf("killed by 9 → %d (%s)", r.code, r.stderr)
	}
	r := e.run([]string{"no-such-command"}, nil)
	if r.code == 0 || !strings.Contains(r.stderr, "executable file not found") {
		t.Errorf("missing command → %d %q", r.code, r.stderr)
	}
	r = e.run([]string{"/etc/passwd"}, nil)
	if r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("non-executable → %d %q", r.code, r.stderr)
	}
}

func TestProcessSettings(t *testing.T) {
	e := newEnv(t)
	umask := uint32(0o027)
	out := e.mustRun([]string{"sh", "-c", "id; pwd; ulimit -n; umask; echo $FOO; hostname; cat /proc/self/oom_score_adj"}, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
		s.Hostname = "talk"
		adj := 500
		s.Process.OOMScoreAdj = &adj
	})
	want := []string{"uid=1000 gid=1000 groups=10(wheel),20", "/tmp", "321", "0027", "bar baz", "talk", "500"}
	got := strings.Split(strings.TrimSpace(out), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestRlimitAboveHardLimitIsAClearError(t *testing.T) {
	e := newEnv(t)
	var cur [2]uint64
	b, _ := os.ReadFile("/proc/self/limits")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(l)
			cur[1], _ = strconv.ParseUint(f[4], 10, 64)
		}
	}
	if cur[1] == 0 {
		t.Skip("cannot read the hard limit of open files")
	}
	r := e.run([]string{"true"}, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur[1] + 1, Hard: cur[1] + 1}}
	})
	if r.code == 0 {
		t.Skip("this host lets the runtime raise its hard limit (CAP_SYS_RESOURCE)")
	}
	if !strings.Contains(r.stderr, "RLIMIT_NOFILE") || !strings.Contains(r.stderr, "hard limit") {
		t.Fatalf("error does not explain the refused rlimit: %q", r.stderr)
	}
}

func TestInheritableAndAmbientEmptyUnlessAsked(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"grep", "-E", "CapInh|CapAmb", "/proc/self/status"}, dockerCaps)
	if strings.Count(out, "0000000000000000") != 2 {
		t.Fatalf("inheritable/ambient not empty (CVE-2022-29162):\n%s", out)
	}
	out = e.mustRun([]string{"grep", "-E", "CapInh|CapAmb", "/proc/self/status"}, func(s *specs.Spec) {
		dockerCaps(s)
		s.Process.Capabilities.Inheritable = []string{"CAP_KILL"}
		s.Process.Capabilities.Ambient = []string{"CAP_KILL"}
	})
	if strings.Count(out, "0000000000000020") != 2 {
		t.Fatalf("asked-for inheritable/ambient CAP_KILL missing:\n%s", out)
	}
}
