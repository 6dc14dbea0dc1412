package runtime

import (
	"errors"
	"syscall"

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
	Destroy() error
	Paths() map[string]string
	ContainerMounts(dest string, cgroupNS, readOnly bool) ([]rootfs.RawMount, error)
}

var errNoCgroups = errors.New("this build of berth cannot manage cgroups yet")

// newCgroup returns the container's cgroup manager, or nil when the spec
// asks for nothing a cgroup would hold.
func (r *Runtime) newCgroup(id string, spec *specs.Spec) (cgroup, error) {
	if spec.Linux == nil || (spec.Linux.Resources == nil && spec.Linux.CgroupsPath == "") {
		return nil, nil
	}
	return nil, errNoCgroups
}

func (r *Runtime) frozen(s *State) (bool, error) {
	cg, err := r.newCgroup(s.ID, s.Config)
	if err != nil || cg == nil {
		return false, err
	}
	return cg.Frozen()
}
