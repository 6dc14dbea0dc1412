package seccomp

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// Errno values the compiler needs (asm-generic/errno-base.h).
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
	maxErrno    = 4095 // the kernel caps SECCOMP_RET_ERRNO data at MAX_ERRNO
)

// Filter flags (<linux/seccomp.h>).
const (
	FlagTsync            = 1 << 0
	FlagLog              = 1 << 1
	FlagSpecAllow        = 1 << 2
	FlagNewListener      = 1 << 3
	FlagTsyncESRCH       = 1 << 4
	FlagWaitKillableRecv = 1 << 5
)

var flagByName = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":            FlagTsync,
	specs.LinuxSeccompFlagLog:              FlagLog,
	specs.LinuxSeccompFlagSpecAllow:        FlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv: FlagWaitKillableRecv,
	"SECCOMP_FILTER_FLAG_TSYNC_ESRCH":      FlagTsyncESRCH,
	"SECCOMP_FILTER_FLAG_NEW_LISTENER":     FlagNewListener,
}

// ociArches are the architecture names of the OCI runtime spec.
var ociArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true, specs.ArchARM: true,
	specs.ArchAARCH64: true, specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true, specs.ArchPPC: true,
	specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
	specs.ArchM68K: true, specs.ArchSH: true, specs.ArchSHEB: true,
}

// cmpOp is an argument comparison.
type cmpOp int

const (
	opNE cmpOp = iota
	opLT
	opLE
	opEQ
	opGE
	opGT
	opMaskedEQ
)

var opByName = map[specs.LinuxSeccompOperator]cmpOp{
	specs.OpNotEqual:     opNE,
	specs.OpLessThan:     opLT,
	specs.OpLessEqual:    opLE,
	specs.OpEqualTo:      opEQ,
	specs.OpGreaterEqual: opGE,
	specs.OpGreaterThan:  opGT,
	specs.OpMaskedEqual:  opMaskedEQ,
}

func (o cmpOp) String() string {
	return [...]string{"!=", "<", "<=", "==", ">=", ">", "&"}[o]
}

// cond is one argument comparison of a rule. For opMaskedEQ, v is the mask
// and v2 the value: (arg & v) == (v2 & v). OCI says mask and value;
// libseccomp, which runc uses, masks the value too, so berth does.
type cond struct {
	arg   int
	op    cmpOp
	v, v2 uint64
}

// match evaluates the condition on a 64-bit argument value.
func (c cond) match(x uint64) bool {
	switch c.op {
	case opNE:
		return x != c.v
	case opLT:
		return x < c.v
	case opLE:
		return x <= c.v
	case opEQ:
		return x == c.v
	case opGE:
		return x >= c.v
	case opGT:
		return x > c.v
	case opMaskedEQ:
		return x&c.v == c.v2&c.v
	}
	return false
}

// trunc32 is the condition as 32-bit ABIs compare it: the low halves of
// the argument, value and mask (libseccomp's semantics).
func (c cond) trunc32() cond {
	c.v &= 0xffffffff
	c.v2 &= 0xffffffff
	return c
}

// rule is one conditional rule: all conds must hold.
type rule struct {
	conds  []cond
	action uint32
}

// sysRules is everything the profile says about one syscall number.
type sysRules struct {
	name   string
	nr     uint32
	uncond bool   // an unconditional rule decides alone
	action uint32 // its action
	rules  []rule // conditional rules, first match wins
}

// archRules is the resolved profile for one architecture.
type archRules struct {
	arch *syscalls.Arch
	byNr map[uint32]*sysRules
}

// ruleset is a validated profile, resolved per architecture.
type ruleset struct {
	defaultAction uint32
	badArch       uint32
	enosys        bool // syscalls newer than the tables get ENOSYS
	archs         []*archRules
	flags         uint
	notify        bool
	actions       map[uint32]bool
	warnings      []string
}

