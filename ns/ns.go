// Package ns owns the names of Linux namespace types: the OCI spec's names,
// the clone(2) flags, and the /proc/PID/ns file names, and the conversions
// between them. It does not create or join namespaces; the runtime's spawn
// path does that.
package ns

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Type describes one namespace type.
type Type struct {
	Spec  specs.LinuxNamespaceType // "pid", "network", …
	Proc  string                   // file name under /proc/PID/ns
	Clone uintptr                  // CLONE_NEW* flag
}

// Types lists every namespace type in the order a runtime creates or joins
// them: the user namespace first, so it owns the others.
var Types = []Type{
	{specs.UserNamespace, "user", unix.CLONE_NEWUSER},
	{specs.IPCNamespace, "ipc", unix.CLONE_NEWIPC},
	{specs.UTSNamespace, "uts", unix.CLONE_NEWUTS},
	{specs.NetworkNamespace, "net", unix.CLONE_NEWNET},
	{specs.PIDNamespace, "pid", unix.CLONE_NEWPID},
	{specs.MountNamespace, "mnt", unix.CLONE_NEWNS},
	{specs.CgroupNamespace, "cgroup", unix.CLONE_NEWCGROUP},
	{specs.TimeNamespace, "time", unix.CLONE_NEWTIME},
}

// Lookup returns the type for an OCI namespace name.
func Lookup(t specs.LinuxNamespaceType) (Type, error) {
	for _, n := range Types {
		if n.Spec == t {
			return n, nil
		}
	}
	return Type{}, fmt.Errorf("unknown namespace type %q (known: user, ipc, uts, network, pid, mount, cgroup, time)", t)
}

// ByProcName returns the type whose /proc/PID/ns file is name.
func ByProcName(name string) (Type, error) {
	for _, n := range Types {
		if n.Proc == name {
			return n, nil
		}
	}
	return Type{}, fmt.Errorf("unknown namespace file %q", name)
}

// ByClone returns the type of a single CLONE_NEW* flag.
func ByClone(flag uintptr) (Type, error) {
	for _, n := range Types {
		if n.Clone == flag {
			return n, nil
		}
	}
	return Type{}, fmt.Errorf("unknown namespace clone flag %#x", flag)
}

// Has reports whether the spec asks for a namespace of type t (new or
// joined) and returns its path ("" for a new one).
func Has(l *specs.Linux, t specs.LinuxNamespaceType) (path string, ok bool) {
	if l == nil {
		return "", false
	}
	for _, n := range l.Namespaces {
		if n.Type == t {
			return n.Path, true
		}
	}
	return "", false
}
