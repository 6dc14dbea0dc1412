package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/cgroups/internal/cgfs"
	"github.com/berth-dev/berth/cgroups/stats"
	"github.com/berth-dev/berth/cgroups/systemd"
	v1 "github.com/berth-dev/berth/cgroups/v1"
	v2 "github.com/berth-dev/berth/cgroups/v2"
)

// freezeTimeout bounds how long Freeze waits for every task to stop.
const freezeTimeout = 10 * time.Second

type manager struct {
	cfg    Config
	layout Layout
	v1     v1.Paths          // v1 controller → container's cgroup dir
	v1mnt  map[string]string // v1 controller → its hierarchy's mountpoint
	// unified is the container's cgroup in the cgroup2 hierarchy (V2, and
	// Hybrid where it is made too, so the process is placed consistently
	// and controllers only cgroup2 has can be used); umnt its mountpoint.
	unified, umnt string
	// onUnified (Hybrid) lists controllers the host offers only through
	// its cgroup2 mount (e.g. hugetlb on this project's build hosts).
	onUnified map[string]bool
	// sd is the transient scope unit with the systemd driver (nil with
	// cgroupfs). systemd makes the scope's cgroup when it starts the unit,
	// which needs the first process: the scope is started by Enter.
	sd *systemd.Unit
}

func newManager(cfg Config) (*manager, error) {
	var unit *systemd.Unit
	if cfg.Systemd {
		u, err := systemd.ParsePath(cfg.Path, cfg.ContainerID)
		if err != nil {
			return nil, err
		}
		if err := systemd.Check(); err != nil {
			return nil, err
		}
		unit = &u
	}
	if err := ValidateResources(cfg.Resources); err != nil {
		return nil, fmt.Errorf("cgroup resources: %w", err)
	}
	h, err := probe()
	if err != nil {
		return nil, err
	}
	var inner string
	var abs bool
	if unit != nil {
		// The scope's cgroup has the same path in every hierarchy: systemd
		// makes it in those it manages (cgroup2, and on v1 and hybrid
		// hosts name=systemd and the controllers it knows), Enter makes it
		// in the others (cpuset, freezer, net_cls…), as runc does.
		if inner, err = unit.CgroupPath(); err != nil {
			return nil, fmt.Errorf("cgroup path %q: %w", cfg.Path, err)
		}
		abs = true
	} else if inner, abs, err = InnerPath(cfg.Path, cfg.ContainerID); err != nil {
		return nil, err
	}
	m := &manager{cfg: cfg, layout: h.layout, v1: v1.Paths{}, v1mnt: map[string]string{}, onUnified: map[string]bool{}, sd: unit}
	for c, hy := range h.v1 {
		m.v1[c] = hostPath(hy.mountpoint, hy.root, h.own[c], inner, abs, false)
		m.v1mnt[c] = hy.mountpoint
	}
	if hy := h.unified; hy != nil {
		m.umnt = hy.mountpoint
		m.unified = hostPath(hy.mountpoint, hy.root, h.own[""], inner, abs, true)
		if m.layout == Hybrid {
			avail, err := v2.Controllers(hy.mountpoint)
			if err != nil {
				return nil, fmt.Errorf("read cgroup2 controllers: %w", err)
			}
			for _, c := range avail {
				if _, onV1 := h.v1[c]; !onV1 {
					m.onUnified[c] = true
				}
			}
		}
	}
	if err := m.checkLayout(cfg.Resources); err != nil {
		return nil, fmt.Errorf("cgroup resources: %w", err)
	}
	return m, nil
}

