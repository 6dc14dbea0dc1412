package runtime

import (
	"os"
	"syscall"

	"github.com/berth-dev/berth/cgroups"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// StatePaused is runc's status for a frozen container (the OCI spec has
// no word for it).
const StatePaused specs.ContainerState = "paused"

// cgroup is the runtime's narrow view of the cgroups package.
type cgroup interface {
	Create() error
	CloneFD() (int, bool)
	Enter(pid int) error
	Update(r *specs.LinuxResources) error
	Freeze() error
	Thaw() error
	Frozen() (bool, error)
	Pids() ([]int, error)
	Kill(sig syscall.Signal) error
	Stats() (*cgroups.Stats, error)
	OOMKills() (uint64, error)
	Destroy() error
	Paths() map[string]string
	ContainerMounts(dest string, cgroupNS, readOnly bool) ([]cgroups.Mount, error)
}

// newCgroup returns the container's cgroup manager. Every container gets
// a cgroup, as with runc; an unprivileged caller that asks for no
// resources gets none (it could not create one).
func (r *Runtime) newCgroup(id string, spec *specs.Spec) (cgroup, error) {
	if spec == nil || spec.Linux == nil {
		return nil, nil
	}
	if os.Geteuid() != 0 && spec.Linux.Resources == nil && spec.Linux.CgroupsPath == "" {
		return nil, nil
	}
	return cgroups.New(cgroups.Config{
		ContainerID: id, Path: spec.Linux.CgroupsPath, Resources: spec.Linux.Resources, Systemd: r.SystemdCgroup,
	})
}

func toRaw(ms []cgroups.Mount) []rootfs.RawMount {
	out := make([]rootfs.RawMount, len(ms))
	for i, m := range ms {
		out[i] = rootfs.RawMount{Source: m.Source, Target: m.Target, FSType: m.FSType, Flags: m.Flags, Data: m.Data}
	}
	return out
}

func (r *Runtime) frozen(s *State) (bool, error) {
	cg, err := r.newCgroup(s.ID, s.Config)
	if err != nil || cg == nil {
		return false, err
	}
	return cg.Frozen()
}
