//go:build cgo && libseccomp

package seccomp

// Differential tests against libseccomp, the C library runc builds
// filters with: for the same OCI configuration, libseccomp's program (as
// runc would build it) and berth's must give the same action for every
// syscall number of every architecture and for argument values at and
// around every compared constant. Run with `make test` (CGO_ENABLED=1,
// -tags libseccomp).

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/internal/libseccomp"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// libArches lists the architectures compared. Not s390x: libseccomp 2.5.4
// generating a big-endian filter on a little-endian host byte-swaps some
// return values twice (0x7fff0000 ALLOW comes out as 0x0000ff7f), which
// is harmless on a real s390x but makes its output here meaningless.
// berth's s390x programs are checked against the reference semantics.
func libArches() []*syscalls.Arch {
	var out []*syscalls.Arch
	for _, a := range syscalls.All() {
		if a.Name != "s390x" {
			out = append(out, a)
		}
	}
	return out
}

// TestLibseccompTables: berth's numbers agree with libseccomp's for every
// syscall both know; names only berth knows are newer than libseccomp.
func TestLibseccompTables(t *testing.T) {
	t.Logf("libseccomp %s", libseccomp.Version())
	for _, a := range libArches() {
		var newerNames []string
		for _, sc := range a.Syscalls() {
			if !libseccomp.Known(a.SCMP, sc.Name) {
				newerNames = append(newerNames, sc.Name)
				continue
			}
			nr, ok := libseccomp.Resolve(a.SCMP, sc.Name)
			if !ok {
				continue // multiplexed: checked by number below
			}
			if nr != sc.Nr {
				t.Errorf("%s: %s is %#x in berth's table, %#x in libseccomp's", a.Name, sc.Name, sc.Nr, nr)
			}
		}
		// Every number libseccomp names is in berth's table under a name
		// libseccomp resolves to the same number.
		for nr := a.Base; nr < a.Base+1024; nr++ {
			name := libseccomp.NameOf(a.SCMP, nr)
			if name == "" {
				continue
			}
			if got, ok := a.Nr(name); !ok || got != nr {
				if berth := a.NameOf(nr); berth == "" {
					t.Errorf("%s: libseccomp knows %s = %#x, berth has no syscall %#x", a.Name, name, nr, nr)
				}
			}
		}
		t.Logf("%s: %d names in berth's table that libseccomp %s does not know: %s", a.Name, len(newerNames), libseccomp.Version(), strings.Join(newerNames, " "))
	}
}

// diffCase compares berth and libseccomp on one configuration.
type diffCase struct {
	name string
	cfg  *specs.LinuxSeccomp
	arch *syscalls.Arch
	tree bool
}

// compareWithLibseccomp returns the number of syscall numbers compared.
func compareWithLibseccomp(t *testing.T, c diffCase) int {
	t.Helper()
	rs, err := resolve(c.cfg, c.arch)
	if err != nil {
		t.Fatalf("%s: berth: %v", c.name, err)
	}
	ours, err := rs.generate()
	if err != nil {
		t.Fatalf("%s: berth: %v", c.name, err)
	}
	theirs, _, err := libseccomp.Build(c.cfg, c.arch.SCMP, libseccomp.Options{Tree: c.tree})
	if err != nil {
		t.Skipf("%s: libseccomp refuses the configuration: %v", c.name, err)
	}
	compared, fails := 0, 0
	rnd := rand.New(rand.NewSource(2))
	for _, g := range rs.groups() {
		order := ByteOrder(g.plainOrX32().arch.SCMP)
		vals := argValues(rs, g.zeroExtends())
		for _, nr := range probeNumbers(g) {
			ar := g.plain
			if g.isX86Group() && nr >= syscalls.X32Bit && nr != 0xffffffff {
				ar = g.x32
			}
			if ar == nil && g.x32 != nil && !g.isX86Group() {
				ar = g.x32
			}
			explained := ""
			if ar != nil {
				if name := ar.arch.NameOf(nr); name != "" {
					if _, ok := libseccomp.Resolve(ar.arch.SCMP, name); !ok && !multiplexed(ar, name) {
						explained = name + " is not in libseccomp's table for this architecture"
					}
				}
			}
			check := func(args [6]uint64) {
				d := bpf.Data{Nr: nr, Arch: g.audit, Args: args}
				a, err := bpf.Run(ours, &d, order, false)
				if err != nil {
					t.Fatal(err)
				}
				b, err := bpf.Run(theirs, &d, order, false)
				if err != nil {
					t.Fatal(err)
				}
				if a.Action == b.Action {
					return
				}
				// berth answers ENOSYS for numbers newer than its tables
				// (runc patches libseccomp's program to do the same).
				if ar != nil && rs.enosys && a.Action == bpf.RetErrno|errnoENOSYS && b.Action == rs.defaultAction &&
					(newer(ar, nr) || (ar.arch.Audit == syscalls.AuditS390X && nr == 0)) {
					return
				}
				if explained != "" {
					return
				}
				if fails < 15 {
					t.Errorf("%s: arch %#x nr %#x (%s) args %x: berth %s, libseccomp %s", c.name, g.audit, nr, nameFor(ar, nr), args, bpf.ActionString(a.Action), bpf.ActionString(b.Action))
				}
				fails++
			}
			compared++
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
			for k := 0; k < 200; k++ {
				var args [6]uint64
				for i := range args {
					args[i] = vals[rnd.Intn(len(vals))]
				}
				check(args)
			}
		}
	}
	if fails > 0 {
		t.Errorf("%s: %d differences", c.name, fails)
	}
	return compared
}

