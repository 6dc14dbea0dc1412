// Package procsetup owns the per-process settings of an OCI process that
// the init stage applies to itself before execve: rlimits, the session
// keyring, personality, scheduler, I/O priority, user and groups,
// capabilities, and finding the executable. It is shared by container
// creation and exec; it never forks and touches only the calling process
// (or thread, where the kernel setting is per thread).
package procsetup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/berth-dev/berth/caps"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// RlimitNumber maps an OCI rlimit type ("RLIMIT_NOFILE") to its number.
func RlimitNumber(name string) (int, error) {
	n, ok := rlimits[name]
	if !ok {
		return 0, fmt.Errorf("unknown rlimit %q", name)
	}
	return n, nil
}

// SetRlimits applies the process's rlimits. Raising a hard limit above
// the current one needs CAP_SYS_RESOURCE in the initial user namespace;
// without it the error says which limit and what the ceiling is.
func SetRlimits(list []specs.POSIXRlimit) error {
	for _, rl := range list {
		n, err := RlimitNumber(rl.Type)
		if err != nil {
			return err
		}
		if rl.Soft > rl.Hard {
			return fmt.Errorf("rlimit %s: soft limit %d is above the hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
		lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := unix.Prlimit(0, n, &lim, nil); err != nil {
			var cur unix.Rlimit
			_ = unix.Prlimit(0, n, nil, &cur)
			if errors.Is(err, unix.EPERM) && rl.Hard > cur.Max {
				return fmt.Errorf("rlimit %s %d:%d: the runtime's hard limit is %d and raising it needs CAP_SYS_RESOURCE, which this host does not grant: %w",
					rl.Type, rl.Soft, rl.Hard, cur.Max, err)
			}
			return fmt.Errorf("rlimit %s %d:%d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	return nil
}

// JoinSessionKeyring gives the process a new anonymous session keyring,
// so containers do not share the host's keys. A kernel or filter that
// denies keyctl is not an error: there is then no keyring to share.
func JoinSessionKeyring(name string) error {
	_, err := unix.KeyctlJoinSessionKeyring(name)
	if err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return fmt.Errorf("join session keyring: %w", err)
	}
	return nil
}

var personalities = map[specs.LinuxPersonalityDomain]uintptr{
	specs.PerLinux:   0x0000,
	specs.PerLinux32: 0x0008,
}

// SetPersonality applies linux.personality.
func SetPersonality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	v, ok := personalities[p.Domain]
	if !ok {
		return fmt.Errorf("personality domain %q is not supported (LINUX or LINUX32)", p.Domain)
	}
	if len(p.Flags) > 0 {
		return fmt.Errorf("personality flags %v are not supported", p.Flags)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0); e != 0 {
		return fmt.Errorf("personality(%s): %w", p.Domain, e)
	}
	return nil
}

var policies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

// SetScheduler applies process.scheduler with sched_setattr(2).
func SetScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	pol, ok := policies[s.Policy]
	if !ok {
		return fmt.Errorf("scheduler policy %q is unknown", s.Policy)
	}
	attr := unix.SchedAttr{
		Size: unix.SizeofSchedAttr, Policy: pol, Nice: s.Nice, Priority: uint32(s.Priority),
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
	}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return fmt.Errorf("scheduler flag %q is unknown", f)
		}
		attr.Flags |= v
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr(%s): %w", s.Policy, err)
	}
	return nil
}

var ioClasses = map[specs.IOPriorityClass]uintptr{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

// SetIOPriority applies process.ioPriority with ioprio_set(2).
func SetIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	class, ok := ioClasses[p.Class]
	if !ok {
		return fmt.Errorf("I/O priority class %q is unknown", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return fmt.Errorf("I/O priority %d is outside 0..7", p.Priority)
	}
	const whoProcess = 1
	if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, whoProcess, 0, class<<13|uintptr(p.Priority)); e != 0 {
		return fmt.Errorf("ioprio_set: %w", e)
	}
	return nil
}

