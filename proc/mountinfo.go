package proc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)).
type Mount struct {
	ID       int `json:"id"`
	ParentID int `json:"parent_id"`
	Major    int `json:"major"`
	Minor    int `json:"minor"`
	// Root is the path inside the filesystem that is mounted (a bind mount
	// of a subdirectory, or "/null" for a bind of /dev/null).
	Root string `json:"root"`
	// MountPoint is relative to the process's root directory.
	MountPoint string `json:"mount_point"`
	// Options are the per-mount options (rw/ro, nosuid, ...).
	Options []string `json:"options"`
	// Optional holds propagation tags (shared:N, master:N, ...).
	Optional     []string `json:"optional,omitempty"`
	FSType       string   `json:"fstype"`
	Source       string   `json:"source"`
	SuperOptions []string `json:"super_options"`
}

// ReadOnly reports whether the mount itself is read-only.
func (m Mount) ReadOnly() bool { return hasOpt(m.Options, "ro") }

// HasSuperOption reports whether the superblock carries option o.
func (m Mount) HasSuperOption(o string) bool { return hasOpt(m.SuperOptions, o) }

func hasOpt(list []string, o string) bool {
	for _, x := range list {
		if x == o {
			return true
		}
	}
	return false
}

// ParseMountinfo parses the text of /proc/PID/mountinfo. Paths are
// unescaped (the kernel writes space, tab, newline and backslash as \ooo).
func ParseMountinfo(data []byte) ([]Mount, error) {
	if len(data) > 64<<20 {
		return nil, fmt.Errorf("mountinfo: %d bytes is too large", len(data))
	}
	var out []Mount
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		m, err := parseMountLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("mountinfo: line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseMountLine(line string) (Mount, error) {
	var m Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) < sep+4 {
		return m, fmt.Errorf("malformed line %q", line)
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return m, fmt.Errorf("mount ID %q: not a number", f[0])
	}
	if m.ParentID, err = strconv.Atoi(f[1]); err != nil {
		return m, fmt.Errorf("parent ID %q: not a number", f[1])
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("device %q: want major:minor", f[2])
	}
	if m.Major, err = strconv.Atoi(maj); err != nil {
		return m, fmt.Errorf("device %q: not a number", f[2])
	}
	if m.Minor, err = strconv.Atoi(min); err != nil {
		return m, fmt.Errorf("device %q: not a number", f[2])
	}
	if m.Root, err = unescape(f[3]); err != nil {
		return m, err
	}
	if m.MountPoint, err = unescape(f[4]); err != nil {
		return m, err
	}
	m.Options = strings.Split(f[5], ",")
	m.Optional = append([]string(nil), f[6:sep]...)
	if m.FSType, err = unescape(f[sep+1]); err != nil {
		return m, err
	}
	if m.Source, err = unescape(f[sep+2]); err != nil {
		return m, err
	}
	m.SuperOptions = strings.Split(strings.Join(f[sep+3:], " "), ",")
	return m, nil
}

// unescape undoes the kernel's \ooo octal escapes in mountinfo fields.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// ReadMountinfo reads and parses /proc/PID/mountinfo.
func ReadMountinfo(pid int) ([]Mount, error) {
	b, err := readFile(pid, "mountinfo")
	if err != nil {
		return nil, err
	}
	m, err := ParseMountinfo(b)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}
