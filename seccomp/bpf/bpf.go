// Package bpf is berth's classic-BPF toolchain for seccomp filters: the
// instruction type, the raw encoding the kernel and libseccomp's
// seccomp_export_bpf use, the kernel's validity rules for seccomp
// programs, an interpreter that counts the instructions a syscall walks,
// the kernel's constant-action emulation (the seccomp action cache), and a
// disassembler in the layout of libseccomp's scmp_bpf_disasm.
//
// It knows nothing of profiles, syscall names or processes: callers pass
// annotations in. It never loads a filter.
package bpf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Instruction is one classic-BPF instruction (struct sock_filter).
type Instruction struct {
	Op uint16 `json:"op"`
	Jt uint8  `json:"jt"`
	Jf uint8  `json:"jf"`
	K  uint32 `json:"k"`
}

// Instruction classes, sizes, modes, operations and sources
// (<linux/filter.h>, <linux/bpf_common.h>).
const (
	LD   = 0x00
	LDX  = 0x01
	ST   = 0x02
	STX  = 0x03
	ALU  = 0x04
	JMP  = 0x05
	RET  = 0x06
	MISC = 0x07

	W = 0x00
	H = 0x08
	B = 0x10

	IMM = 0x00
	ABS = 0x20
	IND = 0x40
	MEM = 0x60
	LEN = 0x80
	MSH = 0xa0

	ADD = 0x00
	SUB = 0x10
	MUL = 0x20
	DIV = 0x30
	OR  = 0x40
	AND = 0x50
	LSH = 0x60
	RSH = 0x70
	NEG = 0x80
	MOD = 0x90
	XOR = 0xa0

	JA   = 0x00
	JEQ  = 0x10
	JGT  = 0x20
	JGE  = 0x30
	JSET = 0x40

	K = 0x00
	X = 0x08
	A = 0x10 // RET source: the accumulator

	TAX = 0x00
	TXA = 0x80
)

// Class, Size, Mode, Op and Src extract the fields of an opcode.
func Class(op uint16) uint16 { return op & 0x07 }
func Size(op uint16) uint16  { return op & 0x18 }
func Mode(op uint16) uint16  { return op & 0xe0 }
func Op(op uint16) uint16    { return op & 0xf0 }
func Src(op uint16) uint16   { return op & 0x08 }

// MaxInstructions is the kernel's limit on a filter's length (BPF_MAXINSNS).
const MaxInstructions = 4096

// MemWords is the number of scratch memory slots (BPF_MEMWORDS).
const MemWords = 16

// Stmt builds a non-jump instruction.
func Stmt(op uint16, k uint32) Instruction { return Instruction{Op: op, K: k} }

// Jump builds a conditional jump.
func Jump(op uint16, k uint32, jt, jf uint8) Instruction {
	return Instruction{Op: op, Jt: jt, Jf: jf, K: k}
}

// Encode writes prog as the kernel reads it (8 bytes per instruction), in
// the byte order of the architecture that will run it; for the host that
// is binary.NativeEndian, which is what seccomp_export_bpf writes.
func Encode(prog []Instruction, order binary.ByteOrder) []byte {
	out := make([]byte, 8*len(prog))
	for i, ins := range prog {
		b := out[8*i:]
		order.PutUint16(b[0:2], ins.Op)
		b[2] = ins.Jt
		b[3] = ins.Jf
		order.PutUint32(b[4:8], ins.K)
	}
	return out
}

// Decode parses a raw program written by Encode.
func Decode(raw []byte, order binary.ByteOrder) ([]Instruction, error) {
	if len(raw)%8 != 0 {
		return nil, fmt.Errorf("raw BPF is %d bytes, not a multiple of 8 (one struct sock_filter)", len(raw))
	}
	prog := make([]Instruction, len(raw)/8)
	for i := range prog {
		b := raw[8*i:]
		prog[i] = Instruction{Op: order.Uint16(b[0:2]), Jt: b[2], Jf: b[3], K: order.Uint32(b[4:8])}
	}
	return prog, nil
}

// SeccompDataSize is sizeof(struct seccomp_data): nr, arch,
// instruction_pointer and six 64-bit arguments.
const SeccompDataSize = 64

// Offsets in struct seccomp_data.
const (
	OffNr   = 0
	OffArch = 4
	OffIP   = 8
	OffArgs = 16
)

// ArgOffsets returns the offsets of the low and high 32-bit halves of
// argument i for a little- or big-endian architecture.
func ArgOffsets(i int, bigEndian bool) (lo, hi uint32) {
	base := uint32(OffArgs + 8*i)
	if bigEndian {
		return base + 4, base
	}
	return base, base + 4
}

