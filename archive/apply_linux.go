package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WhiteoutMode says what Apply does with whiteout entries.
type WhiteoutMode int

const (
	// WhiteoutOverlay records whiteouts the way overlayfs reads them: a
	// character device 0/0 for a removed file and the xattr
	// trusted.overlay.opaque=y on an opaque directory. Use it to unpack a
	// layer into its own directory, to be stacked as an overlayfs lower.
	WhiteoutOverlay WhiteoutMode = iota
	// WhiteoutDelete removes the whited-out paths from the destination, as
	// when a layer is applied onto a tree that already holds the layers
	// below it.
	WhiteoutDelete
)

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	// OverlayOpaqueXattr marks an overlayfs directory opaque.
	OverlayOpaqueXattr = "trusted.overlay.opaque"
)

// Options tune Apply.
type Options struct {
	Whiteouts WhiteoutMode
	// MapOwner, when set, turns the owner recorded in the stream into the
	// owner written on disk (a user-namespace remap); an error refuses the
	// entry.
	MapOwner func(uid, gid int) (int, int, error)
	// SkipDevices skips character and block devices (not whiteouts), as
	// inside a user namespace where mknod is not allowed.
	SkipDevices bool
	// NoChown keeps the caller as the owner of everything (non-root use).
	NoChown bool
	// KeepDirKinds refuses an entry that would replace an existing
	// directory with a non-directory or the reverse, instead of removing
	// what is there: docker cp's noOverwriteDirNonDir, without which a
	// file named like a directory would wipe the directory.
	KeepDirKinds bool
}

// Stats describes what Apply wrote.
type Stats struct {
	Entries int   // tar entries processed
	Size    int64 // bytes of regular file content written
}

// DefaultOptions returns the options for the calling process: ownership is
// kept when running as root, devices are skipped when not.
func DefaultOptions() Options {
	root := os.Geteuid() == 0
	return Options{NoChown: !root, SkipDevices: !root}
}

type applier struct {
	opts    Options
	rootfd  int
	tr      *tar.Reader
	buf     []byte
	dirs    []dirMeta
	written map[string]bool // paths this stream created (for opaque dirs in WhiteoutDelete)
	stats   Stats
	// parent cache: consecutive entries usually share a directory.
	cacheRel string
	cacheFd  int
}

type dirMeta struct {
	rel string
	hdr *tar.Header
}

// Apply unpacks the uncompressed tar stream r into the existing directory
// dest. It never creates, changes or follows anything outside dest. On
// error, dest may hold a part of the stream: callers unpack into a fresh
// directory and discard it on failure.
func Apply(dest string, r io.Reader, opts Options) (Stats, error) {
	rootfd, err := unix.Open(dest, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("open destination %s: %w", dest, err)
	}
	defer unix.Close(rootfd)
	a := &applier{opts: opts, rootfd: rootfd, tr: tar.NewReader(r), buf: make([]byte, 256<<10), cacheFd: -1}
	if opts.Whiteouts == WhiteoutDelete {
		a.written = map[string]bool{}
	}
	defer a.dropCache()
	for {
		hdr, err := a.tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.stats, fmt.Errorf("read tar entry %d: %w", a.stats.Entries+1, err)
		}
		a.stats.Entries++
		if err := a.entry(hdr); err != nil {
			return a.stats, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
	// Directory modes and times last: creating children changes them.
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if err := a.dirMetadata(d.rel, d.hdr); err != nil {
			return a.stats, fmt.Errorf("tar entry %q: %w", d.hdr.Name, err)
		}
	}
	return a.stats, nil
}

func (a *applier) dropCache() {
	if a.cacheFd >= 0 {
		unix.Close(a.cacheFd)
		a.cacheFd, a.cacheRel = -1, ""
	}
}

