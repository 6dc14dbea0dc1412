package ctrfs

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/engine/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// WriteTree writes rel (inside root) and everything below it as name/…,
// never following symlinks and never leaving root.
func WriteTree(tw *tar.Writer, root, rel, name string) error {
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
			slices.Sort(names)
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

// ExtractOptions are the container's and the request's settings for
// Extract.
type ExtractOptions struct {
	// UIDs and GIDs are the container's id mappings (none: not remapped).
	UIDs, GIDs []specs.LinuxIDMapping
	// CopyUIDGID keeps the owners in the stream (mapped); without it
	// files belong to container root.
	CopyUIDGID bool
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse (the docker CLI always asks for it).
	NoOverwriteDirNonDir bool
}

// Extract unpacks the tar body into the directory rel inside root (p is
// the path the client asked for, which names errors). Entries can never
// land outside root (tar-slip, absolute names, symlinks in the stream or
// in the container are resolved inside it).
func Extract(root, rel, p string, body io.Reader, o ExtractOptions) error {
	uids, gids, copyUIDGID := o.UIDs, o.GIDs, o.CopyUIDGID
	st, err := Stat(root, rel, p)
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
	opts := archive.Options{Whiteouts: archive.WhiteoutDelete, KeepDirKinds: o.NoOverwriteDirNonDir}
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
}

// mapID maps a container id to the host through m: unchanged without
// mappings; an id outside every range becomes the first range's host id
// (container root's).
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
