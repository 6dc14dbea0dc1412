package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RawMount is a mount performed exactly as given, with Target inside the
// container (the cgroup package computes these for /sys/fs/cgroup).
type RawMount struct {
	Source string  `json:"source"`
	Target string  `json:"target"`
	FSType string  `json:"fstype"`
	Flags  uintptr `json:"flags"`
	Data   string  `json:"data,omitempty"`
}

// Setup is what Prepare needs to know.
type Setup struct {
	Rootfs string // absolute host path of the root filesystem
	Spec   *specs.Spec
	// CgroupMounts replace a spec mount of type cgroup/cgroup2 at the
	// given destination.
	CgroupMounts map[string][]RawMount
	// NewUserNS: devices cannot be created with mknod, they are bind
	// mounted from the host instead.
	NewUserNS bool
	// SharedMountNS: the container has no mount namespace of its own
	// (runc allows it; runtime-tools' linux_ns_itype asks for it). The
	// runtime has already bound the rootfs onto itself, private, so every
	// mount lands under that one mount and leaves with it; the root's
	// propagation is not touched, and Pivot chroots.
	SharedMountNS bool
	// BindRootfs: with SharedMountNS, Prepare binds the rootfs privately
	// itself (a mount namespace joined by path).
	BindRootfs bool
	// IDMapFDs are user namespace descriptors, by index in Spec.Mounts, of
	// id-mapped bind mounts (mounts[].uidMappings): the mount shows its
	// files' owners through that namespace's maps (MOUNT_ATTR_IDMAP).
	IDMapFDs map[int]int
	// BeforeCgroupMount, when set, runs before the first cgroup mount
	// (the init stage waits there to be in its cgroup and namespace).
	BeforeCgroupMount func() error
}

// Root is the container's root filesystem while init prepares it.
type Root struct {
	path    string
	handle  *os.File // O_PATH of the rootfs, every lookup starts here
	devNull *os.File // a detached clone of the host's /dev/null, for masking
	shared  bool     // no mount namespace of its own: chroot, never pivot
	idmapFD int      // the user namespace of the bind mount being made, or -1
}

