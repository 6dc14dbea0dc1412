// Package syscalls owns the Linux syscall number tables berth's seccomp
// compiler and instruments use: one table per architecture (x86_64, i386,
// x32, aarch64, arm, riscv64, s390x, ppc64le), each with its audit
// architecture value. The tables are generated (zsyscalls.go, by
// internal/mksyscalls) from the kernel's uapi headers as golang.org/x/sys
// carries them; never edit them by hand. The package is pure data: it knows
// nothing of profiles, filters or processes.
package syscalls

//go:generate go run ./internal/mksyscalls -o zsyscalls.go

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
)

// Syscall is one entry of a table.
type Syscall struct {
	Name string
	Nr   uint32
}

// Audit architecture values (<linux/audit.h>): what the kernel puts in
// seccomp_data.arch.
const (
	auditArch64Bit = 0x80000000
	auditArchLE    = 0x40000000

	AuditX86_64  = 62 | auditArch64Bit | auditArchLE  // EM_X86_64
	AuditI386    = 3 | auditArchLE                    // EM_386
	AuditAARCH64 = 183 | auditArch64Bit | auditArchLE // EM_AARCH64
	AuditARM     = 40 | auditArchLE                   // EM_ARM
	AuditRISCV64 = 243 | auditArch64Bit | auditArchLE // EM_RISCV
	AuditS390X   = 22 | auditArch64Bit                // EM_S390
	AuditPPC64LE = 21 | auditArch64Bit | auditArchLE  // EM_PPC64
)

// X32Bit is set in the syscall number of every x32 syscall; x32 shares
// x86_64's audit architecture.
const X32Bit = 0x40000000

// Arch is one architecture the compiler can produce filters for.
type Arch struct {
	// SCMP is the OCI / libseccomp name: "SCMP_ARCH_X86_64".
	SCMP string
	// Name is the short name used on berth's command line: "x86_64".
	Name string
	// DockerName is the name Docker compares with a profile's
	// includes/excludes arches: Go's GOARCH ("amd64", "386", "arm64"), or
	// "x32" for the x32 ABI.
	DockerName string
	// Audit is the value of seccomp_data.arch for this architecture.
	Audit uint32
	// Bits is the width of the argument values filters compare: 64, or 32
	// on 32-bit ABIs (i386 and arm, whose arguments the kernel
	// zero-extends, and x32, whose int, long and pointer are 32-bit; as in
	// libseccomp, only the low halves are compared there).
	Bits int
	// Base is the lowest syscall number of the table (X32Bit for x32).
	Base uint32

	byName []Syscall // sorted by name
	byNr   []Syscall // sorted by number, then name (aliases share a number)
}

var all = []*Arch{
	{SCMP: "SCMP_ARCH_X86_64", Name: "x86_64", DockerName: "amd64", Audit: AuditX86_64, Bits: 64, byName: namesX86_64[:], byNr: numsX86_64[:]},
	{SCMP: "SCMP_ARCH_X86", Name: "x86", DockerName: "386", Audit: AuditI386, Bits: 32, byName: namesX86[:], byNr: numsX86[:]},
	{SCMP: "SCMP_ARCH_X32", Name: "x32", DockerName: "x32", Audit: AuditX86_64, Bits: 32, Base: X32Bit, byName: namesX32[:], byNr: numsX32[:]},
	{SCMP: "SCMP_ARCH_AARCH64", Name: "aarch64", DockerName: "arm64", Audit: AuditAARCH64, Bits: 64, byName: namesAARCH64[:], byNr: numsAARCH64[:]},
	{SCMP: "SCMP_ARCH_ARM", Name: "arm", DockerName: "arm", Audit: AuditARM, Bits: 32, byName: namesARM[:], byNr: numsARM[:]},
	{SCMP: "SCMP_ARCH_RISCV64", Name: "riscv64", DockerName: "riscv64", Audit: AuditRISCV64, Bits: 64, byName: namesRISCV64[:], byNr: numsRISCV64[:]},
	{SCMP: "SCMP_ARCH_S390X", Name: "s390x", DockerName: "s390x", Audit: AuditS390X, Bits: 64, byName: namesS390X[:], byNr: numsS390X[:]},
	{SCMP: "SCMP_ARCH_PPC64LE", Name: "ppc64le", DockerName: "ppc64le", Audit: AuditPPC64LE, Bits: 64, byName: namesPPC64LE[:], byNr: numsPPC64LE[:]},
}

