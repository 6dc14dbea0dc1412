package monitor

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// oomCounter returns the file that counts the kernel's OOM kills in
// pid's memory cgroup (cgroup v1 memory.oom_control, v2 memory.events:
// "oom_kill N"), or "". A container's cgroup is its own and new at each
// start, so any kill counted there was one of its processes. It must be
// asked while pid runs: an exited process shows its v1 cgroups as "/".
func oomCounter(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	var v1, v2 string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	switch {
	case v1 != "" && v1 != "/":
		if mnt := cgroupMount("cgroup", "memory"); mnt != "" {
			return filepath.Join(mnt, v1, "memory.oom_control")
		}
	case v2 != "" && v2 != "/":
		if mnt := cgroupMount("cgroup2", ""); mnt != "" {
			if f := filepath.Join(mnt, v2, "memory.events"); fileExists(f) {
				return f
			}
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// oomKilled says whether the counter file shows an OOM kill.
func oomKilled(counterFile string) bool {
	return counterFile != "" && counter(counterFile, "oom_kill") > 0
}

// cgroupMount finds where a cgroup hierarchy is mounted: fstype cgroup
// with the controller among its options, or cgroup2.
func cgroupMount(fstype, controller string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != fstype || pf[3] != "/" {
			continue
		}
		if controller == "" {
			return pf[4]
		}
		for _, o := range strings.Split(qf[2], ",") {
			if o == controller {
				return pf[4]
			}
		}
	}
	return ""
}

// counter reads "NAME N" from a flat-keyed cgroup file.
func counter(path, name string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return n
			}
		}
	}
	return -1
}