// multiplexed reports socket and IPC calls that libseccomp resolves to a
// pseudo number on architectures with socketcall/ipc.
func multiplexed(ar *archRules, name string) bool {
	_, sock := socketcallCalls[name]
	_, ipc := ipcCalls[name]
	_, hasMux := ar.arch.Nr("socketcall")
	return hasMux && (sock || ipc)
}

func nameFor(ar *archRules, nr uint32) string {
	if ar == nil {
		return "?"
	}
	if n := ar.arch.NameOf(nr); n != "" {
		return n
	}
	return "no syscall"
}

func TestLibseccompDefaultProfile(t *testing.T) {
	for _, arch := range libArches() {
		if arch.Name == "x32" {
			continue // x32 is never a native architecture here
		}
		for name, capList := range capSets {
			for _, tree := range []bool{false, true} {
				c := diffCase{name: fmt.Sprintf("%s/%s/tree=%v", arch.Name, name, tree), cfg: dockerDefault(t, arch, capList), arch: arch, tree: tree}
				t.Run(c.name, func(t *testing.T) { compareWithLibseccomp(t, c) })
			}
		}
	}
}

func TestLibseccompDenyUnshare(t *testing.T) {
	arch, _ := syscalls.Lookup("SCMP_ARCH_X86_64")
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"unshare"}, Action: specs.ActKill}}}
	compareWithLibseccomp(t, diffCase{name: "deny-unshare", cfg: cfg, arch: arch})
	// libseccomp's program is the one the talk dumps: 8 instructions.
	theirs, _, err := libseccomp.Build(cfg, arch.SCMP, libseccomp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(theirs) != 8 {
		t.Errorf("libseccomp: %d instructions, the talk shows 8", len(theirs))
	}
}

// randomProfile generates an OCI configuration whose meaning libseccomp
// defines (libseccomp documents no meaning for several conditional rules
// of one syscall that test different arguments, seccomp/libseccomp#118,
// and 2.5.4 gets some of them wrong; berth's own tests cover those
// against berth's reference semantics). Per syscall it uses one shape:
// one unconditional rule; one rule ANDing conditions on distinct
// arguments; several single-condition rules on one argument (Docker's
// socket and personality rules); or an unconditional rule that overrides
// conditional ones.
func randomProfile(rnd *rand.Rand, arch *syscalls.Arch) *specs.LinuxSeccomp {
	return genProfile(rnd, arch, false)
}
func TestLibseccompRandomProfiles(t *testing.T) {
	n := 150
	if testing.Short() {
		n = 20
	}
	if v, err := strconv.Atoi(os.Getenv("BERTH_SECCOMP_RANDOM")); err == nil {
		n = v // more profiles when asked: BERTH_SECCOMP_RANDOM=5000
	}
	arches := []*syscalls.Arch{}
	for _, name := range []string{"x86_64", "aarch64", "x86", "arm", "ppc64le", "riscv64"} {
		a, _ := syscalls.Lookup(name)
		arches = append(arches, a)
	}
	refused := map[string]int{}
	for i := 0; i < n; i++ {
		rnd := rand.New(rand.NewSource(int64(1000 + i)))
		arch := arches[i%len(arches)]
		cfg := randomProfile(rnd, arch)
		if _, _, err := libseccomp.Build(cfg, arch.SCMP, libseccomp.Options{}); err != nil {
			refused[firstWords(err.Error())]++
			continue
		}
		compareWithLibseccomp(t, diffCase{name: fmt.Sprintf("random-%d/%s", i, arch.Name), cfg: cfg, arch: arch, tree: i%2 == 1})
	}
	var keys []string
	for k, v := range refused {
		keys = append(keys, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(keys)
	t.Logf("profiles libseccomp refused (berth compiles them): %v", keys)
}

func firstWords(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// Both programs loaded for real: a child under libseccomp's filter and one
// under berth's make the same syscalls and get the same errno, except for
// numbers beyond berth's tables, where berth answers ENOSYS and
// libseccomp (without runc's patch) the default action.
func TestLibseccompRealLoad(t *testing.T) {
	requireBusybox(t)
	native := syscalls.Native()
	if native == nil || native.Name != "x86_64" {
		t.Skip("probes are x86_64 syscall numbers")
	}
	for name, capList := range map[string][]string{"docker-default": capSets["docker-default"], "all": capSets["all"]} {
		t.Run(name, func(t *testing.T) {
			cfg, err := DefaultProfile(capList)
			if err != nil {
				t.Fatal(err)
			}
			e := uint(markerErrno)
			cfg.DefaultErrnoRet = &e
			ours, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			lib, _, err := libseccomp.Build(cfg, native.SCMP, libseccomp.Options{})
			if err != nil {
				t.Fatal(err)
			}
			theirs := &Program{Arch: native.SCMP, Instructions: lib}
			for _, ins := range lib {
				if ins.Op == bpf.RET|bpf.K {
					theirs.Actions = append(theirs.Actions, ins.K)
				}
			}
			probes := safeProbes()
			a, b := runProbes(t, ours, probes), runProbes(t, theirs, probes)
			for i, p := range probes {
				if a[i] == b[i] {
					continue
				}
				if p.Nr > native.Max() && a[i] == errnoENOSYS && b[i] == markerErrno {
					continue
				}
				t.Errorf("%s (nr %d, args %x): errno %d under berth's filter, %d under libseccomp's", native.NameOf(p.Nr), p.Nr, p.Args[:2], a[i], b[i])
			}
		})
	}
}
