package runtime_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The talk's first observations, through the runtime alone.
func TestTalkCredentialsAndMappings(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"sh", "-c", `echo "$$"; id; cat /proc/self/uid_map; cat /proc/self/gid_map`}, func(s *specs.Spec) {
		userns(s)
		dockerCaps(s)
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("output:\n%s", out)
	}
	if lines[0] != "1" {
		t.Errorf("$$ = %q, want 1", lines[0])
	}
	if !strings.HasPrefix(lines[1], "uid=0(root) gid=0(root)") {
		t.Errorf("id = %q", lines[1])
	}
	for _, l := range lines[2:] {
		if f := strings.Fields(l); strings.Join(f, " ") != "0 100000 65536" {
			t.Errorf("map line %q, want 0 100000 65536", l)
		}
	}
}

func TestTalkCapabilitiesAreDockers(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"grep", "Cap", "/proc/self/status"}, dockerCaps)
	want := map[string]string{
		"CapInh": "0000000000000000", "CapPrm": "00000000a80425fb", "CapEff": "00000000a80425fb",
		"CapBnd": "00000000a80425fb", "CapAmb": "0000000000000000",
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		k := strings.TrimSuffix(f[0], ":")
		if want[k] != f[1] {
			t.Errorf("%s = %s, want %s", k, f[1], want[k])
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("missing lines %v in:\n%s", want, out)
	}
}

// A sleeping container seen from the host: PID 1 inside, its own PID on
// the host (NStgid), and namespaces different from the host's for every
// type requested, owned by the container's user namespace.
func TestTalkSleepSeenFromHost(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "sleep 1000"}, func(s *specs.Spec) {
		userns(s)
	})
	id := newID("sleep")
	if r := e.rt("run", "--detach", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %d %s", r.code, r.stderr)
	}
	st := e.state(id)
	if st["status"] != "running" {
		t.Fatalf("status %v", st["status"])
	}
	pid := int(st["pid"].(float64))
	// start returns once the process is released; the exec follows.
	var status []byte
	waitFor(t, "sleep to be PID 1", func() bool {
		status, _ = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		return strings.Contains(string(status), "Name:\tsleep\n")
	})
	if !strings.Contains(string(status), "NStgid:\t"+strconv.Itoa(pid)+"\t1\n") {
		t.Errorf("NStgid of %d is not '%d 1':\n%s", pid, pid, status)
	}
	if !strings.Contains(string(status), "Name:\tsleep\n") {
		t.Errorf("init is not sleep (sh should exec it):\n%s", status)
	}
	for _, typ := range []string{"user", "ipc", "mnt", "net", "pid", "uts", "cgroup"} {
		host, err1 := os.Readlink("/proc/self/ns/" + typ)
		ctr, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, typ))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if host == ctr {
			t.Errorf("%s namespace is the host's (%s)", typ, host)
		}
	}
	if r := e.rt("kill", id, "KILL"); r.code != 0 {
		t.Fatalf("kill: %s", r.stderr)
	}
	waitFor(t, "container to stop", func() bool { return e.state(id)["status"] == "stopped" })
	if r := e.rt("delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
}
