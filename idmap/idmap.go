// Package idmap owns user and group ID mappings: reading subordinate ID
// ranges from /etc/subuid and /etc/subgid, checking mappings, and
// translating IDs through them. Writing maps for a process (directly or
// through newuidmap/newgidmap) is here too; deciding which maps a container
// gets is the engine's job.
package idmap

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxMappings is the kernel's limit of lines in one uid_map or gid_map.
const MaxMappings = 340

// Range is one subordinate ID range of /etc/subuid or /etc/subgid.
type Range struct {
	Start, Count uint32
}

// ReadSubIDs returns the ranges that file (/etc/subuid or /etc/subgid)
// gives to a user, matched by name or numeric ID as shadow-utils does.
func ReadSubIDs(file, name string, id int) ([]Range, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseSubIDs(f, file, name, id)
}

func parseSubIDs(r io.Reader, file, name string, id int) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want NAME:START:COUNT, got %q", file, line, text)
		}
		if f[0] != name && f[0] != strconv.Itoa(id) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32 {
			return nil, fmt.Errorf("%s:%d: bad range %q", file, line, text)
		}
		out = append(out, Range{uint32(start), uint32(count)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}

// ForUser returns the mapping that puts container root at the start of
// the user's first subordinate range, for as many IDs as the range holds —
// Docker's userns-remap: "mtk:100000:65536" gives "0 100000 65536".
func ForUser(file, username string) ([]specs.LinuxIDMapping, error) {
	id := -1
	if u, err := user.Lookup(username); err == nil {
		id, _ = strconv.Atoi(u.Uid)
	}
	ranges, err := ReadSubIDs(file, username, id)
	if err != nil {
		return nil, err
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("no subordinate ID range for %q in %s (add a line like %s:100000:65536)", username, file, username)
	}
	var maps []specs.LinuxIDMapping
	next := uint32(0)
	for _, r := range ranges {
		maps = append(maps, specs.LinuxIDMapping{ContainerID: next, HostID: r.Start, Size: r.Count})
		next += r.Count
	}
	return maps, nil
}

// Validate checks a set of mappings the way the kernel will, so a bad
// config.json fails with a clear error before anything is created: at most
// 340 lines, no zero sizes, no overflow, no overlapping ranges on either side.
func Validate(kind string, maps []specs.LinuxIDMapping) error {
	if len(maps) > MaxMappings {
		return fmt.Errorf("%s mappings: %d lines, the kernel allows %d", kind, len(maps), MaxMappings)
	}
	for i, m := range maps {
		if m.Size == 0 {
			return fmt.Errorf("%s mapping %d (%d %d %d): size is zero", kind, i, m.ContainerID, m.HostID, m.Size)
		}
		if uint64(m.ContainerID)+uint64(m.Size) > 1<<32 || uint64(m.HostID)+uint64(m.Size) > 1<<32 {
			return fmt.Errorf("%s mapping %d (%d %d %d): range goes past 2^32", kind, i, m.ContainerID, m.HostID, m.Size)
		}
		for j := 0; j < i; j++ {
			o := maps[j]
			if overlap(m.ContainerID, m.Size, o.ContainerID, o.Size) {
				return fmt.Errorf("%s mappings %d and %d overlap inside the container", kind, j, i)
			}
			if overlap(m.HostID, m.Size, o.HostID, o.Size) {
				return fmt.Errorf("%s mappings %d and %d overlap on the host", kind, j, i)
			}
		}
	}
	return nil
}

func overlap(a, an, b, bn uint32) bool {
	return uint64(a) < uint64(b)+uint64(bn) && uint64(b) < uint64(a)+uint64(an)
}

// ToHost translates a container ID to the host ID through maps; ok is
// false when the ID is not mapped.
func ToHost(maps []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	if len(maps) == 0 {
		return id, true
	}
	for _, m := range maps {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}

// Format renders mappings in the uid_map file format.
func Format(maps []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, m := range maps {
		fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return b.String()
}

// WriteWithHelper writes the maps of process pid with newuidmap or
// newgidmap (tool), the setuid helpers an unprivileged caller needs for
// any mapping beyond its own ID.
func WriteWithHelper(tool string, pid int, maps []specs.LinuxIDMapping) error {
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%s is needed to map more than your own ID (install the uidmap package): %w", tool, err)
	}
	args := []string{strconv.Itoa(pid)}
	for _, m := range maps {
		args = append(args, strconv.FormatUint(uint64(m.ContainerID), 10),
			strconv.FormatUint(uint64(m.HostID), 10), strconv.FormatUint(uint64(m.Size), 10))
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// WriteDirect writes /proc/PID/{uid,gid}_map itself (root, or a single
// mapping of the caller's own ID). For gid maps written by an unprivileged
// caller, setgroups must be denied first; denySetgroups does that.
func WriteDirect(pid int, file string, maps []specs.LinuxIDMapping, denySetgroups bool) error {
	if denySetgroups {
		p := fmt.Sprintf("/proc/%d/setgroups", pid)
		if err := os.WriteFile(p, []byte("deny"), 0); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	p := fmt.Sprintf("/proc/%d/%s", pid, file)
	if err := os.WriteFile(p, []byte(Format(maps)), 0); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
