// Package systemd is the systemd cgroup driver (--systemd-cgroup): on a
// host run by systemd, a container's cgroup is a transient scope unit that
// systemd creates over D-Bus, with Delegate=yes so the container's own
// limits can be written below it. It owns the driver's checks, the parsing
// of runc's "slice:prefix:name" cgroupsPath, slice paths, and the D-Bus
// calls (StartTransientUnit, StopUnit); it never touches cgroupfs.
package systemd

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNoSystemd says the host is not run by systemd.
var ErrNoSystemd = errors.New("the systemd cgroup driver (--systemd-cgroup) needs a host run by systemd, " +
	"and systemd is not running here (/run/systemd/system does not exist); " +
	"drop --systemd-cgroup to use the cgroupfs driver")

// Running reports whether systemd is PID 1's manager, the way sd_booted(3)
// tells: /run/systemd/system exists.
func Running() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// Unit is the transient scope a container gets: runc's
// "slice:prefix:name" cgroupsPath, with the default "system.slice",
// "berth" and the container ID for an empty path.
type Unit struct {
	Slice, Prefix, Name string
}

// ScopeName is the unit's name, "prefix-name.scope".
func (u Unit) ScopeName() string {
	if strings.HasSuffix(u.Name, ".slice") {
		return u.Name
	}
	return u.Prefix + "-" + u.Name + ".scope"
}

// ParsePath parses a systemd-driver cgroupsPath.
func ParsePath(cgroupsPath, containerID string) (Unit, error) {
	if cgroupsPath == "" {
		return Unit{Slice: "system.slice", Prefix: "berth", Name: containerID}, nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return Unit{}, fmt.Errorf("cgroup path %q: the systemd driver expects \"slice:prefix:name\"", cgroupsPath)
	}
	for _, p := range parts {
		if strings.ContainsAny(p, "/\x00") || p == ".." {
			return Unit{}, fmt.Errorf("cgroup path %q: unit names cannot contain '/'", cgroupsPath)
		}
	}
	u := Unit{Slice: parts[0], Prefix: parts[1], Name: parts[2]}
	if u.Slice == "" {
		u.Slice = "system.slice"
	}
	if !strings.HasSuffix(u.Slice, ".slice") {
		return Unit{}, fmt.Errorf("cgroup path %q: %q is not a slice unit name", cgroupsPath, u.Slice)
	}
	if u.Name == "" {
		return Unit{}, fmt.Errorf("cgroup path %q: empty unit name", cgroupsPath)
	}
	return u, nil
}

// Check tells whether the driver can be used here.
func Check() error {
	if !Running() {
		return ErrNoSystemd
	}
	return nil
}

// SlicePath is the cgroup path of a slice: systemd nests "a-b.slice" in
// "a.slice", so "a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice.
func SlicePath(slice string) (string, error) {
	if slice == "-.slice" {
		return "/", nil
	}
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || name == "" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("%q is not a valid slice name", slice)
	}
	p := ""
	prefix := ""
	for _, part := range strings.Split(name, "-") {
		if prefix != "" {
			prefix += "-"
		}
		prefix += part
		p += "/" + prefix + ".slice"
	}
	return p, nil
}

// CgroupPath is where the unit's cgroup is, relative to the cgroup root.
func (u Unit) CgroupPath() (string, error) {
	sp, err := SlicePath(u.Slice)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(u.Name, ".slice") {
		return SlicePath(u.Name)
	}
	return strings.TrimSuffix(sp, "/") + "/" + u.ScopeName(), nil
}
