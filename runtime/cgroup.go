package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/berth-dev/berth/cgroups"
	"github.com/berth-dev/berth/internal/initbin"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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

// placement is how a new process gets into a container's cgroup. Moving
// a process into a cgroup (a write to cgroup.procs) waits for an RCU
// grace period when no move happened lately: 5-13 ms on this host, more
// than the rest of a container's start. So:
//   - cgroup v2: clone3 straight into the cgroup (CLONE_INTO_CGROUP);
//   - v1 and hybrid, no new user namespace: clone3 into the cgroup2 part
//     (hybrid), and the process moves its own thread into each v1 cgroup
//     (bootstrap.Config.CgroupTaskFDs), which takes no such wait;
//   - otherwise (a user namespace cannot write the host's cgroup files):
//     the runtime moves the process (Enter), while it does other work.
type placement struct {
	cloneFD int      // a cgroup2 directory to clone into, or -1
	tasks   []string // v1 directories the process joins itself
	enter   bool     // the runtime must move the process
}

// planPlacement opens what the placement needs; close releases it. The
// cgroup must exist.
func planPlacement(cg cgroup, userns bool) (p placement, close func(), err error) {
	p.cloneFD = -1
	close = func() {}
	layout, _ := cgroups.DetectLayout()
	if fd, ok := cg.CloneFD(); ok {
		p.cloneFD = fd
		return p, func() { unix.Close(fd) }, nil
	}
	if userns || os.Geteuid() != 0 || layout == cgroups.V2 {
		p.enter = true
		return p, close, nil
	}
	paths := cg.Paths()
	// The systemd driver's scope is made by Enter, which has systemd start
	// it with the process in it: until then there is nothing to join.
	for _, d := range paths {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			p.enter = true
			return p, close, nil
		}
	}
	if unified := paths[""]; unified != "" {
		fd, err := unix.Open(unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return p, close, fmt.Errorf("open cgroup %s: %w", unified, err)
		}
		p.cloneFD = fd
		close = func() { unix.Close(fd) }
	}
	seen := map[string]bool{}
	for c, dir := range paths {
		if c != "" && !seen[dir] {
			seen[dir] = true
			p.tasks = append(p.tasks, dir)
		}
	}
	sort.Strings(p.tasks)
	return p, close, nil
}

// openTasks opens the tasks files of v1 cgroup directories for the
// process to move its own thread with (see placement).
func openTasks(dirs []string) ([]*os.File, error) {
	var out []*os.File
	for _, d := range dirs {
		f, err := os.OpenFile(filepath.Join(d, "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("open cgroup %s: %w", d, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Warm starts the runtime's one-time probes in the background (the host's
// cgroup layout, read from mountinfo; the sealed init program), so that a
// create that follows finds them done while it was parsing config.json.
func Warm() {
	go cgroups.DetectLayout()
	go initbin.Path()
}
