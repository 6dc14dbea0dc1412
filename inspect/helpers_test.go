package inspect

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/proc"
)

// capsHelperEnv makes the test binary a helper process that gives itself
// the capability sets in the variable ("eff prm inh bnd amb", hex), says
// "ready" and waits for its stdin to close: a process with exactly known
// sets, for comparing berth with getpcaps.
const capsHelperEnv = "BERTH_TEST_CAPS_HELPER"

func init() {
	if os.Getenv(capsHelperEnv) != "" {
		// Capabilities are per thread and /proc/PID/status shows the main
		// thread's: keep main (and TestMain) on it.
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(capsHelperEnv); spec != "" {
		os.Exit(capsHelper(spec))
	}
	os.Exit(m.Run())
}

func capsHelper(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 5 {
		fmt.Fprintln(os.Stderr, "helper: want 5 sets")
		return 2
	}
	var s [5]caps.Set
	for i := range f {
		v, err := caps.ParseHex(f[i])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		s[i] = v
	}
	if err := caps.DropBounding(s[3], caps.LastCap()); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 3
	}
	if err := caps.Apply(caps.Sets{Effective: s[0], Permitted: s[1], Inheritable: s[2], Bounding: s[3], Ambient: s[4]}, caps.LastCap()); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 3
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// startCapsHelper starts a helper with the given sets and returns its PID;
// it is ended (stdin closed, then killed by PID) when the test ends.
func startCapsHelper(t *testing.T, eff, prm, inh, bnd, amb caps.Set) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %s %s", capsHelperEnv, eff.Hex(), prm.Hex(), inh.Hex(), bnd.Hex(), amb.Hex()))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("caps helper did not start: %q %v", line, err)
	}
	return cmd.Process.Pid
}

// isolated is a process made by util-linux unshare in new namespaces, as
// a container would be: Outer is unshare (in the host's PID namespace),
// Inner the sleep it forked (PID 1 of the new PID namespace).
type isolated struct {
	Outer, Inner int
}

// startIsolated runs `unshare ARGS... --fork --kill-child sleep 300` and
// waits for the sleep; both are killed by PID when the test ends.
func startIsolated(t *testing.T, args ...string) isolated {
	t.Helper()
	return startIsolatedCmd(t, args, "sleep", "300")
}

// startIsolatedCmd is startIsolated with another command, which must end
// by exec'ing sleep.
func startIsolatedCmd(t *testing.T, args []string, command ...string) isolated {
	t.Helper()
	requireUnshare(t)
	full := append(append(append([]string{}, args...), "--fork", "--kill-child"), command...)
	cmd := exec.Command("unshare", full...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	iso := isolated{Outer: cmd.Process.Pid}
	t.Cleanup(func() {
		if iso.Inner > 0 {
			syscall.Kill(iso.Inner, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", iso.Outer, iso.Outer))
		if f := strings.Fields(string(b)); len(f) == 1 {
			child, _ := strconv.Atoi(f[0])
			if st, err := proc.ReadStatus(child); err == nil && st.Name == "sleep" {
				iso.Inner = child
				return iso
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("unshare %v: no sleep child within 10s", full)
	return iso
}

// requireUnshare skips the test without util-linux's unshare (busybox's,
// as in the cgroup v2 VM, lacks --kill-child and --cgroup).
func requireUnshare(t *testing.T) {
	t.Helper()
	out, err := exec.Command("unshare", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--kill-child") {
		t.Skip("util-linux unshare (with --kill-child) not installed")
	}
}

// kernelNS is what the kernel says about /proc/PID/ns/TYPE: the link text
// "type:[inode]" and the device and inode of the file.
func kernelNS(t *testing.T, pid int, typ string) (link string, id NSID) {
	t.Helper()
	p := fmt.Sprintf("/proc/%d/ns/%s", pid, typ)
	link, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return link, NSID{Dev: st.Dev, Inode: st.Ino}
}

// testCgroup is a cgroup the test creates in the hierarchy of each
// controller it asks for (v1 where a v1 hierarchy has the controller,
// otherwise cgroup2), removed when the test ends.
type testCgroup struct {
	dirs map[string]string // controller → directory
	v2   bool
}

func newTestCgroup(t *testing.T, controllers ...string) *testCgroup {
	t.Helper()
	ms, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("berth-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	cg := &testCgroup{dirs: map[string]string{}}
	var created []string
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			// The test's processes are dead by now (cleanups run last
			// registered first); retry briefly while the kernel lets go.
			for try := 0; try < 50; try++ {
				if err := os.Remove(created[i]); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	for _, c := range controllers {
		dir := ""
		for _, m := range ms {
			if m.FSType == "cgroup" && m.HasSuperOption(c) && m.Root == "/" {
				dir = m.MountPoint + "/" + name
			}
		}
		if dir == "" {
			for _, m := range ms {
				b, _ := os.ReadFile(m.MountPoint + "/cgroup.subtree_control")
				if m.FSType == "cgroup2" && strings.Contains(" "+string(b)+" ", " "+c+" ") {
					dir, cg.v2 = m.MountPoint+"/"+name, true
				}
			}
		}
		if dir == "" {
			t.Skipf("no cgroup hierarchy with the %s controller enabled", c)
		}
		if _, seen := cg.dirs[c]; !seen {
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			} else if err == nil {
				created = append(created, dir)
			}
		}
		cg.dirs[c] = dir
	}
	return cg
}

func (cg *testCgroup) write(t *testing.T, controller, file, value string) {
	t.Helper()
	if err := os.WriteFile(cg.dirs[controller]+"/"+file, []byte(value), 0o644); err != nil {
		t.Fatalf("write %s to %s/%s: %v", value, cg.dirs[controller], file, err)
	}
}

// join moves process pid into the cgroup in every hierarchy.
func (cg *testCgroup) join(t *testing.T, pid int) {
	t.Helper()
	done := map[string]bool{}
	for _, d := range cg.dirs {
		if !done[d] {
			done[d] = true
			if err := os.WriteFile(d+"/cgroup.procs", []byte(strconv.Itoa(pid)), 0o644); err != nil {
				t.Fatalf("move %d into %s: %v", pid, d, err)
			}
		}
	}
}