// Prepare makes the rootfs a private mount point, performs every spec
// mount inside it and populates /dev. It must run in the container's own
// mount namespace.
func Prepare(s *Setup) (*Root, error) {
	if !s.SharedMountNS {
		if err := privateRoot(s); err != nil {
			return nil, err
		}
	} else if s.BindRootfs {
		if err := BindPrivate(s.Rootfs); err != nil {
			return nil, err
		}
	}
	h, err := os.OpenFile(s.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	r := &Root{path: s.Rootfs, handle: h, shared: s.SharedMountNS, idmapFD: -1}
	if fd, err := unix.OpenTree(unix.AT_FDCWD, "/dev/null", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC); err == nil {
		r.devNull = os.NewFile(uintptr(fd), "/dev/null (clone)")
	}
	setupDev := true
	for i := range s.Spec.Mounts {
		m := &s.Spec.Mounts[i]
		r.idmapFD = -1
		if fd, ok := s.IDMapFDs[i]; ok {
			r.idmapFD = fd
		}
		if err := r.mountOne(s, m); err != nil {
			return nil, fmt.Errorf("mount %s on %s (type %s): %w", m.Source, m.Destination, m.Type, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && IsBind(m) {
			setupDev = false
		}
	}
	if setupDev {
		if err := r.setupDev(s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// privateRoot sets the propagation of the container's own mount
// namespace and binds the rootfs onto itself, so it is a mount point
// pivot_root accepts.
func privateRoot(s *Setup) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if s.Spec.Linux != nil && s.Spec.Linux.RootfsPropagation != "" {
		p, ok := propagationOpts[s.Spec.Linux.RootfsPropagation]
		if !ok {
			return fmt.Errorf("rootfsPropagation %q is not a propagation mode", s.Spec.Linux.RootfsPropagation)
		}
		// An unbindable root could not be bound onto itself below; it is
		// made unbindable by Finish, after pivot_root.
		if p&unix.MS_UNBINDABLE == 0 {
			prop = p
		}
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("make / %s: %w", propName(prop), err)
	}
	if err := makeParentPrivate(s.Rootfs); err != nil {
		return err
	}
	if err := unix.Mount(s.Rootfs, s.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", s.Rootfs, err)
	}
	return nil
}

// BindPrivate binds a rootfs onto itself and makes the new mount tree
// private, for a container that shares the runtime's mount namespace:
// the container's mounts then stay under it and do not propagate, and
// unmounting it (Unbind) removes them all.
func BindPrivate(rootfs string) error {
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", rootfs, err)
	}
	if err := unix.Mount("", rootfs, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		unix.Unmount(rootfs, unix.MNT_DETACH)
		return fmt.Errorf("make rootfs %s private: %w", rootfs, err)
	}
	return nil
}

// Unbind removes what BindPrivate mounted, with everything below it.
func Unbind(rootfs string) error {
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount rootfs %s: %w", rootfs, err)
	}
	return nil
}

func propName(p uintptr) string {
	for n, v := range propagationOpts {
		if v == p {
			return n
		}
	}
	return fmt.Sprintf("%#x", p)
}

// makeParentPrivate: pivot_root refuses a new root whose parent mount is
// shared, so the mount holding the rootfs is made private in this
// (container's own) namespace when it is shared.
func makeParentPrivate(rootfs string) error {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	best, shared := "", false
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if (rootfs == mp || strings.HasPrefix(rootfs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, shared = mp, false
			for _, opt := range f[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					shared = true
				}
			}
		}
	}
	if best != "" && shared {
		if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make %s private: %w", best, err)
		}
	}
	return nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// IsBind reports whether an OCI mount is a bind mount (type "bind", or
// the bind/rbind option).
func IsBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// procPath names an open file for mount(2): the magic link pins the exact
// inode that was resolved inside the root, so a symlink swapped in later
// cannot redirect the mount (CVE-2021-30465).
func procPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// target resolves dest inside the rootfs, creating a directory (or an
// empty file when dir is false) when it does not exist. Symlinks are
// followed only inside the rootfs.
func (r *Root) target(dest string, dir bool) (*os.File, error) {
	f, err := r.openInRoot(dest)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", dest, err)
	}
	// A dangling symlink is followed (inside the root) to where it points,
	// and that is what gets created, as runc does: resolve the path in
	// the root lexically first, then create it without symlinks.
	if resolved, err := securejoin.SecureJoin(r.path, dest); err == nil {
		if rel, err := filepath.Rel(r.path, resolved); err == nil && !strings.HasPrefix(rel, "..") {
			dest = "/" + rel
		}
	}
	if dir {
		f, err := r.mkdirAllInRoot(dest)
		if err != nil {
			return nil, fmt.Errorf("create %s in rootfs: %w", dest, err)
		}
		return f, nil
	}
	parent, err := r.mkdirAllInRoot(filepath.Dir(dest))
	if err != nil {
		return nil, fmt.Errorf("create %s in rootfs: %w", filepath.Dir(dest), err)
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_WRONLY, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create file %s in rootfs: %w", dest, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	f, err = r.openInRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", dest, err)
	}
	return f, nil
}