// checkLayout rejects resources this host's layout cannot apply, before
// anything is created.
func (m *manager) checkLayout(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.HugepageLimits) > 0 {
		sizes := cgfs.HugePageSizes()
		for _, l := range r.HugepageLimits {
			if !slices.Contains(sizes, l.Pagesize) {
				return fmt.Errorf("hugepageLimits: page size %s is not supported by this kernel (supported: %s)", l.Pagesize, strings.Join(sizes, ", "))
			}
		}
	}
	switch m.layout {
	case V1:
		if len(r.Unified) > 0 {
			return errors.New("unified: cgroup v2 resources need a cgroup v2 host; this host has cgroup v1 only")
		}
	case Hybrid:
		for k := range r.Unified {
			ctrl, _, _ := strings.Cut(k, ".")
			if ctrl != "cgroup" && !m.onUnified[ctrl] {
				return fmt.Errorf("unified: key %q: on this hybrid host the %s controller is not in the cgroup2 hierarchy (%s)", k, ctrl, m.umnt)
			}
		}
	case V2:
		if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
			return errors.New("network: classID and priorities need the cgroup v1 net_cls/net_prio controllers; cgroup v2 has none (use BPF-based classification instead)")
		}
		if c := r.CPU; c != nil && (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
			return errors.New("cpu: realtime runtime/period need cgroup v1 (cgroup v2 has no realtime group scheduling)")
		}
	}
	return nil
}

func (m *manager) Paths() map[string]string {
	out := make(map[string]string, len(m.v1)+1)
	for c, p := range m.v1 {
		out[c] = p
	}
	if m.unified != "" {
		out[""] = m.unified
	}
	return out
}

// dirs lists each distinct cgroup directory once (co-mounted controllers
// share one), in a stable order.
func (m *manager) dirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range m.v1 {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if m.unified != "" {
		out = append(out, m.unified)
	}
	return out
}

func (m *manager) Create() error {
	var made []string
	fail := func(err error) error {
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i])
		}
		return fmt.Errorf("create cgroup for container %s: %w", m.cfg.ContainerID, err)
	}
	if m.sd != nil {
		// systemd makes the cgroup when Enter starts the scope.
		if d := m.scopeDir(); d != "" {
			if pids, _ := cgfs.ReadPidsRecursive(d); len(pids) > 0 {
				return fail(fmt.Errorf("cgroup %s is already in use by processes %v (another container?); choose another cgroupsPath", d, firstN(pids, 5)))
			}
		}
		return nil
	}
	for _, d := range m.dirs() {
		// Fast path: the parent exists and the leaf does not.
		err := unix.Mkdir(d, 0o755)
		switch {
		case err == nil:
			made = append(made, d)
			if m.v1["cpuset"] == d {
				if err := v1.PrepareCpuset(d); err != nil {
					return fail(err)
				}
			}
		case err == unix.EEXIST:
			pids, err := cgfs.ReadPidsRecursive(d)
			if err != nil {
				return fail(err)
			}
			if len(pids) > 0 {
				return fail(fmt.Errorf("cgroup %s is already in use by processes %v (another container?); choose another cgroupsPath", d, firstN(pids, 5)))
			}
		case err == unix.ENOENT:
			created, err := mkdirAll(d)
			made = append(made, created...)
			if err != nil {
				return fail(err)
			}
			if m.v1["cpuset"] == d {
				for _, c := range created {
					if err := v1.PrepareCpuset(c); err != nil {
						return fail(err)
					}
				}
			}
		default:
			return fail(fmt.Errorf("make cgroup %s: %w", d, err))
		}
	}
	if m.unified != "" {
		if err := v2.EnableControllers(m.umnt, m.unified, m.wantUnified(m.cfg.Resources)); err != nil {
			return fail(err)
		}
	}
	if err := m.apply(m.cfg.Resources, false); err != nil {
		return fail(err)
	}
	return nil
}

// wantUnified is the set of controllers to enable down to the leaf in the
// cgroup2 hierarchy: everything on a V2 host (as runc does, so stats and
// later updates work); on a hybrid host only what the resources need.
func (m *manager) wantUnified(r *specs.LinuxResources) []string {
	if m.layout == V2 {
		all, _ := v2.Controllers(m.umnt)
		return all
	}
	var want []string
	if r == nil {
		return nil
	}
	add := func(c string) {
		if m.onUnified[c] && !slices.Contains(want, c) {
			want = append(want, c)
		}
	}
	if len(r.HugepageLimits) > 0 {
		add("hugetlb")
	}
	if len(r.Rdma) > 0 {
		add("rdma")
	}
	for k := range r.Unified {
		c, _, _ := strings.Cut(k, ".")
		add(c)
	}
	sort.Strings(want)
	return want
}

