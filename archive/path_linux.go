package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrEscape reports an entry whose name or link target climbs above the
// destination root.
var ErrEscape = errors.New("path escapes the destination directory")

// CleanName turns a tar entry name into a clean path relative to the
// destination root ("." for the root itself). Absolute names are taken
// relative to the root, as tar -x does; names that climb above the root with
// ".." are refused with ErrEscape.
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%q: NUL byte in name", name)
	}
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == "" {
		p = "."
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%q: %w", name, ErrEscape)
	}
	return p, nil
}

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openDirIn opens directory rel (already clean, relative) inside the root
// rootfd, resolving every symlink as if rootfd were "/", so nothing outside
// the root can be reached. It returns an O_PATH descriptor.
func openDirIn(rootfd int, rel string) (int, error) {
	if rel == "." {
		return unix.Dup(rootfd)
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: resolveFlags,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// mkdirAllIn creates the directory rel inside rootfd (resolving in root)
// with each missing component 0755 owned by the caller, and returns an
// O_PATH descriptor of it.
func mkdirAllIn(rootfd int, rel string) (int, error) {
	fd, err := openDirIn(rootfd, rel)
	if err == nil || err != unix.ENOENT {
		return fd, err
	}
	parent, base := path.Split(rel)
	parent = path.Clean(parent)
	if parent == "" {
		parent = "."
	}
	pfd, err := mkdirAllIn(rootfd, parent)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("mkdir %s: %w", rel, err)
	}
	// Open the new component by name relative to its (already safe) parent,
	// refusing a symlink that raced into its place.
	fd, err = unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", rel, err)
	}
	return fd, nil
}

// procPath is the path of an O_PATH descriptor usable where a system call
// takes only a path (xattrs of the last component, fchmod of a directory).
func procPath(fd int, name string) string {
	p := fmt.Sprintf("/proc/self/fd/%d", fd)
	if name != "" {
		p += "/" + name
	}
	return p
}

// removeAllAt removes name (a file or a whole directory tree) inside the
// directory dirfd without following any symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// readDirNames lists a directory opened for reading (without . and ..).
func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// chmodAt changes the mode of name in dirfd without following a symlink
// that may have raced into its place (fchmodat has no NOFOLLOW).
func chmodAt(dirfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	return unix.Chmod(procPath(fd, ""), mode)
}

// ReadFileIn reads the file name inside root (a container's root
// filesystem), resolving every symlink as if root were "/", and returns at
// most limit bytes. The engine reads a rootfs's /etc/passwd and /etc/group
// this way.
func ReadFileIn(root, name string, limit int64) ([]byte, error) {
	rel, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	fd, err := unix.Openat2(rootfd, rel, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK, Resolve: resolveFlags})
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, root, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in %s is not a regular file", name, root)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}
