package rootfs

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Path is the host path of the rootfs.
func (r *Root) Path() string { return r.path }

// Handle is an O_PATH descriptor of the rootfs.
func (r *Root) Handle() *os.File { return r.handle }

// Pivot makes the rootfs the root of the mount namespace and detaches the
// old root, leaving no path back to the host's tree. With noPivot (for
// ramfs roots, where pivot_root is impossible) it moves the rootfs over /
// and chroots instead, which leaves the old root reachable to a process
// with CAP_SYS_CHROOT — the reason it is not the default.
func (r *Root) Pivot(noPivot bool) error {
	if err := unix.Chdir(r.path); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if r.shared {
		// pivot_root or a move over / would change the root of every
		// process in the namespace: only this process changes its root.
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
	} else if noPivot {
		if err := unix.Mount(r.path, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
	} else {
		// pivot_root(".", ".") stacks the old root on top of the new one;
		// unmounting "." then removes the old root without a put_old dir.
		// The cwd is the new root's mount, under the old one: to make
		// only the old root's tree a slave (so its detach does not reach
		// the host), "." must be the old root itself, else every mount of
		// the container became a slave, undoing the propagation its
		// mounts ask for (a "shared" bind would no longer reach the host).
		oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open old root: %w", err)
		}
		defer unix.Close(oldRoot)
		if err := unix.PivotRoot(".", "."); err != nil {
			return fmt.Errorf("pivot_root: %w", err)
		}
		if err := unix.Fchdir(oldRoot); err != nil {
			return fmt.Errorf("chdir to old root: %w", err)
		}
		if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make old root a slave: %w", err)
		}
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach old root: %w", err)
		}
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	h, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	r.handle.Close()
	r.handle, r.path = h, "/"
	return nil
}

// Finish applies what must come after pivot_root: masked paths, read-only
// paths, the read-only root and the root's propagation.
func (r *Root) Finish(spec *specs.Spec) error {
	defer func() {
		if r.devNull != nil {
			r.devNull.Close()
		}
	}()
	if l := spec.Linux; l != nil {
		for _, p := range l.MaskedPaths {
			if err := r.mask(p); err != nil {
				return fmt.Errorf("mask %s: %w", p, err)
			}
		}
		for _, p := range l.ReadonlyPaths {
			if err := r.readonly(p); err != nil {
				return fmt.Errorf("make %s read-only: %w", p, err)
			}
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &attr); err != nil {
			return fmt.Errorf("make the root read-only: %w", err)
		}
	}
	if spec.Linux != nil && spec.Linux.RootfsPropagation != "" {
		if err := unix.Mount("", "/", "", propagationOpts[spec.Linux.RootfsPropagation], ""); err != nil {
			return fmt.Errorf("set root propagation %s: %w", spec.Linux.RootfsPropagation, err)
		}
	}
	return nil
}

func (r *Root) lookup(p string) (*os.File, error) {
	f, err := r.openInRoot(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

// mask hides a path: a directory under an empty read-only tmpfs, a file
// under /dev/null. Missing paths are skipped, as Docker's defaults list
// files not every kernel has.
func (r *Root) mask(p string) error {
	t, err := r.lookup(p)
	if err != nil || t == nil {
		return err
	}
	defer t.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(t.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return fmt.Errorf("fsopen tmpfs: %w", err)
		}
		defer unix.Close(fs)
		if err := unix.FsconfigCreate(fs); err != nil {
			return fmt.Errorf("create tmpfs: %w", err)
		}
		mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return fmt.Errorf("fsmount tmpfs: %w", err)
		}
		defer unix.Close(mnt)
		return moveMount(mnt, t)
	}
	tree, err := r.nullTree()
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	return moveMount(tree, t)
}

// nullTree clones a /dev/null to bind over a masked file: the container's
// own (made by setupDev) when it is the real device, as runc does; else
// the clone of the host's taken before pivot_root. Kernels before 6.x
// refuse to clone such a detached mount, hence the container's first.
func (r *Root) nullTree() (int, error) {
	if h, err := r.openInRoot("/dev/null"); err == nil {
		defer h.Close()
		var st unix.Stat_t
		if unix.Fstat(int(h.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3) {
			tree, err := unix.OpenTree(int(h.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
			if err == nil {
				return tree, nil
			}
		}
	}
	if r.devNull == nil {
		return -1, errors.New("no /dev/null to mask files with")
	}
	tree, err := unix.OpenTree(int(r.devNull.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("clone /dev/null: %w", err)
	}
	return tree, nil
}

// readonly bind mounts a path onto itself, read-only through the whole
// tree below it.
func (r *Root) readonly(p string) error {
	t, err := r.lookup(p)
	if err != nil || t == nil {
		return err
	}
	defer t.Close()
	tree, err := unix.OpenTree(int(t.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	defer unix.Close(tree)
	if err := setattr(tree, unix.MOUNT_ATTR_RDONLY, 0, 0, true); err != nil {
		return err
	}
	return moveMount(tree, t)
}
