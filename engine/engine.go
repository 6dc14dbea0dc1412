// Package engine is berth's containers service: it creates containers
// from images, starts them through a per-container monitor (package
// monitor) and the OCI runtime, stops, kills, pauses, execs into, copies
// into and out of them, streams their logs, stats and events, and keeps
// their state on disk under the data root (atomic writes, one daemon per
// data root by lock), reconciling it with reality at start-up. It turns
// Docker configuration into OCI specs through package specopts. It owns
// data-root/containers and exec-root/containers; images and root
// filesystems belong to the image store and snapshotter it is given.
package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/engine/config"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/engine/netns"
	"github.com/berth-dev/berth/internal/spawnreq"
	"github.com/berth-dev/berth/specopts"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Image is what a container needs from its image.
type Image struct {
	ID       string // sha256:…
	Chain    []digest.Digest
	Config   ocispec.ImageConfig
	RepoTags []string
}

// Images resolves image references; errors are errdefs-classified (a
// missing image is NotFound: "No such image: busybox:latest").
type Images interface {
	Resolve(ref string) (*Image, error)
}

// RootFS builds and removes containers' root filesystems.
type RootFS interface {
	// Prepare creates (once) and mounts the rootfs of container id from
	// the layer chain, presented to the given id maps (nil: none);
	// scratch says the container is removed when it exits (--rm), so its
	// writes need never reach the disk (decided at the first Prepare).
	Prepare(id string, chain []digest.Digest, uids, gids []specs.LinuxIDMapping, scratch bool) (string, error)
	Unmount(id string) error
	Remove(id string) error
	// RemoveLater takes the root filesystem away at once and returns a
	// function that deletes its files, to be run off the critical path.
	RemoveLater(id string) (finish func() error, err error)
	// PrepareAhead makes a root filesystem for the next Prepare with the
	// same layers and options, ahead of it.
	PrepareAhead(chain []digest.Digest, uids, gids []specs.LinuxIDMapping, scratch bool) error
}

// RuntimeLib is the OCI runtime as a Go package (berth's runtime/), used
// in-process for the calls that need no new process, saving an exec of
// the runtime binary per start, kill, pause and resume.
type RuntimeLib interface {
	Start(id string) error
	Kill(id string, sig syscall.Signal, all bool) error
	Pause(id string) error
	Resume(id string) error
	// Exec starts process p in running container id with the given
	// stdio (consoleSocket instead receives a terminal's master) and
	// returns its host pid and a function that waits for its exit
	// status. The caller must not need to be a child subreaper: the
	// process is reaped by a helper that is the caller's child. A failure
	// inside the container (command not found) is an ExitCoder.
	Exec(id string, p *specs.Process, stdin, stdout, stderr *os.File, consoleSocket string) (pid int, wait func() (int, error), err error)
	// CanSpawn says whether Create can have another process (the
	// container's monitor) start the init of a container with spec.
	CanSpawn(spec *specs.Spec) bool
	// Create creates container id from spec (recording bundle) up to
	// the point where start releases it; spawn starts the init as the
	// monitor's child (see spawnreq), and consoleSocket receives a
	// terminal's master. It returns the init's pid.
	Create(id, bundle string, spec *specs.Spec, consoleSocket string, spawn SpawnFunc) (pid int, err error)
	// Delete removes a container's runtime state (its cgroup included),
	// killing what is left of it.
	Delete(id string) error
	// PrepareCgroup starts making the cgroup of container id (path and
	// resources from spec) in the background for the Create that
	// follows; DropCgroup removes it when none does.
	PrepareCgroup(id string, spec *specs.Spec)
	DropCgroup(id string)
}

// SpawnFunc starts a container's init elsewhere: req with files as its
// descriptors from 3 up and, when req.IntoCgroup, the cgroup2 directory
// to clone it into.
type SpawnFunc func(req *spawnreq.Request, files []*os.File, cgroup *os.File) (pid int, err error)

// Options configure an Engine.
type Options struct {
	Config *config.Config
	// MonitorArgv runs a monitor: the berth binary and "monitor".
	MonitorArgv []string
	// Runtime is the OCI runtime binary (berth-runtime, or runc).
	Runtime string
	// Lib, when set, is the same runtime (same state root) in-process.
	Lib    RuntimeLib
	Images Images
	RootFS RootFS
	// Seccomp compiles Docker JSON profiles; nil runs without seccomp.
	Seccomp specopts.SeccompBuilder
	// DefaultSeccompProfile is the daemon's default profile JSON
	// (seccomp-profile in daemon.json); nil lets Seccomp pick its default.
	DefaultSeccompProfile []byte
	Remap                 *config.Remap
	// Version is berth's version, for events and info.
	Version string
	// DataRootLock is the data root's lock (LockDataRoot), taken by the
	// caller; New takes it itself when nil. The engine owns it: Close
	// (or a failed New) releases it.
	DataRootLock *os.File
}

// Engine is the containers service.
type Engine struct {
	opts     Options
	dataRoot string
	execRoot string
	rtRoot   string
	lockFile *os.File
	held     caps.Set
	cgroupV2 bool
	canRaise bool

	mu     sync.RWMutex
	byID   map[string]*Container
	names  map[string]string // "/name" → id
	execs  map[string]*execProc
	Events *Events
	wg     sync.WaitGroup
	bg     sync.WaitGroup // cleanups after removals
	pool   monitorPool
	netns  netns.Pool
	ahead  sync.WaitGroup // starts being prepared ahead
	// closing: the daemon stops; no start is prepared ahead any more.
	closing bool
	// aheadCount: starts prepared ahead or being prepared (maxAhead).
	aheadCount int
}

