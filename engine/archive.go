package engine

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// withRootfs runs f with the container's root filesystem mounted (it is
// while the container runs; a stopped one is mounted for the call), under
// the container's operation lock so a start cannot race the unmount.
func (e *Engine) withRootfs(c *Container, f func(rootfs string) error) error {
	return e.withRootfsFor(c, false, f)
}

// withRootfsFor is withRootfs; write says f changes the files (a start
// made ahead, which read the image's users, is undone).
func (e *Engine) withRootfsFor(c *Container, write bool, f func(rootfs string) error) error {
	c.op.Lock()
	defer c.op.Unlock()
	if write {
		e.unprepare(c)
	}
	c.mu.Lock()
	s := c.snapshot()
	removed := c.removed
	c.mu.Unlock()
	if removed {
		return errdefs.NotFoundf("No such container: %s", c.ID)
	}
	rootfs, err := e.opts.RootFS.Prepare(c.ID, s.ImageChain, s.UIDMaps, s.GIDMaps, s.HostConfig.AutoRemove)
	if err != nil {
		return fmt.Errorf("mount the root filesystem of %s: %w", c.ID[:12], err)
	}
	if !s.State.Running() {
		defer e.opts.RootFS.Unmount(c.ID)
	}
	return f(rootfs)
}

// hostRoot maps a container path to the host directory that holds it and
// the path below: the per-container /etc files and bind mounts live
// outside the overlay.
func hostRoot(c *Container, rootfs, p string) (root, rel string) {
	p = path.Clean("/" + p)
	type m struct{ dest, src string }
	ms := []m{{"/etc/hostname", c.HostnamePath}, {"/etc/hosts", c.HostsPath}, {"/etc/resolv.conf", c.ResolvPath}}
	for _, b := range c.HostConfig.Binds {
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

// statIn stats p inside the container (not following a final symlink).
func statIn(root, rel, p string) (container.PathStat, error) {
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

// ArchiveStat is HEAD /containers/{id}/archive.
func (e *Engine) ArchiveStat(ref, p string) (container.PathStat, error) {
	c, err := e.Get(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	if p == "" {
		return container.PathStat{}, errdefs.InvalidParameterf("path is required")
	}
	var st container.PathStat
	err = e.withRootfs(c, func(rootfs string) error {
		root, rel := hostRoot(c, rootfs, p)
		st, err = statIn(root, rel, p)
		return err
	})
	return st, err
}

// ArchiveGet is GET /containers/{id}/archive: a tar of p whose entries
// are rooted at p's base name. start is called once the stat is known,
// and returns where to write.
func (e *Engine) ArchiveGet(ref, p string, start func(container.PathStat) io.Writer, started func() bool) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.InvalidParameterf("path is required")
	}
	return e.withRootfs(c, func(rootfs string) error {
		root, rel := hostRoot(c, rootfs, p)
		st, err := statIn(root, rel, p)
		if err != nil {
			return err
		}
		// A trailing "/." or a symlink: follow it, as docker cp does.
		w := start(st)
		tw := tar.NewWriter(w)
		name := st.Name
		if err := writeTree(tw, root, path.Clean("/"+rel), name); err != nil {
			return nil // the status line is out; the stream just ends
		}
		tw.Close()
		return nil
	})
}

// Export is GET /containers/{id}/export: the container's filesystem.
func (e *Engine) Export(ref string, w io.Writer) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	return e.withRootfs(c, func(rootfs string) error {
		tw := tar.NewWriter(w)
		if err := writeTree(tw, rootfs, "/", "."); err != nil {
			return err
		}
		return tw.Close()
	})
}

// writeTree writes rel (inside root) and everything below it as name/…,
// never following symlinks and never leaving root.
func writeTree(tw *tar.Writer, root, rel, name string) error {
	links := map[[2]uint64]string{}
	var walk func(rel, name string) error
	walk = func(rel, name string) error {
		f, err := openIn(root, rel, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		err = unix.Fstat(int(f.Fd()), &st)
		if err != nil {
			f.Close()
			return err
		}
		hdr := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), Format: tar.FormatPAX}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			f.Close()
			hdr.Typeflag = tar.TypeDir
			if name != "." {
				hdr.Name = name + "/"
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
			}
			d, err := openIn(root, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
			if err != nil {
				return err
			}
			names, err := d.Readdirnames(-1)
			d.Close()
			if err != nil {
				return err
			}
			sortStrings(names)
			for _, n := range names {
				child := n
				if name != "." {
					child = name + "/" + n
				}
				if err := walk(path.Join(rel, n), child); err != nil {
					return err
				}
			}
			return nil
		case unix.S_IFLNK:
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(int(f.Fd()), "", buf)
			f.Close()
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
			return tw.WriteHeader(hdr)
		case unix.S_IFREG:
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				f.Close()
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return tw.WriteHeader(hdr)
			}
			links[key] = name
			f.Close()
			rf, err := openIn(root, rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
			if err != nil {
				return err
			}
			defer rf.Close()
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err = io.CopyN(tw, rf, st.Size)
			return err
		case unix.S_IFCHR, unix.S_IFBLK:
			f.Close()
			hdr.Typeflag = tar.TypeChar
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
			return tw.WriteHeader(hdr)
		case unix.S_IFIFO:
			f.Close()
			hdr.Typeflag = tar.TypeFifo
			return tw.WriteHeader(hdr)
		}
		f.Close()
		return nil // sockets are skipped, as by tar
	}
	return walk(rel, name)
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// ArchivePut is PUT /containers/{id}/archive: unpack a tar into the
// directory p. Entries can never land outside the container (tar-slip,
// absolute names, symlinks in the stream or in the container are resolved
// inside its root). Without copyUIDGID files belong to container root.
func (e *Engine) ArchivePut(ref, p string, body io.Reader, noOverwriteDirNonDir, copyUIDGID bool) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.InvalidParameterf("path is required")
	}
	c.mu.Lock()
	ro := c.HostConfig.ReadonlyRootfs
	uids, gids := c.UIDMaps, c.GIDMaps
	c.mu.Unlock()
	if ro {
		return errdefs.Forbiddenf("container rootfs is marked read-only")
	}
	return e.withRootfsFor(c, true, func(rootfs string) error {
		root, rel := hostRoot(c, rootfs, p)
		st, err := statIn(root, rel, p)
		if err != nil {
			return err
		}
		if !st.Mode.IsDir() {
			if st.Mode&os.ModeSymlink == 0 {
				return errdefs.InvalidParameterf("extraction point is not a directory")
			}
		}
		dir, err := openIn(root, rel, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return errdefs.InvalidParameterf("extraction point is not a directory")
		}
		defer dir.Close()
		dest := fmt.Sprintf("/proc/self/fd/%d", dir.Fd())
		opts := archive.Options{Whiteouts: archive.WhiteoutDelete}
		rootUID, rootGID := 0, 0
		if len(uids) > 0 {
			rootUID, rootGID = int(uids[0].HostID), int(gids[0].HostID)
		}
		opts.MapOwner = func(uid, gid int) (int, int, error) {
			if !copyUIDGID {
				return rootUID, rootGID, nil
			}
			return mapID(uids, uid), mapID(gids, gid), nil
		}
		opts.SkipDevices = len(uids) > 0
		if _, err := archive.Apply(dest, body, opts); err != nil {
			if archive.IsEscape(err) {
				return errdefs.InvalidParameterf("refusing the archive: %v", err)
			}
			return errdefs.As(errdefs.InvalidParameter, fmt.Errorf("extract the archive into %s: %w", p, err))
		}
		return nil
	})
}

func mapID(m []specs.LinuxIDMapping, id int) int {
	if len(m) == 0 {
		return id
	}
	for _, r := range m {
		if uint32(id) >= r.ContainerID && uint32(id) < r.ContainerID+r.Size {
			return int(r.HostID + uint32(id) - r.ContainerID)
		}
	}
	return int(m[0].HostID)
}
