package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Layout is how the host arranges its cgroup hierarchies.
type Layout int

const (
	// V1 is the legacy layout: one cgroup v1 hierarchy per controller (or
	// group of controllers) and no cgroup2 mount.
	V1 Layout = iota + 1
	// Hybrid has v1 controller hierarchies plus a cgroup2 mount (usually
	// /sys/fs/cgroup/unified) holding no or few controllers.
	Hybrid
	// V2 is the unified layout: one cgroup2 hierarchy at /sys/fs/cgroup.
	V2
)

func (l Layout) String() string {
	switch l {
	case V1:
		return "v1"
	case Hybrid:
		return "hybrid"
	case V2:
		return "v2"
	}
	return "unknown"
}

// hierarchy is one mounted cgroup filesystem.
type hierarchy struct {
	mountpoint string
	root       string   // the cgroup the mount shows as its top (mountinfo field 4)
	ctrls      []string // v1: controllers and "name=X"; v2: nil
}

// host is what DetectLayout finds, probed once per process.
type host struct {
	layout  Layout
	v1      map[string]hierarchy // v1 controller (or "name=systemd") → its hierarchy
	unified *hierarchy           // cgroup2 mount, nil on V1
	// own is the calling process's cgroup per v1 controller and under ""
	// for the unified hierarchy (from /proc/self/cgroup).
	own map[string]string
}

var (
	hostOnce sync.Once
	hostInfo *host
	hostErr  error
)

// DetectLayout reports the host's cgroup layout. It reads
// /proc/self/mountinfo and /proc/self/cgroup once per process; a host with
// cgroup2 mounted at /sys/fs/cgroup is V2 even when stray v1 named
// hierarchies exist.
func DetectLayout() (Layout, error) {
	h, err := probe()
	if err != nil {
		return 0, err
	}
	return h.layout, nil
}

func probe() (*host, error) {
	hostOnce.Do(func() {
		hostInfo, hostErr = discover("/proc/self/mountinfo", "/proc/self/cgroup")
	})
	return hostInfo, hostErr
}

func discover(mountinfo, selfCgroup string) (*host, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	defer f.Close()
	h, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %s: %w", mountinfo, err)
	}
	own, err := os.ReadFile(selfCgroup)
	if err != nil {
		return nil, fmt.Errorf("detect cgroup layout: %w", err)
	}
	h.own = parseProcCgroup(string(own))
	return h, nil
}

func parseMountinfo(r interface{ Read([]byte) (int, error) }) (*host, error) {
	h := &host{v1: map[string]hierarchy{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var unifiedAtRoot bool
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+3 {
			continue
		}
		fstype := fields[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		hy := hierarchy{root: unescape(fields[3]), mountpoint: unescape(fields[4])}
		if fstype == "cgroup2" {
			// The first cgroup2 mount wins, except that /sys/fs/cgroup itself
			// is always the unified hierarchy of a V2 host.
			if hy.mountpoint == "/sys/fs/cgroup" {
				unifiedAtRoot = true
				h.unified = &hy
			} else if h.unified == nil {
				h.unified = &hy
			}
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if isV1Controller(opt) || strings.HasPrefix(opt, "name=") {
				hy.ctrls = append(hy.ctrls, opt)
			}
		}
		for _, c := range hy.ctrls {
			if _, dup := h.v1[c]; !dup {
				h.v1[c] = hy
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	realV1 := false
	for c := range h.v1 {
		if !strings.HasPrefix(c, "name=") {
			realV1 = true
		}
	}
	switch {
	case unifiedAtRoot || (!realV1 && h.unified != nil):
		h.layout = V2
		h.v1 = map[string]hierarchy{}
	case realV1 && h.unified != nil:
		h.layout = Hybrid
	case realV1:
		h.layout = V1
	default:
		return nil, errors.New("no cgroup filesystem is mounted (mount cgroup2 on /sys/fs/cgroup)")
	}
	return h, nil
}

var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true, "freezer": true,
	"blkio": true, "pids": true, "hugetlb": true, "net_cls": true, "net_prio": true,
	"perf_event": true, "rdma": true, "misc": true,
}

func isV1Controller(s string) bool { return v1Controllers[s] }

// parseProcCgroup parses /proc/PID/cgroup into controller → path; the
// unified entry ("0::/path") is under "".
func parseProcCgroup(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// unescape decodes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// base is the directory name a v1 hierarchy is mounted under, e.g. "cpu",
// "cpu,cpuacct" or "systemd": the name it gets inside a container too.
func (h hierarchy) base() string { return filepath.Base(h.mountpoint) }
