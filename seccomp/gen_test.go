package seccomp

import (
	"math/rand"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/seccomp/syscalls"
)

// genProfile generates a random OCI seccomp configuration for arch. With
// anyShape, a syscall's conditional rules may combine conditions on
// different arguments freely (berth defines the meaning: a syscall's
// conditional rules are tried in order and the first that matches
// decides); without it only the shapes libseccomp defines are used.
func genProfile(rnd *rand.Rand, arch *syscalls.Arch, anyShape bool) *specs.LinuxSeccomp {
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActTrap, specs.ActLog, specs.ActTrace}
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	pool := []uint64{0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x1000, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 | 5, 0xffffffff00000000, ^uint64(0), 0x7E020000, 0x100000000}
	val := func() uint64 {
		if rnd.Intn(4) == 0 {
			return rnd.Uint64() >> uint(rnd.Intn(64))
		}
		return pool[rnd.Intn(len(pool))]
	}
	act := func() (specs.LinuxSeccompAction, *uint) {
		a := acts[rnd.Intn(len(acts))]
		if (a == specs.ActErrno || a == specs.ActTrace) && rnd.Intn(2) == 0 {
			e := uint(rnd.Intn(200))
			return a, &e
		}
		return a, nil
	}
	arg := func(index int) specs.LinuxSeccompArg {
		op := ops[rnd.Intn(len(ops))]
		a := specs.LinuxSeccompArg{Index: uint(index), Op: op, Value: val()}
		if op == specs.OpMaskedEqual {
			a.ValueTwo = val()
			if rnd.Intn(4) != 0 {
				a.ValueTwo &= a.Value
			}
		}
		return a
	}
	cfg := &specs.LinuxSeccomp{}
	cfg.DefaultAction, cfg.DefaultErrnoRet = act()
	switch arch.Name {
	case "x86_64":
		for _, sub := range []specs.Arch{specs.ArchX86, specs.ArchX32} {
			if rnd.Intn(2) == 0 {
				cfg.Architectures = append(cfg.Architectures, sub)
			}
		}
	case "aarch64":
		if rnd.Intn(2) == 0 {
			cfg.Architectures = append(cfg.Architectures, specs.ArchARM)
		}
	}
	table := arch.Syscalls()
	used := map[string]bool{}
	pick := func() string {
		for k := 0; k < 10; k++ {
			n := table[rnd.Intn(len(table))].Name
			if !anyShape && (n == "socketcall" || n == "ipc") {
				// Rules on the multiplexers themselves overlap with
				// the socket/IPC rules libseccomp (and berth) add to
				// them; libseccomp orders overlapping rules its own way.
				continue
			}
			if !used[n] {
				used[n] = true
				return n
			}
		}
		return ""
	}
	nsys := 1 + rnd.Intn(30)
	for i := 0; i < nsys; i++ {
		name := pick()
		if name == "" {
			continue
		}
		names := []string{name}
		for k := rnd.Intn(3); k > 0; k-- {
			if n := pick(); n != "" {
				names = append(names, n)
			}
		}
		a, e := act()
		rule := func(args ...specs.LinuxSeccompArg) {
			cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{Names: names, Action: a, ErrnoRet: e, Args: args})
		}
		shape := rnd.Intn(5)
		if anyShape && rnd.Intn(2) == 0 {
			shape = 5
		}
		switch shape {
		case 0: // unconditional
			rule()
		case 1: // one rule, AND of conditions on distinct arguments
			perm := rnd.Perm(6)
			var args []specs.LinuxSeccompArg
			for k := 0; k < 1+rnd.Intn(3); k++ {
				args = append(args, arg(perm[k]))
			}
			rule(args...)
		case 2, 3: // single-condition rules on one argument, ORed
			idx := rnd.Intn(6)
			for k := 0; k < 1+rnd.Intn(5); k++ {
				c := arg(idx)
				if !anyShape {
					// libseccomp 2.5.4 mis-merges such rules when
					// values have high words (see
					// TestLibseccompMultiRule64); Docker's are 32-bit.
					c.Value &= 0xffffffff
					c.ValueTwo &= 0xffffffff
				}
				rule(c)
			}
		case 4: // an unconditional rule overrides conditional ones
			idx := rnd.Intn(6)
			c1, c2 := arg(idx), arg(idx)
			if !anyShape {
				c1.Value, c1.ValueTwo = c1.Value&0xffffffff, c1.ValueTwo&0xffffffff
				c2.Value, c2.ValueTwo = c2.Value&0xffffffff, c2.ValueTwo&0xffffffff
			}
			rule(c1)
			b, f := a, e
			a, e = act()
			rule()
			a, e = b, f
			rule(c2)
		case 5: // anything: rules of several shapes and actions
			for k := 0; k < 1+rnd.Intn(4); k++ {
				a, e = act()
				perm := rnd.Perm(6)
				var args []specs.LinuxSeccompArg
				for j := 0; j < rnd.Intn(4); j++ {
					args = append(args, arg(perm[j]))
				}
				if rnd.Intn(8) == 0 && len(args) > 0 {
					args = append(args, arg(int(args[0].Index))) // same argument twice: runc splits the rule
				}
				rule(args...)
			}
		}
	}
	return cfg
}
