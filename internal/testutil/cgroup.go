package testutil

import (
	"bufio"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// OwnCgroup returns an absolute cgroup path ("/berth-test-NAME-XXXX")
// that no other test uses, for a daemon's or a peer's cgroup parent, and
// removes it (with whatever is left under it) in every hierarchy when the
// test ends. Processes still in it make the test fail: a test must not
// leave containers behind.
//
// It reads the hierarchies from mountinfo rather than through package
// cgroups, whose own tests use this package.
func OwnCgroup(t testing.TB, name string) string {
	t.Helper()
	path := fmt.Sprintf("/berth-test-%s-%04x", name, rand.Intn(1<<16))
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := removeCgroup(path)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("test cgroup %s left behind: %s", path, strings.Join(left, "; "))
				return
			}
			// Processes that are exiting leave their cgroup late.
			time.Sleep(50 * time.Millisecond)
		}
	})
	return path
}

// removeCgroup removes path and its descendants, deepest first, under
// every cgroup mount; it returns what could not be removed.
func removeCgroup(path string) []string {
	var left []string
	for _, mnt := range cgroupMounts() {
		top := filepath.Join(mnt, path)
		var dirs []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
				left = append(left, fmt.Sprintf("%s: %v (processes %s)", d, err, strings.Fields(string(procs))))
			}
		}
	}
	return left
}

// cgroupMounts lists the mount points of cgroup and cgroup2 filesystems.
func cgroupMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mnts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE ...
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, typ := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(typ) > 0 && (typ[0] == "cgroup" || typ[0] == "cgroup2") && fields[3] == "/" {
			mnts = append(mnts, fields[4])
		}
	}
	return mnts
}
