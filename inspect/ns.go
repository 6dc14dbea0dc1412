package inspect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/proc"
)

// NSTypes are the namespace types berth shows, in the order the talk
// prints them (alphabetical; user namespaces are the tree's nodes). "time"
// is newer than the talk (Linux 5.6) and is skipped on kernels without it.
var NSTypes = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "uts"}

// cloneFlag maps a type to the CLONE_NEW* value NS_GET_NSTYPE returns.
var cloneFlag = map[string]int{
	"cgroup": unix.CLONE_NEWCGROUP, "ipc": unix.CLONE_NEWIPC, "mnt": unix.CLONE_NEWNS,
	"net": unix.CLONE_NEWNET, "pid": unix.CLONE_NEWPID, "time": unix.CLONE_NEWTIME,
	"user": unix.CLONE_NEWUSER, "uts": unix.CLONE_NEWUTS,
}

// NSID identifies a namespace the way the talk prints it: the device and
// inode of its nsfs file, "{3 4026531837}".
type NSID struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
}

func (id NSID) String() string { return fmt.Sprintf("{%d %d}", id.Dev, id.Inode) }

// nsFile is an open namespace file (from /proc/PID/ns/TYPE or an nsfs
// ioctl) with its identity.
type nsFile struct {
	f  *os.File
	id NSID
}

func (n nsFile) Close() error { return n.f.Close() }

// openNS opens /proc/PID/ns/typ. A missing process gives
// proc.ErrNoProcess; a process the caller may not inspect gives an error
// matching fs.ErrPermission.
func openNS(pid int, typ string) (nsFile, error) {
	p := proc.Path(pid, "ns/"+typ)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			if _, serr := os.Stat(proc.Path(os.Getpid(), "ns/"+typ)); serr != nil {
				return nsFile{}, fmt.Errorf("open %s: %w", p, errNoNSType)
			}
			// Gone, or a zombie: an exited process keeps its /proc
			// directory (and its user namespace) until it is reaped, but
			// no longer has the other namespaces.
			return nsFile{}, fmt.Errorf("process %d has exited: %w", pid, proc.ErrNoProcess)
		}
		return nsFile{}, fmt.Errorf("process %d: %w", pid, err) // err names the path
	}
	return identify(f, typ)
}

// errNoNSType: the kernel has no namespace of this type (e.g. time < 5.6).
var errNoNSType = errors.New("namespace type not supported by this kernel")

// identify stats f and checks with NS_GET_NSTYPE that it is a namespace of
// type want. It takes ownership of f.
func identify(f *os.File, want string) (nsFile, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nsFile{}, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	t, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		f.Close()
		return nsFile{}, fmt.Errorf("NS_GET_NSTYPE on %s: %w", f.Name(), err)
	}
	if t != cloneFlag[want] {
		f.Close()
		return nsFile{}, fmt.Errorf("%s: namespace type %#x, want %s", f.Name(), t, want)
	}
	return nsFile{f: f, id: NSID{Dev: st.Dev, Inode: st.Ino}}, nil
}

// related runs an nsfs ioctl that returns a new namespace file descriptor
// (NS_GET_USERNS, NS_GET_PARENT). ok is false when the kernel answers
// EPERM: the related namespace is outside the caller's user namespace, or
// there is none (the initial namespace has no parent).
func related(n nsFile, req uint, typ, what string) (nsFile, bool, error) {
	fd, err := unix.IoctlRetInt(int(n.f.Fd()), req)
	if err != nil {
		if err == unix.EPERM {
			return nsFile{}, false, nil
		}
		return nsFile{}, false, fmt.Errorf("%s of namespace %s: %w", what, n.id, err)
	}
	r, err := identify(os.NewFile(uintptr(fd), fmt.Sprintf("%s of %s", what, n.id)), typ)
	if err != nil {
		return nsFile{}, false, err
	}
	return r, true, nil
}

// ownerUID is NS_GET_OWNER_UID: the UID, in the caller's user namespace,
// of the process that created user namespace n.
func ownerUID(n nsFile) (uint32, error) {
	uid, err := unix.IoctlGetUint32(int(n.f.Fd()), unix.NS_GET_OWNER_UID)
	if err != nil {
		return 0, fmt.Errorf("NS_GET_OWNER_UID of user namespace %s: %w", n.id, err)
	}
	return uid, nil
}

// NamespaceOf returns the identity of process pid's namespace of type typ
// (any of NSTypes or "user").
func NamespaceOf(pid int, typ string) (NSID, error) {
	if _, ok := cloneFlag[typ]; !ok {
		return NSID{}, fmt.Errorf("unknown namespace type %q", typ)
	}
	n, err := openNS(pid, typ)
	if err != nil {
		return NSID{}, err
	}
	n.Close()
	return n.id, nil
}
