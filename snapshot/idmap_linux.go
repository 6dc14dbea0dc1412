package snapshot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// IDMap is a user namespace's uid and gid maps (container id → host id),
// as in the OCI runtime spec and /proc/PID/uid_map.
type IDMap struct {
	UIDs []specs.LinuxIDMapping `json:"uids"`
	GIDs []specs.LinuxIDMapping `json:"gids"`
}

// Validate checks the map is usable: not empty, no overflowing ranges.
func (m *IDMap) Validate() error {
	if len(m.UIDs) == 0 || len(m.GIDs) == 0 {
		return fmt.Errorf("id map needs at least one uid and one gid range")
	}
	for _, r := range append(append([]specs.LinuxIDMapping{}, m.UIDs...), m.GIDs...) {
		if r.Size == 0 || uint64(r.ContainerID)+uint64(r.Size) > 1<<32 || uint64(r.HostID)+uint64(r.Size) > 1<<32 {
			return fmt.Errorf("bad id map range %d %d %d", r.ContainerID, r.HostID, r.Size)
		}
	}
	return nil
}

func mapID(ranges []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, r := range ranges {
		if id >= r.ContainerID && uint64(id) < uint64(r.ContainerID)+uint64(r.Size) {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}

// ToHost maps a container uid and gid to host ids.
func (m *IDMap) ToHost(uid, gid int) (int, int, error) {
	hu, ok1 := mapID(m.UIDs, uint32(uid))
	hg, ok2 := mapID(m.GIDs, uint32(gid))
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("owner %d:%d is not mapped in the user namespace", uid, gid)
	}
	return int(hu), int(hg), nil
}

// key names the map in the idmapped/ cache directory.
func (m *IDMap) key() string {
	var b strings.Builder
	for _, r := range m.UIDs {
		fmt.Fprintf(&b, "u%d-%d-%d_", r.ContainerID, r.HostID, r.Size)
	}
	for _, r := range m.GIDs {
		fmt.Fprintf(&b, "g%d-%d-%d_", r.ContainerID, r.HostID, r.Size)
	}
	return digest.FromString(b.String()).Encoded()[:24]
}

// idmapCache holds one user namespace descriptor per id map: the
// namespace an idmapped mount takes its mapping from.
type idmapCache struct {
	mu  sync.Mutex
	fds map[string]int
}

func (c *idmapCache) usernsFD(m *IDMap) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := m.key()
	if fd, ok := c.fds[k]; ok {
		return fd, nil
	}
	fd, err := newUserns(m)
	if err != nil {
		return -1, err
	}
	if c.fds == nil {
		c.fds = map[string]int{}
	}
	c.fds[k] = fd
	return fd, nil
}

// newUserns makes a user namespace with the map and returns a descriptor
// of it. A Go process cannot fork without exec, so a child is started in a
// new user namespace under PTRACE_TRACEME: it stops at its execve before
// running a single instruction of the new program, its namespace is
// opened, and it is killed.
func newUserns(m *IDMap) (int, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Path = "/proc/self/exe"
	conv := func(rs []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		var out []syscall.SysProcIDMap
		for _, r := range rs {
			out = append(out, syscall.SysProcIDMap{ContainerID: int(r.ContainerID), HostID: int(r.HostID), Size: int(r.Size)})
		}
		return out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                conv(m.UIDs),
		GidMappings:                conv(m.GIDs),
		GidMappingsEnableSetgroups: true,
		Ptrace:                     true,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("create user namespace for the id map: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open user namespace of the id map: %w", err)
	}
	return fd, nil
}

var (
	probeOnce    sync.Once
	probeIdmapOK bool
	// forceCopyFallback lets tests exercise the chowned-copy fallback.
	forceCopyFallback bool
)

// idmappedOverlaySupported probes once whether overlayfs accepts idmapped
// lower layers (Linux ≥ 5.19; the overlay mount itself cannot be idmapped,
// measured on 6.18: EINVAL). Fallback, written here next to the probe:
// layers are copied with owners shifted into the map, once per map
// (chownedLayers).
func idmappedOverlaySupported() bool {
	if forceCopyFallback {
		return false
	}
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-idmap-probe-")
		if err != nil {
			return
		}
		defer os.RemoveAll(dir)
		for _, d := range []string{"l", "u", "w", "m"} {
			if os.Mkdir(filepath.Join(dir, d), 0o755) != nil {
				return
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "l", "f"), nil, 0o644); err != nil {
			return
		}
		fd, err := newUserns(&IDMap{UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 20, Size: 1}},
			GIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 20, Size: 1}}})
		if err != nil {
			return
		}
		defer unix.Close(fd)
		target := filepath.Join(dir, "m")
		if err := mountIdmappedLowers(target, []string{filepath.Join(dir, "l")}, filepath.Join(dir, "u"), filepath.Join(dir, "w"), fd, false); err != nil {
			return
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(target, "f"), &st) == nil && st.Uid == 1<<20 {
			probeIdmapOK = true
		}
		unix.Unmount(target, unix.MNT_DETACH)
	})
	return probeIdmapOK
}

// IdmappedMountsSupported reports whether container root filesystems are
// presented to user namespaces with idmapped mounts (true) or with
// chowned copies of the layers (false).
func IdmappedMountsSupported() bool { return idmappedOverlaySupported() }
