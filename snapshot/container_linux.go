package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// ErrExists is returned by Prepare for a container that already has a
// root filesystem with a different layer chain or id map.
var ErrExists = errors.New("container snapshot already exists")

// PrepareOptions tune Prepare.
type PrepareOptions struct {
	// IDMap presents the root filesystem to a user namespace: a file owned
	// by container uid 0 in the image appears owned by the host uid that
	// container uid 0 maps to. nil keeps the image's owners.
	IDMap *IDMap
	// Volatile mounts the overlay with "volatile" for a container that is
	// removed when it exits (docker run --rm): writes are never synced to
	// disk, so neither its fsyncs nor its unmount wait for the disk, and
	// after a crash its writable layer is worth nothing (it is removed).
	// Only the first Prepare of a container decides.
	Volatile bool
}

// Prepare builds the root filesystem of container id from the unpacked
// layers of chain (chain IDs, bottom layer first) and mounts it; it returns
// the mount point, ready to be the rootfs of an OCI bundle. The container
// gets its own upper (writable) layer. Calling Prepare again for the same
// container and chain (after a daemon restart or a reboot) mounts it again
// if needed and returns the same path.
func (s *Snapshotter) Prepare(id string, chain []digest.Digest, opts *PrepareOptions) (string, error) {
	dir, err := s.containerDir(id)
	if err != nil {
		return "", err
	}
	if opts == nil {
		opts = &PrepareOptions{}
	}
	if opts.IDMap != nil {
		if err := opts.IDMap.Validate(); err != nil {
			return "", fmt.Errorf("prepare rootfs of %s: %w", id, err)
		}
	}
	for _, c := range chain {
		if !s.HasLayer(c) {
			return "", fmt.Errorf("prepare rootfs of %s: layer %s is not unpacked: %w", id, c, ErrNotFound)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lock(filepath.Join(s.root, "containers.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	want := containerMeta{Chain: chain, IDMap: opts.IDMap, Volatile: opts.Volatile}
	if old, err := readMeta(dir); err == nil {
		if !sameMeta(old, &want) {
			return "", fmt.Errorf("prepare rootfs of %s: %w", id, ErrExists)
		}
		want.Volatile = old.Volatile
	} else if !s.takeSpare(dir, &want) {
		if err := s.create(dir, &want); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("prepare rootfs of %s: %w", id, err)
		}
	}
	rootfs := filepath.Join(dir, "rootfs")
	if mounted(rootfs, dir) {
		return rootfs, nil
	}
	if err := s.mount(dir, &want); err != nil {
		return "", fmt.Errorf("prepare rootfs of %s: %w", id, err)
	}
	return rootfs, nil
}

// sameMeta compares what the root filesystem is made of.
func sameMeta(a, b *containerMeta) bool {
	ja, _ := json.Marshal(containerMeta{Chain: a.Chain, IDMap: a.IDMap})
	jb, _ := json.Marshal(containerMeta{Chain: b.Chain, IDMap: b.IDMap})
	return string(ja) == string(jb)
}

func (s *Snapshotter) create(dir string, m *containerMeta) error {
	// 0711: a runtime working inside the container's user namespace can
	// reach the rootfs, but not list or read the container's other files.
	if err := os.Mkdir(dir, 0o711); err != nil {
		if os.IsExist(err) {
			// A leftover of a crashed Prepare without meta.json.
			os.RemoveAll(dir)
			err = os.Mkdir(dir, 0o711)
		}
		if err != nil {
			return err
		}
	}
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "meta.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "meta.json"))
}

// mounted tells whether p is a mount point (its device differs from its
// parent directory's).
func mounted(p, parent string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(p, &a) != nil || unix.Lstat(parent, &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

func (s *Snapshotter) mount(dir string, m *containerMeta) error {
	lowers := make([]string, 0, len(m.Chain))
	for i := len(m.Chain) - 1; i >= 0; i-- {
		lowers = append(lowers, s.LayerPath(m.Chain[i]))
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	target := filepath.Join(dir, "rootfs")
	if m.Volatile {
		// A volatile overlay leaves a mark that refuses any later mount
		// of its work directory; the layer is disposable anyway.
		os.RemoveAll(filepath.Join(work, "work", "incompat"))
	}
	if len(lowers) == 0 {
		// An image with no layers: an empty directory as the only lower.
		empty := filepath.Join(dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lowers = append(lowers, empty)
	}
	if m.IDMap == nil {
		return mountOverlay(target, lowers, upper, work, m.Volatile)
	}
	if err := chownUpper(upper, m.IDMap); err != nil {
		return err
	}
	if idmappedOverlaySupported() {
		fd, err := s.maps.usernsFD(m.IDMap)
		if err != nil {
			return err
		}
		return mountIdmappedLowers(target, lowers, upper, work, fd, m.Volatile)
	}
	// Fallback: chowned copies of the layers, cached per id map.
	copies, err := s.chownedLayers(m.Chain, m.IDMap)
	if err != nil {
		return err
	}
	return mountOverlay(target, copies, upper, work, m.Volatile)
}

// mountIdmappedLowers mounts overlayfs whose lower layers are idmapped
// clones of the shared layer directories (overlayfs accepts idmapped lower
// layers, not an idmapped overlay mount nor an idmapped upper layer). The
// upper layer holds host ids: what the container writes is owned by its
// mapped users on disk, as with dockerd's userns-remap.
func mountIdmappedLowers(target string, lowers []string, upper, work string, usernsFD int, volatile bool) error {
	var paths []string
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, l := range lowers {
		fd, err := idmappedClone(l, usernsFD)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		paths = append(paths, fmt.Sprintf("/proc/self/fd/%d", fd))
	}
	return mountOverlay(target, paths, upper, work, volatile)
}

// idmappedClone returns a detached mount of dir whose owners are shown
// through the user namespace usernsFD.
func idmappedClone(dir string, usernsFD int) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("clone mount of %s: %w", dir, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(usernsFD)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("idmap mount of %s: %w", dir, err)
	}
	return fd, nil
}

// mountOverlay mounts overlayfs on target with the new mount API: one
// "lowerdir+" per layer, so the number of layers has no page-size limit.
func mountOverlay(target string, lowers []string, upper, work string, volatile bool) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("overlayfs: fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	set := func(k, v string) error {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return fmt.Errorf("overlayfs: %s=%s: %w%s", k, v, err, fsLog(fsfd))
		}
		return nil
	}
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && err == unix.EINVAL {
				// Kernels before 6.8 lack lowerdir+.
				if err := set("lowerdir", strings.Join(lowers, ":")); err != nil {
					return err
				}
				break
			}
			return fmt.Errorf("overlayfs: lowerdir+=%s: %w%s", l, err, fsLog(fsfd))
		}
	}
	if err := set("upperdir", upper); err != nil {
		return err
	}
	if err := set("workdir", work); err != nil {
		return err
	}
	if volatile {
		// Linux 5.10; older kernels just sync.
		unix.FsconfigSetFlag(fsfd, "volatile")
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("overlayfs: create: %w%s", err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("overlayfs: fsmount: %w%s", err, fsLog(fsfd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("overlayfs: mount on %s: %w", target, err)
	}
	return nil
}

// fsLog returns the messages the kernel left in a filesystem context.
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 8 {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// Rootfs is the mount point of container id's root filesystem.
func (s *Snapshotter) Rootfs(id string) (string, error) {
	dir, err := s.containerDir(id)
	if err != nil {
		return "", err
	}
	if _, err := readMeta(dir); err != nil {
		return "", fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return filepath.Join(dir, "rootfs"), nil
}

// UpperDir is the container's writable layer (what `docker diff` and
// `docker commit` read).
func (s *Snapshotter) UpperDir(id string) (string, error) {
	r, err := s.Rootfs(id)
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(r), "upper"), nil
}

// Unmount unmounts container id's root filesystem, keeping its upper layer
// (a stopped container). Prepare mounts it again.
func (s *Snapshotter) Unmount(id string) error {
	dir, err := s.containerDir(id)
	if err != nil {
		return err
	}
	return unmountAll(filepath.Join(dir, "rootfs"), dir)
}

func unmountAll(target, parent string) error {
	for range 16 {
		if !mounted(target, parent) {
			return nil
		}
		if err := unix.Unmount(target, 0); err != nil {
			if err == unix.EBUSY {
				err = unix.Unmount(target, unix.MNT_DETACH)
			}
			if err != nil && err != unix.EINVAL {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		}
	}
	return nil
}

// detachAll lazily unmounts everything mounted on target.
func detachAll(target, parent string) error {
	for range 16 {
		if !mounted(target, parent) {
			return nil
		}
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return nil
}

// Remove unmounts and deletes container id's root filesystem and writable
// layer. Removing an unknown container is not an error.
func (s *Snapshotter) Remove(id string) error {
	finish, err := s.RemoveLater(id)
	if err != nil {
		return err
	}
	return finish()
}

// RemoveLater is Remove in two steps: it unmounts container id's root
// filesystem and moves it out of the way (from then on the container has
// none and its layers are free), and returns finish, which deletes the
// files (a writable layer can be large), to be called when convenient.
// Files a crash leaves behind are deleted when the snapshotter is opened.
func (s *Snapshotter) RemoveLater(id string) (finish func() error, err error) {
	done := func() error { return nil }
	dir, err := s.containerDir(id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lock(filepath.Join(s.root, "containers.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Detached: the files go next, so nothing may use the mount again,
	// and a lazy unmount does not wait for an RCU grace period as a plain
	// one does (1 ms here, on the path of docker run --rm).
	if err := detachAll(filepath.Join(dir, "rootfs"), dir); err != nil {
		return nil, fmt.Errorf("remove rootfs of %s: %w", id, err)
	}
	// meta.json first: from then on the layers are free.
	if err := os.Remove(filepath.Join(dir, "meta.json")); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove rootfs of %s: %w", id, err)
	}
	gone := filepath.Join(s.root, "tmp", randomName())
	if err := os.Rename(dir, gone); err != nil {
		if os.IsNotExist(err) {
			return done, nil
		}
		return nil, fmt.Errorf("remove rootfs of %s: %w", id, err)
	}
	return func() error {
		if err := os.RemoveAll(gone); err != nil {
			return fmt.Errorf("remove rootfs of %s: %w", id, err)
		}
		return nil
	}, nil
}

// Containers lists the containers that have a root filesystem.
func (s *Snapshotter) Containers() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "containers"))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if _, err := readMeta(filepath.Join(s.root, "containers", e.Name())); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