// split divides resources between the v1 hierarchies and the cgroup2 one
// on a hybrid host.
func (m *manager) split(r *specs.LinuxResources) (onV1, onV2 *specs.LinuxResources) {
	a, b := *r, specs.LinuxResources{}
	if m.onUnified["hugetlb"] {
		b.HugepageLimits, a.HugepageLimits = a.HugepageLimits, nil
	}
	if m.onUnified["rdma"] {
		b.Rdma, a.Rdma = a.Rdma, nil
	}
	b.Unified, a.Unified = a.Unified, nil
	a.Devices = nil
	return &a, &b
}

func (m *manager) apply(r *specs.LinuxResources, update bool) error {
	if r == nil {
		r = &specs.LinuxResources{}
	}
	switch m.layout {
	case V1:
		if err := v1.Set(m.v1, r, update); err != nil {
			return err
		}
	case Hybrid:
		a, b := m.split(r)
		if err := v1.Set(m.v1, a, update); err != nil {
			return err
		}
		if len(b.HugepageLimits) > 0 || len(b.Rdma) > 0 || len(b.Unified) > 0 {
			if err := v2.EnableControllers(m.umnt, m.unified, m.wantUnified(b)); err != nil {
				return err
			}
			if err := v2.Set(m.unified, b, update); err != nil {
				return err
			}
		}
	case V2:
		if err := v2.Set(m.unified, r, update); err != nil {
			return err
		}
	}
	return m.setDevices(r.Devices, update)
}

func (m *manager) Update(r *specs.LinuxResources) error {
	if err := ValidateResources(r); err != nil {
		return fmt.Errorf("update cgroup resources: %w", err)
	}
	if err := m.checkLayout(r); err != nil {
		return fmt.Errorf("update cgroup resources: %w", err)
	}
	if err := m.apply(r, true); err != nil {
		return fmt.Errorf("update cgroup resources of container %s: %w", m.cfg.ContainerID, err)
	}
	return nil
}

func (m *manager) CloneFD() (int, bool) {
	if m.layout != V2 || m.sd != nil {
		return -1, false
	}
	fd, err := unix.Open(m.unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	return fd, true
}

func (m *manager) Enter(pid int) error {
	if m.sd != nil {
		if _, err := os.Stat(m.scopeDir()); errors.Is(err, os.ErrNotExist) {
			return m.startScope(pid)
		}
	}
	for _, d := range m.dirs() {
		if err := cgfs.Write(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("put process %d in cgroup: %w", pid, err)
		}
	}
	return nil
}

// freezer returns the v1 freezer dir, or the cgroup2 dir when freezing
// goes through cgroup.freeze.
func (m *manager) freezer() (dir string, isV1 bool, err error) {
	if d, ok := m.v1["freezer"]; ok {
		return d, true, nil
	}
	if m.unified != "" && cgfs.Exists(m.unified, "cgroup.freeze") {
		return m.unified, false, nil
	}
	return "", false, errors.New("no freezer: neither the v1 freezer controller nor cgroup v2's cgroup.freeze is available")
}

func (m *manager) Freeze() error {
	if err := m.setFrozen(true); err != nil {
		m.setFrozen(false)
		return fmt.Errorf("freeze container %s: %w", m.cfg.ContainerID, err)
	}
	return nil
}

func (m *manager) Thaw() error {
	if err := m.setFrozen(false); err != nil {
		return fmt.Errorf("thaw container %s: %w", m.cfg.ContainerID, err)
	}
	return nil
}

func (m *manager) setFrozen(frozen bool) error {
	dir, isV1, err := m.freezer()
	if err != nil {
		return err
	}
	if !isV1 {
		return v2.Freeze(dir, frozen, freezeTimeout)
	}
	want := "THAWED"
	if frozen {
		want = "FROZEN"
	}
	deadline := time.Now().Add(freezeTimeout)
	// A v1 cgroup can sit in FREEZING while a task is in an uninterruptible
	// sleep; writing FROZEN again retries the tasks that did not stop.
	for i, delay := 0, 100*time.Microsecond; ; i, delay = i+1, min(delay*2, 10*time.Millisecond) {
		if i%8 == 0 {
			if err := v1.Freeze(dir, frozen); err != nil {
				return err
			}
		}
		st, err := v1.FreezerState(dir)
		if err != nil {
			return err
		}
		if st == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s stayed %s for %v", dir, st, freezeTimeout)
		}
		time.Sleep(delay)
	}
}

