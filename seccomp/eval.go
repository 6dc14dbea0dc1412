package seccomp

import (
	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// This file is the reference semantics of a resolved profile: what the
// compiled program must return for every syscall. Tests compare the
// generated BPF (run in bpf.Run) with it, and with libseccomp.

// group is the set of filtered architectures sharing one audit value
// (x86_64 and x32 share AUDIT_ARCH_X86_64).
type group struct {
	audit  uint32
	plain  *archRules // numbers below the x32 bit
	x32    *archRules // numbers from the x32 bit up (x86_64's audit value only)
	bigEnd bool
}

// groups arranges the ruleset's architectures by audit value, in filter
// order.
func (rs *ruleset) groups() []*group {
	var out []*group
	find := func(audit uint32) *group {
		for _, g := range out {
			if g.audit == audit {
				return g
			}
		}
		g := &group{audit: audit}
		out = append(out, g)
		return g
	}
	for _, ar := range rs.archs {
		g := find(ar.arch.Audit)
		if ar.arch.Base == syscalls.X32Bit {
			g.x32 = ar
		} else {
			g.plain = ar
		}
		g.bigEnd = ar.arch.Audit&0x40000000 == 0
	}
	return out
}

// isX86Group reports whether numbers with the x32 bit are a separate ABI.
func (g *group) isX86Group() bool { return g.audit == syscalls.AuditX86_64 }

// newer reports whether nr is above ar's table: a syscall newer than
// berth knows. ARM's private range (__ARM_NR_BASE) is a table of its own.
func newer(ar *archRules, nr uint32) bool {
	a := ar.arch
	n := nr - a.Base
	if nr < a.Base {
		return false
	}
	if a.Audit == syscalls.AuditARM && n >= 0x0f0000 && n < 0x0f0800 {
		return false
	}
	return n > a.Max()-a.Base
}

// evalNr is the verdict of one architecture's rules for nr and args.
func (rs *ruleset) evalNr(ar *archRules, nr uint32, args *[6]uint64) uint32 {
	if sr := ar.byNr[nr]; sr != nil {
		if sr.uncond {
			return sr.action
		}
		for _, r := range sr.rules {
			ok := true
			for _, c := range r.conds {
				x := args[c.arg]
				if ar.arch.Bits == 32 {
					c, x = c.trunc32(), x&0xffffffff
				}
				if !c.match(x) {
					ok = false
					break
				}
			}
			if ok {
				return r.action
			}
		}
		return rs.defaultAction
	}
	if nr == 0xffffffff {
		return rs.defaultAction
	}
	if rs.enosys && (newer(ar, nr) || (ar.arch.Audit == syscalls.AuditS390X && nr == 0)) {
		return bpf.RetErrno | errnoENOSYS
	}
	return rs.defaultAction
}

// eval is the reference verdict for one syscall as the kernel presents it.
// For 32-bit architectures the caller passes zero-extended arguments, as
// the kernel does.
func (rs *ruleset) eval(d *bpf.Data) uint32 {
	for _, g := range rs.groups() {
		if g.audit != d.Arch {
			continue
		}
		return rs.evalGroup(g, d.Nr, &d.Args)
	}
	return rs.badArch
}

func (rs *ruleset) evalGroup(g *group, nr uint32, args *[6]uint64) uint32 {
	if g.isX86Group() && nr != 0xffffffff {
		// Like libseccomp, every number from the x32 bit up belongs to
		// x32 (the kernel tests only the bit; the others are invalid).
		if nr >= syscalls.X32Bit {
			if g.x32 == nil {
				return rs.badArch
			}
			return rs.evalNr(g.x32, nr, args)
		}
		if g.plain == nil {
			return rs.badArch
		}
	}
	ar := g.plain
	if ar == nil {
		ar = g.x32
	}
	return rs.evalNr(ar, nr, args)
}
