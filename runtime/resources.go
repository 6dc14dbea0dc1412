package runtime

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var errNoCgroup = errors.New("the container has no cgroup")

// loadRunning loads a container and its cgroup, requiring one of the
// given statuses.
func (r *Runtime) loadWithCgroup(id, op string, want ...specs.ContainerState) (*State, cgroup, error) {
	st, err := r.loadState(id)
	if err != nil {
		return nil, nil, err
	}
	status := r.status(st)
	ok := len(want) == 0
	for _, w := range want {
		ok = ok || status == w
	}
	if !ok {
		return nil, nil, &ErrState{id, op, status}
	}
	cg, err := r.newCgroup(id, st.Config)
	if err != nil {
		return nil, nil, err
	}
	if cg == nil {
		return nil, nil, fmt.Errorf("%s container %s: %w", op, id, errNoCgroup)
	}
	return st, cg, nil
}

// Pause freezes every process of a running container.
func (r *Runtime) Pause(id string) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	_, cg, err := r.loadWithCgroup(id, "pause", specs.StateRunning, specs.StateCreated)
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	_, cg, err := r.loadWithCgroup(id, "resume", StatePaused)
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Pids lists every process of the container (host PIDs).
func (r *Runtime) Pids(id string) ([]int, error) {
	st, cg, err := r.loadWithCgroup(id, "list processes of")
	if err != nil {
		return nil, err
	}
	if r.status(st) == specs.StateStopped {
		return nil, nil
	}
	return cg.Pids()
}

// Update applies new resource limits to a live container and records
// them in its state.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, cg, err := r.loadWithCgroup(id, "update", specs.StateCreated, specs.StateRunning, StatePaused)
	if err != nil {
		return err
	}
	if err := cg.Update(res); err != nil {
		return err
	}
	st.Config.Linux.Resources = mergeResources(st.Config.Linux.Resources, res)
	return r.saveState(st)
}

// mergeResources overlays the fields update sets on the recorded ones.
func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return upd
	}
	out := *old
	if upd.CPU != nil {
		out.CPU = upd.CPU
	}
	if upd.Memory != nil {
		out.Memory = upd.Memory
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		out.BlockIO = upd.BlockIO
	}
	if upd.HugepageLimits != nil {
		out.HugepageLimits = upd.HugepageLimits
	}
	if upd.Network != nil {
		out.Network = upd.Network
	}
	if upd.Rdma != nil {
		out.Rdma = upd.Rdma
	}
	if upd.Unified != nil {
		out.Unified = upd.Unified
	}
	if upd.Devices != nil {
		out.Devices = upd.Devices
	}
	return &out
}

// Stats reads the container's resource statistics and OOM kill count.
func (r *Runtime) Stats(id string) (*cgroups.Stats, uint64, error) {
	_, cg, err := r.loadWithCgroup(id, "read statistics of", specs.StateCreated, specs.StateRunning, StatePaused)
	if err != nil {
		return nil, 0, err
	}
	s, err := cg.Stats()
	if err != nil {
		return nil, 0, err
	}
	ooms, _ := cg.OOMKills()
	return s, ooms, nil
}

// OOMKills counts the container's processes killed by the OOM killer.
func (r *Runtime) OOMKills(id string) (uint64, error) {
	// Any status: a container stopped by the OOM killer still has its
	// cgroup, and its count, until it is deleted.
	_, cg, err := r.loadWithCgroup(id, "read OOM events of")
	if err != nil {
		return 0, err
	}
	return cg.OOMKills()
}
