// Package seccomp is berth's seccomp filter compiler, in pure Go (no
// libseccomp, no cgo): it validates an OCI linux.seccomp configuration,
// resolves it per architecture with the tables of package syscalls, and
// generates a classic-BPF program (architecture check, optimal decision
// tree on the syscall number, 64-bit argument comparisons split into
// 32-bit halves, ENOSYS for syscalls newer than the tables). It loads
// programs with seccomp(2), hands the notify listener to a listenerPath,
// keeps a cache of compiled programs, and converts Docker's JSON profile
// format (DefaultProfile, FromDockerJSON; the data lives in
// seccomp/profile).
//
// It owns seccomp and nothing else: it never forks, never touches
// namespaces, capabilities or no_new_privs (the caller sets those up).
package seccomp

import (
	"encoding/binary"
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/seccomp/bpf"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// CompilerVersion names the code generator; it is part of the cache key,
// so changing generated code must change it.
const CompilerVersion = "berth-seccomp/1 (" + syscalls.TablesSource + ")"

// Program is a compiled filter, ready to load. It marshals to JSON (the
// runtime compiles in the parent and ships it to the container's init).
type Program struct {
	// Arch is the architecture the program was compiled for (SCMP name);
	// Load refuses to install it on another.
	Arch string `json:"arch"`
	// Instructions is the classic-BPF program (JSON: base64 of the raw
	// little-endian encoding).
	Instructions bpf.Program `json:"instructions"`
	// Flags are the SECCOMP_FILTER_FLAG_* bits passed to seccomp(2),
	// NEW_LISTENER included when Notify is set.
	Flags uint `json:"flags"`
	// Notify is set when a rule uses SCMP_ACT_NOTIFY: Load returns the
	// listener fd, to be sent to ListenerPath.
	Notify           bool   `json:"notify,omitempty"`
	ListenerPath     string `json:"listenerPath,omitempty"`
	ListenerMetadata string `json:"listenerMetadata,omitempty"`
	// Actions lists the distinct SECCOMP_RET_* actions the program
	// returns, so Load can check the kernel supports them.
	Actions []uint32 `json:"actions"`
	// Warnings are things the compiler did that the caller should report
	// (unknown syscall names skipped, runc-compatible rule splitting).
	Warnings []string `json:"warnings,omitempty"`
}

// Compile validates an OCI seccomp configuration and compiles it for the
// native architecture plus the sub-architectures it lists. Anything it
// cannot honour is an error. Compiled programs are cached (in memory and
// in CacheDir) by configuration, architecture and compiler version.
func Compile(cfg *specs.LinuxSeccomp) (*Program, error) {
	native := syscalls.Native()
	if native == nil {
		return nil, fmt.Errorf("seccomp: berth has no syscall table for this architecture")
	}
	return CompileFor(cfg, native)
}

// CompileFor compiles cfg for the given native architecture (the
// instruments compile for other architectures than the host's).
func CompileFor(cfg *specs.LinuxSeccomp, arch *syscalls.Arch) (*Program, error) {
	key, err := cacheKey(cfg, arch)
	if err != nil {
		return nil, err
	}
	if p := cacheGet(key); p != nil {
		return p, nil
	}
	p, err := compileUncached(cfg, arch)
	if err != nil {
		return nil, err
	}
	cachePut(key, p)
	return p, nil
}

func compileUncached(cfg *specs.LinuxSeccomp, arch *syscalls.Arch) (*Program, error) {
	rs, err := resolve(cfg, arch)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	prog, err := rs.generate()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	p := &Program{
		Arch:             arch.SCMP,
		Instructions:     prog,
		Flags:            rs.flags,
		Notify:           rs.notify,
		ListenerPath:     cfg.ListenerPath,
		ListenerMetadata: cfg.ListenerMetadata,
		Warnings:         rs.warnings,
	}
	for a := range rs.actions {
		p.Actions = append(p.Actions, a)
	}
	p.Actions = append(p.Actions, rs.badArch)
	if rs.enosys {
		p.Actions = append(p.Actions, bpf.RetErrno|errnoENOSYS)
	}
	sort.Slice(p.Actions, func(i, j int) bool { return p.Actions[i] < p.Actions[j] })
	p.Actions = dedup(p.Actions)
	return p, nil
}

func dedup(a []uint32) []uint32 {
	out := a[:0]
	for i, v := range a {
		if i == 0 || v != a[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Bytes returns the program as seccomp_export_bpf writes it: struct
// sock_filter array in the byte order of the program's architecture.
func (p *Program) Bytes() []byte {
	return bpf.Encode(p.Instructions, ByteOrder(p.Arch))
}

// ByteOrder is the byte order of an architecture (by SCMP name); unknown
// names get the host's.
func ByteOrder(arch string) binary.ByteOrder {
	a, err := syscalls.Lookup(arch)
	if err != nil {
		return binary.NativeEndian
	}
	if a.Audit&0x40000000 == 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}