// parseAction turns an OCI action (and its errnoRet) into a seccomp
// return value, as runc does: SCMP_ACT_KILL is KILL_THREAD, ERRNO and
// TRACE default to EPERM.
func parseAction(a specs.LinuxSeccompAction, errnoRet *uint, where string) (uint32, error) {
	withData := func(base uint32) (uint32, error) {
		v := uint(errnoEPERM)
		if errnoRet != nil {
			v = *errnoRet
		}
		if v > maxErrno {
			return 0, fmt.Errorf("%s: errnoRet %d is out of range (the kernel caps errno at %d)", where, v, maxErrno)
		}
		return base | uint32(v), nil
	}
	switch a {
	case specs.ActErrno:
		return withData(bpf.RetErrno)
	case specs.ActTrace:
		return withData(bpf.RetTrace)
	}
	if errnoRet != nil {
		return 0, fmt.Errorf("%s: errnoRet is set but action %s takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)", where, a)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return bpf.RetKillThread, nil
	case specs.ActKillProcess:
		return bpf.RetKillProcess, nil
	case specs.ActTrap:
		return bpf.RetTrap, nil
	case specs.ActAllow:
		return bpf.RetAllow, nil
	case specs.ActLog:
		return bpf.RetLog, nil
	case specs.ActNotify:
		return bpf.RetUserNotif, nil
	case "":
		return 0, fmt.Errorf("%s: action is missing", where)
	}
	return 0, fmt.Errorf("%s: unknown action %q (want one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY)", where, a)
}

// allowLike are default actions under which unknown (newer) syscalls
// are let through rather than answered with ENOSYS, as runc decides.
func allowLike(act uint32) bool {
	switch act & bpf.RetActionFull {
	case bpf.RetAllow, bpf.RetLog, bpf.RetTrace:
		return true
	}
	return false
}

