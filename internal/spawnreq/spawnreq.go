// Package spawnreq describes how a container's init stage is forked and
// exec'd into its new namespaces (clone flags, id maps, the cgroup to
// clone into), so that the process doing it can be another than the one
// that prepared it: the runtime does it itself, or hands it to the
// container's monitor (package engine/monitor), which must be the init's
// parent. It owns only that description and the fork; it imports
// nothing heavy, so the monitor stays small.
package spawnreq

import (
	"fmt"
	"syscall"
)

// IDMap is one line of a uid or gid map.
type IDMap struct {
	ContainerID int `json:"c"`
	HostID      int `json:"h"`
	Size        int `json:"s"`
}

// Request is a process to start. Its descriptors travel separately: fd 0-2
// are the spawner's choice (the container's stdio), Files[i] becomes fd 3+i.
type Request struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// Cloneflags are the CLONE_NEW* flags of the namespaces to create.
	Cloneflags uintptr `json:"cloneflags"`
	// With CLONE_NEWUSER: the maps, whether setgroups stays allowed, and
	// whether the child may set its groups when it becomes the
	// namespace's root.
	UIDMaps   []IDMap `json:"uidMaps,omitempty"`
	GIDMaps   []IDMap `json:"gidMaps,omitempty"`
	Setgroups bool    `json:"setgroups,omitempty"`
	// IntoCgroup: the process is cloned into a cgroup2 directory
	// (CLONE_INTO_CGROUP), whose descriptor travels after the files.
	IntoCgroup bool `json:"intoCgroup,omitempty"`
}

func sysMaps(m []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: x.ContainerID, HostID: x.HostID, Size: x.Size}
	}
	return out
}

// Start forks and execs the request with stdio (the child's fd 0, 1, 2)
// and files (fd 3 up), cloned into the cgroup2 directory open at cgroupFD
// when the request says so, and returns the child's pid. The caller
// becomes its parent.
func (r *Request) Start(stdio [3]uintptr, files []uintptr, cgroupFD int) (int, error) {
	sys := &syscall.SysProcAttr{Cloneflags: r.Cloneflags}
	if r.Cloneflags&syscall.CLONE_NEWUSER != 0 {
		sys.UidMappings = sysMaps(r.UIDMaps)
		sys.GidMappings = sysMaps(r.GIDMaps)
		sys.GidMappingsEnableSetgroups = r.Setgroups
		// The clone leaves the child with the caller's (unmapped) IDs; it
		// must become the namespace's root before execve, or the exec
		// drops every capability it has in the new namespace.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !r.Setgroups}
	}
	if r.IntoCgroup {
		if cgroupFD < 0 {
			return 0, fmt.Errorf("spawn: no cgroup descriptor")
		}
		sys.UseCgroupFD = true
		sys.CgroupFD = cgroupFD
	}
	fds := append(stdio[:], files...)
	// syscall.ForkExec, not os/exec: os.StartProcess probes pidfd support
	// with an extra vfork'd process on first use, and the init needs
	// nothing else it offers.
	pid, err := syscall.ForkExec(r.Path, r.Args, &syscall.ProcAttr{Env: r.Env, Files: fds, Sys: sys})
	if err != nil {
		return 0, fmt.Errorf("start container init: %w", err)
	}
	return pid, nil
}
