package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RemapDefaultUser is the user `userns-remap: default` creates and uses
// (dockerd's is dockremap).
const RemapDefaultUser = "berth-remap"

// Remap is a resolved userns-remap: the user and group whose subordinate
// ranges map container ids, and the mappings (container root first).
type Remap struct {
	User, Group string
	UIDs, GIDs  []specs.LinuxIDMapping
}

// RootPair is the host uid and gid that container root maps to.
func (r *Remap) RootPair() (uint32, uint32) {
	return r.UIDs[0].HostID, r.GIDs[0].HostID
}

// SplitRemap splits "user", "user:group" or "default".
func SplitRemap(s string) (string, string, error) {
	u, g, _ := strings.Cut(s, ":")
	if u == "" {
		return "", "", fmt.Errorf("userns-remap %q: a user name is required (or \"default\")", s)
	}
	if u == "default" {
		u = RemapDefaultUser
		if g == "" || g == "default" {
			g = RemapDefaultUser
		}
	}
	if g == "" {
		g = u
	}
	return u, g, nil
}

// Files are the subordinate id files; tests point them elsewhere.
type Files struct{ SubUID, SubGID string }

// SystemFiles are /etc/subuid and /etc/subgid.
var SystemFiles = Files{"/etc/subuid", "/etc/subgid"}

// ResolveRemap turns a userns-remap value into id mappings. For "default"
// it creates the berth-remap user and its ranges when they are missing.
func ResolveRemap(value string, f Files) (*Remap, error) {
	u, g, err := SplitRemap(value)
	if err != nil {
		return nil, err
	}
	if u == RemapDefaultUser {
		if err := ensureDefaultUser(f); err != nil {
			return nil, fmt.Errorf("userns-remap default: %w", err)
		}
	}
	r := &Remap{User: u, Group: g}
	uidKeys := []string{u}
	if pw, err := user.Lookup(u); err == nil {
		uidKeys = append(uidKeys, pw.Uid)
	}
	gidKeys := []string{g}
	if gr, err := user.LookupGroup(g); err == nil {
		gidKeys = append(gidKeys, gr.Gid)
	}
	if r.UIDs, err = readRanges(f.SubUID, uidKeys); err != nil {
		return nil, err
	}
	if r.GIDs, err = readRanges(f.SubGID, gidKeys); err != nil {
		return nil, err
	}
	if len(r.UIDs) == 0 {
		return nil, fmt.Errorf("userns-remap: no subordinate uid range for %q in %s: add a line like %q", u, f.SubUID, u+":100000:65536")
	}
	if len(r.GIDs) == 0 {
		return nil, fmt.Errorf("userns-remap: no subordinate gid range for %q in %s: add a line like %q", g, f.SubGID, g+":100000:65536")
	}
	return r, nil
}

// ParseSubIDs parses subuid(5) content into (name, start, count) lines.
func ParseSubIDs(data []byte) ([]SubID, error) {
	var out []SubID
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("line %d: %q: want name:start:count", n, line)
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32 {
			return nil, fmt.Errorf("line %d: %q: bad range", n, line)
		}
		out = append(out, SubID{parts[0], uint32(start), uint32(count)})
	}
	return out, sc.Err()
}

// SubID is one line of /etc/subuid or /etc/subgid.
type SubID struct {
	Name         string
	Start, Count uint32
}

// readRanges collects the ranges of any of keys, in file order, as
// contiguous container ids starting at 0 (as dockerd does).
func readRanges(path string, keys []string) ([]specs.LinuxIDMapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("userns-remap: %w", err)
	}
	ids, err := ParseSubIDs(data)
	if err != nil {
		return nil, fmt.Errorf("userns-remap: %s: %w", path, err)
	}
	var out []specs.LinuxIDMapping
	var next uint32
	for _, s := range ids {
		for _, k := range keys {
			if s.Name == k {
				out = append(out, specs.LinuxIDMapping{ContainerID: next, HostID: s.Start, Size: s.Count})
				next += s.Count
				break
			}
		}
	}
	return out, nil
}

func ensureDefaultUser(f Files) error {
	if _, err := user.Lookup(RemapDefaultUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/bin/false", RemapDefaultUser).CombinedOutput()
		if err != nil {
			return fmt.Errorf("useradd %s: %w: %s", RemapDefaultUser, err, bytes.TrimSpace(out))
		}
	}
	for _, p := range []string{f.SubUID, f.SubGID} {
		if err := ensureRange(p, RemapDefaultUser); err != nil {
			return err
		}
	}
	return nil
}

// ensureRange appends a 65536-id range for name after every existing one
// when name has none.
func ensureRange(path, name string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	ids, err := ParseSubIDs(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	end := uint64(100000)
	for _, s := range ids {
		if s.Name == name {
			return nil
		}
		end = max(end, uint64(s.Start)+uint64(s.Count))
	}
	if end+65536 > 1<<32 {
		return fmt.Errorf("%s: no room for a new range", path)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	prefix := ""
	if len(data) > 0 && data[len(data)-1] != '\n' {
		prefix = "\n"
	}
	_, err = fmt.Fprintf(fh, "%s%s:%d:65536\n", prefix, name, end)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}