// resolve validates cfg and resolves it for the native architecture
// native plus the architectures cfg lists.
func resolve(cfg *specs.LinuxSeccomp, native *syscalls.Arch) (*ruleset, error) {
	if cfg == nil {
		return nil, fmt.Errorf("no seccomp configuration")
	}
	rs := &ruleset{badArch: bpf.RetKillThread, actions: map[uint32]bool{}}
	def, err := parseAction(cfg.DefaultAction, cfg.DefaultErrnoRet, "defaultAction")
	if err != nil {
		return nil, err
	}
	if def == bpf.RetUserNotif {
		return nil, fmt.Errorf("defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime itself could not make the syscalls that hand the listener over)")
	}
	rs.defaultAction = def
	rs.actions[def] = true
	rs.enosys = !allowLike(def) && def != bpf.RetErrno|errnoENOSYS

	// Architectures: the native one first, then those listed.
	archList := []*syscalls.Arch{native}
	for i, name := range cfg.Architectures {
		a, err := syscalls.Lookup(string(name))
		if err != nil || !strings.HasPrefix(string(name), "SCMP_ARCH_") {
			if ociArches[name] {
				// Not filtering an architecture is stricter, not
				// weaker: its syscalls get the bad-architecture action.
				rs.warnings = append(rs.warnings, fmt.Sprintf("architectures[%d]: berth has no syscall table for %s; its syscalls are killed as a bad architecture", i, name))
				continue
			}
			return nil, fmt.Errorf("architectures[%d]: %q is not an architecture berth can filter (supported: %s)", i, name, strings.Join(syscalls.Names(), ", "))
		}
		dup := false
		for _, b := range archList {
			dup = dup || b == a
		}
		if !dup {
			archList = append(archList, a)
		}
	}

	for i, f := range cfg.Flags {
		v, ok := flagByName[f]
		if !ok {
			return nil, fmt.Errorf("flags[%d]: unknown seccomp flag %q (berth knows SECCOMP_FILTER_FLAG_TSYNC, _LOG, _SPEC_ALLOW, _WAIT_KILLABLE_RECV)", i, f)
		}
		if v == FlagNewListener || v == FlagTsyncESRCH {
			continue // implied by SCMP_ACT_NOTIFY, as in runc
		}
		rs.flags |= v
	}

	for _, a := range archList {
		rs.archs = append(rs.archs, &archRules{arch: a, byNr: map[uint32]*sysRules{}})
	}
	unknown := map[string]bool{}
	for i, sc := range cfg.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		act, err := parseAction(sc.Action, sc.ErrnoRet, where)
		if err != nil {
			return nil, err
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s: no syscall names", where)
		}
		conds, err := parseArgs(sc.Args, where)
		if err != nil {
			return nil, err
		}
		for j, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("%s.names[%d]: empty syscall name", where, j)
			}
			if act == bpf.RetUserNotif && name == "write" {
				return nil, fmt.Errorf("%s.names[%d]: SCMP_ACT_NOTIFY cannot be used for write (the runtime writes the listener fd with it)", where, j)
			}
			if !syscalls.Known(name) && !unknown[name] {
				unknown[name] = true
				rs.warnings = append(rs.warnings, fmt.Sprintf("%s.names[%d]: unknown syscall %q ignored (not in berth's tables for any architecture)", where, j, name))
			}
		}
		if act == def {
			continue // redundant with the default action; runc skips it too
		}
		if act == bpf.RetUserNotif {
			rs.notify = true
		}
		rs.actions[act] = true
		// runc: several conditions on the same argument become separate
		// rules (they are ORed, not ANDed).
		ruleSets := [][]cond{conds}
		if sameArgTwice(conds) {
			ruleSets = nil
			for _, c := range conds {
				ruleSets = append(ruleSets, []cond{c})
			}
			rs.warnings = append(rs.warnings, fmt.Sprintf("%s: several conditions on one argument; each becomes its own rule (ORed), as runc does", where))
		}
		for _, ar := range rs.archs {
			for _, name := range sc.Names {
				nr, ok := ar.arch.Nr(name)
				if !ok {
					continue
				}
				sr := ar.byNr[nr]
				if sr == nil {
					sr = &sysRules{name: name, nr: nr}
					ar.byNr[nr] = sr
				}
				for _, cs := range ruleSets {
					sr.add(dropTautologies(cs, ar.arch.Bits), act)
				}
			}
			ar.addMultiplexed(sc.Names, ruleSets, act)
		}
	}
	if rs.notify {
		rs.flags |= FlagNewListener
		if rs.flags&FlagTsync != 0 {
			rs.flags |= FlagTsyncESRCH
		}
		if cfg.ListenerPath == "" {
			return nil, fmt.Errorf("listenerPath: SCMP_ACT_NOTIFY is used but no listenerPath is set to send the listener to")
		}
	} else {
		if rs.flags&FlagWaitKillableRecv != 0 {
			return nil, fmt.Errorf("flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY")
		}
		if cfg.ListenerPath != "" {
			rs.warnings = append(rs.warnings, "listenerPath is set but no rule uses SCMP_ACT_NOTIFY: no listener will be sent")
		}
	}
	if cfg.ListenerMetadata != "" && cfg.ListenerPath == "" {
		return nil, fmt.Errorf("listenerMetadata is set without listenerPath")
	}
	return rs, nil
}

// add records one rule, with libseccomp's precedence: the first
// unconditional rule decides alone; conditional rules are kept in order.
func (s *sysRules) add(conds []cond, act uint32) {
	if s.uncond {
		return
	}
	if len(conds) == 0 {
		s.uncond, s.action, s.rules = true, act, nil
		return
	}
	s.rules = append(s.rules, rule{conds: conds, action: act})
}

