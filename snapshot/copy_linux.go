package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// chownedLayers returns the lower directories (top layer first) of copies
// of chain's layers whose owners are shifted into m, making each copy once.
func (s *Snapshotter) chownedLayers(chain []digest.Digest, m *IDMap) ([]string, error) {
	base := filepath.Join(s.root, "idmapped", m.key())
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	var lowers []string
	for i := len(chain) - 1; i >= 0; i-- {
		dst := filepath.Join(base, chain[i].Encoded())
		if _, err := os.Stat(dst); err != nil {
			tmp := filepath.Join(s.root, "tmp", randomName())
			if err := copyShifted(s.LayerPath(chain[i]), tmp, m); err != nil {
				os.RemoveAll(tmp)
				return nil, fmt.Errorf("chowned copy of layer %s: %w", chain[i], err)
			}
			if err := os.Rename(tmp, dst); err != nil {
				os.RemoveAll(tmp)
				if !errors.Is(err, fs.ErrExist) && !errors.Is(err, unix.ENOTEMPTY) {
					return nil, fmt.Errorf("chowned copy of layer %s: %w", chain[i], err)
				}
			}
		}
		lowers = append(lowers, dst)
	}
	return lowers, nil
}

// chownUpper makes a fresh upper directory's root owned by the mapped root.
func chownUpper(upper string, m *IDMap) error {
	uid, gid, err := m.ToHost(0, 0)
	if err != nil {
		return err
	}
	return os.Lchown(upper, uid, gid)
}

// copyShifted copies the tree src (a layer berth unpacked itself) to dst,
// keeping hard links, devices (overlay whiteouts), xattrs, modes and times,
// with every owner mapped through m.
func copyShifted(src, dst string, m *IDMap) error {
	links := map[uint64]string{}
	type dirTime struct {
		p  string
		ts []unix.Timespec
	}
	var dirs []dirTime
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		uid, gid, err := m.ToHost(int(st.Uid), int(st.Gid))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		mode := st.Mode & 0o7777
		ts := []unix.Timespec{st.Atim, st.Mtim}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.Mkdir(out, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{out, ts})
		case unix.S_IFREG:
			if st.Nlink > 1 {
				if first, ok := links[st.Ino]; ok {
					return os.Link(first, out)
				}
				links[st.Ino] = out
			}
			if err := copyFile(p, out, buf); err != nil {
				return err
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
		default:
			if err := unix.Mknod(out, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if err := os.Lchown(out, uid, gid); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := os.Chmod(out, os.FileMode(mode)|modeBits(mode)); err != nil {
				return err
			}
		}
		if err := copyXattrs(p, out); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return unix.UtimesNanoAt(unix.AT_FDCWD, out, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].p, dirs[i].ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// modeBits turns the setuid/setgid/sticky bits of a raw mode into Go's.
func modeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

func copyFile(src, dst string, buf []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, buf); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyXattrs(src, dst string) error {
	sz, err := unix.Llistxattr(src, nil)
	if err != nil || sz == 0 {
		return nil
	}
	names := make([]byte, sz)
	sz, err = unix.Llistxattr(src, names)
	if err != nil {
		return nil
	}
	val := make([]byte, 64<<10)
	start := 0
	for i := 0; i < sz; i++ {
		if names[i] != 0 {
			continue
		}
		name := string(names[start:i])
		start = i + 1
		n, err := unix.Lgetxattr(src, name, val)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:n], 0); err != nil && err != unix.ENOTSUP {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}
