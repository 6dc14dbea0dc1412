package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// State is a container's lifecycle state, persisted with it.
type State struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Pid        int
	MonitorPid int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	// Exits counts exits, so wait?condition=next-exit can tell a new one.
	Exits int
}

// Running reports whether the container's process is alive.
func (s *State) Running() bool { return s.Status == "running" || s.Status == "paused" }

// Container is one container's persisted record (config.v2.json).
type Container struct {
	ID           string
	Name         string // with the leading "/"
	Created      time.Time
	Path         string
	Args         []string
	Config       *container.Config
	HostConfig   *container.HostConfig
	Image        string          // image ID (sha256:…)
	ImageChain   []digest.Digest // layer chain IDs, for the snapshotter
	ImageName    string          // as the user typed it
	State        State
	RestartCount int
	LogPath      string
	Hostname     string
	HostsPath    string
	HostnamePath string
	ResolvPath   string
	UIDMaps      []specs.LinuxIDMapping `json:",omitempty"`
	GIDMaps      []specs.LinuxIDMapping `json:",omitempty"`
	ManualStop   bool

	// In memory only.
	mu      sync.Mutex    // guards the fields above after registration
	op      sync.Mutex    // serializes lifecycle operations
	changed chan struct{} // closed and replaced on every state change
	removed bool
	pending []*pendingAttach
	execs   map[string]*execProc
	dir     string // data-root/containers/ID
	// prepared is a start made ahead (ahead.go); guarded by op.
	prepared *preparedStart
	// aheadReady: prepared is there (pending attaches may register with
	// its monitor); guarded by mu.
	aheadReady bool
	// createSpec is the spec create built (without the root filesystem,
	// so without the image's users): its cgroup part is the start's.
	createSpec *specs.Spec
}

func (c *Container) init(dir string) {
	c.dir = dir
	c.changed = make(chan struct{})
	c.execs = map[string]*execProc{}
}

// notify wakes everyone watching the container; call with c.mu held.
func (c *Container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// snapshot returns a copy of the persisted fields, safe to read without
// the lock; call with c.mu held.
func (c *Container) snapshot() *Container {
	cp := &Container{
		ID: c.ID, Name: c.Name, Created: c.Created, Path: c.Path, Args: c.Args,
		Config: c.Config, HostConfig: c.HostConfig, Image: c.Image, ImageChain: c.ImageChain,
		ImageName: c.ImageName, State: c.State, RestartCount: c.RestartCount, LogPath: c.LogPath,
		Hostname: c.Hostname, HostsPath: c.HostsPath, HostnamePath: c.HostnamePath,
		ResolvPath: c.ResolvPath, UIDMaps: c.UIDMaps, GIDMaps: c.GIDMaps, ManualStop: c.ManualStop,
	}
	cp.dir = c.dir
	return cp
}

const configFile = "config.v2.json"

// save writes the record atomically; call with c.mu held.
func (c *Container) save() error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// An --rm container's record is not synced: it lives as long as the
	// container runs, and a crash that leaves it empty leaves a record
	// that start-up deletes.
	durable := c.HostConfig == nil || !c.HostConfig.AutoRemove
	return writeFileAtomic(filepath.Join(c.dir, configFile), data, 0o600, durable)
}

func loadContainer(dir string) (*Container, error) {
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	c := &Container{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), err)
	}
	if c.Config == nil || c.HostConfig == nil || len(c.ID) != 64 {
		return nil, fmt.Errorf("%s: incomplete container record", dir)
	}
	c.init(dir)
	return c, nil
}

// writeFileAtomic writes data to a temporary file in the same directory,
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte, mode os.FileMode, durable bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
