package vm

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	"./runtime", // containers created, run and deleted with resources on a pure v2 host
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// guest builds what both guests share: the kernel, the test binaries of
// pkgs (each run with args) and bin/berth. It returns the kernel, the
// files for the initramfs and the command lines to run.
func guest(t *testing.T, pkgs []string, args string) (Kernel, map[string]string, []string) {
	t.Helper()
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
	files := map[string]string{"/bin/berth": testutil.BerthBinary(t)}
	if err := AddHostTools(files); err != nil {
		t.Fatal(err)
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
		runs = append(runs, fmt.Sprintf("/tests/%s -test.v -test.count=1 -test.timeout=10m %s", name, args))
	}
	return kernel, files, runs
}

// boot writes the initramfs and runs the VM; it fails the test unless the
// guest reports 0 and its console has every line in want.
func boot(t *testing.T, kernel Kernel, ir Initramfs, cmdline string, want []string) {
	t.Helper()
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if ir.Links == nil {
		ir.Links = map[string]string{}
	}
	ir.Links["/bin/berth-runtime"] = "berth"
	if err := ir.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out bytes.Buffer
	var console io.Writer = &out
	if testing.Verbose() {
		console = io.MultiWriter(&out, os.Stdout) // live, for whoever watches
	}
	t1 := time.Now()
	rc, err := Run(context.Background(), Config{Kernel: kernel.Vmlinux, Initrd: initrd, Cmdline: cmdline, Output: console, Timeout: 10 * time.Minute})
	t.Logf("VM ran for %v", time.Since(t1).Round(time.Millisecond))
	log := out.String()
	if err != nil || rc != 0 {
		t.Fatalf("guest result rc=%d err=%v; console:\n%s", rc, err, log)
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("guest output lacks %q", w)
		}
	}
	if t.Failed() && !testing.Verbose() {
		t.Logf("console:\n%s", log)
	} else {
		for _, l := range regexp.MustCompile(`(?m)^(vm: .*|=== vm .*|\s*cgroups_linux_test.go:\d+: busy loop.*|--- (PASS|FAIL|SKIP): Test\S+ .*)$`).FindAllString(log, -1) {
			t.Log(l)
		}
	}
}

// TestCgroupV2InVM boots Debian's kernel under qemu (TCG) with cgroup2
// alone at /sys/fs/cgroup and runs the cgroup test binaries there; the
// guest's verdict comes back over the serial console.
func TestCgroupV2InVM(t *testing.T) {
	pkgs := vmPackages
	if env := os.Getenv("BERTH_VM_PACKAGES"); env != "" {
		pkgs = strings.Fields(env)
	}
	kernel, files, runs := guest(t, pkgs, "")
	var modules []string
	for _, m := range kernel.Modules {
		g := "/lib/modules-berth/" + filepath.Base(m)
		files[g] = m
		modules = append(modules, g)
	}
	want := []string{}
	if os.Getenv("BERTH_VM_PACKAGES") == "" {
		// The guest really was a pure v2 host and the tests really ran there.
		want = []string{"layout: v2", "--- PASS: TestCPUQuotaEnforced", "--- PASS: TestMemoryLimitOOMKills",
			"--- PASS: TestPidsLimitStopsForkBomb", "--- PASS: TestDevicePolicyDeniesAfterMknod", "--- PASS: TestKernelBPFMatchesEmulator",
			"--- PASS: TestCloneFDOnlyOnV2", "--- PASS: TestCgroupsLimits",
			"--- PASS: TestRuntimeRunCPUQuota", "--- PASS: TestRuntimeRunOOMExit137", "--- PASS: TestRuntimeRunForkBomb",
			"--- PASS: TestRuntimeRunDeviceDeniedAfterMknod", "--- PASS: TestRuntimeCgroupNamespaceView",
			"--- PASS: TestIOThrottleEnforced", "--- PASS: TestMemorySwapAndUpdate", "--- PASS: TestCPUSetPinsProcesses",
			"--- PASS: TestHugetlbLimit", "--- PASS: TestUnifiedKeys", "--- PASS: TestDevicePolicyUpdate",
			"--- PASS: TestNoInternalProcesses",
			"--- PASS: TestProofIOWriteBpsEnforced", "--- PASS: TestProofIOPSThrottles", "--- PASS: TestProofDisableOOMKiller",
			"--- PASS: TestProofMemorySwappiness", "--- PASS: TestProofIsolationCgroupLimits",
			"--- PASS: TestProofExecJoinsCgroupAndSeccomp", "--- PASS: TestProofKillAll", "--- PASS: TestProofUpdateResourcesFileAndStdin"}
	}
	boot(t, kernel, Initramfs{Files: files, Init: "export BERTH_BIN=/bin/berth\n" + Init(modules, runs)}, NoV1, want)
}

// TestSystemdInVM boots the same kernel with systemd as PID 1 (Debian's
// systemd 252 from the host's package, with its libraries), once per cgroup
// layout systemd can set up — pure v2, hybrid and legacy v1 — and runs the
// systemd cgroup driver's tests there: transient scopes over D-Bus, for
// real, which hosts without systemd (like these) cannot show. The test
// binary is built once for the three guests.
func TestSystemdInVM(t *testing.T) {
	kernel, files, runs := guest(t, []string{"./cgroups"}, `-test.timeout=90s -test.run="Systemd|DetectLayout"`)
	sd, err := SystemdFiles()
	if err != nil {
		t.Fatal(err)
	}
	for g, h := range sd {
		files[g] = h
	}
	init, data := InitSystemd(runs)
	for _, layout := range []string{"v2", "hybrid", "v1"} {
		t.Run(layout, func(t *testing.T) {
			want := []string{"vm: systemd systemd up", "layout: " + layout, "--- PASS: TestSystemdDriverScope", "--- PASS: TestRuntimeSystemdCgroup"}
			boot(t, kernel, Initramfs{Files: files, Data: data, Init: init}, SystemdLayouts[layout], want)
		})
	}
}