// All returns every architecture with a table, native first.
func All() []*Arch {
	out := make([]*Arch, 0, len(all))
	if n := Native(); n != nil {
		out = append(out, n)
	}
	for _, a := range all {
		if a != Native() {
			out = append(out, a)
		}
	}
	return out
}

// goarchToSCMP maps Go's GOARCH to the native seccomp architecture.
var goarchToSCMP = map[string]string{
	"amd64":   "SCMP_ARCH_X86_64",
	"386":     "SCMP_ARCH_X86",
	"arm64":   "SCMP_ARCH_AARCH64",
	"arm":     "SCMP_ARCH_ARM",
	"riscv64": "SCMP_ARCH_RISCV64",
	"s390x":   "SCMP_ARCH_S390X",
	"ppc64le": "SCMP_ARCH_PPC64LE",
}

// Native is the architecture berth runs on, or nil when berth has no table
// for it.
func Native() *Arch {
	a, _ := Lookup(goarchToSCMP[runtime.GOARCH])
	return a
}

// Lookup finds an architecture by any of its names: "SCMP_ARCH_X86_64",
// "x86_64", "amd64" (case-insensitive).
func Lookup(name string) (*Arch, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return nil, fmt.Errorf("empty architecture name")
	}
	for _, a := range all {
		if n == strings.ToLower(a.SCMP) || n == a.Name || n == a.DockerName {
			return a, nil
		}
	}
	switch n {
	case "i386", "i686", "x86":
		return all[1], nil
	case "arm64":
		return all[3], nil
	}
	return nil, fmt.Errorf("unknown architecture %q (berth has syscall tables for %s)", name, strings.Join(Names(), ", "))
}

// Names lists the supported architectures by SCMP name.
func Names() []string {
	var out []string
	for _, a := range all {
		out = append(out, a.SCMP)
	}
	return out
}

// Nr returns the number of syscall name on this architecture.
func (a *Arch) Nr(name string) (uint32, bool) {
	i := sort.Search(len(a.byName), func(i int) bool { return a.byName[i].Name >= name })
	if i < len(a.byName) && a.byName[i].Name == name {
		return a.byName[i].Nr, true
	}
	return 0, false
}

// NameOf returns the name of syscall nr on this architecture, "" if the
// number is not in the table.
func (a *Arch) NameOf(nr uint32) string {
	i := sort.Search(len(a.byNr), func(i int) bool { return a.byNr[i].Nr >= nr })
	if i < len(a.byNr) && a.byNr[i].Nr == nr {
		return a.byNr[i].Name
	}
	return ""
}

// Syscalls returns the table ordered by number.
func (a *Arch) Syscalls() []Syscall { return a.byNr }

// Max is the highest syscall number in the table below the architecture's
// private ranges: numbers above it are newer than berth's tables.
func (a *Arch) Max() uint32 {
	var m uint32
	for _, s := range a.byNr {
		if s.Nr > m && !a.private(s.Nr) {
			m = s.Nr
		}
	}
	return m
}

// private reports numbers outside the ordinary sequential table: ARM's
// __ARM_NR_BASE range.
func (a *Arch) private(nr uint32) bool {
	return a.Audit == AuditARM && nr >= 0x0f0000
}

// Known reports whether name is a syscall on any architecture berth knows.
func Known(name string) bool {
	for _, a := range all {
		if _, ok := a.Nr(name); ok {
			return true
		}
	}
	return false
}

func (a *Arch) String() string { return a.Name }
