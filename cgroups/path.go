package cgroups

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

var validID = regexp.MustCompile(`^[A-Za-z0-9_+.-]+$`)

// InnerPath turns linux.cgroupsPath into the path of the container's cgroup
// inside a hierarchy, following runc's cgroupfs rules: an absolute path is
// taken from the hierarchy's root; a relative path is below the cgroup of
// the runtime process; an empty path means the container ID, relative.
// Unlike runc, which silently clamps "../" at the root, a path that climbs
// out of where it starts is an error, and so is a NUL byte.
func InnerPath(cgroupsPath, containerID string) (p string, abs bool, err error) {
	if cgroupsPath == "" {
		if containerID == "" || !validID.MatchString(containerID) || containerID == "." || containerID == ".." {
			return "", false, fmt.Errorf("cgroup path: container ID %q cannot name a cgroup (want letters, digits, _ + . -)", containerID)
		}
		return containerID, false, nil
	}
	if strings.ContainsRune(cgroupsPath, 0) {
		return "", false, fmt.Errorf("cgroup path %q: contains a NUL byte", cgroupsPath)
	}
	abs = strings.HasPrefix(cgroupsPath, "/")
	depth := 0
	for _, c := range strings.Split(cgroupsPath, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", false, fmt.Errorf("cgroup path %q: escapes the cgroup root with \"..\"", cgroupsPath)
			}
		default:
			depth++
		}
	}
	if depth == 0 {
		return "", false, fmt.Errorf("cgroup path %q: names the cgroup root itself; a container needs a cgroup of its own", cgroupsPath)
	}
	if abs {
		return path.Clean(cgroupsPath), true, nil
	}
	return path.Clean(cgroupsPath), false, nil
}

// hostPath places inner in a hierarchy mounted at mountpoint whose top is
// the cgroup mountRoot, for a process whose own cgroup there is own.
// parentOfOwn is the v2 rule: relative paths hang below the parent of the
// runtime's own cgroup, because that cgroup is usually a leaf with
// processes, where v2 allows no children with controllers.
func hostPath(mountpoint, mountRoot, own, inner string, abs, parentOfOwn bool) string {
	if abs {
		return path.Join(mountpoint, inner)
	}
	base := own
	if parentOfOwn {
		base = path.Dir(own)
	}
	// Inside a container whose hierarchy shows only a subtree, the part
	// of our own path above the mount's top is not visible.
	if mountRoot != "/" && mountRoot != "" {
		if rel, ok := strings.CutPrefix(base, mountRoot); ok && (rel == "" || strings.HasPrefix(rel, "/")) {
			base = rel
		}
	}
	return path.Join(mountpoint, base, inner)
}
