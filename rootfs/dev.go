package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func u32(v uint32) *uint32            { return &v }
func mode(v os.FileMode) *os.FileMode { return &v }

// DefaultDevices are the nodes every container's /dev gets, as runc and
// Docker give them.
var DefaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
}

var devLinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"pts/ptmx", "/dev/ptmx"},
}

func (r *Root) setupDev(s *Setup) error {
	devs := append([]specs.LinuxDevice(nil), DefaultDevices...)
	if s.Spec.Linux != nil {
		for _, d := range s.Spec.Linux.Devices {
			devs = replaceDevice(devs, d)
		}
	}
	for _, d := range devs {
		if err := r.createDevice(d, s.NewUserNS); err != nil {
			return fmt.Errorf("create device %s: %w", d.Path, err)
		}
	}
	links := devLinks
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		if err := r.symlink(l[0], l[1]); err != nil {
			return fmt.Errorf("create symlink %s -> %s: %w", l[1], l[0], err)
		}
	}
	return nil
}

func replaceDevice(list []specs.LinuxDevice, d specs.LinuxDevice) []specs.LinuxDevice {
	for i := range list {
		if filepath.Clean(list[i].Path) == filepath.Clean(d.Path) {
			list[i] = d
			return list
		}
	}
	return append(list, d)
}

func (r *Root) symlink(target, link string) error {
	dir, err := r.mkdirAllInRoot(filepath.Dir(link))
	if err != nil {
		return err
	}
	defer dir.Close()
	err = unix.Symlinkat(target, int(dir.Fd()), filepath.Base(link))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

func devType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q", t)
}

// createDevice makes a device node. Inside a user namespace mknod is not
// allowed, so the host's node at the same path is bind mounted onto an
// empty file instead, as runc does.
func (r *Root) createDevice(d specs.LinuxDevice, userns bool) error {
	if !filepath.IsAbs(d.Path) {
		return fmt.Errorf("device path %q is not absolute", d.Path)
	}
	typ, err := devType(d.Type)
	if err != nil {
		return err
	}
	if userns {
		t, err := r.target(d.Path, false)
		if err != nil {
			return err
		}
		defer t.Close()
		tree, err := unix.OpenTree(unix.AT_FDCWD, d.Path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("clone host %s: %w", d.Path, err)
		}
		defer unix.Close(tree)
		return moveMount(tree, t)
	}
	dir, err := r.mkdirAllInRoot(filepath.Dir(d.Path))
	if err != nil {
		return err
	}
	defer dir.Close()
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode & os.ModePerm)
	}
	base := filepath.Base(d.Path)
	_ = unix.Unlinkat(int(dir.Fd()), base, 0)
	if err := unix.Mknodat(int(dir.Fd()), base, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(int(dir.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// mknod honours the umask; the spec's mode is exact.
	return unix.Fchmodat(int(dir.Fd()), base, perm, 0)
}

// OpenPtmx opens the container's own /dev/pts/ptmx (its devpts instance),
// so the pty belongs to the container, not the host.
func (r *Root) OpenPtmx() (*os.File, error) {
	h, err := r.openInRoot("/dev/pts/ptmx")
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return os.OpenFile(procPath(h), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
}

// BindConsole bind mounts the pty slave onto /dev/console.
func (r *Root) BindConsole(slave *os.File) error {
	t, err := r.target("/dev/console", false)
	if err != nil {
		return err
	}
	defer t.Close()
	tree, err := unix.OpenTree(int(slave.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone pty for /dev/console: %w", err)
	}
	defer unix.Close(tree)
	return moveMount(tree, t)
}
