package rootfs

import (
	"errors"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openInRoot opens p inside the root as an O_PATH descriptor with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): the kernel keeps every
// step of the lookup, ".." and symlinks included, inside the root, and
// refuses magic links. (pathrs.OpenatInRoot makes the same call and then
// reads the descriptor's name back from a procfs handle it opens and
// checks, which cost more than the lookup itself, several dozen times
// per container; the name is only cosmetic here.) A concurrent rename or
// mount makes the kernel answer EAGAIN: the lookup is retried.
func (r *Root) openInRoot(p string) (*os.File, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(int(r.handle.Fd()), p, &how)
		if err == unix.EAGAIN && i < 64 {
			continue
		}
		if err == unix.ENOSYS {
			// No openat2 (Linux < 5.6): the library's emulation.
			return pathrs.OpenatInRoot(r.handle, p)
		}
		if err != nil {
			return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(r.path, p)), nil
	}
}

// mkdirAllInRoot returns a directory inside the root, creating what is
// missing of it (without following symlinks out of the root). An existing
// directory costs one lookup.
func (r *Root) mkdirAllInRoot(p string) (*os.File, error) {
	if f, err := r.openInRoot(p); err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return f, nil
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Only the last component missing (a mount point in a fresh tmpfs):
	// made in its parent, and opened without following a symlink.
	if dir, base := filepath.Split(filepath.Clean("/" + p)); base != "" && base != ".." {
		if parent, err := r.openInRoot(dir); err == nil {
			defer parent.Close()
			if err := unix.Mkdirat(int(parent.Fd()), base, 0o755); err == nil || err == unix.EEXIST {
				fd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err == nil {
					return os.NewFile(uintptr(fd), filepath.Join(r.path, p)), nil
				}
			}
		}
	}
	return pathrs.MkdirAllHandle(r.handle, p, 0o755)
}
