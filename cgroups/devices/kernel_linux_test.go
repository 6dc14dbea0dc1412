package devices

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// mountOf finds the mountpoint of a cgroup v1 controller (fstype cgroup
// with the option) or of cgroup2 (ctrl == "").
func mountOf(ctrl string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, x := range fields {
			if x != "-" || i+3 >= len(fields) {
				continue
			}
			if ctrl == "" && fields[i+1] == "cgroup2" {
				return fields[4]
			}
			if ctrl != "" && fields[i+1] == "cgroup" {
				for _, o := range strings.Split(fields[i+3], ",") {
					if o == ctrl {
						return fields[4]
					}
				}
			}
		}
	}
	return ""
}

// probe is one device use tried inside the cgroup.
type probe struct {
	t      Type
	ma, mi uint32
	acc    Access // Mknod, Read or Write (one at a time)
}

var probes = []probe{
	{Char, 1, 3, Read}, {Char, 1, 3, Write}, {Char, 1, 3, Mknod}, // null
	{Char, 1, 5, Read}, {Char, 1, 7, Write}, // zero, full
	{Char, 1, 1, Mknod}, {Char, 1, 1, Read}, // mem: mknod allowed by Docker, open not
	{Char, 1, 8, Read}, {Char, 1, 9, Write}, // random, urandom
	{Char, 1, 11, Read}, {Char, 1, 11, Write}, // kmsg
	{Block, 7, 0, Mknod}, {Block, 7, 0, Read}, // loop0
}

