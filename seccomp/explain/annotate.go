// Package explain owns the seccomp instruments: reading the filters of a
// running process (PTRACE_SECCOMP_GET_FILTER), annotating a listing with
// what each instruction tests (architecture, syscall names, argument
// halves), tracing the verdict of one syscall, tabulating an architecture,
// and diffing two filters. It works on any classic-BPF seccomp filter —
// berth's, libseccomp's, or one dumped from a process — inferring what it
// needs from the program itself. It never installs a filter.
package explain

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// what the accumulator holds at an instruction.
type what int

const (
	wUnknown what = iota
	wArch
	wNr
	wArgLo
	wArgHi
	wIP
	wOther
)

type state struct {
	a     what
	arg   int
	audit uint32 // architecture known at this point (0: unknown)
	valid bool
}

func merge(x, y state) state {
	if !x.valid {
		return y
	}
	if !y.valid {
		return x
	}
	out := x
	if x.a != y.a || x.arg != y.arg {
		out.a = wUnknown
	}
	if x.audit != y.audit {
		out.audit = 0
	}
	return out
}

// archByAudit returns the (non-x32) architecture of an audit value.
func archByAudit(audit uint32) *syscalls.Arch {
	for _, a := range syscalls.All() {
		if a.Audit == audit && a.Base == 0 {
			return a
		}
	}
	return nil
}

// archForNr picks the table a syscall number is looked up in: x32 for
// numbers from the x32 bit up on AUDIT_ARCH_X86_64.
func archForNr(audit, nr uint32) *syscalls.Arch {
	if audit == syscalls.AuditX86_64 && nr >= syscalls.X32Bit && nr != 0xffffffff {
		a, _ := syscalls.Lookup("SCMP_ARCH_X32")
		return a
	}
	return archByAudit(audit)
}

// SyscallName names nr on the architecture with the given audit value
// ("" when unknown).
func SyscallName(audit, nr uint32) string {
	if a := archForNr(audit, nr); a != nil {
		return a.NameOf(nr)
	}
	return ""
}

// ArchName names an audit value ("x86_64"), or formats it.
func ArchName(audit uint32) string {
	if a := archByAudit(audit); a != nil {
		return a.Name
	}
	return fmt.Sprintf("arch %#x", audit)
}

// Annotate returns a note for every instruction of prog: what a load
// reads, what a comparison compares with (architecture names, syscall
// names, argument values in hex), found by following the program's
// control flow.
func Annotate(prog []bpf.Instruction) []string {
	n := len(prog)
	states := make([]state, n+1)
	if n > 0 {
		states[0] = state{valid: true}
	}
	notes := make([]string, n)
	for pc := 0; pc < n; pc++ {
		st := states[pc]
		ins := prog[pc]
		if !st.valid {
			notes[pc] = "unreachable"
			continue
		}
		next := st
		big := false
		if a := archByAudit(st.audit); a != nil {
			big = a.Audit&0x40000000 == 0
		}
		switch bpf.Class(ins.Op) {
		case bpf.LD:
			next.a = wOther
			if ins.Op == bpf.LD|bpf.W|bpf.ABS {
				switch {
				case ins.K == bpf.OffNr:
					next.a, notes[pc] = wNr, "syscall number"
				case ins.K == bpf.OffArch:
					next.a, notes[pc] = wArch, "architecture"
				case ins.K == bpf.OffIP || ins.K == bpf.OffIP+4:
					next.a, notes[pc] = wIP, "instruction pointer"
				case ins.K >= bpf.OffArgs && ins.K < bpf.SeccompDataSize:
					arg := int(ins.K-bpf.OffArgs) / 8
					lo, _ := bpf.ArgOffsets(arg, big)
					next.arg = arg
					if ins.K == lo {
						next.a, notes[pc] = wArgLo, fmt.Sprintf("arg%d, low 32 bits", arg)
					} else {
						next.a, notes[pc] = wArgHi, fmt.Sprintf("arg%d, high 32 bits", arg)
					}
				}
			}
		case bpf.ALU, bpf.MISC:
			if !(bpf.Class(ins.Op) == bpf.ALU && bpf.Op(ins.Op) == bpf.AND && (st.a == wArgLo || st.a == wArgHi)) {
				next.a = wOther
			}
		case bpf.JMP:
			if bpf.Op(ins.Op) == bpf.JA {
				propagate(states, pc+1+int(ins.K), st)
				continue
			}
			notes[pc] = jumpNote(st, ins)
			tState, fState := st, st
			if st.a == wArch && bpf.Op(ins.Op) == bpf.JEQ && bpf.Src(ins.Op) == bpf.K {
				tState.audit = ins.K
			}
			propagate(states, pc+1+int(ins.Jt), tState)
			propagate(states, pc+1+int(ins.Jf), fState)
			continue
		case bpf.RET:
			continue
		}
		propagate(states, pc+1, next)
	}
	return notes
}