func (m *manager) Frozen() (bool, error) {
	dir, isV1, err := m.freezer()
	if err != nil {
		return false, err
	}
	if !isV1 {
		return v2.Frozen(dir)
	}
	st, err := v1.FreezerState(dir)
	return st == "FROZEN", err
}

func (m *manager) Pids() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, d := range m.dirs() {
		pids, err := cgfs.ReadPidsRecursive(d)
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

func (m *manager) Kill(sig syscall.Signal) error {
	if sig == syscall.SIGKILL && m.unified != "" {
		if ok, err := v2.Kill(m.unified); ok {
			if err != nil {
				return fmt.Errorf("kill container %s: %w", m.cfg.ContainerID, err)
			}
			return nil
		}
	}
	// Freeze first so no process forks a child that escapes the signal;
	// signals sent to frozen tasks are delivered on thaw.
	wasFrozen, _ := m.Frozen()
	frozeHere := false
	if _, _, err := m.freezer(); err == nil && !wasFrozen {
		frozeHere = m.setFrozen(true) == nil
	}
	pids, err := m.Pids()
	if err == nil {
		for _, p := range pids {
			if e := unix.Kill(p, sig); e != nil && e != unix.ESRCH && err == nil {
				err = fmt.Errorf("signal %d to pid %d: %w", sig, p, e)
			}
		}
	}
	if frozeHere {
		if e := m.setFrozen(false); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("kill container %s: %w", m.cfg.ContainerID, err)
	}
	return nil
}

func (m *manager) Stats() (*Stats, error) {
	s := &Stats{}
	switch m.layout {
	case V1, Hybrid:
		if err := v1.Stats(m.v1, s); err != nil {
			return nil, fmt.Errorf("stats of container %s: %w", m.cfg.ContainerID, err)
		}
		if m.layout == Hybrid && m.onUnified["hugetlb"] {
			var u stats.Stats
			if err := v2.Stats(m.unified, &u); err == nil {
				s.Hugetlb = u.Hugetlb
			}
		}
	case V2:
		if err := v2.Stats(m.unified, s); err != nil {
			return nil, fmt.Errorf("stats of container %s: %w", m.cfg.ContainerID, err)
		}
	}
	return s, nil
}

func (m *manager) OOMKills() (uint64, error) {
	if d, ok := m.v1["memory"]; ok {
		return v1.OOMKills(d)
	}
	if m.unified != "" {
		return v2.OOMKills(m.unified)
	}
	return 0, errors.New("no memory controller")
}

func (m *manager) Destroy() error {
	var errs []error
	if m.sd != nil {
		if err := m.stopScope(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range m.dirs() {
		if err := removeTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove cgroup of container %s: %w", m.cfg.ContainerID, err)
	}
	return nil
}

// mkdirAll is os.MkdirAll that reports the directories it made, top first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == "/" {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return made, fmt.Errorf("make cgroup: %w", err)
		}
		made = append(made, missing[i])
	}
	return made, nil
}

// removeTree removes a cgroup and its children, deepest first. cgroupfs
// directories are removed with rmdir(2) even though they hold files.
// Processes that are still exiting keep a cgroup busy for a moment, so
// EBUSY is retried for a short while.
func removeTree(dir string) error {
	// Fast path: a leaf without children (the usual container cgroup).
	err := unix.Rmdir(dir)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	deadline := time.Now().Add(3 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		var subdirs []string
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				subdirs = append(subdirs, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var last error
		for i := len(subdirs) - 1; i >= 0; i-- {
			if err := unix.Rmdir(subdirs[i]); err != nil && err != unix.ENOENT {
				last = &os.PathError{Op: "rmdir", Path: subdirs[i], Err: err}
			}
		}
		if last == nil {
			return nil
		}
		if !errors.Is(last, unix.EBUSY) || time.Now().After(deadline) {
			if pids, _ := cgfs.ReadPidsRecursive(dir); len(pids) > 0 {
				return fmt.Errorf("%w (processes %v are still in it)", last, firstN(pids, 5))
			}
			return last
		}
		time.Sleep(delay)
	}
}

func firstN(p []int, n int) []int {
	if len(p) > n {
		return p[:n]
	}
	return p
}
