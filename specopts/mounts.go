package specopts

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bind is a parsed -v /host:/ctr[:opts].
type Bind struct {
	Source, Destination string
	ReadOnly            bool
	Propagation         string
}

// ParseBind parses a -v value. Only host paths are accepted: named volumes
// are not supported yet, and say so.
func ParseBind(v string) (Bind, error) {
	parts := strings.Split(v, ":")
	var b Bind
	switch len(parts) {
	case 2, 3:
		b.Source, b.Destination = parts[0], parts[1]
	default:
		return b, invalid("invalid volume specification: '%s'", v)
	}
	if !strings.HasPrefix(b.Source, "/") {
		return b, invalid("invalid volume specification: '%s': named volumes are not supported yet; use an absolute host path", v)
	}
	if !strings.HasPrefix(b.Destination, "/") {
		return b, invalid("invalid volume specification: '%s': mount path must be absolute", v)
	}
	if b.Destination == "/" {
		return b, invalid("invalid volume specification: '%s': invalid mount config: destination can't be '/'", v)
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				b.ReadOnly = true
			case "rw", "z", "Z", "nocopy", "":
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				b.Propagation = o
			default:
				return b, invalid("invalid mode: %s", o)
			}
		}
	}
	b.Source, b.Destination = filepath.Clean(b.Source), filepath.Clean(b.Destination)
	return b, nil
}

// MountSet is everything mounted into the container beyond the defaults.
type MountSet struct {
	Binds          []string
	Mounts         []mount.Mount
	Tmpfs          map[string]string
	ReadonlyRootfs bool
	ShmSize        int64
	// Files are the per-container /etc/hostname, /etc/hosts and
	// /etc/resolv.conf to bind (empty: not mounted).
	Hostname, Hosts, ResolvConf string
}

// WithMounts adds binds, --mount, --tmpfs, --read-only and the per
// container /etc files. A user mount at a default destination replaces
// the default one, as in Docker.
func WithMounts(ms MountSet) Opt {
	return func(s *specs.Spec) error {
		s.Root.Readonly = ms.ReadonlyRootfs
		if ms.ShmSize < 0 {
			return invalid("SHM size can not be less than 0")
		}
		if ms.ShmSize > 0 {
			if i := mountIndex(s, "/dev/shm"); i >= 0 {
				opts := []string{}
				for _, o := range s.Mounts[i].Options {
					if !strings.HasPrefix(o, "size=") {
						opts = append(opts, o)
					}
				}
				s.Mounts[i].Options = append(opts, "size="+itoa(int(ms.ShmSize)))
			}
		}
		var user []specs.Mount
		seen := map[string]bool{}
		add := func(m specs.Mount) error {
			m.Destination = trimSlash(filepath.Clean(m.Destination))
			if seen[m.Destination] {
				return invalid("Duplicate mount point: %s", m.Destination)
			}
			seen[m.Destination] = true
			user = append(user, m)
			return nil
		}
		for _, v := range ms.Binds {
			b, err := ParseBind(v)
			if err != nil {
				return err
			}
			opts := []string{"rbind"}
			if b.ReadOnly {
				opts = append(opts, "ro")
			}
			prop := b.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			if err := add(specs.Mount{Destination: b.Destination, Type: "bind", Source: b.Source, Options: append(opts, prop)}); err != nil {
				return err
			}
		}
		for _, m := range ms.Mounts {
			if !strings.HasPrefix(m.Target, "/") {
				return invalid("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Target)
			}
			switch m.Type {
			case mount.TypeBind:
				if !strings.HasPrefix(m.Source, "/") {
					return invalid("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
				}
				opts := []string{"rbind"}
				if m.ReadOnly {
					opts = append(opts, "ro")
				}
				prop := "rprivate"
				if m.BindOptions != nil && m.BindOptions.Propagation != "" {
					prop = string(m.BindOptions.Propagation)
				}
				if err := add(specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: append(opts, prop)}); err != nil {
					return err
				}
			case mount.TypeTmpfs:
				opts := []string{"nosuid", "nodev", "noexec"}
				if m.TmpfsOptions != nil {
					if m.TmpfsOptions.SizeBytes > 0 {
						opts = append(opts, "size="+itoa(int(m.TmpfsOptions.SizeBytes)))
					}
					if m.TmpfsOptions.Mode != 0 {
						opts = append(opts, "mode="+strings.TrimPrefix(octal(uint32(m.TmpfsOptions.Mode.Perm())), "0"))
					}
				}
				if m.ReadOnly {
					opts = append(opts, "ro")
				}
				if err := add(specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts}); err != nil {
					return err
				}
			default:
				return invalid("mount type %q is not supported yet (use bind or tmpfs)", m.Type)
			}
		}
		dests := make([]string, 0, len(ms.Tmpfs))
		for d := range ms.Tmpfs {
			dests = append(dests, d)
		}
		sort.Strings(dests)
		for _, d := range dests {
			if !strings.HasPrefix(d, "/") {
				return invalid("invalid tmpfs mount path: '%s' mount path must be absolute", d)
			}
			opts := []string{"nosuid", "nodev", "noexec"}
			for _, o := range strings.Split(ms.Tmpfs[d], ",") {
				if o = strings.TrimSpace(o); o != "" {
					opts = append(opts, o)
				}
			}
			if err := add(specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts}); err != nil {
				return err
			}
		}
		etc := []struct{ dest, src string }{{"/etc/resolv.conf", ms.ResolvConf}, {"/etc/hostname", ms.Hostname}, {"/etc/hosts", ms.Hosts}}
		for _, e := range etc {
			if e.src == "" || seen[e.dest] {
				continue
			}
			opts := []string{"rbind", "rprivate"}
			if ms.ReadonlyRootfs {
				opts = append(opts, "ro")
			}
			user = append(user, specs.Mount{Destination: e.dest, Type: "bind", Source: e.src, Options: opts})
		}
		// User mounts replace defaults at the same destination (or below a
		// replaced /dev), and are mounted after them, shallowest first.
		kept := s.Mounts[:0]
		for _, m := range s.Mounts {
			if !seen[m.Destination] {
				kept = append(kept, m)
			}
		}
		sort.SliceStable(user, func(i, j int) bool {
			return strings.Count(user[i].Destination, "/") < strings.Count(user[j].Destination, "/")
		})
		s.Mounts = append(kept, user...)
		return nil
	}
}

func octal(v uint32) string {
	const digits = "01234567"
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{digits[v%8]}, b...)
		v /= 8
	}
	return "0" + string(b)
}