func (r *Root) mountOne(s *Setup, m *specs.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("destination %q is not absolute", m.Destination)
	}
	opts, err := ParseOptions(m.Options)
	if err != nil {
		return err
	}
	if opts.TmpCopyUp && m.Type != "tmpfs" {
		return errors.New("the tmpcopyup option is only for tmpfs mounts")
	}
	switch {
	case IsBind(m):
		return r.bind(m, opts)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		if s.BeforeCgroupMount != nil {
			if err := s.BeforeCgroupMount(); err != nil {
				return err
			}
		}
		return r.cgroup(s, m, opts)
	}
	t, err := r.target(m.Destination, true)
	if err != nil {
		return err
	}
	defer t.Close()
	var under *os.File
	if opts.TmpCopyUp {
		// The directory the tmpfs will cover, still reachable through
		// this descriptor once covered.
		if under, err = os.OpenFile(procPath(t), os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		defer under.Close()
	}
	data := strings.Join(opts.Data, ",")
	err = unix.Mount(m.Source, procPath(t), m.Type, opts.Flags, data)
	if err == nil && under != nil {
		if err := copyUp(under, m.Destination, r); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
	}
	if err != nil && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) {
		// Without a network namespace of its own a user namespace cannot
		// mount sysfs, nor mqueue without its own IPC namespace: runc's
		// answer is to bind the host's, and so is ours.
		switch m.Type {
		case "sysfs":
			return r.bindHost("/sys", t, opts, true)
		case "mqueue":
			return r.bindHost("/dev/mqueue", t, opts, false)
		}
	}
	if err != nil {
		return err
	}
	return r.propagate(m.Destination, opts)
}

func (r *Root) propagate(dest string, opts Options) error {
	if len(opts.Propagation) == 0 {
		return nil
	}
	t, err := r.openInRoot(dest)
	if err != nil {
		return err
	}
	defer t.Close()
	for _, p := range opts.Propagation {
		if err := unix.Mount("", procPath(t), "", p, ""); err != nil {
			return fmt.Errorf("set propagation %s: %w", propName(p), err)
		}
	}
	return nil
}

func (r *Root) bindHost(src string, t *os.File, opts Options, recursive bool) error {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, uint(flags))
	if err != nil {
		return fmt.Errorf("clone host %s: %w", src, err)
	}
	defer unix.Close(tree)
	set, clr := attrFromFlags(opts.Flags, opts.Clear)
	if err := setattr(tree, set, clr, 0, recursive); err != nil {
		return err
	}
	return moveMount(tree, t)
}

func setattr(tree int, set, clr uint64, propagation uint64, recursive bool) error {
	if set == 0 && clr == 0 && propagation == 0 {
		return nil
	}
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: set, Attr_clr: clr, Propagation: propagation}
	if err := unix.MountSetattr(tree, "", uint(flags), &attr); err != nil {
		return fmt.Errorf("mount_setattr(set %#x, clear %#x): %w", set, clr, err)
	}
	return nil
}

