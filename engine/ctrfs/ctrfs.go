// Package ctrfs resolves and reads paths inside a container's root
// filesystem for `docker cp` and `docker export`: it maps a container path
// to the host directory that holds it (the overlay, the per-container
// /etc files, or a bind mount), opens and stats it confined to that
// directory (openat2 with RESOLVE_IN_ROOT, so neither "..", absolute
// symlinks nor magic links lead out), writes trees as tar streams, and
// unpacks tar streams into a directory with the container's id mapping.
// It works on a root filesystem that is already mounted: mounting it,
// locking the container and its state belong to package engine; the
// tar extraction itself is package archive's.
package ctrfs

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Mounts are where the files a container sees outside its root
// filesystem live on the host.
type Mounts struct {
	HostnamePath, HostsPath, ResolvPath string   // behind /etc/hostname, /etc/hosts, /etc/resolv.conf
	Binds                               []string // HostConfig.Binds: host-src:container-dest[:options]
}

// HostRoot maps a container path to the host directory that holds it and
// the path below: the per-container /etc files and bind mounts live
// outside the overlay.
func HostRoot(mounts Mounts, rootfs, p string) (root, rel string) {
	p = path.Clean("/" + p)
	type m struct{ dest, src string }
	ms := []m{{"/etc/hostname", mounts.HostnamePath}, {"/etc/hosts", mounts.HostsPath}, {"/etc/resolv.conf", mounts.ResolvPath}}
	for _, b := range mounts.Binds {
		parts := strings.Split(b, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], "/") {
			ms = append(ms, m{path.Clean(parts[1]), parts[0]})
		}
	}
	best := -1
	for i, x := range ms {
		if p == x.dest || strings.HasPrefix(p, x.dest+"/") {
			if best < 0 || len(x.dest) > len(ms[best].dest) {
				best = i
			}
		}
	}
	if best < 0 {
		return rootfs, p
	}
	x := ms[best]
	if p == x.dest {
		return filepath.Dir(x.src), "/" + filepath.Base(x.src)
	}
	return x.src, strings.TrimPrefix(p, x.dest)
}

// openIn opens rel inside root without ever leaving it.
func openIn(root, rel string, flags uint64) (*os.File, error) {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	clean, err := archive.CleanName(rel)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat2(rootfd, clean, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveInRoot})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

func notFoundPath(p string) error {
	return errdefs.NotFoundf("Could not find the file %s in container", p)
}

// Stat stats rel inside root (not following a final symlink); p is the
// path the client asked for, which names the result and the error.
func Stat(root, rel, p string) (container.PathStat, error) {
	f, err := openIn(root, rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return container.PathStat{}, notFoundPath(p)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return container.PathStat{}, err
	}
	ps := container.PathStat{Name: path.Base(path.Clean("/" + p)), Size: st.Size, Mode: fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(int(f.Fd()), "", buf)
		if err == nil {
			target := string(buf[:n])
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(path.Clean("/"+p)), target)
			}
			ps.LinkTarget = target
		}
	}
	if ps.Name == "/" {
		ps.Name = "/"
	}
	return ps, nil
}

func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
