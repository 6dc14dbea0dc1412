//go:build cgo && libseccomp

// Package libseccomp drives the system's libseccomp (the C library runc
// uses) the way runc's libcontainer/seccomp does, to produce the BPF it
// would install for an OCI seccomp configuration. It exists only for
// berth's differential tests and benchmarks (build tag libseccomp, cgo);
// berth's binaries never link it.
package libseccomp

/*
#cgo LDFLAGS: -lseccomp
#include <stdlib.h>
#include <seccomp.h>
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/seccomp/bpf"
)

// Version is libseccomp's version.
func Version() string {
	v := C.seccomp_version()
	return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.micro)
}

// archNames maps OCI names to libseccomp's.
var archNames = map[string]string{
	"SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32",
	"SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_RISCV64": "riscv64",
	"SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390": "s390",
}

// Token returns libseccomp's token for an OCI architecture name.
func Token(arch string) (C.uint32_t, error) {
	n, ok := archNames[arch]
	if !ok {
		return 0, fmt.Errorf("libseccomp: no mapping for %s", arch)
	}
	cs := C.CString(n)
	defer C.free(unsafe.Pointer(cs))
	t := C.seccomp_arch_resolve_name(cs)
	if t == 0 {
		return 0, fmt.Errorf("libseccomp does not know %s", n)
	}
	return t, nil
}

// Known reports whether libseccomp knows a syscall name at all (on any
// architecture, or as a multiplexed socket/IPC call).
func Known(arch, name string) bool {
	t, err := Token(arch)
	if err != nil {
		return false
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.seccomp_syscall_resolve_name_arch(t, cs) != C.__NR_SCMP_ERROR
}

// Resolve returns the number of a syscall on an architecture as
// libseccomp knows it: ok is false when libseccomp has no number for it
// there (unknown, or a pseudo-syscall of another architecture).
func Resolve(arch, name string) (nr uint32, ok bool) {
	t, err := Token(arch)
	if err != nil {
		return 0, false
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	n := C.seccomp_syscall_resolve_name_arch(t, cs)
	if n < 0 {
		return 0, false
	}
	return uint32(n), true
}

// NameOf returns libseccomp's name for a syscall number ("" if none).
func NameOf(arch string, nr uint32) string {
	t, err := Token(arch)
	if err != nil {
		return ""
	}
	cs := C.seccomp_syscall_resolve_num_arch(t, C.int(int32(nr)))
	if cs == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(cs))
	return C.GoString(cs)
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (C.uint32_t, error) {
	e := C.uint32_t(1)
	if errnoRet != nil {
		e = C.uint32_t(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return C.SCMP_ACT_KILL_THREAD, nil
	case specs.ActKillProcess:
		return C.SCMP_ACT_KILL_PROCESS, nil
	case specs.ActTrap:
		return C.SCMP_ACT_TRAP, nil
	case specs.ActErrno:
		return 0x00050000 | (e & 0xffff), nil
	case specs.ActTrace:
		return 0x7ff00000 | (e & 0xffff), nil
	case specs.ActAllow:
		return C.SCMP_ACT_ALLOW, nil
	case specs.ActLog:
		return C.SCMP_ACT_LOG, nil
	case specs.ActNotify:
		return C.SCMP_ACT_NOTIFY, nil
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

var ops = map[specs.LinuxSeccompOperator]C.enum_scmp_compare{
	specs.OpNotEqual: C.SCMP_CMP_NE, specs.OpLessThan: C.SCMP_CMP_LT, specs.OpLessEqual: C.SCMP_CMP_LE,
	specs.OpEqualTo: C.SCMP_CMP_EQ, specs.OpGreaterEqual: C.SCMP_CMP_GE, specs.OpGreaterThan: C.SCMP_CMP_GT,
	specs.OpMaskedEqual: C.SCMP_CMP_MASKED_EQ,
}

// Options select libseccomp's code generation.
type Options struct {
	// Tree asks for libseccomp's binary-tree dispatch
	// (SCMP_FLTATR_CTL_OPTIMIZE=2), which runc turns on for profiles with
	// more than 32 rules.
	Tree bool
}

// Build compiles cfg with libseccomp for the native architecture arch
// (plus cfg's architectures) as runc's InitSeccomp does, and returns the
// exported program. Rules runc would skip (action equal to the default,
// names libseccomp cannot resolve) are skipped and listed in skipped.
func Build(cfg *specs.LinuxSeccomp, arch string, opt Options) (prog []bpf.Instruction, skipped []string, err error) {
	def, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, nil, err
	}
	native, err := Token(arch)
	if err != nil {
		return nil, nil, err
	}
	ctx := C.seccomp_init(def)
	if ctx == nil {
		return nil, nil, fmt.Errorf("seccomp_init failed")
	}
	defer C.seccomp_release(ctx)
	if native != C.seccomp_arch_native() {
		// Remove the host's architecture first: a filter cannot mix
		// byte orders.
		if rc := C.seccomp_arch_remove(ctx, C.SCMP_ARCH_NATIVE); rc != 0 {
			return nil, nil, fmt.Errorf("seccomp_arch_remove(native): %d", rc)
		}
		if rc := C.seccomp_arch_add(ctx, native); rc != 0 {
			return nil, nil, fmt.Errorf("seccomp_arch_add(%s): %d", arch, rc)
		}
	}
	for _, a := range cfg.Architectures {
		t, err := Token(string(a))
		if err != nil {
			return nil, nil, err
		}
		if C.seccomp_arch_exist(ctx, t) == 0 {
			continue
		}
		if rc := C.seccomp_arch_add(ctx, t); rc != 0 {
			return nil, nil, fmt.Errorf("seccomp_arch_add(%s): %d", a, rc)
		}
	}
	if opt.Tree {
		if rc := C.seccomp_attr_set(ctx, C.SCMP_FLTATR_CTL_OPTIMIZE, 2); rc != 0 {
			return nil, nil, fmt.Errorf("seccomp_attr_set(optimize=2): %d", rc)
		}
	}
	for i, sc := range cfg.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, nil, err
		}
		if act == def {
			continue
		}
		// runc: the same argument twice means one rule per condition.
		sets := [][]specs.LinuxSeccompArg{sc.Args}
		seen := map[uint]bool{}
		for _, a := range sc.Args {
			if seen[a.Index] {
				sets = nil
				for _, b := range sc.Args {
					sets = append(sets, []specs.LinuxSeccompArg{b})
				}
				break
			}
			seen[a.Index] = true
		}
		for _, name := range sc.Names {
			// runc resolves names on the machine's own architecture;
			// libseccomp translates the number to each filtered one.
			cs := C.CString(name)
			nr := C.seccomp_syscall_resolve_name(cs)
			C.free(unsafe.Pointer(cs))
			if nr == C.__NR_SCMP_ERROR {
				skipped = append(skipped, name)
				continue
			}
			if nr < 0 {
				// A pseudo number stands for the name on the other
				// architectures; 2.5.4 gives some names the same one
				// (switch_endian and sys_debug_setcontext).
				back := C.seccomp_syscall_resolve_num_arch(C.seccomp_arch_native(), nr)
				same := back != nil && C.GoString(back) == name
				C.free(unsafe.Pointer(back))
				if !same {
					return nil, nil, fmt.Errorf("syscalls[%d] %s: libseccomp pseudo-syscall number %d is shared with another name", i, name, nr)
				}
			}
			for _, set := range sets {
				n := len(set)
				var arr *C.struct_scmp_arg_cmp
				if n > 0 {
					arr = (*C.struct_scmp_arg_cmp)(C.malloc(C.size_t(n) * C.sizeof_struct_scmp_arg_cmp))
					conds := unsafe.Slice(arr, n)
					for k, a := range set {
						conds[k] = C.struct_scmp_arg_cmp{arg: C.uint(a.Index), op: ops[a.Op], datum_a: C.scmp_datum_t(a.Value), datum_b: C.scmp_datum_t(a.ValueTwo)}
					}
				}
				rc := C.seccomp_rule_add_array(ctx, act, nr, C.uint(n), arr)
				if arr != nil {
					C.free(unsafe.Pointer(arr))
				}
				if rc != 0 {
					return nil, nil, fmt.Errorf("syscalls[%d] %s: seccomp_rule_add_array: %s", i, name, unix.Errno(-rc))
				}
			}
		}
	}
	fd, err := unix.MemfdCreate("libseccomp-bpf", 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), "libseccomp-bpf")
	defer f.Close()
	if rc := C.seccomp_export_bpf(ctx, C.int(fd)); rc != 0 {
		return nil, nil, fmt.Errorf("seccomp_export_bpf: %s", unix.Errno(-rc))
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, nil, err
	}
	// seccomp_export_bpf writes in the target architecture's byte order.
	var order binary.ByteOrder = binary.LittleEndian
	if arch == "SCMP_ARCH_S390X" || arch == "SCMP_ARCH_S390" {
		order = binary.BigEndian
	}
	prog, err = bpf.Decode(raw, order)
	return prog, skipped, err
}

// ResolveHost is seccomp_syscall_resolve_name: the number (or negative
// pseudo number) of a syscall on the host, as runc resolves it.
func ResolveHost(name string) int32 {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return int32(C.seccomp_syscall_resolve_name(cs))
}
