package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// vmPackages are the test packages run inside the pure cgroup v2 guest
// (BERTH_VM_PACKAGES overrides, space separated).
var vmPackages = []string{
	"./cgroups",
	"./cgroups/devices",
	"./inspect", // berth inspect cgroup on a pure v2 host
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// TestCgroupV2InVM boots Debian's kernel under qemu (TCG) with cgroup2
// alone at /sys/fs/cgroup and runs the cgroup test binaries there; the
// guest's verdict comes back over the serial console.
func TestCgroupV2InVM(t *testing.T) {
	testutil.RequiresRoot(t)
	if os.Getenv("BERTH_VM") == "1" {
		t.Skip("already inside the VM")
	}
	if testing.Short() {
		t.Skip("boots a VM (-short)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 is missing: run `make deps` (Debian package qemu-system-x86)")
	}
	t0 := time.Now()
	kernel, err := FetchKernel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s (%v)", kernel.Vmlinux, time.Since(t0).Round(time.Millisecond))
	dir := t.TempDir()
	pkgs := vmPackages
	if env := os.Getenv("BERTH_VM_PACKAGES"); env != "" {
		pkgs = strings.Fields(env)
	}
	files := map[string]string{"/bin/berth": testutil.BerthBinary(t)}
	var modules []string
	for _, m := range kernel.Modules {
		g := "/lib/modules-berth/" + filepath.Base(m)
		files[g] = m
		modules = append(modules, g)
	}
	var runs []string
	for _, p := range pkgs {
		name := strings.ReplaceAll(strings.Trim(p, "./"), "/", "_") + ".test"
		out := filepath.Join(dir, name)
		cmd := exec.Command(goTool(), "test", "-c", "-trimpath", "-o", out, p)
		cmd.Dir = testutil.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go test -c %s: %v\n%s", p, err, b)
		}
		if _, err := os.Stat(out); err != nil {
			continue // a package without tests
		}
		files["/tests/"+name] = out
		runs = append(runs, fmt.Sprintf("/tests/%s -test.v -test.count=1 -test.timeout=10m", name))
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	ir := Initramfs{
		Files: files,
		Links: map[string]string{"/bin/berth-runtime": "berth"},
		Init:  "export BERTH_BIN=/bin/berth\n" + Init(modules, runs),
	}
	if err := ir.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Logf("initramfs built (%v)", time.Since(t0).Round(time.Millisecond))
	var out bytes.Buffer
	t1 := time.Now()
	rc, err := Run(context.Background(), Config{Kernel: kernel.Vmlinux, Initrd: initrd, Output: &out, Timeout: 20 * time.Minute})
	t.Logf("VM ran for %v", time.Since(t1).Round(time.Millisecond))
	log := out.String()
	if err != nil || rc != 0 {
		t.Fatalf("guest result rc=%d err=%v; console:\n%s", rc, err, log)
	}
	// The guest really was a pure v2 host and the tests really ran there.
	for _, want := range []string{"layout: v2", "--- PASS: TestCPUQuotaEnforced", "--- PASS: TestMemoryLimitOOMKills",
		"--- PASS: TestPidsLimitStopsForkBomb", "--- PASS: TestDevicePolicyDeniesAfterMknod", "--- PASS: TestKernelBPFMatchesEmulator",
		"--- PASS: TestCloneFDOnlyOnV2", "--- PASS: TestCgroupsLimits",
		"--- PASS: TestRuntimeRunCPUQuota", "--- PASS: TestRuntimeRunOOMExit137", "--- PASS: TestRuntimeRunForkBomb",
		"--- PASS: TestRuntimeRunDeviceDeniedAfterMknod", "--- PASS: TestRuntimeCgroupNamespaceView",
		"--- PASS: TestIOThrottleEnforced", "--- PASS: TestMemorySwapAndUpdate", "--- PASS: TestCPUSetPinsProcesses",
		"--- PASS: TestHugetlbLimit", "--- PASS: TestUnifiedKeys", "--- PASS: TestDevicePolicyUpdate"} {
		if !strings.Contains(log, want) {
			t.Errorf("guest output lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("console:\n%s", log)
	} else {
		for _, l := range regexp.MustCompile(`(?m)^(vm: .*|=== vm .*|\s*cgroups_linux_test.go:\d+: busy loop.*|--- (PASS|FAIL|SKIP): Test\S+ .*)$`).FindAllString(log, -1) {
			t.Log(l)
		}
	}
}
