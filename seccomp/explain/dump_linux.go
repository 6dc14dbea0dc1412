package explain

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/proc"
	"github.com/berth-dev/berth/seccomp/bpf"
)

// Dump reads every seccomp filter of process pid with
// PTRACE_SECCOMP_GET_FILTER, as the talk's dump_seccomp_filter does. The
// first filter is the one installed last (the kernel runs them all and
// the most severe verdict wins). It seizes the process, interrupts it for
// the moment of the reads, and detaches. Needs CAP_SYS_ADMIN and a caller
// that is not itself under seccomp.
func Dump(pid int) ([][]bpf.Instruction, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		return nil, fmt.Errorf("dump seccomp filters of %d: ptrace seize: %w", pid, err)
	}
	defer unix.PtraceDetach(pid)
	if err := unix.PtraceInterrupt(pid); err != nil {
		return nil, fmt.Errorf("dump seccomp filters of %d: ptrace interrupt: %w", pid, err)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dump seccomp filters of %d: wait: %w", pid, err)
		}
		break
	}
	if ws.Exited() || ws.Signaled() {
		return nil, fmt.Errorf("dump seccomp filters of %d: the process exited", pid)
	}
	var out [][]bpf.Instruction
	for i := 0; ; i++ {
		n, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(i), 0, 0, 0)
		if errno == unix.ENOENT {
			break // no filter at this index: all read
		}
		if errno != 0 {
			return nil, getFilterError(pid, errno)
		}
		buf := make([]unix.SockFilter, n)
		if n > 0 {
			_, _, errno = unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(i), uintptr(unsafe.Pointer(&buf[0])), 0, 0)
			if errno != 0 {
				return nil, getFilterError(pid, errno)
			}
		}
		prog := make([]bpf.Instruction, n)
		for k, f := range buf {
			prog[k] = bpf.Instruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
		}
		out = append(out, prog)
	}
	return out, nil
}

func getFilterError(pid int, errno unix.Errno) error {
	switch errno {
	case unix.EMEDIUMTYPE:
		return fmt.Errorf("process %d has no seccomp filter (not in filter mode): %w", pid, errno)
	case unix.EACCES:
		return fmt.Errorf("reading the seccomp filters of %d needs CAP_SYS_ADMIN and an unfiltered caller: %w", pid, errno)
	case unix.EINVAL:
		if st, err := proc.ReadStatus(pid); err == nil && st.Seccomp != proc.SeccompFilter {
			return fmt.Errorf("process %d has no seccomp filter (Seccomp: %d in /proc/%d/status)", pid, st.Seccomp, pid)
		}
		return fmt.Errorf("the kernel cannot report seccomp filters (CONFIG_CHECKPOINT_RESTORE is off?): %w", errno)
	}
	return fmt.Errorf("dump seccomp filters of %d: %w", pid, errno)
}
