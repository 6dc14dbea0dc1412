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

func TestExecJoinsTheContainer(t *testing.T) {
	for _, withUserns := range []bool{false, true} {
		name := "root"
		if withUserns {
			name = "userns"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			b := e.bundle([]string{"sh", "-c", "sleep 1000"}, func(s *specs.Spec) {
				dockerCaps(s)
				if withUserns {
					userns(s)
				}
			})
			id := newID("exec")
			if r := e.rt("run", "-d", "--bundle", b, id); r.code != 0 {
				t.Fatalf("run -d: %s", r.stderr)
			}
			pid := int(e.state(id)["pid"].(float64))
			waitFor(t, "sh to exec sleep", func() bool {
				c, _ := os.ReadFile(filepathJoinProc(pid, "../comm"))
				return strings.TrimSpace(string(c)) == "sleep"
			})
			// The talk: grep's own PID and sleep as PID 1.
			r := e.rt("exec", id, "grep", "Name", "/proc/1/status", "/proc/self/status")
			if r.code != 0 || !strings.Contains(r.stdout, "/proc/1/status:Name:\tsleep") || !strings.Contains(r.stdout, "/proc/self/status:Name:\tgrep") {
				t.Fatalf("exec grep: %d %q %q", r.code, r.stdout, r.stderr)
			}
			r = e.rt("exec", id, "sh", "-c", "for n in mnt pid user net; do readlink /proc/self/ns/$n; done; grep -E 'CapEff|NoNewPrivs' /proc/self/status; cat /proc/self/uid_map")
			if r.code != 0 {
				t.Fatalf("exec: %s", r.stderr)
			}
			for _, typ := range []string{"mnt", "pid", "user", "net"} {
				want, _ := os.Readlink(filepathJoinProc(pid, typ))
				if !strings.Contains(r.stdout, want) {
					t.Errorf("exec'd process not in the container's %s namespace %s:\n%s", typ, want, r.stdout)
				}
			}
			if !strings.Contains(r.stdout, "CapEff:\t00000000a80425fb") {
				t.Errorf("exec'd process capabilities:\n%s", r.stdout)
			}
			if withUserns && !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "0 100000 65536") {
				t.Errorf("uid map:\n%s", r.stdout)
			}
			if r := e.rt("exec", id, "sh", "-c", "exit 7"); r.code != 7 {
				t.Errorf("exec exit 7 → %d", r.code)
			}
			if r := e.rt("exec", "--user", "1000:1000", "--cwd", "/tmp", "--env", "A=b", id, "sh", "-c", "id -u; pwd; echo $A"); r.code != 0 || strings.Fields(r.stdout)[0] != "1000" || !strings.Contains(r.stdout, "/tmp") || !strings.Contains(r.stdout, "b") {
				t.Errorf("exec --user/--cwd/--env: %d %q %q", r.code, r.stdout, r.stderr)
			}
			if r := e.rt("exec", id, "nonexistent"); r.code == 0 || !strings.Contains(r.stderr, "executable file not found") {
				t.Errorf("exec of a missing command: %d %q", r.code, r.stderr)
			}
			proc := specs.Process{Args: []string{"sh", "-c", "echo from-json; grep NoNewPrivs /proc/self/status"}, Cwd: "/", NoNewPrivileges: true,
				Env: []string{"PATH=/bin"}}
			pf := filepath.Join(t.TempDir(), "process.json")
			bj, _ := json.Marshal(proc)
			os.WriteFile(pf, bj, 0o644)
			if r := e.rt("exec", "--process", pf, id); r.code != 0 || !strings.Contains(r.stdout, "from-json") || !strings.Contains(r.stdout, "NoNewPrivs:\t1") {
				t.Errorf("exec --process: %d %q %q", r.code, r.stdout, r.stderr)
			}
			if r := e.rt("pause", id); r.code != 0 {
				t.Fatalf("pause: %s", r.stderr)
			}
			if r := e.rt("exec", id, "true"); r.code == 0 {
				t.Error("exec into a paused container succeeded")
			}
			e.rt("resume", id)
			if r := e.rt("delete", "-f", id); r.code != 0 {
				t.Fatalf("delete: %s", r.stderr)
			}
			if r := e.rt("exec", id, "true"); r.code == 0 {
				t.Error("exec into a deleted container succeeded")
			}
		})
	}
}

func filepathJoinProc(pid int, typ string) string {
	return filepath.Join("/proc", itoa(pid), "ns", typ)
}

func itoa(n int) string { return strconv.Itoa(n) }
