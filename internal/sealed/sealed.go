// Package sealed keeps read-only copies of the executables berth runs
// inside containers (its own binary for the init stage, the nsenter
// helper for exec), so a process in a container cannot overwrite them
// through /proc/PID/exe (CVE-2019-5736).
//
// runc copies itself into a sealed memfd on every start, which costs a
// copy of the binary per container. berth copies an executable once into
// Dir and bind mounts it read-only onto itself: a write through
// /proc/PID/exe then fails with EROFS, and every later use costs one stat
// and one statfs. Callers that cannot mount (unprivileged) fall back to a
// sealed memfd, runc's way. It touches nothing outside Dir.
package sealed

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Dir holds the sealed copies.
const Dir = "/run/berth/exe"

// Source is an executable to seal: Name identifies its content (a change
// of content must change the name), Open returns its bytes.
type Source struct {
	Name string
	Size int64
	Open func() (io.ReadCloser, error)
}

// Path returns a path to execute src from, sealing it first if needed.
// The memfd of the fallback is returned so the caller keeps it open.
func Path(src Source) (string, *os.File, error) {
	if os.Geteuid() != 0 {
		return memfd(src)
	}
	path := filepath.Join(Dir, src.Name)
	if readOnly(path, src.Size) {
		return path, nil, nil
	}
	if err := seal(src, path); err != nil {
		// A host where /run cannot take a bind mount still gets the
		// protection, at runc's price.
		p, f, mfErr := memfd(src)
		if mfErr != nil {
			return "", nil, fmt.Errorf("protect %s: %v; memfd fallback: %w", src.Name, err, mfErr)
		}
		return p, f, nil
	}
	return path, nil, nil
}

func readOnly(path string, size int64) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil || st.Size != size {
		return false
	}
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Flags&unix.ST_RDONLY != 0
}

// seal copies src to path and bind mounts it read-only onto itself.
// Concurrent callers serialise on a lock in Dir; the loser finds the
// winner's copy.
func seal(src Source, path string) error {
	if err := os.MkdirAll(Dir, 0o711); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(Dir, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	if readOnly(path, src.Size) {
		return nil
	}
	// A leftover writable copy (a crash between copy and mount) is redone.
	_ = unix.Unmount(path, unix.MNT_DETACH)
	_ = os.Remove(path)
	tmp, err := os.CreateTemp(Dir, ".copy-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := copyFrom(tmp, src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o555); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if err := unix.Mount(path, path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("bind %s: %w", path, err)
	}
	if err := unix.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
		return fmt.Errorf("remount %s read-only: %w", path, err)
	}
	removeStale(path)
	return nil
}

func copyFrom(w io.Writer, src Source) error {
	r, err := src.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(w, r)
	if err != nil {
		return err
	}
	if n != src.Size {
		return fmt.Errorf("copy of %s: %d bytes, expected %d", src.Name, n, src.Size)
	}
	return nil
}

// removeStale drops copies made more than a day ago: several berth
// binaries may be in use side by side (a build and its tests), and one
// still in use just seals itself again. Processes running from a removed
// copy keep their mapping.
func removeStale(current string) {
	entries, err := os.ReadDir(Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(Dir, e.Name())
		if p == current || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || time.Since(time.Unix(st.Ctim.Unix())) < 24*time.Hour {
			continue
		}
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
}

// memfd copies src into a sealed memfd, the fallback when no read-only
// mount can be made.
func memfd(src Source) (string, *os.File, error) {
	fd, err := unix.MemfdCreate(src.Name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), src.Name)
	if err := copyFrom(f, src); err != nil {
		f.Close()
		return "", nil, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("seal memfd: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd()), f, nil
}