// Call numbers of socketcall(2) and ipc(2) (<linux/net.h>, <linux/ipc.h>).
var (
	socketcallCalls = map[string]uint64{
		"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5, "getsockname": 6,
		"getpeername": 7, "socketpair": 8, "send": 9, "recv": 10, "sendto": 11, "recvfrom": 12,
		"shutdown": 13, "setsockopt": 14, "getsockopt": 15, "sendmsg": 16, "recvmsg": 17,
		"accept4": 18, "recvmmsg": 19, "sendmmsg": 20,
	}
	ipcCalls = map[string]uint64{
		"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4, "msgsnd": 11, "msgrcv": 12,
		"msgget": 13, "msgctl": 14, "shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24,
	}
)

// addMultiplexed gives the multiplexed forms of socket and IPC syscalls
// the rule's action, on architectures that have socketcall(2) and ipc(2)
// (i386, s390x, ppc64le): socketcall(SYS_BIND, ...) gets what bind gets,
// so a profile cannot be bypassed through the multiplexer. This is what
// libseccomp does (and so Docker): the multiplexed rule tests argument 0
// for the call number instead of the rule's own condition on argument 0,
// and keeps the rule's other conditions as they are.
func (ar *archRules) addMultiplexed(names []string, ruleSets [][]cond, act uint32) {
	for _, mux := range []struct {
		syscall string
		calls   map[string]uint64
	}{{"socketcall", socketcallCalls}, {"ipc", ipcCalls}} {
		nr, ok := ar.arch.Nr(mux.syscall)
		if !ok {
			continue
		}
		for _, name := range names {
			call, ok := mux.calls[name]
			if !ok {
				continue
			}
			sr := ar.byNr[nr]
			if sr == nil {
				sr = &sysRules{name: mux.syscall, nr: nr}
				ar.byNr[nr] = sr
			}
			for _, cs := range ruleSets {
				muxed := []cond{{arg: 0, op: opEQ, v: call}}
				for _, c := range cs {
					if c.arg != 0 {
						muxed = append(muxed, c)
					}
				}
				sr.add(dropTautologies(muxed, ar.arch.Bits), act)
			}
		}
	}
}

// dropTautologies removes conditions that hold for every value: masked
// equality with an empty mask (only the low half counts on 32-bit ABIs).
// Like libseccomp, a rule left without conditions is unconditional, which
// matters for precedence.
func dropTautologies(cs []cond, bits int) []cond {
	var out []cond
	for _, c := range cs {
		m := c.v
		if bits == 32 {
			m &= 0xffffffff
		}
		if c.op == opMaskedEQ && m == 0 {
			continue
		}
		out = append(out, c)
	}
	return out
}

func parseArgs(args []specs.LinuxSeccompArg, where string) ([]cond, error) {
	var out []cond
	for k, a := range args {
		w := fmt.Sprintf("%s.args[%d]", where, k)
		if a.Index >= 6 {
			return nil, fmt.Errorf("%s: argument index %d is out of range (a syscall has arguments 0 to 5)", w, a.Index)
		}
		op, ok := opByName[a.Op]
		if !ok {
			return nil, fmt.Errorf("%s: unknown operator %q (want SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT or _MASKED_EQ)", w, a.Op)
		}
		if op != opMaskedEQ && a.ValueTwo != 0 {
			return nil, fmt.Errorf("%s: valueTwo is only used by SCMP_CMP_MASKED_EQ, not %s", w, a.Op)
		}
		c := cond{arg: int(a.Index), op: op, v: a.Value, v2: a.ValueTwo}
		if op == opMaskedEQ {
			c.v2 &= c.v
		}
		out = append(out, c)
	}
	return out, nil
}

func sameArgTwice(cs []cond) bool {
	var seen [6]bool
	for _, c := range cs {
		if seen[c.arg] {
			return true
		}
		seen[c.arg] = true
	}
	return false
}

// sortedNrs lists the syscall numbers with rules, ascending.
func (ar *archRules) sortedNrs() []uint32 {
	out := make([]uint32, 0, len(ar.byNr))
	for nr := range ar.byNr {
		out = append(out, nr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
