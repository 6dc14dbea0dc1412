package bpf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

// talkProgram is the filter the talk dumps from a container running the
// deny-unshare profile (libseccomp's output), instruction by instruction.
var talkProgram = []Instruction{
	{0x20, 0, 0, 0x00000004},
	{0x15, 0, 5, 0xc000003e},
	{0x20, 0, 0, 0x00000000},
	{0x35, 0, 1, 0x40000000},
	{0x15, 0, 2, 0xffffffff},
	{0x15, 1, 0, 0x00000110},
	{0x06, 0, 0, 0x7fff0000},
	{0x06, 0, 0, 0x00000000},
}

const auditX86_64 = 0xc000003e

func run(t *testing.T, prog []Instruction, d Data) Result {
	t.Helper()
	r, err := Run(prog, &d, binary.LittleEndian, true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunTalkProgram(t *testing.T) {
	if err := Validate(talkProgram); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		d     Data
		want  uint32
		steps int
	}{
		{Data{Nr: 272, Arch: auditX86_64}, RetKillThread, 6},        // unshare
		{Data{Nr: 1, Arch: auditX86_64}, RetAllow, 6},               // write
		{Data{Nr: 0x40000001, Arch: auditX86_64}, RetKillThread, 6}, // x32: bad arch
		{Data{Nr: 0xffffffff, Arch: auditX86_64}, RetAllow, 7},      // -1
		{Data{Nr: 1, Arch: 0x40000003}, RetKillThread, 3},           // i386
	}
	for _, c := range cases {
		r := run(t, talkProgram, c.d)
		if r.Action != c.want || r.Steps != c.steps || len(r.Trace) != c.steps {
			t.Errorf("nr %#x arch %#x: %s in %d steps (trace %v), want %s in %d", c.d.Nr, c.d.Arch, ActionString(r.Action), r.Steps, r.Trace, ActionString(c.want), c.steps)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		raw := Encode(talkProgram, order)
		if len(raw) != 64 {
			t.Fatalf("%d bytes", len(raw))
		}
		back, err := Decode(raw, order)
		if err != nil {
			t.Fatal(err)
		}
		for i := range back {
			if back[i] != talkProgram[i] {
				t.Fatalf("instruction %d: %+v != %+v", i, back[i], talkProgram[i])
			}
		}
	}
	le := Encode(talkProgram[:1], binary.LittleEndian)
	if !bytes.Equal(le, []byte{0x20, 0, 0, 0, 4, 0, 0, 0}) {
		t.Fatalf("little-endian encoding % x", le)
	}
	if _, err := Decode(make([]byte, 12), binary.LittleEndian); err == nil {
		t.Fatal("12 bytes decoded")
	}
}

func TestValidateRejects(t *testing.T) {
	ret := Stmt(RET|K, RetAllow)
	cases := map[string][]Instruction{
		"empty":            nil,
		"no final return":  {Stmt(LD|W|ABS, 0)},
		"unaligned load":   {Stmt(LD|W|ABS, 2), ret},
		"load past data":   {Stmt(LD|W|ABS, 64), ret},
		"byte load":        {Stmt(LD|B|ABS, 0), ret},
		"jump past end":    {Jump(JMP|JEQ|K, 1, 5, 0), ret},
		"ja past end":      {Stmt(JMP|JA, 1), ret},
		"division by zero": {Stmt(ALU|DIV|K, 0), ret},
		"shift by 32":      {Stmt(ALU|LSH|K, 32), ret},
		"scratch slot 16":  {Stmt(ST, 16), ret},
		"uninit scratch":   {Stmt(LD|MEM, 3), ret},
		"uninit on a path": {Jump(JMP|JEQ|K, 1, 0, 1), Stmt(ST, 3), Stmt(LD|MEM, 3), ret},
		"unknown opcode":   {Stmt(0xff, 0), ret},
	}
	for name, prog := range cases {
		if err := Validate(prog); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	long := make([]Instruction, MaxInstructions+1)
	for i := range long {
		long[i] = ret
	}
	if err := Validate(long); err == nil || !strings.Contains(err.Error(), "4096") {
		t.Errorf("4097 instructions: %v", err)
	}
	if err := Validate(long[:MaxInstructions]); err != nil {
		t.Errorf("4096 instructions: %v", err)
	}
	ok := []Instruction{Stmt(LD|W|ABS, 16), Stmt(ST, 0), Stmt(LDX|MEM, 0), Stmt(MISC|TXA, 0), Stmt(ALU|AND|K, 7), Jump(JMP|JSET|X, 0, 0, 1), ret, Stmt(RET|A, 0)}
	if err := Validate(ok); err != nil {
		t.Errorf("valid program rejected: %v", err)
	}
}

func TestRunALUAndMemory(t *testing.T) {
	prog := []Instruction{
		Stmt(LD|W|ABS, OffArgs), // arg0 low
		Stmt(ALU|ADD|K, 3),
		Stmt(ST, 2),
		Stmt(LDX|MEM, 2),
		Stmt(LD|IMM, 100),
		Stmt(ALU|SUB|X, 0),
		Stmt(MISC|TAX, 0),
		Stmt(LD|W|LEN, 0),
		Jump(JMP|JEQ|K, 64, 0, 1),
		Stmt(MISC|TXA, 0),
		Stmt(RET|A, 0),
	}
	if err := Validate(prog); err != nil {
		t.Fatal(err)
	}
	r := run(t, prog, Data{Args: [6]uint64{7}})
	if r.Action != 90 { // 100 - (7+3)
		t.Fatalf("got %d", r.Action)
	}
	// Big-endian: the low half of an argument is the second word.
	lo, hi := ArgOffsets(0, true)
	if lo != 20 || hi != 16 {
		t.Fatalf("big-endian offsets %d %d", lo, hi)
	}
	d := Data{Args: [6]uint64{0x1122334455667788}}
	res, err := Run([]Instruction{Stmt(LD|W|ABS, lo), Stmt(RET|A, 0)}, &d, binary.BigEndian, false)
	if err != nil || res.Action != 0x55667788 {
		t.Fatalf("big-endian low word: %#x %v", res.Action, err)
	}
}

func TestConstAllow(t *testing.T) {
	if !ConstAllow(talkProgram, auditX86_64, 1) {
		t.Error("write is not constant-allow")
	}
	if ConstAllow(talkProgram, auditX86_64, 272) {
		t.Error("unshare is constant-allow")
	}
	withArg := []Instruction{Stmt(LD|W|ABS, OffNr), Jump(JMP|JEQ|K, 5, 0, 2), Stmt(LD|W|ABS, OffArgs), Stmt(RET|A, 0), Stmt(RET|K, RetAllow)}
	if ConstAllow(withArg, auditX86_64, 5) {
		t.Error("a syscall whose verdict loads an argument is constant-allow")
	}
	if !ConstAllow(withArg, auditX86_64, 6) {
		t.Error("nr 6 should be constant-allow")
	}
}

// The listing has scmp_bpf_disasm's layout, as the talk shows it.
func TestDisasmLayout(t *testing.T) {
	var b strings.Builder
	if err := Disasm(&b, talkProgram, func(pc int) string {
		if pc == 0 {
			return "load architecture"
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	want := []string{
		" line  OP   JT   JF   K",
		"=================================",
		" 0000: 0x20 0x00 0x00 0x00000004   ld  $data[4]",
		" 0001: 0x15 0x00 0x05 0xc000003e   jeq 3221225534 true:0002 false:0007",
		" 0002: 0x20 0x00 0x00 0x00000000   ld  $data[0]",
		" 0003: 0x35 0x00 0x01 0x40000000   jge 1073741824 true:0004 false:0005",
		" 0004: 0x15 0x00 0x02 0xffffffff   jeq 4294967295 true:0005 false:0007",
		" 0005: 0x15 0x01 0x00 0x00000110   jeq 272  true:0007 false:0006",
		" 0006: 0x06 0x00 0x00 0x7fff0000   ret ALLOW",
		" 0007: 0x06 0x00 0x00 0x00000000   ret KILL",
	}
	for i, w := range want {
		got := lines[i]
		if i == 2 {
			if !strings.HasPrefix(got, w) || !strings.HasSuffix(got, "# load architecture") {
				t.Errorf("line %d: %q", i, got)
			}
			continue
		}
		if got != w {
			t.Errorf("line %d:\n got %q\nwant %q", i, got, w)
		}
	}
	for k, s := range map[uint32]string{RetErrno | 38: "ERRNO(38)", RetTrace | 5: "TRACE(5)", RetLog: "LOG", RetTrap: "TRAP", RetKillProcess: "KILL_PROCESS", RetUserNotif: "NOTIFY", 0x12345678: "0x12345678"} {
		if got := ActionString(k); got != s {
			t.Errorf("ActionString(%#x) = %s, want %s", k, got, s)
		}
	}
}

func TestProgramJSON(t *testing.T) {
	b, err := json.Marshal(Program(talkProgram))
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != '"' || len(b) > 100 {
		t.Fatalf("not compact: %s", b)
	}
	var back Program
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var old Program
	if err := json.Unmarshal([]byte(`[{"op":32,"jt":0,"jf":0,"k":4},{"op":6,"k":2147418112}]`), &old); err != nil || len(old) != 2 || old[1].K != RetAllow {
		t.Fatalf("array form: %v %+v", err, old)
	}
	for i := range talkProgram {
		if back[i] != talkProgram[i] {
			t.Fatalf("instruction %d differs", i)
		}
	}
	if err := json.Unmarshal([]byte(`"AAAA"`), &back); err == nil {
		t.Fatal("3 bytes decoded as a program")
	}
}