// runProbes makes the device nodes (as root, outside the cgroup), then runs
// a shell inside the cgroup (placed via procsFile before it does anything)
// that tries each use and prints "ok" or "no".
func runProbes(t *testing.T, procsFile string) []bool {
	t.Helper()
	dir := t.TempDir()
	var script strings.Builder
	script.WriteString("read go\n")
	for i, p := range probes {
		node := filepath.Join(dir, strconv.Itoa(i))
		switch p.acc {
		case Mknod:
			fmt.Fprintf(&script, "if mknod %s-m %c %d %d; then echo ok; else echo no; fi\n", node, p.t, p.ma, p.mi)
			continue
		case Read:
			fmt.Fprintf(&script, "if true < %s; then echo ok; else echo no; fi\n", node)
		case Write:
			fmt.Fprintf(&script, "if true >> %s; then echo ok; else echo no; fi\n", node)
		}
		mode := uint32(0o600)
		if p.t == Char {
			mode |= 0o020000
		} else {
			mode |= 0o060000
		}
		if err := mknod(node, mode, p.ma, p.mi); err != nil {
			t.Fatalf("mknod %s: %v", node, err)
		}
	}
	cmd := exec.Command("/bin/busybox", "sh", "-c", script.String())
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := os.WriteFile(procsFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatalf("place probe in cgroup: %v", err)
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("probe shell: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("probe shell hung")
	}
	lines := strings.Fields(out.String())
	if len(lines) != len(probes) {
		t.Fatalf("probe output %q", out.String())
	}
	res := make([]bool, len(lines))
	for i, l := range lines {
		res[i] = l == "ok"
	}
	return res
}

var policies = map[string][]Rule{
	"docker default": DockerDefault(),
	"allow all but kmsg": {
		{Char, 1, 11, RWM, false},
	},
	"deny all, read null only": {
		{All, Wildcard, Wildcard, RWM, false},
		{Char, 1, 3, Read, true},
	},
	"deny all but char majors 1": {
		{All, Wildcard, Wildcard, RWM, false},
		{Char, 1, Wildcard, RWM, true},
		{Char, 1, 1, Read | Write, false},
	},
}

func testName(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "berth-test-" + hex.EncodeToString(b)
}

func mkCgroup(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, testName(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 100; i++ {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("could not remove %s", dir)
	})
	return dir
}

// baseline is what the probes give in a cgroup without any device policy:
// a device this kernel cannot open at all (no driver) says nothing about
// the policy and is left out of the comparison.
var baseline []bool

func checkAgainstEmulator(t *testing.T, rules []Rule, got []bool) {
	t.Helper()
	s := Emulate(rules)
	compared, denied := 0, 0
	defer func() {
		if compared < len(probes)-4 {
			t.Errorf("only %d probes usable on this kernel: %v", compared, baseline)
		}
		if denied == 0 {
			t.Error("the policy denied nothing: the probe cannot tell")
		}
	}()
	for i, p := range probes {
		if !baseline[i] {
			continue
		}
		compared++
		if !got[i] {
			denied++
		}
		if want := s.Permits(p.t, p.ma, p.mi, p.acc); got[i] != want {
			t.Errorf("%c %d:%d %s: kernel says %v, emulator %v", p.t, p.ma, p.mi, p.acc, got[i], want)
		}
	}
}

// The v1 devices controller and the emulator agree on every probe.
func TestKernelV1MatchesEmulator(t *testing.T) {
	testutil.RequiresRoot(t)
	root := mountOf("devices")
	if root == "" {
		t.Skip("no cgroup v1 devices controller on this host")
	}
	baseline = runProbes(t, filepath.Join(mkCgroup(t, root), "cgroup.procs"))
	for name, rules := range policies {
		t.Run(name, func(t *testing.T) {
			dir := mkCgroup(t, root)
			if err := SetV1(dir, rules); err != nil {
				t.Fatal(err)
			}
			checkAgainstEmulator(t, rules, runProbes(t, filepath.Join(dir, "cgroup.procs")))
		})
	}
}

// The eBPF program attached to a cgroup2 directory enforces what the
// emulator says; it works on a hybrid host's cgroup2 mount too.
func TestKernelBPFMatchesEmulator(t *testing.T) {
	testutil.RequiresRoot(t)
	root := mountOf("")
	if root == "" {
		t.Skip("no cgroup2 mount on this host")
	}
	baseline = runProbes(t, filepath.Join(mkCgroup(t, root), "cgroup.procs"))
	for name, rules := range policies {
		t.Run(name, func(t *testing.T) {
			dir := mkCgroup(t, root)
			if err := AttachV2(dir, Emulate(rules)); err != nil {
				t.Fatal(err)
			}
			checkAgainstEmulator(t, rules, runProbes(t, filepath.Join(dir, "cgroup.procs")))
		})
	}
	// Replacing a policy detaches the old program: after switching from
	// "deny all" to "allow all but kmsg", /dev/null opens again.
	t.Run("replace", func(t *testing.T) {
		dir := mkCgroup(t, root)
		if err := AttachV2(dir, Emulate(policies["deny all, read null only"])); err != nil {
			t.Fatal(err)
		}
		rules := policies["allow all but kmsg"]
		if err := AttachV2(dir, Emulate(rules)); err != nil {
			t.Fatal(err)
		}
		checkAgainstEmulator(t, rules, runProbes(t, filepath.Join(dir, "cgroup.procs")))
	})
}

// An update between two default-deny policies writes only the difference,
// and the kernel ends up with exactly the target (read back from
// devices.list).
func TestKernelV1UpdateWritesTheDifference(t *testing.T) {
	testutil.RequiresRoot(t)
	root := mountOf("devices")
	if root == "" {
		t.Skip("no cgroup v1 devices controller on this host")
	}
	dir := mkCgroup(t, root)
	from := DockerDefault()
	to := append(DockerDefault()[:3], Rule{Char, 1, 11, Read, true})
	if err := SetV1(dir, from); err != nil {
		t.Fatal(err)
	}
	lines := Transition(Emulate(from), Emulate(to))
	if len(lines) == 0 || len(lines) > 12 {
		t.Fatalf("transition %v", lines)
	}
	if err := SetV1(dir, to); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "devices.list"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ParseV1List(string(b))
	if !ok {
		t.Fatalf("devices.list %q", b)
	}
	want := Emulate(to)
	for _, p := range probes {
		if got.Permits(p.t, p.ma, p.mi, p.acc) != want.Permits(p.t, p.ma, p.mi, p.acc) {
			t.Errorf("%c %d:%d %s: kernel list %q disagrees with the target", p.t, p.ma, p.mi, p.acc, b)
		}
	}
}
