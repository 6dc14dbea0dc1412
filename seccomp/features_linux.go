package seccomp

import (
	"slices"

	"github.com/berth-dev/berth/seccomp/syscalls"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// actions are the OCI actions the compiler turns into filter returns.
var actions = []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillThread, specs.ActKillProcess,
	specs.ActTrap, specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify}

// Features says what this compiler accepts in an OCI seccomp section, for
// the runtime's `features`: every action, operator and flag it knows, the
// architectures it has syscall tables for, and the flags this kernel
// supports (an action the kernel lacks is an error at load time).
func Features() *features.Seccomp {
	enabled := true
	f := &features.Seccomp{Enabled: &enabled}
	for _, a := range actions {
		f.Actions = append(f.Actions, string(a))
	}
	for op := range opByName {
		f.Operators = append(f.Operators, string(op))
	}
	for _, a := range syscalls.All() {
		f.Archs = append(f.Archs, a.SCMP)
	}
	for name, bit := range flagByName {
		f.KnownFlags = append(f.KnownFlags, string(name))
		probe := bit
		if bit == FlagWaitKillableRecv {
			probe |= FlagNewListener // the kernel accepts it only with a listener
		}
		if FlagAvailable(probe) {
			f.SupportedFlags = append(f.SupportedFlags, string(name))
		}
	}
	for _, l := range [][]string{f.Actions, f.Operators, f.Archs, f.KnownFlags, f.SupportedFlags} {
		slices.Sort(l)
	}
	return f
}
