package cgroups

import (
	"errors"
	"path"
	"sort"

	"golang.org/x/sys/unix"
)

// ContainerMounts lays out the container's view of the cgroup filesystem.
//
// V2: with a cgroup namespace, a fresh cgroup2 mount (the kernel shows the
// namespace's root, i.e. the container's own cgroup); without one, a bind
// mount of the container's cgroup directory. Hybrid and V1: a tmpfs at dest
// holding one bind mount of the container's cgroup per v1 hierarchy (named
// as on the host, with symlinks for co-mounted controllers such as
// cpu → cpu,cpuacct) and, on hybrid hosts, "unified" for the cgroup2 part.
// Bind mounts of the container's own cgroup are used on v1 even with a
// cgroup namespace, because a user namespace may not mount cgroup v1.
// readOnly remounts everything read-only, as Docker does by default.
func (m *manager) ContainerMounts(dest string, cgroupNS bool, readOnly bool) ([]Mount, error) {
	if !path.IsAbs(dest) {
		return nil, errors.New("cgroup mount destination must be absolute")
	}
	dest = path.Clean(dest)
	const common = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	var ro uintptr
	if readOnly {
		ro = unix.MS_RDONLY
	}
	bind := func(src, target string) []Mount {
		ms := []Mount{{Source: src, Target: target, FSType: "bind", Flags: unix.MS_BIND | unix.MS_REC}}
		// A bind mount takes its flags only on a remount.
		ms = append(ms, Mount{Source: "", Target: target, FSType: "",
			Flags: unix.MS_BIND | unix.MS_REMOUNT | common | ro})
		return ms
	}
	unifiedMount := func(target string) []Mount {
		if cgroupNS {
			return []Mount{{Source: "cgroup", Target: target, FSType: "cgroup2", Flags: common | ro}}
		}
		return bind(m.unified, target)
	}
	if m.layout == V2 {
		return unifiedMount(dest), nil
	}
	ms := []Mount{{Source: "tmpfs", Target: dest, FSType: "tmpfs", Flags: common, Data: "mode=755,size=64k"}}
	// One mount per hierarchy, named like its host mountpoint.
	byBase := map[string]string{} // base name → container cgroup dir
	var links [][2]string
	for c, dir := range m.v1 {
		base := path.Base(m.v1mnt[c])
		byBase[base] = dir
		name := c
		if n, ok := cutName(c); ok {
			name = n
		}
		if name != base {
			links = append(links, [2]string{base, name})
		}
	}
	bases := make([]string, 0, len(byBase))
	for b := range byBase {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	for _, b := range bases {
		ms = append(ms, bind(byBase[b], path.Join(dest, b))...)
	}
	if m.layout == Hybrid && m.unified != "" {
		ms = append(ms, unifiedMount(path.Join(dest, "unified"))...)
	}
	sort.Slice(links, func(i, j int) bool { return links[i][1] < links[j][1] })
	for _, l := range links {
		if _, clash := byBase[l[1]]; clash {
			continue
		}
		ms = append(ms, Mount{Source: l[0], Target: path.Join(dest, l[1]), FSType: "symlink"})
	}
	if readOnly {
		ms = append(ms, Mount{Target: dest, Flags: unix.MS_REMOUNT | common | unix.MS_RDONLY, Data: "mode=755,size=64k"})
	}
	return ms, nil
}

// cutName turns "name=systemd" into "systemd".
func cutName(c string) (string, bool) {
	const p = "name="
	if len(c) > len(p) && c[:len(p)] == p {
		return c[len(p):], true
	}
	return "", false
}
