package profile

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

func x86_64(t *testing.T) *syscalls.Arch {
	a, err := syscalls.Lookup("SCMP_ARCH_X86_64")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func resolveDefault(t *testing.T, arch string, capList []string, kernel [2]int) *specs.LinuxSeccomp {
	t.Helper()
	p, err := Parse(DefaultJSON())
	if err != nil {
		t.Fatal(err)
	}
	a, err := syscalls.Lookup(arch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Resolve(Env{Arch: a, Caps: capList, Kernel: kernel})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rulesFor returns the rules that name syscall n.
func rulesFor(cfg *specs.LinuxSeccomp, n string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, s := range cfg.Syscalls {
		for _, x := range s.Names {
			if x == n {
				out = append(out, s)
			}
		}
	}
	return out
}

func TestDefaultProfileResolution(t *testing.T) {
	cfg := resolveDefault(t, "x86_64", caps.DockerDefault, [2]int{6, 18})
	if cfg.DefaultAction != specs.ActErrno || cfg.DefaultErrnoRet == nil || *cfg.DefaultErrnoRet != 1 {
		t.Fatalf("default action %s %v", cfg.DefaultAction, cfg.DefaultErrnoRet)
	}
	if got := strings.Join(archNames(cfg.Architectures), ","); got != "SCMP_ARCH_X86_64,SCMP_ARCH_X86,SCMP_ARCH_X32" {
		t.Fatalf("architectures %s", got)
	}
	for _, denied := range []string{"unshare", "mount", "keyctl", "setns", "reboot", "init_module", "settimeofday", "add_key"} {
		for _, r := range rulesFor(cfg, denied) {
			if r.Action == specs.ActAllow && len(r.Args) == 0 {
				t.Errorf("%s allowed for Docker's default capabilities", denied)
			}
		}
	}
	// clone: only without namespace flags; clone3 gets ENOSYS.
	clone := rulesFor(cfg, "clone")
	if len(clone) != 1 || len(clone[0].Args) != 1 || clone[0].Args[0].Op != specs.OpMaskedEqual || clone[0].Args[0].Value != 0x7E020000 {
		t.Fatalf("clone rules %+v", clone)
	}
	c3 := rulesFor(cfg, "clone3")
	if len(c3) != 1 || c3[0].Action != specs.ActErrno || *c3[0].ErrnoRet != 38 {
		t.Fatalf("clone3 rules %+v", c3)
	}
	if n := len(rulesFor(cfg, "personality")); n != 5 {
		t.Fatalf("%d personality rules", n)
	}
	if len(rulesFor(cfg, "arch_prctl")) != 1 || len(rulesFor(cfg, "breakpoint")) != 0 {
		t.Fatal("arch-specific rules not selected by architecture")
	}
	if len(rulesFor(cfg, "chroot")) != 1 {
		t.Fatal("CAP_SYS_CHROOT does not allow chroot")
	}

	// CAP_SYS_ADMIN: clone and unshare allowed outright, no clone3 ENOSYS.
	admin := resolveDefault(t, "x86_64", append([]string{"sys_admin"}, caps.DockerDefault...), [2]int{6, 18})
	for _, n := range []string{"unshare", "mount", "setns", "clone"} {
		r := rulesFor(admin, n)
		if len(r) != 1 || r[0].Action != specs.ActAllow || len(r[0].Args) != 0 {
			t.Errorf("CAP_SYS_ADMIN: %s rules %+v", n, r)
		}
	}
	if len(rulesFor(admin, "clone3")) != 1 || rulesFor(admin, "clone3")[0].Action != specs.ActAllow {
		t.Error("CAP_SYS_ADMIN: clone3 not allowed")
	}

	// minKernel 4.8 gates ptrace: an older kernel does not get it.
	old := resolveDefault(t, "x86_64", nil, [2]int{4, 4})
	if len(rulesFor(old, "ptrace")) != 0 {
		t.Error("kernel 4.4 gets ptrace")
	}
	if len(rulesFor(resolveDefault(t, "x86_64", nil, [2]int{4, 8}), "ptrace")) != 1 {
		t.Error("kernel 4.8 lacks ptrace")
	}

	// s390x: clone's flags are argument 1, and the archMap adds s390.
	s390 := resolveDefault(t, "s390x", nil, [2]int{6, 18})
	if r := rulesFor(s390, "clone"); len(r) != 1 || r[0].Args[0].Index != 1 {
		t.Errorf("s390x clone rules %+v", r)
	}
	if got := strings.Join(archNames(s390.Architectures), ","); got != "SCMP_ARCH_S390X,SCMP_ARCH_S390" {
		t.Errorf("s390x architectures %s", got)
	}
	// riscv64 maps to no sub-architecture.
	if rv := resolveDefault(t, "riscv64", nil, [2]int{6, 18}); len(rv.Architectures) != 1 {
		t.Errorf("riscv64 architectures %v", rv.Architectures)
	}
}

func archNames(a []specs.Arch) []string {
	var out []string
	for _, x := range a {
		out = append(out, string(x))
	}
	return out
}

// The installed Docker's (20.10.24) profile parses and resolves too.
func TestMobyV20Profile(t *testing.T) {
	data, err := os.ReadFile("testdata/moby-default-v20.10.24.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p.Resolve(Env{Arch: x86_64(t), Caps: caps.DockerDefault, Kernel: [2]int{6, 18}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultErrnoRet != nil || cfg.DefaultAction != specs.ActErrno {
		t.Fatalf("default %s %v", cfg.DefaultAction, cfg.DefaultErrnoRet)
	}
	if len(rulesFor(cfg, "io_uring_setup")) != 1 {
		t.Fatal("v20.10 allows io_uring")
	}
}

func TestEmptyProfileMeansNoFilter(t *testing.T) {
	p, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p.Resolve(Env{Arch: x86_64(t)})
	if err != nil || cfg != nil {
		t.Fatalf("got %+v, %v; want no filter", cfg, err)
	}
}

func TestNameAndLegacyArchitectures(t *testing.T) {
	p, err := Parse([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[{"name":"unshare","action":"SCMP_ACT_KILL"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := p.Resolve(Env{Arch: x86_64(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Syscalls) != 1 || cfg.Syscalls[0].Names[0] != "unshare" || len(cfg.Architectures) != 1 {
		t.Fatalf("%+v", cfg)
	}
}

// Malformed profiles get errors that say where the mistake is.
func TestParseErrors(t *testing.T) {
	cases := []struct{ profile, want string }{
		{`{"defaultAction": "SCMP_ACT_ALLOW",` + "\n" + `  "syscalls": [ {"names": ["read"], "action": } ] }`, "line 2, column"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":"zero","op":"SCMP_CMP_EQ"}]}]}`, "syscalls[0].args[0].index"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read","unshar"],"action":"SCMP_ACT_KILL"}]}`, `syscalls[0].names[1]: unknown syscall "unshar"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILLL"}]}`, `syscalls[0].action: unknown action "SCMP_ACT_KILLL"`},
		{`{"defaultAction":"SCMP_ACT_NOPE"}`, `defaultAction: unknown action`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, "syscalls[0].args[0].index: 6 is out of range"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQUAL"}]}]}`, `syscalls[0].args[0].op: unknown operator "SCMP_CMP_EQUAL"`},
		{`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[],"syscalls":[]}`, "archMap: empty list"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"X86_64"}]}`, "archMap[0].architecture"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, "both 'architectures' and 'archMap'"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_KILL"}]}`, "syscalls[0]: both 'name' and 'names'"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_KILL"}]}`, "syscalls[0]: no syscall names"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","errnoRet":5}]}`, "syscalls[0].errnoRet"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","includes":{"caps":["sys_admin"]}}]}`, "syscalls[0].includes.caps[0]"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","excludes":{"minKernel":"four"}}]}`, "syscalls[0].excludes.minKernel"},
		{`{"defaultAction":"SCMP_ACT_ALLOW"} {}`, "after the profile"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"},{"names":["write"],"action":"SCMP_ACT_KILL","args":[{"index":0,"op":"SCMP_CMP_EQ"},{"index":1,"value":-3,"op":"SCMP_CMP_EQ"}]}]}`, "syscalls[1].args[1].value (line 1, column"},
		{`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":"read","action":"SCMP_ACT_KILL"}]}`, "syscalls[0].names (line 1"},
		{``, "empty document"},
		{`[1,2]`, "want an object"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.profile))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("profile %q:\n error %v\n want it to contain %q", c.profile, err, c.want)
		}
	}
}

// FuzzParse: any input gives a profile or an error, never a panic, and a
// parsed profile resolves for every architecture.
func FuzzParse(f *testing.F) {
	f.Add(DefaultJSON())
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"unshare","action":"SCMP_ACT_KILL"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],"syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}],"excludes":{"caps":["CAP_SYS_ADMIN"],"minKernel":"4.8"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, a := range syscalls.All() {
			for _, c := range [][]string{nil, caps.DockerDefault, caps.All(caps.MaxKnown).Names()} {
				if _, err := p.Resolve(Env{Arch: a, Caps: c, Kernel: [2]int{6, 1}}); err != nil {
					t.Fatalf("parsed profile does not resolve: %v", err)
				}
			}
		}
	})
}
