package cgroups

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// ProcCgroup is one line of /proc/PID/cgroup with the directory it names
// on this host, found from the mounts alone (not from this package's
// layout code, which the tests check).
type ProcCgroup struct {
	Ctrls  string // "cpu,cpuacct", "name=systemd", "" for cgroup2
	Cgroup string // the path in the hierarchy, e.g. /system.slice/x.scope
	Dir    string // mountpoint + Cgroup; "" if the hierarchy is not mounted
}

// ProcCgroups reads /proc/PID/cgroup and places each line under the
// mountpoint of its hierarchy (from /proc/self/mountinfo: a cgroup2 mount
// for the "0::" line, a v1 mount whose options name the same controllers
// for the others). Shared with cgroups_test.
func ProcCgroups(t testing.TB, pid int) []ProcCgroup {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{} // sorted controller set → mountpoint
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		i := slices.Index(f, "-")
		if i < 0 || len(f) < i+4 || f[3] != "/" {
			continue
		}
		switch f[i+1] {
		case "cgroup2":
			if _, dup := mounts[""]; !dup || f[4] == "/sys/fs/cgroup" {
				mounts[""] = f[4]
			}
		case "cgroup":
			var cs []string
			for _, o := range strings.Split(f[i+3], ",") {
				if o != "rw" && o != "ro" && !strings.HasPrefix(o, "release_agent") && o != "clone_children" && o != "noprefix" && o != "xattr" && o != "cpuset_v2_mode" && o != "nsdelegate" {
					cs = append(cs, o)
				}
			}
			slices.Sort(cs)
			if k := strings.Join(cs, ","); mounts[k] == "" {
				mounts[k] = f[4]
			}
		}
	}
	var out []ProcCgroup
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			t.Fatalf("/proc/%d/cgroup: bad line %q", pid, l)
		}
		cs := strings.Split(parts[1], ",")
		slices.Sort(cs)
		pc := ProcCgroup{Ctrls: parts[1], Cgroup: parts[2]}
		if mp, ok := mounts[strings.Join(cs, ",")]; ok {
			pc.Dir = path.Join(mp, parts[2])
		}
		out = append(out, pc)
	}
	return out
}
