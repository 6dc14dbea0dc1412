package seccomp

import (
	"fmt"
	"math/rand"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/profile"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// capSets are the capability sets the default profile is checked under.
var capSets = map[string][]string{
	"docker-default": caps.DockerDefault,
	"none":           nil,
	"all":            caps.All(caps.MaxKnown).Names(),
	"sys_admin":      append([]string{"CAP_SYS_ADMIN"}, caps.DockerDefault...),
	"ptrace+time":    {"CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYSLOG", "CAP_BPF"},
}

func dockerDefault(t testing.TB, arch *syscalls.Arch, capList []string) *specs.LinuxSeccomp {
	t.Helper()
	cfg, err := FromDockerJSONFor(profile.DefaultJSON(), profile.Env{Arch: arch, Caps: capList, Kernel: [2]int{6, 18}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// argValues are the values each argument takes in the equivalence checks:
// every constant the ruleset compares with, and its neighbours, in both
// halves of the 64-bit word.
func argValues(rs *ruleset, zeroExtend bool) []uint64 {
	set := map[uint64]bool{0: true, 1: true, ^uint64(0): true, 0xffffffff: true, 1 << 32: true}
	add := func(v uint64) {
		for _, d := range []uint64{0, 1, ^uint64(0)} {
			set[v+d] = true
		}
		set[v&0xffffffff] = true
		set[v>>32] = true
		set[v<<32] = true
		set[v|0xffffffff00000000] = true
	}
	for _, ar := range rs.archs {
		for _, sr := range ar.byNr {
			for _, r := range sr.rules {
				for _, c := range r.conds {
					add(c.v)
					add(c.v2)
					add(c.v | c.v2)
					add(^c.v & c.v2)
				}
			}
		}
	}
	var out []uint64
	for v := range set {
		if zeroExtend {
			v &= 0xffffffff
		}
		out = append(out, v)
	}
	return out
}

// checkEquivalent runs prog in the interpreter for every syscall number of
// every architecture of rs (and numbers around the tables' ends), with
// argument values at and around every compared constant, and compares
// with the reference semantics.
func checkEquivalent(t *testing.T, rs *ruleset, prog []bpf.Instruction) {
	t.Helper()
	rnd := rand.New(rand.NewSource(1))
	fails := 0
	for _, g := range rs.groups() {
		order := ByteOrder(g.plainOrX32().arch.SCMP)
		vals := argValues(rs, g.zeroExtends())
		for _, nr := range probeNumbers(g) {
			check := func(args [6]uint64) {
				d := bpf.Data{Nr: nr, Arch: g.audit, Args: args}
				got, err := bpf.Run(prog, &d, order, false)
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if want := rs.eval(&d); got.Action != want && fails < 20 {
					fails++
					t.Errorf("arch %#x nr %#x args %x: BPF says %s, the profile says %s", g.audit, nr, args, bpf.ActionString(got.Action), bpf.ActionString(want))
				}
			}
			check([6]uint64{})
			if !g.hasArgRules(nr) {
				continue
			}
			for i := 0; i < 6; i++ {
				for _, v := range vals {
					var args [6]uint64
					args[i] = v
					check(args)
				}
			}
			for k := 0; k < 300; k++ {
				var args [6]uint64
				for i := range args {
					args[i] = vals[rnd.Intn(len(vals))]
				}
				check(args)
			}
		}
	}
	// Other architectures are refused with the bad-architecture action.
	for _, audit := range []uint32{0, syscalls.AuditS390X ^ 1, 0xffffffff} {
		d := bpf.Data{Nr: 1, Arch: audit}
		got, err := bpf.Run(prog, &d, ByteOrder(""), false)
		if err != nil {
			t.Fatal(err)
		}
		if want := rs.eval(&d); got.Action != want {
			t.Errorf("arch %#x: BPF says %s, the profile says %s", audit, bpf.ActionString(got.Action), bpf.ActionString(want))
		}
	}
}

// zeroExtends reports 32-bit architectures whose arguments the kernel
// zero-extends (i386, arm: no 64-bit flag in the audit value).
func (g *group) zeroExtends() bool { return g.audit&0x80000000 == 0 }

func (g *group) plainOrX32() *archRules {
	if g.plain != nil {
		return g.plain
	}
	return g.x32
}

func (g *group) hasArgRules(nr uint32) bool {
	for _, ar := range []*archRules{g.plain, g.x32} {
		if ar != nil && ar.byNr[nr] != nil && !ar.byNr[nr].uncond {
			return true
		}
	}
	return false
}

// probeNumbers are the syscall numbers checked for a group: every number
// up to past the table's end, the x32 range, and edge values.
func probeNumbers(g *group) []uint32 {
	var out []uint32
	for _, ar := range []*archRules{g.plain, g.x32} {
		if ar == nil {
			continue
		}
		base := ar.arch.Base
		for nr := base; nr <= ar.arch.Max()+64; nr++ {
			out = append(out, nr)
		}
		for _, sc := range ar.arch.Syscalls() {
			if sc.Nr > ar.arch.Max() {
				out = append(out, sc.Nr, sc.Nr+1)
			}
		}
	}
	return append(out, 0x3fffffff, 0x40000000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x0f0000, 0x0f07ff, 0x0f0800)
}

func TestDefaultProfileEquivalence(t *testing.T) {
	for _, arch := range syscalls.All() {
		for name, capList := range capSets {
			t.Run(fmt.Sprintf("%s/%s", arch.Name, name), func(t *testing.T) {
				cfg := dockerDefault(t, arch, capList)
				rs, err := resolve(cfg, arch)
				if err != nil {
					t.Fatal(err)
				}
				prog, err := rs.generate()
				if err != nil {
					t.Fatal(err)
				}
				checkEquivalent(t, rs, prog)
			})
		}
	}
}

func TestDenyUnshareEquivalence(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}}
	arch, _ := syscalls.Lookup("SCMP_ARCH_X86_64")
	rs, err := resolve(cfg, arch)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := rs.generate()
	if err != nil {
		t.Fatal(err)
	}
	checkEquivalent(t, rs, prog)
	d := bpf.Data{Nr: 272, Arch: syscalls.AuditX86_64}
	if r, _ := bpf.Run(prog, &d, ByteOrder("x86_64"), false); r.Action != bpf.RetKillThread {
		t.Fatalf("unshare: %s, want KILL", bpf.ActionString(r.Action))
	}
	d.Nr = 1 // write
	if r, _ := bpf.Run(prog, &d, ByteOrder("x86_64"), false); r.Action != bpf.RetAllow {
		t.Fatalf("write: %s, want ALLOW", bpf.ActionString(r.Action))
	}
}