func moveMount(tree int, t *os.File) error {
	if err := unix.MoveMount(tree, "", int(t.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

func (r *Root) bind(m *specs.Mount, opts Options) error {
	if m.Source == "" {
		return errors.New("bind mount without a source")
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	t, err := r.target(m.Destination, st.IsDir())
	if err != nil {
		return err
	}
	defer t.Close()
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if opts.RBind {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, uint(flags))
	if err != nil {
		return fmt.Errorf("clone %s: %w", m.Source, err)
	}
	defer unix.Close(tree)
	// Plain flags (ro, nosuid, …) apply to the top mount as mount(8)
	// does; the "r" forms apply to the whole tree.
	set, clr := attrFromFlags(opts.Flags, opts.Clear)
	if err := setattr(tree, set, clr, 0, false); err != nil {
		return err
	}
	if opts.Recursive {
		if err := setattr(tree, opts.Attr, opts.AttrClear, 0, true); err != nil {
			return err
		}
	} else if err := setattr(tree, opts.Attr, opts.AttrClear, 0, false); err != nil {
		return err
	}
	if r.idmapFD >= 0 {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(r.idmapFD)}
		flags := unix.AT_EMPTY_PATH
		if opts.RBind {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(tree, "", uint(flags), &attr); err != nil {
			return fmt.Errorf("id-map the mount (MOUNT_ATTR_IDMAP; the filesystem must support it): %w", err)
		}
	}
	if err := moveMount(tree, t); err != nil {
		return err
	}
	for _, p := range opts.Propagation {
		if err := setattr(tree, 0, 0, uint64(p&^unix.MS_REC), p&unix.MS_REC != 0); err != nil {
			return fmt.Errorf("set propagation %s: %w", propName(p), err)
		}
	}
	return nil
}

func (r *Root) cgroup(s *Setup, m *specs.Mount, opts Options) error {
	raws, ok := s.CgroupMounts[filepath.Clean(m.Destination)]
	if !ok {
		// Without a plan from the cgroup manager, a cgroup2 hierarchy is
		// the one thing that can be mounted as asked.
		if m.Type != "cgroup2" && !cgroup2Only() {
			return errors.New("no cgroup mount plan for this host's cgroup layout")
		}
		raws = []RawMount{{Source: "cgroup2", Target: m.Destination, FSType: "cgroup2", Flags: opts.Flags}}
	}
	for i := 0; i < len(raws); i++ {
		raw := raws[i]
		// A bind followed by the remount that gives it its flags: the
		// flags go on the detached clone before it is attached, one
		// lookup and one mount-table change instead of two (ten such
		// pairs on a hybrid host).
		if i+1 < len(raws) && raw.FSType != "symlink" && raw.Flags&unix.MS_BIND != 0 && raw.Flags&unix.MS_REMOUNT == 0 {
			next := raws[i+1]
			if next.Flags&(unix.MS_BIND|unix.MS_REMOUNT) == unix.MS_BIND|unix.MS_REMOUNT && next.Target == raw.Target && next.Data == "" {
				if err := r.bindWithFlags(raw, next.Flags&^(unix.MS_BIND|unix.MS_REMOUNT)); err != nil {
					return err
				}
				i++
				continue
			}
		}
		if err := r.Raw(raw); err != nil {
			return err
		}
	}
	return nil
}

// bindWithFlags is a RawMount bind whose mount gets flags (MS_RDONLY,
// MS_NOSUID, ...) as a remount would give them: set on the clone before
// it is attached, on its top mount only.
func (r *Root) bindWithFlags(m RawMount, flags uintptr) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	t, err := r.target(m.Target, st.IsDir())
	if err != nil {
		return err
	}
	defer t.Close()
	oflags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if m.Flags&unix.MS_REC != 0 {
		oflags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, uint(oflags))
	if err != nil {
		return fmt.Errorf("clone host %s: %w", m.Source, err)
	}
	defer unix.Close(tree)
	set, clr := attrFromFlags(flags, 0)
	if err := setattr(tree, set, clr, 0, false); err != nil {
		return fmt.Errorf("bind %s: %w", m.Target, err)
	}
	return moveMount(tree, t)
}

func cgroup2Only() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Raw performs a RawMount with its target resolved inside the rootfs:
// FSType "symlink" makes a symlink (Source → Target), MS_REMOUNT changes
// the flags of the mount at Target, MS_BIND clones Source with open_tree,
// and anything else mounts a new filesystem.
func (r *Root) Raw(m RawMount) error {
	switch {
	case m.FSType == "symlink":
		return r.symlink(m.Source, m.Target)
	case m.Flags&unix.MS_REMOUNT != 0:
		t, err := r.openInRoot(m.Target)
		if err != nil {
			return fmt.Errorf("remount %s: %w", m.Target, err)
		}
		defer t.Close()
		if err := unix.Mount("", procPath(t), "", m.Flags, m.Data); err != nil {
			return fmt.Errorf("remount %s: %w", m.Target, err)
		}
		return nil
	case m.Flags&unix.MS_BIND != 0:
		st, err := os.Stat(m.Source)
		if err != nil {
			return err
		}
		t, err := r.target(m.Target, st.IsDir())
		if err != nil {
			return err
		}
		defer t.Close()
		return r.bindHost(m.Source, t, Options{Flags: m.Flags &^ (unix.MS_BIND | unix.MS_REC)}, m.Flags&unix.MS_REC != 0)
	}
	t, err := r.target(m.Target, true)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := unix.Mount(m.Source, procPath(t), m.FSType, m.Flags, m.Data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
	}
	return nil
}
