package seccomp

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

func u(v uint) *uint { return &v }

// Anything the compiler cannot honour is an error that says what.
func TestCompileErrors(t *testing.T) {
	allow := specs.ActAllow
	sc := func(s specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{s}}
	}
	cases := []struct {
		cfg  *specs.LinuxSeccomp
		want string
	}{
		{nil, "no seccomp configuration"},
		{&specs.LinuxSeccomp{}, "defaultAction: action is missing"},
		{&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, `unknown action "SCMP_ACT_NOPE"`},
		{&specs.LinuxSeccomp{DefaultAction: allow, DefaultErrnoRet: u(1)}, "defaultAction: errnoRet is set but action SCMP_ACT_ALLOW takes no errno"},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(5000)}, "errnoRet 5000 is out of range"},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "SCMP_ACT_NOTIFY cannot be the default action"},
		{&specs.LinuxSeccomp{DefaultAction: allow, Architectures: []specs.Arch{"SCMP_ARCH_PDP11"}}, `architectures[0]: "SCMP_ARCH_PDP11" is not an architecture`},
		{&specs.LinuxSeccomp{DefaultAction: allow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, `flags[0]: unknown seccomp flag "SECCOMP_FILTER_FLAG_FAST"`},
		{&specs.LinuxSeccomp{DefaultAction: allow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}}, "WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY"},
		{&specs.LinuxSeccomp{DefaultAction: allow, ListenerMetadata: "x"}, "listenerMetadata is set without listenerPath"},
		{sc(specs.LinuxSyscall{Action: specs.ActKill}), "syscalls[0]: no syscall names"},
		{sc(specs.LinuxSyscall{Names: []string{"read", ""}, Action: specs.ActKill}), "syscalls[0].names[1]: empty syscall name"},
		{sc(specs.LinuxSyscall{Names: []string{"read"}}), "syscalls[0]: action is missing"},
		{sc(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: u(3)}), "syscalls[0]: errnoRet is set but action SCMP_ACT_KILL"},
		{sc(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKill, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}), "syscalls[0].args[0]: argument index 6 is out of range"},
		{sc(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKill, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_BETWEEN"}}}), `unknown operator "SCMP_CMP_BETWEEN"`},
		{sc(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActKill, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, ValueTwo: 3}}}), "valueTwo is only used by SCMP_CMP_MASKED_EQ"},
		{sc(specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActNotify}), "SCMP_ACT_NOTIFY cannot be used for write"},
		{sc(specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActNotify}), "SCMP_ACT_NOTIFY is used but no listenerPath"},
	}
	for _, c := range cases {
		_, err := Compile(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v:\n error %v\n want %q", c.cfg, err, c.want)
		}
	}
}

func TestCompileWarningsAndFlags(t *testing.T) {
	p, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86, specs.ArchS390},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"},
		ListenerPath:  "/tmp/nothing",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "no_such_call"}, Action: specs.ActAllow},
			{Names: []string{"write"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 0, Op: specs.OpEqualTo, Value: 2}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(p.Warnings, "\n")
	for _, w := range []string{`unknown syscall "no_such_call" ignored`, "berth has no syscall table for SCMP_ARCH_S390", "several conditions on one argument", "listenerPath is set but no rule uses SCMP_ACT_NOTIFY"} {
		if !strings.Contains(all, w) {
			t.Errorf("no warning %q in:\n%s", w, all)
		}
	}
	if p.Flags != FlagLog|FlagSpecAllow|FlagTsync || p.Notify {
		t.Errorf("flags %#x notify %v", p.Flags, p.Notify)
	}
	// write(1) and write(2) are allowed (ORed, as runc splits the rule).
	native := syscalls.Native()
	for fd, want := range map[uint64]uint32{1: bpf.RetAllow, 2: bpf.RetAllow, 3: bpf.RetErrno | 1} {
		nr, _ := native.Nr("write")
		d := bpf.Data{Nr: nr, Arch: native.Audit, Args: [6]uint64{fd}}
		r, err := bpf.Run(p.Instructions, &d, ByteOrder(native.SCMP), false)
		if err != nil || r.Action != want {
			t.Errorf("write(%d): %s, want %s (%v)", fd, bpf.ActionString(r.Action), bpf.ActionString(want), err)
		}
	}
}

