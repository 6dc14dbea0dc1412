// Package specopts turns Docker's container configuration (Config and
// HostConfig, as the API carries them) into an OCI runtime spec. It starts
// from Docker's default spec and applies small options, one per flag
// family, each a function that edits a *specs.Spec (containerd's
// pkg/oci/spec_opts.go is the model). It reads the container's rootfs only
// to resolve users and groups; it creates nothing on disk.
package specopts

import (
	"fmt"

	"github.com/berth-dev/berth/caps"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Opt edits a spec.
type Opt func(*specs.Spec) error

// Apply applies opts in order; the first error stops.
func Apply(s *specs.Spec, opts ...Opt) error {
	for _, o := range opts {
		if err := o(s); err != nil {
			return err
		}
	}
	return nil
}

// DefaultMaskedPaths are the paths Docker hides from a container.
var DefaultMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// DefaultReadonlyPaths are the paths Docker makes read-only.
var DefaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// DefaultEnvPath is the PATH a container gets when its image sets none.
const DefaultEnvPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Default is Docker's default spec for a Linux container: its own pid,
// ipc, uts, mount and network namespaces, /proc, /dev, /dev/pts, /dev/shm,
// /dev/mqueue, /sys and the cgroup hierarchy mounted, the 14 default
// capabilities (a80425fb) in the bounding, permitted and effective sets,
// none inheritable, masked and read-only paths, and the default device
// cgroup rules.
func Default() *specs.Spec {
	capList := append([]string(nil), caps.DockerDefault...)
	capList = caps.Sorted(capList)
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Cwd: "/",
			Env: []string{DefaultEnvPath},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  capList,
				Permitted: append([]string(nil), capList...),
				Effective: append([]string(nil), capList...),
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
			},
			MaskedPaths:   append([]string(nil), DefaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), DefaultReadonlyPaths...),
			Resources:     &specs.LinuxResources{Devices: defaultDeviceRules()},
		},
	}
	return s
}

func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	i := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	add := func(typ string, major, minor *int64, access string) {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access})
	}
	add("c", nil, nil, "m")
	add("b", nil, nil, "m")
	add("c", i(1), i(3), "rwm")    // /dev/null
	add("c", i(1), i(8), "rwm")    // /dev/random
	add("c", i(1), i(7), "rwm")    // /dev/full
	add("c", i(5), i(0), "rwm")    // /dev/tty
	add("c", i(1), i(5), "rwm")    // /dev/zero
	add("c", i(1), i(9), "rwm")    // /dev/urandom
	add("c", i(136), nil, "rwm")   // /dev/pts/*
	add("c", i(5), i(2), "rwm")    // /dev/ptmx
	add("c", i(10), i(200), "rwm") // /dev/net/tun
	return rules
}

// setNamespace adds or replaces the namespace of type t; path "" means a
// new one.
func setNamespace(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == t {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

// removeNamespace makes the container share the host's namespace of type t.
func removeNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	out := s.Linux.Namespaces[:0]
	for _, n := range s.Linux.Namespaces {
		if n.Type != t {
			out = append(out, n)
		}
	}
	s.Linux.Namespaces = out
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t {
			return true
		}
	}
	return false
}

// mountIndex finds the mount at dest, or -1.
func mountIndex(s *specs.Spec, dest string) int {
	for i, m := range s.Mounts {
		if m.Destination == dest {
			return i
		}
	}
	return -1
}

// removeMount drops the mount at dest.
func removeMount(s *specs.Spec, dest string) {
	if i := mountIndex(s, dest); i >= 0 {
		s.Mounts = append(s.Mounts[:i], s.Mounts[i+1:]...)
	}
}

func invalid(format string, args ...any) error {
	return &InvalidError{fmt.Sprintf(format, args...)}
}

// InvalidError is a configuration the user must fix (the API answers 400).
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }
