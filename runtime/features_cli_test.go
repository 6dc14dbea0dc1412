package runtime_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
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