func propagate(states []state, to int, st state) {
	if to < len(states) {
		states[to] = merge(states[to], st)
	}
}

func jumpNote(st state, ins bpf.Instruction) string {
	if bpf.Src(ins.Op) == bpf.X {
		return ""
	}
	k := ins.K
	op := map[uint16]string{bpf.JEQ: "==", bpf.JGE: ">=", bpf.JGT: ">", bpf.JSET: "&"}[bpf.Op(ins.Op)]
	switch st.a {
	case wArch:
		if bpf.Op(ins.Op) == bpf.JEQ {
			return ArchName(k)
		}
	case wNr:
		if bpf.Op(ins.Op) == bpf.JSET && k == syscalls.X32Bit {
			return "x32 syscall?"
		}
		if st.audit == syscalls.AuditX86_64 && k == syscalls.X32Bit && bpf.Op(ins.Op) == bpf.JGE {
			return "x32 syscall?"
		}
		if k == 0xffffffff {
			return op + " -1 (a tracer skipped the syscall)"
		}
		name := SyscallName(st.audit, k)
		if bpf.Op(ins.Op) == bpf.JGT {
			if nn := SyscallName(st.audit, k+1); nn != "" {
				return "> " + fmt.Sprint(k) + ", from " + nn
			}
		}
		if name == "" {
			if st.audit == 0 {
				return ""
			}
			if a := archForNr(st.audit, k); a != nil && k > a.Max() {
				return fmt.Sprintf("%s %d: newer than berth's %s table", op, k, a.Name)
			}
			return ""
		}
		if bpf.Op(ins.Op) == bpf.JEQ {
			return name
		}
		return op + " " + name
	case wArgLo, wArgHi:
		half := "low"
		if st.a == wArgHi {
			half = "high"
		}
		return fmt.Sprintf("arg%d %s half %s %#x", st.arg, half, op, k)
	}
	return ""
}

// Arches lists the audit values prog compares the architecture with.
func Arches(prog []bpf.Instruction) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	notes := Annotate(prog)
	for pc, ins := range prog {
		if bpf.Class(ins.Op) == bpf.JMP && bpf.Op(ins.Op) == bpf.JEQ && notes[pc] != "" && archByAudit(ins.K) != nil && notes[pc] == ArchName(ins.K) && !seen[ins.K] {
			seen[ins.K] = true
			out = append(out, ins.K)
		}
	}
	return out
}

// byteOrder of an audit value.
func byteOrder(audit uint32) binary.ByteOrder {
	if audit&0x40000000 == 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Constants lists the values argument comparisons in prog use, as 64-bit
// probe values (each half on its own and combined with the common other
// halves), with their neighbours: the values where a verdict can change.
func Constants(progs ...[]bpf.Instruction) []uint64 {
	set := map[uint64]bool{0: true, 1: true, 0xffffffff: true, ^uint64(0): true, 1 << 32: true}
	for _, prog := range progs {
		notes := Annotate(prog)
		for pc, ins := range prog {
			if bpf.Class(ins.Op) != bpf.JMP || bpf.Op(ins.Op) == bpf.JA || len(notes[pc]) < 3 || notes[pc][:3] != "arg" {
				continue
			}
			for _, d := range []uint32{0, 1, ^uint32(0)} {
				v := uint64(ins.K + d)
				set[v] = true
				set[v<<32] = true
				set[v|0xffffffff00000000] = true
				set[v<<32|0xffffffff] = true
			}
		}
	}
	out := make([]uint64, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
