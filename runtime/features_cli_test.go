package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// `features` tells containerd what the runtime supports: seccomp is on,
// with at least every action and operator runc lists, the flags this
// kernel has, and the systemd cgroup driver.
func TestFeaturesJSON(t *testing.T) {
	read := func(bin string) *features.Features {
		out, err := exec.Command(bin, "features").Output()
		if err != nil {
			t.Fatalf("%s features: %v", bin, err)
		}
		var f features.Features
		if err := json.Unmarshal(out, &f); err != nil {
			t.Fatalf("%s features: %v\n%s", bin, err, out)
		}
		return &f
	}
	f := read(testutil.RuntimeBinary(t))
	sc := f.Linux.Seccomp
	if sc == nil || sc.Enabled == nil || !*sc.Enabled {
		t.Fatalf("seccomp not enabled: %+v", sc)
	}
	if cg := f.Linux.Cgroup; cg == nil || !*cg.V1 || !*cg.V2 || !*cg.Systemd {
		t.Errorf("cgroup features: %+v", cg)
	}
	if !slices.Contains(sc.Archs, "SCMP_ARCH_X86_64") || !slices.Contains(sc.SupportedFlags, "SECCOMP_FILTER_FLAG_LOG") {
		t.Errorf("archs %v, supported flags %v", sc.Archs, sc.SupportedFlags)
	}
	for _, fl := range sc.SupportedFlags {
		if !slices.Contains(sc.KnownFlags, fl) {
			t.Errorf("supported flag %s is not a known flag", fl)
		}
	}
	var u unix.Utsname
	unix.Uname(&u)
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err == nil && (major > 5 || major == 5 && minor >= 19) {
		if !slices.Contains(sc.SupportedFlags, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
			t.Errorf("kernel %d.%d has WAIT_KILLABLE_RECV, features says %v", major, minor, sc.SupportedFlags)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return
	}
	r := read("runc").Linux.Seccomp
	for _, a := range r.Actions {
		if !slices.Contains(sc.Actions, a) {
			t.Errorf("runc lists action %s, berth does not", a)
		}
	}
	for _, op := range r.Operators {
		if !slices.Contains(sc.Operators, op) {
			t.Errorf("runc lists operator %s, berth does not", op)
		}
	}
}

// --debug logs each command and how it ended in the --log file, in the
// --log-format; without --debug nothing but errors is written there.
func TestDebugLogsCommands(t *testing.T) {
	bin := testutil.RuntimeBinary(t)
	dir := t.TempDir()
	for _, debug := range []bool{true, false} {
		logPath := filepath.Join(dir, fmt.Sprintf("log-%v.json", debug))
		args := []string{"--root", dir, "--log", logPath, "--log-format", "json"}
		if debug {
			args = append(args, "--debug")
		}
		exec.Command(bin, append(args, "list")...).Run()
		exec.Command(bin, append(args, "state", "no-such-container")...).Run()
		b, _ := os.ReadFile(logPath)
		var levels []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]string
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			levels = append(levels, m["level"]+":"+strings.Fields(m["msg"])[0])
		}
		want := "error:"
		if debug {
			want = "debug:list debug:list debug:state debug:state error:"
		}
		got := strings.Join(levels, " ")
		if !strings.HasPrefix(got, want) || (!debug && len(levels) != 1) {
			t.Errorf("--debug=%v: log levels %q, want %q…", debug, got, want)
		}
	}
}