// parent returns an O_PATH descriptor of directory rel, creating missing
// components. The descriptor belongs to the cache: do not close it.
func (a *applier) parent(rel string) (int, error) {
	if a.cacheFd >= 0 && a.cacheRel == rel {
		return a.cacheFd, nil
	}
	a.dropCache()
	fd, err := mkdirAllIn(a.rootfd, rel)
	if err != nil {
		return -1, fmt.Errorf("parent directory %s: %w", rel, err)
	}
	a.cacheFd, a.cacheRel = fd, rel
	return fd, nil
}

func split(rel string) (string, string) {
	dir, base := path.Split(rel)
	dir = path.Clean(dir)
	if dir == "" {
		dir = "."
	}
	return dir, base
}

func (a *applier) entry(hdr *tar.Header) error {
	rel, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont, tar.TypeDir, tar.TypeSymlink,
		tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("the root can only be a directory")
		}
		if err := a.owner(a.rootfd, "", hdr, true); err != nil {
			return err
		}
		a.dirs = append(a.dirs, dirMeta{rel, hdr})
		return nil
	}
	dir, base := split(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		if a.opts.SkipDevices {
			return nil
		}
	}
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	if a.written != nil {
		a.written[rel] = true
	}
	var st unix.Stat_t
	exists := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	if exists && a.opts.KeepDirKinds {
		if isDir, wantDir := st.Mode&unix.S_IFMT == unix.S_IFDIR, hdr.Typeflag == tar.TypeDir; isDir && !wantDir {
			return fmt.Errorf("cannot overwrite directory %q with a non-directory", rel)
		} else if !isDir && wantDir {
			return fmt.Errorf("cannot overwrite non-directory %q with a directory", rel)
		}
	}
	if exists && !(hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		if hdr.Typeflag == tar.TypeLink {
			if t, err := CleanName(hdr.Linkname); err == nil && t == rel {
				return nil // a link to itself: already there
			}
		}
		if err := removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing %s: %w", rel, err)
		}
		exists = false
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
		if err := a.owner(pfd, base, hdr, true); err != nil {
			return err
		}
		a.dirs = append(a.dirs, dirMeta{rel, hdr})
		if err := a.xattrs(pfd, base, hdr, -1); err != nil {
			return err
		}
		if rel == a.cacheRel || strings.HasPrefix(a.cacheRel, rel+"/") {
			a.dropCache()
		}
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		return a.regular(pfd, base, hdr, mode)
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return fmt.Errorf("bad symlink target %q", hdr.Linkname)
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case tar.TypeLink:
		target, err := CleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		if target == "." {
			return fmt.Errorf("hard link to the root directory")
		}
		tdir, tbase := split(target)
		tfd, err := openDirIn(a.rootfd, tdir)
		if err != nil {
			return fmt.Errorf("hard link target %s: %w", target, err)
		}
		err = unix.Linkat(tfd, tbase, pfd, base, 0)
		unix.Close(tfd)
		if err != nil {
			return fmt.Errorf("hard link to %s: %w", target, err)
		}
		return nil // a hard link shares the target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, kind|mode, dev); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	}
	if err := a.owner(pfd, base, hdr, false); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := chmodAt(pfd, base, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := a.xattrs(pfd, base, hdr, -1); err != nil {
		return err
	}
	return a.times(pfd, base, hdr)
}

