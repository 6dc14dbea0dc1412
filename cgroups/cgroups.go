// Package cgroups gives the OCI runtime one manager for a container's
// cgroups on every host layout: cgroup v1, hybrid (v1 controllers plus a
// cgroup2 mount with few controllers, like this project's build hosts) and
// the unified cgroup v2. It resolves linux.cgroupsPath the way runc does,
// creates and removes the container's cgroups, places processes in them,
// applies and updates linux.resources, freezes, kills, and reads statistics
// in runc's `events --stats` shape.
//
// It owns the directories of the container's cgroup in every hierarchy (and
// may enable controllers in its ancestors' cgroup.subtree_control on v2);
// it never touches other cgroups, never mounts anything (ContainerMounts
// only describes mounts for the runtime to perform), and knows nothing of
// namespaces or processes beyond PIDs. The per-version file writes live in
// cgroups/v1 and cgroups/v2, device rules in cgroups/devices, value
// conversions in cgroups/convert.
package cgroups

import (
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/cgroups/stats"
)

// Config says which cgroup a container gets and what it may use.
type Config struct {
	// ContainerID names the cgroup when Path is empty.
	ContainerID string
	// Path is linux.cgroupsPath as given in config.json ("" → the
	// container ID, relative to the runtime's own cgroup, as runc does).
	Path string
	// Resources is linux.resources; nil means no limits.
	Resources *specs.LinuxResources
	// Systemd asks for the systemd cgroup driver (--systemd-cgroup).
	Systemd bool
}

// Stats is runc's stats payload (see package stats).
type Stats = stats.Stats

// Manager manages one container's cgroups. Every method may be called from
// a different process than the one that called Create: the manager holds no
// state beyond what New derives from the Config.
type Manager interface {
	// Create makes the cgroup in every hierarchy, enables v2 controllers in
	// the ancestors and applies the resources. It fails if the cgroup
	// already holds processes (another container's); on error it removes
	// whatever it made.
	Create() error
	// CloneFD opens the v2 leaf (O_PATH|O_DIRECTORY) for clone3's
	// CLONE_INTO_CGROUP (SysProcAttr.UseCgroupFD/CgroupFD). The caller
	// closes it. ok is false on V1 and Hybrid hosts: use Enter there.
	CloneFD() (fd int, ok bool)
	// Enter moves pid into the container's cgroup in every hierarchy.
	Enter(pid int) error
	// Update applies new resources to a live container.
	Update(r *specs.LinuxResources) error
	// Freeze freezes every process and waits until the kernel says frozen.
	Freeze() error
	// Thaw undoes Freeze.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Pids lists every process in the container's cgroups, recursively.
	Pids() ([]int, error)
	// Kill sends sig to every process (cgroup.kill for SIGKILL on v2).
	Kill(sig syscall.Signal) error
	// Stats reads the resource statistics.
	Stats() (*Stats, error)
	// OOMKills counts the processes the OOM killer killed in the cgroup.
	OOMKills() (uint64, error)
	// Destroy removes the cgroups (and any child cgroups); a cgroup that is
	// already gone is fine. It fails while processes remain.
	Destroy() error
	// Paths maps each v1 controller (and "name=systemd") to the container's
	// cgroup directory; "" maps to the cgroup2 directory (V2 and Hybrid).
	Paths() map[string]string
	// ContainerMounts describes how to present the cgroup filesystem at
	// dest inside the container for this layout. The runtime performs them
	// in order, inside the container's mount namespace, with
	// unix.Mount(m.Source, rootfs+m.Target, m.FSType, m.Flags, m.Data)
	// after creating the target directory — except FSType "symlink",
	// which is os.Symlink(m.Source, rootfs+m.Target). With cgroupNS the
	// container must be in its own cgroup namespace (entered after it was
	// placed in its cgroup) and then sees its cgroup as "/".
	ContainerMounts(dest string, cgroupNS bool, readOnly bool) ([]Mount, error)
}

// Mount is one step of presenting /sys/fs/cgroup in a container. Target is
// an absolute path inside the container's root filesystem.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

// New validates cfg and resolves the container's cgroup paths on this host.
// It creates nothing, and the same Config always gives the same Manager, so
// later runtime commands (state, pause, update, delete) find the cgroup.
func New(cfg Config) (Manager, error) {
	return newManager(cfg)
}