// New opens (creating) the data and exec roots, takes the data root's
// lock (one daemon per data root), loads containers and reconciles them.
func New(o Options) (*Engine, error) {
	c := o.Config
	e := &Engine{
		opts: o, dataRoot: c.DataRoot, execRoot: c.ExecRoot,
		rtRoot: filepath.Join(c.ExecRoot, "runtime"),
		byID:   map[string]*Container{}, names: map[string]string{}, execs: map[string]*execProc{},
		Events: NewEvents(),
	}
	fail := func(err error) (*Engine, error) {
		if o.DataRootLock != nil {
			o.DataRootLock.Close()
		}
		return nil, err
	}
	for _, d := range []string{e.dataRoot, filepath.Join(e.dataRoot, "containers"), e.execRoot,
		filepath.Join(e.execRoot, "containers"), filepath.Join(e.execRoot, "m"), e.rtRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fail(fmt.Errorf("create %s: %w", d, err))
		}
	}
	if l := len(filepath.Join(e.execRoot, "m", strings.Repeat("x", 20)+".sock.console")); l >= 108 {
		return fail(fmt.Errorf("exec-root %s is too long: unix socket paths under it would exceed 107 bytes", e.execRoot))
	}
	e.lockFile = o.DataRootLock
	if e.lockFile == nil {
		f, err := LockDataRoot(e.dataRoot)
		if err != nil {
			return nil, err
		}
		e.lockFile = f
	}
	if cur, err := caps.Current(); err == nil {
		e.held = cur.Permitted
	}
	e.canRaise = e.held.Has(unix.CAP_SYS_RESOURCE)
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		e.cgroupV2 = true
	}
	if err := e.load(); err != nil {
		e.Close()
		return nil, err
	}
	if len(o.MonitorArgv) > 0 {
		e.refillMonitors()
	}
	if o.Lib != nil && os.Geteuid() == 0 {
		e.netns.Fill()
	}
	return e, nil
}

// LockDataRoot takes the data root's lock (one daemon per data root) and
// returns the file holding it, for Options.DataRootLock. The daemon takes
// it before it opens anything under the data root: opening the
// snapshotter and the image store cleans up what a dead daemon left,
// which must not happen to a live one's.
func LockDataRoot(dataRoot string) (*os.File, error) {
	if err := os.MkdirAll(dataRoot, 0o711); err != nil {
		return nil, fmt.Errorf("create %s: %w", dataRoot, err)
	}
	f, err := os.OpenFile(filepath.Join(dataRoot, "berth.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another berth daemon is using the data root %s: %w", dataRoot, err)
	}
	return f, nil
}

// Close releases the data root. Running containers keep running: their
// monitors hold them, and the next daemon finds them again.
func (e *Engine) Close() {
	e.unprepareAll()
	e.closeMonitors()
	e.netns.Close()
	e.Settle()
	if e.lockFile != nil {
		e.lockFile.Close()
		e.lockFile = nil
	}
}

// Settle waits for the cleanups that follow removals (the runtime's
// state, the rootfs's files), which run in the background.
func (e *Engine) Settle() { e.bg.Wait() }

// Config is the daemon configuration in force.
func (e *Engine) Config() *config.Config { return e.opts.Config }

// RuntimePath is the OCI runtime binary.
func (e *Engine) RuntimePath() string { return e.opts.Runtime }

// CgroupV2 reports a unified cgroup hierarchy.
func (e *Engine) CgroupV2() bool { return e.cgroupV2 }

func (e *Engine) containerDir(id string) string {
	return filepath.Join(e.dataRoot, "containers", id)
}

func (e *Engine) bundleDir(id string) string {
	return filepath.Join(e.execRoot, "containers", id)
}

func (e *Engine) runtimeArgs() []string {
	return []string{"--root", e.rtRoot}
}

// Get finds a container by full id, name (with or without "/") or
// unambiguous id prefix.
func (e *Engine) Get(ref string) (*Container, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.getLocked(ref)
}

func (e *Engine) getLocked(ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	if c, ok := e.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := e.names[name]; ok {
		return e.byID[id], nil
	}
	var found *Container
	for id, c := range e.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameterf("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	return found, nil
}

// List returns every container, newest first.
func (e *Engine) List() []*Container {
	e.mu.RLock()
	out := make([]*Container, 0, len(e.byID))
	for _, c := range e.byID {
		out = append(out, c)
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// Counts returns the numbers of containers by state for info.
func (e *Engine) Counts() (total, running, paused, stopped int) {
	for _, c := range e.List() {
		c.mu.Lock()
		s := c.State.Status
		c.mu.Unlock()
		total++
		switch s {
		case "running", "restarting":
			running++
		case "paused":
			paused++
		default:
			stopped++
		}
	}
	return
}

// reserveName claims name for id; call with e.mu held.
func (e *Engine) reserveName(name, id string) error {
	if other, ok := e.names[name]; ok && other != id {
		return errdefs.Conflictf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	e.names[name] = id
	return nil
}

var errNotRunning = errors.New("is not running")

// trace prints how long a step took, with --debug.
func (e *Engine) trace(since time.Time, format string, args ...any) {
	if e.opts.Config.Debug {
		fmt.Fprintf(os.Stderr, "berth daemon: %s %s after %s\n", time.Now().Format("15:04:05.000000"), fmt.Sprintf(format, args...), time.Since(since).Round(10*time.Microsecond))
	}
}
