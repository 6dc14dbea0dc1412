package proc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// IDMap is one line of /proc/PID/uid_map or gid_map: Count IDs starting at
// Inside in the process's user namespace are Outside.. in the reader's.
type IDMap struct {
	Inside  uint32 `json:"inside"`
	Outside uint32 `json:"outside"`
	Count   uint32 `json:"count"`
}

// String formats the mapping as the talk shows it: "0 100000 65536".
func (m IDMap) String() string { return fmt.Sprintf("%d %d %d", m.Inside, m.Outside, m.Count) }

// IdentityMap is the initial user namespace's mapping: every ID to itself.
var IdentityMap = []IDMap{{0, 0, 4294967295}}

// IsIdentity reports whether maps is the initial namespace's identity map.
func IsIdentity(maps []IDMap) bool {
	return len(maps) == 1 && maps[0] == IdentityMap[0]
}

// FormatIDMaps joins maps as "0 100000 65536; 65536 0 1".
func FormatIDMaps(maps []IDMap) string {
	if len(maps) == 0 {
		return "(none)"
	}
	s := make([]string, len(maps))
	for i, m := range maps {
		s[i] = m.String()
	}
	return strings.Join(s, "; ")
}

// maxIDMapLines is the kernel's limit on lines in an ID map (since 4.15).
const maxIDMapLines = 340

// ParseIDMap parses the text of uid_map or gid_map. An empty file is valid
// (a user namespace whose map has not been written yet).
func ParseIDMap(data []byte) ([]IDMap, error) {
	if len(data) > 64<<10 {
		return nil, fmt.Errorf("id map: %d bytes is too large", len(data))
	}
	out := []IDMap{}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("id map: line %d: want 3 fields, got %q", n, line)
		}
		var v [3]uint32
		for i := range f {
			x, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("id map: line %d: %q is not an ID", n, f[i])
			}
			v[i] = uint32(x)
		}
		if v[2] == 0 {
			return nil, fmt.Errorf("id map: line %d: count is 0", n)
		}
		if len(out) == maxIDMapLines {
			return nil, fmt.Errorf("id map: more than %d lines", maxIDMapLines)
		}
		out = append(out, IDMap{Inside: v[0], Outside: v[1], Count: v[2]})
	}
	return out, nil
}

// ReadUIDMap reads /proc/PID/uid_map.
func ReadUIDMap(pid int) ([]IDMap, error) { return readIDMap(pid, "uid_map") }

// ReadGIDMap reads /proc/PID/gid_map.
func ReadGIDMap(pid int) ([]IDMap, error) { return readIDMap(pid, "gid_map") }

func readIDMap(pid int, name string) ([]IDMap, error) {
	b, err := readFile(pid, name)
	if err != nil {
		return nil, err
	}
	m, err := ParseIDMap(b)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}
