package proc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// CgroupEntry is one line of /proc/PID/cgroup: "ID:controllers:path".
// Hierarchy 0 with no controllers is the cgroup v2 (unified) hierarchy.
type CgroupEntry struct {
	HierarchyID int      `json:"hierarchy_id"`
	Controllers []string `json:"controllers"`
	// Path is relative to the cgroup namespace root of the process that
	// read the file (not of the process the file describes).
	Path string `json:"path"`
}

// Unified reports whether the entry is the cgroup v2 hierarchy.
func (e CgroupEntry) Unified() bool { return e.HierarchyID == 0 && len(e.Controllers) == 0 }

// Has reports whether the hierarchy carries controller c ("cpu",
// "name=systemd").
func (e CgroupEntry) Has(c string) bool {
	for _, x := range e.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// String formats the entry as the kernel does.
func (e CgroupEntry) String() string {
	return strconv.Itoa(e.HierarchyID) + ":" + strings.Join(e.Controllers, ",") + ":" + e.Path
}

// ParseCgroup parses the text of /proc/PID/cgroup.
func ParseCgroup(data []byte) ([]CgroupEntry, error) {
	if len(data) > maxStatus {
		return nil, fmt.Errorf("cgroup: %d bytes is too large", len(data))
	}
	var out []CgroupEntry
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		// The path is last and may itself contain ':'.
		parts := strings.SplitN(string(line), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("cgroup: line %d: want ID:controllers:path, got %q", n, line)
		}
		id, err := strconv.Atoi(parts[0])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("cgroup: line %d: hierarchy ID %q is not a number", n, parts[0])
		}
		if !strings.HasPrefix(parts[2], "/") {
			return nil, fmt.Errorf("cgroup: line %d: path %q is not absolute", n, parts[2])
		}
		e := CgroupEntry{HierarchyID: id, Path: parts[2], Controllers: []string{}}
		if parts[1] != "" {
			e.Controllers = strings.Split(parts[1], ",")
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cgroup: no entries")
	}
	return out, nil
}

// ReadCgroup reads and parses /proc/PID/cgroup.
func ReadCgroup(pid int) ([]CgroupEntry, error) {
	b, err := readFile(pid, "cgroup")
	if err != nil {
		return nil, err
	}
	e, err := ParseCgroup(b)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return e, nil
}
