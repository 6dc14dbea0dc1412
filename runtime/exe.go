package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SealedDir holds read-only copies of the berth binary that init stages
// are executed from.
//
// Why: between clone and execve the container's init runs the berth
// binary, and a process in the container could open /proc/PID/exe and,
// once it is no longer busy, write to it, replacing the host's runtime
// (CVE-2019-5736). runc copies itself into a sealed memfd on every start,
// which costs a copy of the binary per container. berth copies itself
// once into a file on a read-only bind mount: a write through
// /proc/PID/exe then fails with EROFS, and every later start just checks
// that the copy is still there and read-only (one stat, one statfs).
// Unprivileged callers, who cannot mount, fall back to runc's memfd.
const SealedDir = "/run/berth/exe"

var sealedOnce struct {
	sync.Once
	path string
	keep *os.File // the memfd, in the fallback
	err  error
}

// sealedExe returns a path to execute the init stage from.
func sealedExe() (string, error) {
	sealedOnce.Do(func() {
		sealedOnce.path, sealedOnce.keep, sealedOnce.err = makeSealedExe()
	})
	return sealedOnce.path, sealedOnce.err
}

func makeSealedExe() (string, *os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", nil, fmt.Errorf("open own binary: %w", err)
	}
	defer self.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(self.Fd()), &st); err != nil {
		return "", nil, err
	}
	if os.Geteuid() != 0 {
		return memfdExe(self)
	}
	name := fmt.Sprintf("berth-%x-%x-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
	path := filepath.Join(SealedDir, name)
	if readOnlyFile(path, st.Size) {
		return path, nil, nil
	}
	if err := sealCopy(self, path); err != nil {
		// A host where /run cannot take a bind mount still gets the
		// protection, at runc's price.
		p, f, mfErr := memfdExe(self)
		if mfErr != nil {
			return "", nil, fmt.Errorf("protect runtime binary: %v; memfd fallback: %w", err, mfErr)
		}
		return p, f, nil
	}
	return path, nil, nil
}

func readOnlyFile(path string, size int64) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil || st.Size != size {
		return false
	}
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Flags&unix.ST_RDONLY != 0
}

// sealCopy copies the binary to path and bind mounts it read-only onto
// itself. Concurrent runtimes serialise on a lock in the directory; the
// loser finds the winner's copy.
func sealCopy(self *os.File, path string) error {
	if err := os.MkdirAll(SealedDir, 0o711); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(SealedDir, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	st, _ := self.Stat()
	if readOnlyFile(path, st.Size()) {
		return nil
	}
	// A leftover writable copy (a crash between copy and mount) is redone.
	_ = unix.Unmount(path, unix.MNT_DETACH)
	_ = os.Remove(path)
	tmp, err := os.CreateTemp(SealedDir, ".copy-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := self.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return err
	}
	if _, err := io.Copy(tmp, self); err != nil {
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
	removeStaleCopies(path)
	return nil
}

// removeStaleCopies drops copies made more than a day ago: several berth
// binaries may be in use side by side (a build and its tests), and a
// binary still in use just seals itself again. Processes running from a
// removed copy keep their mapping.
func removeStaleCopies(current string) {
	entries, err := os.ReadDir(SealedDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(SealedDir, e.Name())
		if p == current || !strings.HasPrefix(e.Name(), "berth-") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || time.Since(time.Unix(st.Atim.Unix())) < 24*time.Hour {
			continue
		}
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
}

// memfdExe copies the binary into a sealed memfd, the fallback when no
// read-only mount can be made.
func memfdExe(self *os.File) (string, *os.File, error) {
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-memfd")
	if _, err := self.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return "", nil, err
	}
	if _, err := io.Copy(f, self); err != nil {
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