// A program beyond the kernel's 4096 instructions is refused, not cut.
func TestCompileInstructionLimit(t *testing.T) {
	arch, _ := syscalls.Lookup("x86_64")
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32}}
	for i, sc := range arch.Syscalls() {
		v := uint64(i)
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{Names: []string{sc.Name}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpEqualTo, Value: v<<32 | 7}, {Index: 1, Op: specs.OpGreaterThan, Value: v<<32 | 9}, {Index: 2, Op: specs.OpMaskedEqual, Value: 0xff00ff00ff, ValueTwo: v}}})
	}
	_, err := CompileFor(cfg, arch)
	if err == nil || !strings.Contains(err.Error(), "more than the kernel's limit of 4096") {
		t.Fatalf("got %v", err)
	}
}

// Load fails clearly without no_new_privs or CAP_SYS_ADMIN, and the
// program refuses another architecture.
func TestLoadErrors(t *testing.T) {
	p := &Program{Arch: "SCMP_ARCH_S390X", Instructions: []bpf.Instruction{bpf.Stmt(bpf.RET|bpf.K, bpf.RetAllow)}}
	if _, err := p.Load(); err == nil || !strings.Contains(err.Error(), "cannot be loaded on this machine") {
		t.Errorf("foreign program: %v", err)
	}
	native := syscalls.Native()
	bad := &Program{Arch: native.SCMP, Instructions: []bpf.Instruction{bpf.Stmt(bpf.LD|bpf.W|bpf.ABS, 3)}}
	if _, err := bad.Load(); err == nil || !strings.Contains(err.Error(), "invalid program") {
		t.Errorf("invalid program: %v", err)
	}
	for _, f := range []uint{FlagTsync, FlagLog, FlagSpecAllow, FlagNewListener} {
		if !FlagAvailable(f) {
			t.Errorf("kernel without flag %#x (the probe is wrong?)", f)
		}
	}
	if FlagAvailable(1 << 20) {
		t.Error("an unknown flag probes as available")
	}
	for _, a := range []uint32{bpf.RetAllow, bpf.RetKillProcess, bpf.RetLog, bpf.RetErrno | 5} {
		if err := ActionAvailable(a); err != nil {
			t.Errorf("%s: %v", bpf.ActionString(a), err)
		}
	}
	if err := ActionAvailable(0x12340000); err == nil {
		t.Error("a made-up action probes as available")
	}
}

// The cache: a second compile is served from memory, a fresh process
// (memory cache reset) from disk, and a corrupted entry is ignored.
func TestCache(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}}
	dir := t.TempDir()
	old := CacheDir
	CacheDir = dir + "/c"
	defer func() { CacheDir = old }()
	ResetMemoryCache()
	a, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := cacheKey(cfg, syscalls.Native())
	if _, err := osStat(CacheDir + "/" + key + ".json"); err != nil {
		t.Fatalf("no disk entry: %v", err)
	}
	ResetMemoryCache()
	if p := cacheGet(key); p == nil || len(p.Instructions) != len(a.Instructions) {
		t.Fatal("disk entry not read back")
	}
	// A changed configuration is a different key.
	cfg2 := *cfg
	cfg2.DefaultAction = specs.ActLog
	if k2, _ := cacheKey(&cfg2, syscalls.Native()); k2 == key {
		t.Fatal("different configurations share a key")
	}
	// Corrupt the entry: it is ignored and the program recompiled.
	if err := osWriteFile(CacheDir+"/"+key+".json", []byte(`{"key":"`+key+`","program":{"instructions":[{"op":32,"k":3}]}}`)); err != nil {
		t.Fatal(err)
	}
	ResetMemoryCache()
	if p := cacheGet(key); p != nil {
		t.Fatal("an invalid cached program was accepted")
	}
	b, err := Compile(cfg)
	if err != nil || len(b.Instructions) != len(a.Instructions) {
		t.Fatalf("recompile: %v", err)
	}
	// A directory others can write is not trusted.
	osChmod(CacheDir, 0o777)
	ResetMemoryCache()
	if p := cacheGet(key); p != nil {
		t.Fatal("a world-writable cache directory was used")
	}
}

var (
	osStat      = os.Stat
	osChmod     = os.Chmod
	osWriteFile = func(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }
)