// Validate applies the kernel's checks for a seccomp filter
// (bpf_check_classic and seccomp_check_filter): length 1..4096, only the
// opcodes seccomp accepts, aligned word loads inside struct seccomp_data,
// jumps inside the program, no division by a zero constant, scratch
// memory in range and written before it is read, and a final return.
func Validate(prog []Instruction) error {
	n := len(prog)
	if n == 0 {
		return fmt.Errorf("empty BPF program")
	}
	if n > MaxInstructions {
		return fmt.Errorf("BPF program has %d instructions, the kernel accepts at most %d", n, MaxInstructions)
	}
	for pc, ins := range prog {
		if err := checkInsn(pc, n, ins); err != nil {
			return err
		}
	}
	if Class(prog[n-1].Op) != RET {
		return fmt.Errorf("instruction %d: a BPF program must end with a return", n-1)
	}
	return checkMemInit(prog)
}

func checkInsn(pc, n int, ins Instruction) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("instruction %d (%#04x): %s", pc, ins.Op, fmt.Sprintf(format, a...))
	}
	switch ins.Op {
	case LD | W | ABS:
		if ins.K%4 != 0 || ins.K >= SeccompDataSize {
			return bad("load of $data[%d] is outside struct seccomp_data or unaligned", ins.K)
		}
	case LD | W | LEN, LDX | W | LEN, LD | IMM, LDX | IMM, MISC | TAX, MISC | TXA, RET | K, RET | A:
	case LD | MEM, LDX | MEM, ST, STX:
		if ins.K >= MemWords {
			return bad("scratch memory slot %d out of range", ins.K)
		}
	case ALU | ADD | K, ALU | ADD | X, ALU | SUB | K, ALU | SUB | X,
		ALU | MUL | K, ALU | MUL | X, ALU | DIV | X, ALU | MOD | X,
		ALU | AND | K, ALU | AND | X, ALU | OR | K, ALU | OR | X,
		ALU | XOR | K, ALU | XOR | X, ALU | LSH | X, ALU | RSH | X, ALU | NEG:
	case ALU | DIV | K, ALU | MOD | K:
		if ins.K == 0 {
			return bad("division by zero")
		}
	case ALU | LSH | K, ALU | RSH | K:
		if ins.K >= 32 {
			return bad("shift by %d", ins.K)
		}
	case JMP | JA:
		if uint64(pc)+1+uint64(ins.K) >= uint64(n) {
			return bad("jump to %d is past the end", uint64(pc)+1+uint64(ins.K))
		}
	case JMP | JEQ | K, JMP | JEQ | X, JMP | JGE | K, JMP | JGE | X,
		JMP | JGT | K, JMP | JGT | X, JMP | JSET | K, JMP | JSET | X:
		if pc+1+int(ins.Jt) >= n || pc+1+int(ins.Jf) >= n {
			return bad("conditional jump past the end")
		}
	default:
		return bad("opcode not allowed in a seccomp filter")
	}
	return nil
}

// checkMemInit rejects reads of scratch memory that some path reaches
// before writing it, as the kernel's check_load_and_stores does.
func checkMemInit(prog []Instruction) error {
	masks := make([]uint16, len(prog))
	for i := range masks {
		masks[i] = 0xffff
	}
	memvalid := uint16(0)
	for pc, ins := range prog {
		memvalid &= masks[pc]
		switch ins.Op {
		case ST, STX:
			memvalid |= 1 << ins.K
		case LD | MEM, LDX | MEM:
			if memvalid&(1<<ins.K) == 0 {
				return fmt.Errorf("instruction %d: reads scratch memory slot %d before it is written", pc, ins.K)
			}
		}
		if Class(ins.Op) == JMP {
			if Op(ins.Op) == JA {
				masks[pc+1+int(ins.K)] &= memvalid
				memvalid = 0xffff
			} else {
				masks[pc+1+int(ins.Jt)] &= memvalid
				masks[pc+1+int(ins.Jf)] &= memvalid
				memvalid = 0xffff
			}
		}
	}
	return nil
}

// Program is a list of instructions that marshals to JSON compactly: the
// raw little-endian encoding in base64 (a Docker default filter is ~2 KB
// instead of ~12 KB of objects, and decodes ten times faster, which the
// container's init stage and the compile cache both pay for). It also
// reads the array-of-objects form.
type Program []Instruction

// MarshalJSON encodes the program as a base64 string.
func (p Program) MarshalJSON() ([]byte, error) {
	return json.Marshal(Encode(p, binary.LittleEndian))
}

// UnmarshalJSON decodes a base64 string (or an array of instructions).
func (p *Program) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var ins []Instruction
		if err := json.Unmarshal(b, &ins); err != nil {
			return err
		}
		*p = ins
		return nil
	}
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("BPF program: %w", err)
	}
	ins, err := Decode(raw, binary.LittleEndian)
	if err != nil {
		return err
	}
	*p = ins
	return nil
}
