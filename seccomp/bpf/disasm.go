package bpf

import (
	"fmt"
	"io"
	"strings"
)

// Seccomp return values (<linux/seccomp.h>).
const (
	RetKillProcess = 0x80000000
	RetKillThread  = 0x00000000
	RetTrap        = 0x00030000
	RetErrno       = 0x00050000
	RetUserNotif   = 0x7fc00000
	RetTrace       = 0x7ff00000
	RetLog         = 0x7ffc0000
	RetAllow       = 0x7fff0000

	RetActionFull = 0xffff0000
	RetData       = 0x0000ffff
)

// ActionString names a seccomp return value the way scmp_bpf_disasm
// does: ALLOW, KILL, KILL_PROCESS, TRAP, ERRNO(n), TRACE(n), LOG, and
// NOTIFY for SECCOMP_RET_USER_NOTIF.
func ActionString(k uint32) string {
	data := k & RetData
	switch k & RetActionFull {
	case RetKillProcess:
		return "KILL_PROCESS"
	case RetKillThread:
		return "KILL"
	case RetTrap:
		return "TRAP"
	case RetErrno:
		return fmt.Sprintf("ERRNO(%d)", data)
	case RetTrace:
		return fmt.Sprintf("TRACE(%d)", data)
	case RetLog:
		return "LOG"
	case RetAllow:
		return "ALLOW"
	case RetUserNotif:
		return "NOTIFY"
	}
	return fmt.Sprintf("0x%.8x", k)
}

// Mnemonic is the short name of an opcode ("ld", "jeq", "ret", ...).
func Mnemonic(op uint16) string {
	switch Class(op) {
	case LD:
		switch Size(op) {
		case H:
			return "ldh"
		case B:
			return "ldb"
		}
		return "ld"
	case LDX:
		return "ldx"
	case ST:
		return "st"
	case STX:
		return "stx"
	case ALU:
		return [...]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "???", "???", "???", "???", "???"}[Op(op)>>4]
	case JMP:
		return [...]string{"jmp", "jeq", "jgt", "jge", "jset", "???", "???", "???", "???", "???", "???", "???", "???", "???", "???", "???"}[Op(op)>>4]
	case RET:
		return "ret"
	case MISC:
		if op&0xf8 == TXA {
			return "txa"
		}
		return "tax"
	}
	return "???"
}

// Operands renders an instruction's arguments as scmp_bpf_disasm does;
// pc is the instruction's index (jump targets are absolute).
func Operands(ins Instruction, pc int) string {
	switch Class(ins.Op) {
	case LD, LDX:
		switch Mode(ins.Op) {
		case ABS:
			return fmt.Sprintf("$data[%d]", ins.K)
		case MEM:
			return fmt.Sprintf("$temp[%d]", ins.K)
		case IMM:
			return fmt.Sprintf("%d", ins.K)
		case IND:
			return fmt.Sprintf("$data[X + %d]", ins.K)
		case LEN:
			return "len($data)"
		case MSH:
			return fmt.Sprintf("4 * $data[%d] & 0x0f", ins.K)
		}
	case ST, STX:
		return fmt.Sprintf("$temp[%d]", ins.K)
	case ALU:
		if Src(ins.Op) == K && (Op(ins.Op) == OR || Op(ins.Op) == AND) {
			return fmt.Sprintf("0x%.8x", ins.K)
		}
		if Src(ins.Op) == X {
			return "X"
		}
		return fmt.Sprintf("%d", ins.K)
	case JMP:
		if Op(ins.Op) == JA {
			return fmt.Sprintf("%.4d", pc+1+int(ins.K))
		}
		k := fmt.Sprintf("%-4d", ins.K)
		if Src(ins.Op) == X {
			k = "X   "
		}
		return fmt.Sprintf("%s true:%.4d false:%.4d", k, pc+1+int(ins.Jt), pc+1+int(ins.Jf))
	case RET:
		if ins.Op&0x18 == A {
			return "$acc"
		}
		return ActionString(ins.K)
	case MISC:
		return ""
	}
	return "???"
}

// Disasm writes a listing of prog in the layout of libseccomp's
// scmp_bpf_disasm. note, when not nil, may return a comment for an
// instruction; it is printed after "# " at the end of the line.
func Disasm(w io.Writer, prog []Instruction, note func(pc int) string) error {
	var b strings.Builder
	b.WriteString(" line  OP   JT   JF   K\n")
	b.WriteString("=================================\n")
	for pc, ins := range prog {
		line := fmt.Sprintf(" %.4d: 0x%.2x 0x%.2x 0x%.2x 0x%.8x   %-3s %s", pc, ins.Op, ins.Jt, ins.Jf, ins.K, Mnemonic(ins.Op), Operands(ins, pc))
		if note != nil {
			if n := note(pc); n != "" {
				if pad := 62 - len(line); pad > 0 {
					line += strings.Repeat(" ", pad)
				}
				line += " # " + n
			}
		}
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
