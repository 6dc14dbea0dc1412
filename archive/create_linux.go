package archive

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// WriteTar writes the tree at rel inside root (a container's root
// filesystem) as a tar stream, entries named prefix/… (`docker cp` names
// them after the copied path's base name; export uses ""). rel is resolved
// inside root; below it nothing is followed: symlinks are stored as
// symlinks, so a container cannot make berth read a host file
// (CVE-2018-15664). Hard links within the tree are kept.
func WriteTar(w io.Writer, root, rel, prefix string) error {
	clean, err := CleanName(rel)
	if err != nil {
		return err
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	dir, base := split(clean)
	pfd := -1
	if clean == "." {
		pfd, base = rootfd, "."
	} else {
		if pfd, err = openDirIn(rootfd, dir); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		defer unix.Close(pfd)
	}
	tw := tar.NewWriter(w)
	t := &tarWriter{tw: tw, links: map[[2]uint64]string{}, buf: make([]byte, 256<<10)}
	if err := t.add(pfd, base, prefix); err != nil {
		return err
	}
	return tw.Close()
}

type tarWriter struct {
	tw    *tar.Writer
	links map[[2]uint64]string
	buf   []byte
}

func (t *tarWriter) add(dirfd int, name, tarName string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", tarName, err)
	}
	hdr := &tar.Header{Name: tarName, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).Truncate(time.Second), Format: tar.FormatPAX}
	if hdr.Name == "" {
		hdr.Name = "."
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name = path.Clean(hdr.Name) + "/"
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", tarName, err)
		}
		defer unix.Close(fd)
		names, err := readDirNames(fd)
		if err != nil {
			return fmt.Errorf("read %s: %w", tarName, err)
		}
		sort.Strings(names)
		for _, n := range names {
			if err := t.add(fd, n, path.Join(tarName, n)); err != nil {
				return err
			}
		}
		return nil
	case unix.S_IFLNK:
		target := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, name, target)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", tarName, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(target[:n])
		return t.tw.WriteHeader(hdr)
	case unix.S_IFREG:
		key := [2]uint64{st.Dev, st.Ino}
		if st.Nlink > 1 {
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				return t.tw.WriteHeader(hdr)
			}
			t.links[key] = hdr.Name
		}
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", tarName, err)
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.CopyBuffer(t.tw, io.LimitReader(f, st.Size), t.buf)
		if err != nil {
			return fmt.Errorf("read %s: %w", tarName, err)
		}
		if n < st.Size { // shrank while read: pad, the header is written
			_, err = t.tw.Write(make([]byte, st.Size-n))
		}
		return err
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		if st.Mode&unix.S_IFMT == unix.S_IFCHR {
			hdr.Typeflag = tar.TypeChar
		} else if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return t.tw.WriteHeader(hdr)
	}
	return nil // sockets are not archived
}
