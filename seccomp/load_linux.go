package seccomp

import (
	"encoding/json"
	"fmt"
	"net"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

const (
	seccompSetModeFilter  = 1
	seccompGetActionAvail = 2
)

var flagNames = []struct {
	bit   uint
	name  string
	since string
}{
	{FlagTsync, "SECCOMP_FILTER_FLAG_TSYNC", "3.17"},
	{FlagLog, "SECCOMP_FILTER_FLAG_LOG", "4.14"},
	{FlagSpecAllow, "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "4.17"},
	{FlagNewListener, "SECCOMP_FILTER_FLAG_NEW_LISTENER", "5.0"},
	{FlagTsyncESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH", "5.7"},
	{FlagWaitKillableRecv, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "5.19"},
}

// Load installs the filter on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER, flags). The caller has locked its OS
// thread (and will execve from it) and has set no_new_privs or holds
// CAP_SYS_ADMIN. If the program uses SCMP_ACT_NOTIFY, Load returns the
// listener fd; otherwise -1. Flags or actions the kernel lacks are errors
// that name them.
func (p *Program) Load() (notifyFD int, err error) {
	if native := syscalls.Native(); native == nil || native.SCMP != p.Arch {
		return -1, fmt.Errorf("seccomp: program compiled for %s cannot be loaded on this machine", p.Arch)
	}
	if err := bpf.Validate(p.Instructions); err != nil {
		return -1, fmt.Errorf("seccomp: invalid program: %w", err)
	}
	for _, a := range p.Actions {
		if err := ActionAvailable(a); err != nil {
			return -1, err
		}
	}
	flags := p.Flags
	if p.Notify {
		flags |= FlagNewListener
	}
	if flags&FlagTsync != 0 && flags&FlagNewListener != 0 {
		flags |= FlagTsyncESRCH
	}
	filter := make([]unix.SockFilter, len(p.Instructions))
	for i, ins := range p.Instructions {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, seccompSetModeFilter, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, loadError(errno, flags)
	}
	if flags&FlagTsync != 0 && flags&FlagNewListener == 0 && r != 0 {
		return -1, fmt.Errorf("seccomp: thread %d could not be synchronised to the filter", r)
	}
	if p.Notify {
		return int(r), nil
	}
	return -1, nil
}

func loadError(errno unix.Errno, flags uint) error {
	switch errno {
	case unix.EINVAL:
		for _, f := range flagNames {
			if flags&f.bit != 0 && !FlagAvailable(f.bit) {
				return fmt.Errorf("seccomp: the kernel does not support %s (Linux %s or later): %w", f.name, f.since, errno)
			}
		}
		return fmt.Errorf("seccomp: the kernel rejected the filter: %w", errno)
	case unix.EACCES:
		return fmt.Errorf("seccomp: installing a filter needs no_new_privs or CAP_SYS_ADMIN: %w", errno)
	case unix.EBUSY:
		return fmt.Errorf("seccomp: a filter with a notify listener is already installed (only one is allowed): %w", errno)
	case unix.ESRCH:
		return fmt.Errorf("seccomp: another thread could not be synchronised to the filter: %w", errno)
	case unix.ENOMEM:
		return fmt.Errorf("seccomp: the filter chain is too long (the kernel allows 32768 instructions in all): %w", errno)
	}
	return fmt.Errorf("seccomp: install filter: %w", errno)
}

// FlagAvailable probes whether the kernel knows a filter flag: with a NULL
// program it fails with EFAULT once the flags are accepted, EINVAL before.
func FlagAvailable(flag uint) bool {
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, seccompSetModeFilter, uintptr(flag), 0)
	return errno == unix.EFAULT
}

// ActionAvailable checks with SECCOMP_GET_ACTION_AVAIL that the kernel
// supports a return action.
func ActionAvailable(action uint32) error {
	a := action & bpf.RetActionFull
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, seccompGetActionAvail, 0, uintptr(unsafe.Pointer(&a)))
	switch errno {
	case 0:
		return nil
	case unix.EOPNOTSUPP:
		return fmt.Errorf("seccomp: the kernel does not support the action %s", bpf.ActionString(action))
	}
	return fmt.Errorf("seccomp: probe action %s: %w", bpf.ActionString(action), errno)
}

// SendToListener sends a notify listener fd to the seccomp agent at path,
// as runc does: one message on a unix stream socket whose body is the
// container's state (specs.ContainerProcessState, with "seccompFd" in Fds)
// and whose SCM_RIGHTS carries fd.
func SendToListener(path string, fd int, st specs.ContainerProcessState) error {
	if len(st.Fds) == 0 {
		st.Fds = []string{specs.SeccompFdName}
	}
	if st.Version == "" {
		st.Version = specs.Version
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("seccomp: encode listener state: %w", err)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("seccomp: connect to listener %s: %w", path, err)
	}
	defer conn.Close()
	oob := unix.UnixRights(fd)
	n, oobn, err := conn.WriteMsgUnix(body, oob, nil)
	if err != nil {
		return fmt.Errorf("seccomp: send listener fd to %s: %w", path, err)
	}
	if n != len(body) || oobn != len(oob) {
		return fmt.Errorf("seccomp: send listener fd to %s: short write", path)
	}
	return nil
}
