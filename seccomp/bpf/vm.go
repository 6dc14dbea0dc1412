package bpf

import (
	"encoding/binary"
	"fmt"
)

// Data is struct seccomp_data: what a seccomp filter sees of a syscall.
type Data struct {
	Nr   uint32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// Bytes lays d out as the kernel does on an architecture of the given
// byte order.
func (d *Data) Bytes(order binary.ByteOrder) [SeccompDataSize]byte {
	var b [SeccompDataSize]byte
	order.PutUint32(b[OffNr:], d.Nr)
	order.PutUint32(b[OffArch:], d.Arch)
	order.PutUint64(b[OffIP:], d.IP)
	for i, a := range d.Args {
		order.PutUint64(b[OffArgs+8*i:], a)
	}
	return b
}

// Result is the outcome of running a filter on one syscall.
type Result struct {
	Action uint32 // the value returned (SECCOMP_RET_*)
	Steps  int    // instructions executed, the return included
	Trace  []int  // program counters executed, when tracing was asked for
}

// Run interprets prog on data laid out for an architecture of the given
// byte order (words are loaded in that order, as the kernel of that
// architecture would). The program must have passed Validate; Run still
// refuses to run off the end or loop (classic BPF only jumps forward).
func Run(prog []Instruction, data *Data, order binary.ByteOrder, trace bool) (Result, error) {
	raw := data.Bytes(order)
	var (
		a, x uint32
		mem  [MemWords]uint32
		res  Result
	)
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		res.Steps++
		if trace {
			res.Trace = append(res.Trace, pc)
		}
		switch Class(ins.Op) {
		case LD:
			switch ins.Op {
			case LD | W | ABS:
				if ins.K%4 != 0 || ins.K >= SeccompDataSize {
					return res, fmt.Errorf("instruction %d: load of $data[%d] outside seccomp_data", pc, ins.K)
				}
				a = order.Uint32(raw[ins.K:])
			case LD | W | LEN:
				a = SeccompDataSize
			case LD | IMM:
				a = ins.K
			case LD | MEM:
				if ins.K >= MemWords {
					return res, fmt.Errorf("instruction %d: bad scratch slot %d", pc, ins.K)
				}
				a = mem[ins.K]
			default:
				return res, fmt.Errorf("instruction %d: unsupported load %#04x", pc, ins.Op)
			}
		case LDX:
			switch ins.Op {
			case LDX | W | LEN:
				x = SeccompDataSize
			case LDX | IMM:
				x = ins.K
			case LDX | MEM:
				if ins.K >= MemWords {
					return res, fmt.Errorf("instruction %d: bad scratch slot %d", pc, ins.K)
				}
				x = mem[ins.K]
			default:
				return res, fmt.Errorf("instruction %d: unsupported load %#04x", pc, ins.Op)
			}
		case ST, STX:
			if ins.K >= MemWords {
				return res, fmt.Errorf("instruction %d: bad scratch slot %d", pc, ins.K)
			}
			if Class(ins.Op) == ST {
				mem[ins.K] = a
			} else {
				mem[ins.K] = x
			}
		case ALU:
			v := ins.K
			if Src(ins.Op) == X {
				v = x
			}
			switch Op(ins.Op) {
			case ADD:
				a += v
			case SUB:
				a -= v
			case MUL:
				a *= v
			case DIV:
				if v == 0 {
					res.Action = 0 // the kernel returns 0 (KILL) on division by zero
					return res, nil
				}
				a /= v
			case MOD:
				if v == 0 {
					res.Action = 0
					return res, nil
				}
				a %= v
			case OR:
				a |= v
			case AND:
				a &= v
			case XOR:
				a ^= v
			case LSH:
				a <<= v & 31
			case RSH:
				a >>= v & 31
			case NEG:
				a = -a
			default:
				return res, fmt.Errorf("instruction %d: unsupported ALU op %#04x", pc, ins.Op)
			}
		case JMP:
			if Op(ins.Op) == JA {
				pc += int(ins.K)
				continue
			}
			v := ins.K
			if Src(ins.Op) == X {
				v = x
			}
			var cond bool
			switch Op(ins.Op) {
			case JEQ:
				cond = a == v
			case JGT:
				cond = a > v
			case JGE:
				cond = a >= v
			case JSET:
				cond = a&v != 0
			default:
				return res, fmt.Errorf("instruction %d: unsupported jump %#04x", pc, ins.Op)
			}
			if cond {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case RET:
			switch ins.Op {
			case RET | K:
				res.Action = ins.K
			case RET | A:
				res.Action = a
			default:
				return res, fmt.Errorf("instruction %d: unsupported return %#04x", pc, ins.Op)
			}
			return res, nil
		case MISC:
			switch ins.Op {
			case MISC | TAX:
				x = a
			case MISC | TXA:
				a = x
			default:
				return res, fmt.Errorf("instruction %d: unsupported misc op %#04x", pc, ins.Op)
			}
		}
	}
	return res, fmt.Errorf("program ran off its end without returning")
}

// ConstAllow reports whether the kernel's seccomp action cache
// (seccomp_cache_prepare, Linux 5.11) marks syscall nr of the
// architecture arch as always allowed by this filter: emulating the
// filter with only nr and arch known must reach "ret ALLOW" through
// instructions the kernel's emulator understands (loads of nr and arch,
// constant jumps, AND with a constant).
func ConstAllow(prog []Instruction, arch, nr uint32) bool {
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Op {
		case LD | W | ABS:
			switch ins.K {
			case OffNr:
				a = nr
			case OffArch:
				a = arch
			default:
				return false
			}
		case RET | K:
			return ins.K == RetAllow
		case JMP | JA:
			pc += int(ins.K)
		case JMP | JEQ | K, JMP | JGE | K, JMP | JGT | K, JMP | JSET | K:
			var cond bool
			switch Op(ins.Op) {
			case JEQ:
				cond = a == ins.K
			case JGE:
				cond = a >= ins.K
			case JGT:
				cond = a > ins.K
			case JSET:
				cond = a&ins.K != 0
			}
			if cond {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case ALU | AND | K:
			a &= ins.K
		default:
			return false
		}
	}
	return false
}
