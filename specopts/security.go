package specopts

import (
	"strings"

	"github.com/berth-dev/berth/caps"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithCapabilities applies --cap-add and --cap-drop to the default set, as
// Docker does: names with or without CAP_, any case, "ALL" in either list;
// adds win over drops of the same capability, "drop ALL" then adds only the
// added ones. Inheritable and ambient stay empty (CVE-2022-29162).
func WithCapabilities(add, drop []string) Opt {
	return func(s *specs.Spec) error {
		last := caps.LastCap()
		cur, err := caps.FromNames(s.Process.Capabilities.Bounding)
		if err != nil {
			return invalid("%v", err)
		}
		var addSet, dropSet caps.Set
		addAll, dropAll := false, false
		for _, c := range add {
			if strings.EqualFold(c, "ALL") || strings.EqualFold(c, "CAP_ALL") {
				addAll = true
				continue
			}
			n, err := caps.Number(c)
			if err != nil {
				return invalid("invalid capability: %q (see capabilities(7) for the names)", c)
			}
			addSet |= 1 << uint(n)
		}
		for _, c := range drop {
			if strings.EqualFold(c, "ALL") || strings.EqualFold(c, "CAP_ALL") {
				dropAll = true
				continue
			}
			n, err := caps.Number(c)
			if err != nil {
				return invalid("invalid capability: %q (see capabilities(7) for the names)", c)
			}
			dropSet |= 1 << uint(n)
		}
		switch {
		case addAll:
			cur = caps.All(last)
		case dropAll:
			cur = 0
		}
		if !addAll {
			cur |= addSet
		}
		cur &^= dropSet &^ addSet
		cur &= caps.All(last)
		setCaps(s, cur)
		return nil
	}
}

func setCaps(s *specs.Spec, set caps.Set) {
	names := set.Names()
	if names == nil {
		names = []string{}
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  names,
		Permitted: append([]string(nil), names...),
		Effective: append([]string(nil), names...),
	}
}

// WithPrivileged gives the container every capability the daemon itself
// holds (machines without CAP_SYS_RESOURCE still run --privileged, where
// dockerd 20.10 fails with "unable to apply caps"), no seccomp filter, no
// masked or read-only paths, a writable /sys and cgroup mount, and every
// device in the device cgroup.
func WithPrivileged(held caps.Set) Opt {
	return func(s *specs.Spec) error {
		setCaps(s, held)
		s.Linux.Seccomp = nil
		s.Linux.MaskedPaths = nil
		s.Linux.ReadonlyPaths = nil
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = dropOpt(s.Mounts[i].Options, "ro")
			}
		}
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
}

func dropOpt(opts []string, o string) []string {
	out := opts[:0]
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}

// SeccompBuilder compiles a Docker JSON seccomp profile (nil means the
// default profile) into the OCI seccomp section for a capability set.
type SeccompBuilder func(profile []byte, caps []string) (*specs.LinuxSeccomp, error)

// Security is the parsed --security-opt list.
type Security struct {
	SeccompUnconfined bool
	SeccompProfile    []byte // inline JSON from --security-opt seccomp=…
	NoNewPrivileges   bool
	SystemPaths       bool // systempaths=unconfined
}

// ParseSecurityOpts parses --security-opt values the way dockerd does:
// "key=value" (or the old "key:value"). apparmor and label are accepted and
// ignored (this host has neither in use).
func ParseSecurityOpts(opts []string) (Security, error) {
	var sec Security
	for _, o := range opts {
		if o == "no-new-privileges" {
			sec.NoNewPrivileges = true
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if !ok {
			return sec, invalid("invalid --security-opt: %q", o)
		}
		switch k {
		case "seccomp":
			if v == "unconfined" {
				sec.SeccompUnconfined = true
			} else if strings.HasPrefix(strings.TrimSpace(v), "{") {
				sec.SeccompProfile = []byte(v)
			} else {
				return sec, invalid("opening seccomp profile (%s) failed: the daemon takes the profile's JSON, pass a file path to the client", v)
			}
		case "no-new-privileges":
			switch v {
			case "true", "1":
				sec.NoNewPrivileges = true
			case "false", "0":
				sec.NoNewPrivileges = false
			default:
				return sec, invalid("invalid --security-opt 2: %q", o)
			}
		case "systempaths":
			if v != "unconfined" {
				return sec, invalid("invalid --security-opt: %q", o)
			}
			sec.SystemPaths = true
		case "apparmor", "label":
		default:
			return sec, invalid("invalid --security-opt 2: %q", o)
		}
	}
	return sec, nil
}

// WithSecurity applies parsed security options: the seccomp profile
// (unconfined, the user's, or the daemon's default, built for the
// capabilities already in the spec, so apply it after the capability
// options), no_new_privileges, and systempaths=unconfined.
func WithSecurity(sec Security, privileged bool, defaultProfile []byte, build SeccompBuilder) Opt {
	return func(s *specs.Spec) error {
		s.Process.NoNewPrivileges = sec.NoNewPrivileges
		if sec.SystemPaths {
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}
		if sec.SeccompUnconfined || (privileged && sec.SeccompProfile == nil) || build == nil {
			s.Linux.Seccomp = nil
			return nil
		}
		profile := sec.SeccompProfile
		if profile == nil {
			profile = defaultProfile
		}
		sc, err := build(profile, s.Process.Capabilities.Bounding)
		if err != nil {
			return invalid("seccomp profile: %v", err)
		}
		s.Linux.Seccomp = sc
		return nil
	}
}

// WithPaths overrides the masked and read-only path lists (API fields
// MaskedPaths/ReadonlyPaths; nil keeps the defaults).
func WithPaths(masked, readonly []string) Opt {
	return func(s *specs.Spec) error {
		if masked != nil {
			s.Linux.MaskedPaths = masked
		}
		if readonly != nil {
			s.Linux.ReadonlyPaths = readonly
		}
		return nil
	}
}