func (a *applier) regular(pfd int, base string, hdr *tar.Header, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	n, err := a.copyData(f, hdr.Typeflag == tar.TypeGNUSparse)
	a.stats.Size += n
	if err != nil {
		return fmt.Errorf("write content: %w", err)
	}
	if !a.opts.NoChown {
		uid, gid, err := a.mapOwner(hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	// After chown, which clears set-user-ID and set-group-ID bits.
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := a.xattrs(pfd, base, hdr, fd); err != nil {
		return err
	}
	return a.times(pfd, base, hdr)
}

// copyData copies the entry's content, leaving holes for all-zero chunks
// of sparse entries so a hostile "sparse" file costs no disk.
func (a *applier) copyData(f *os.File, sparse bool) (int64, error) {
	if !sparse {
		return io.CopyBuffer(f, a.tr, a.buf)
	}
	var total int64
	for {
		n, err := io.ReadFull(a.tr, a.buf)
		if n > 0 {
			chunk := a.buf[:n]
			if allZero(chunk) {
				if _, err := f.Seek(int64(n), io.SeekCurrent); err != nil {
					return total, err
				}
			} else if _, err := f.Write(chunk); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, f.Truncate(total)
		}
		if err != nil {
			return total, err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (a *applier) mapOwner(hdr *tar.Header) (int, int, error) {
	uid, gid := hdr.Uid, hdr.Gid
	if uid < 0 || gid < 0 || uid > 0xfffffffe || gid > 0xfffffffe {
		return 0, 0, fmt.Errorf("owner %d:%d out of range", uid, gid)
	}
	if a.opts.MapOwner != nil {
		return a.opts.MapOwner(uid, gid)
	}
	return uid, gid, nil
}

func (a *applier) owner(pfd int, base string, hdr *tar.Header, isDir bool) error {
	if a.opts.NoChown {
		return nil
	}
	uid, gid, err := a.mapOwner(hdr)
	if err != nil {
		return err
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if base == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Fchownat(pfd, base, uid, gid, flags); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

// xattrs sets the entry's extended attributes, dropping overlayfs' own
// (a layer must not forge overlay redirects, origins or metacopy).
func (a *applier) xattrs(pfd int, base string, hdr *tar.Header, fd int) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			err = unix.Lsetxattr(procPath(pfd, base), name, []byte(v), 0)
		}
		if err == nil || err == unix.ENOTSUP || (err == unix.EPERM && (strings.HasPrefix(name, "trusted.") || a.opts.NoChown)) {
			continue
		}
		return fmt.Errorf("set xattr %s: %w", name, err)
	}
	return nil
}

func (a *applier) times(pfd int, base string, hdr *tar.Header) error {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(at), timespec(hdr.ModTime)}
	var err error
	if base == "" {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, procPath(pfd, ""), ts, 0)
	} else {
		err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() || t.Unix() < 0 {
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func (a *applier) dirMetadata(rel string, hdr *tar.Header) error {
	fd, err := openDirIn(a.rootfd, rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// An O_PATH descriptor cannot be fchmod'ed: go through its /proc link.
	if err := unix.Chmod(procPath(fd, ""), uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return a.times(fd, "", hdr)
}

func (a *applier) whiteout(dir, base string) error {
	if base == whiteoutOpaque {
		return a.opaque(dir)
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if strings.HasPrefix(name, ".wh.") {
		return nil // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
	}
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("bad whiteout name %q", base)
	}
	if a.opts.Whiteouts == WhiteoutDelete {
		pfd, err := openDirIn(a.rootfd, dir)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		a.dropCache()
		return removeAllAt(pfd, name)
	}
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	if err := removeAllAt(pfd, name); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create overlay whiteout %s: %w", path.Join(dir, name), err)
	}
	return nil
}

func (a *applier) opaque(dir string) error {
	if a.opts.Whiteouts == WhiteoutDelete {
		fd, err := openDirIn(a.rootfd, dir)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		rfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(rfd)
		names, err := readDirNames(rfd)
		if err != nil {
			return err
		}
		a.dropCache()
		for _, n := range names {
			if a.written[path.Join(dir, n)] {
				continue
			}
			if err := removeAllAt(rfd, n); err != nil {
				return err
			}
		}
		return nil
	}
	fd, err := a.parent(dir)
	if err != nil {
		return err
	}
	if err := unix.Setxattr(procPath(fd, ""), OverlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("mark %s opaque: %w", dir, err)
	}
	return nil
}

// IsEscape tells whether err reports an entry that tried to leave the root.
func IsEscape(err error) bool { return errors.Is(err, ErrEscape) }