// CapSets converts the spec's capability lists. Unknown names are an
// error; names the running kernel does not know are dropped, as runc does.
func CapSets(c *specs.LinuxCapabilities) (caps.Sets, error) {
	var s caps.Sets
	if c == nil {
		return s, nil
	}
	last := caps.LastCap()
	conv := func(kind string, list []string) (caps.Set, error) {
		set, err := caps.FromNames(list)
		if err != nil {
			return 0, fmt.Errorf("%s capabilities: %w", kind, err)
		}
		return set & caps.All(last), nil
	}
	var err error
	if s.Bounding, err = conv("bounding", c.Bounding); err != nil {
		return s, err
	}
	if s.Permitted, err = conv("permitted", c.Permitted); err != nil {
		return s, err
	}
	if s.Effective, err = conv("effective", c.Effective); err != nil {
		return s, err
	}
	if s.Inheritable, err = conv("inheritable", c.Inheritable); err != nil {
		return s, err
	}
	if s.Ambient, err = conv("ambient", c.Ambient); err != nil {
		return s, err
	}
	return s, nil
}

// CheckGrantable fails when the process asks for a capability that the
// calling process (the init stage, still privileged) does not hold
// itself: it could never be granted, and saying so at create time is
// clearer than a failed capset at start. (This host, for one, has no
// CAP_SYS_RESOURCE.) The bounding set only removes, so it is not checked.
func CheckGrantable(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	sets, err := CapSets(c)
	if err != nil {
		return err
	}
	cur, err := caps.Current()
	if err != nil {
		return err
	}
	want := sets.Permitted | sets.Effective | sets.Inheritable | sets.Ambient
	if missing := want &^ cur.Permitted; missing != 0 {
		return fmt.Errorf("capabilities %s are asked for but the runtime does not hold them on this host, so they cannot be granted",
			strings.ToLower(strings.Join(missing.Names(), ",")))
	}
	return nil
}

// SetUser switches to the process's user and groups keeping the
// permitted capabilities, then installs the capability sets. Bounding set
// first (it needs CAP_SETPCAP, which may be about to go), ambient last.
func SetUser(u specs.User, c *specs.LinuxCapabilities, setgroups bool) error {
	sets, err := CapSets(c)
	if err != nil {
		return err
	}
	if c == nil {
		// No capabilities section: the process keeps none.
		sets = caps.Sets{}
	}
	// The kernel raises an ambient capability only when it is permitted
	// and inheritable too. `runc spec` writes ambient capabilities without
	// inheritable ones; runc skips them with a warning, and so does berth
	// (silently: the container's stderr is not the runtime's log).
	sets.Ambient &= sets.Permitted & sets.Inheritable
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities across setuid: %w", err)
	}
	last := caps.LastCap()
	if err := caps.DropBounding(sets.Bounding, last); err != nil {
		return err
	}
	// The credentials change on this thread only (raw system calls, not
	// syscall.Setresuid, which stops every thread of the Go runtime to
	// change them all): this thread is the one that execs, and execve
	// gives the new program this thread's credentials.
	if setgroups {
		var p unsafe.Pointer
		if len(u.AdditionalGids) > 0 {
			p = unsafe.Pointer(&u.AdditionalGids[0])
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(u.AdditionalGids)), uintptr(p), 0); e != 0 {
			return fmt.Errorf("setgroups %v: %w", u.AdditionalGids, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep-capabilities: %w", err)
	}
	return caps.Apply(sets, last)
}

// DefaultPath is used to find the executable when the process has no PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExecError is a failure to find or run the process's executable; Code
// is the exit status Docker users expect (127 not found, 126 cannot run).
type ExecError struct {
	Code int
	Msg  string
}

func (e *ExecError) Error() string { return e.Msg }

// LookPath finds the executable for args[0] in the process's PATH, the
// way a shell would, in the current root and working directory.
func LookPath(arg0 string, env []string) (string, error) {
	if arg0 == "" {
		return "", &ExecError{127, "no command specified"}
	}
	if strings.Contains(arg0, "/") {
		return arg0, checkExecutable(arg0, arg0)
	}
	path := DefaultPath
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			path = kv[5:]
		}
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, arg0)
		err := checkExecutable(p, arg0)
		if err == nil {
			return p, nil
		}
		var ee *ExecError
		if errors.As(err, &ee) && ee.Code == 126 && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &ExecError{127, fmt.Sprintf("exec: %q: executable file not found in $PATH", arg0)}
}

func checkExecutable(p, arg0 string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &ExecError{127, fmt.Sprintf("exec: %q: stat %s: no such file or directory", arg0, p)}
		}
		return &ExecError{126, fmt.Sprintf("exec: %q: %v", arg0, err)}
	}
	if st.IsDir() {
		return &ExecError{126, fmt.Sprintf("exec: %q: %s is a directory", arg0, p)}
	}
	if st.Mode()&0o111 == 0 {
		return &ExecError{126, fmt.Sprintf("exec: %q: permission denied", arg0)}
	}
	return nil
}
