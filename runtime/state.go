// Package runtime is berth's OCI runtime: it turns a bundle into a
// running, isolated process and manages it through the lifecycle the OCI
// runtime spec defines (create, start, state, kill, delete) plus runc's
// extras (exec, ps, pause, resume, update, events). It keeps one state
// directory per container under its root, written atomically and guarded
// by a lock. It is thin: namespaces are created by the spawn path, the
// root filesystem by package rootfs inside the init stage, cgroups and
// seccomp by their own packages.
package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where state lives when --root is not given.
const DefaultRoot = "/run/berth/runtime"

// Runtime manages the containers whose state is under Root.
type Runtime struct {
	Root          string
	SystemdCgroup bool
	// Warn receives problems that do not fail an operation (a failing
	// poststart or poststop hook); nil prints them on stderr.
	Warn func(error)
	// Trace, when set, is told of each step of a create as it ends (the
	// daemon's --debug shows them with timings); "" marks its start.
	Trace func(step string)

	preMu sync.Mutex
	pre   map[string]*preCgroup // PrepareCgroup
}

func (r *Runtime) trace(step string) {
	if r.Trace != nil {
		r.Trace(step)
	}
}

// New returns a runtime keeping state under root ("" → DefaultRoot).
func New(root string) *Runtime {
	if root == "" {
		root = DefaultRoot
	}
	return &Runtime{Root: root}
}

// State is what the runtime records about a container (state.json).
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
	// InitStart is the init process's start time (clock ticks since boot,
	// /proc/PID/stat field 22): with the PID it names the process
	// unambiguously, so a recycled PID is never signalled.
	InitStart uint64      `json:"initStart"`
	Config    *specs.Spec `json:"config"`
	// Cgroup paths by controller, as created.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// RootfsBound: the container shares the runtime's mount namespace
	// and the rootfs was bound privately onto itself (rootfs.BindPrivate);
	// delete unmounts it, with every container mount below it.
	RootfsBound bool `json:"rootfsBound,omitempty"`
	// Started records that `start` released the process (status can no
	// longer be "created").
	Started bool `json:"started,omitempty"`
}

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

// ValidateID checks a container ID as runc does.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("container id cannot be empty")
	}
	if len(id) > 1024 || !validID.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: use letters, digits, '_', '+', '-' and '.'", id)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// ErrNotExist is returned for an unknown container ID.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is returned when creating an ID already in use.
var ErrExist = errors.New("container already exists")

func (r *Runtime) loadState(id string) (*State, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("container %s: corrupt state.json: %w", id, err)
	}
	return &s, nil
}

func (r *Runtime) saveState(s *State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.dir(s.ID), "state.json"), b, 0o600)
}

// writeFileAtomic writes via a temporary file and rename, so a reader
// sees the old or the new content, never a torn one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// processStart reads the start time and state letter of pid from
// /proc/PID/stat.
func processStart(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may contain spaces and parentheses: fields start
	// after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// alive reports whether the state's init process still exists (and is
// not a zombie).
func (s *State) alive() bool {
	if s.Pid <= 0 {
		return false
	}
	start, st, err := processStart(s.Pid)
	return err == nil && start == s.InitStart && st != 'Z' && st != 'X'
}

// status derives the OCI status from the live system.
func (r *Runtime) status(s *State) specs.ContainerState {
	if !s.alive() {
		return specs.StateStopped
	}
	if !s.Started {
		if _, err := os.Lstat(filepath.Join(r.dir(s.ID), "exec.fifo")); err == nil {
			return specs.StateCreated
		}
	}
	if frozen, err := r.frozen(s); err == nil && frozen {
		return StatePaused
	}
	return specs.StateRunning
}

// lock takes the container's lock, serialising lifecycle operations on
// one container across processes.
func (r *Runtime) lock(id string) (func(), error) {
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(r.Root, "."+id+".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func (r *Runtime) unlockAndForget(id string, unlock func()) {
	os.Remove(filepath.Join(r.Root, "."+id+".lock"))
	unlock()
}
