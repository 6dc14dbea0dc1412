package specopts

import (
	"strings"

	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// NamespaceModes are the --ipc, --pid, --uts, --network and --cgroupns
// modes. PeerPID resolves "container:NAME" to the init pid of a running
// container, whose namespaces are then joined by path.
type NamespaceModes struct {
	IPC      container.IpcMode
	PID      container.PidMode
	UTS      container.UTSMode
	Network  container.NetworkMode
	Cgroupns container.CgroupnsMode
	// CgroupV2 decides the default cgroupns mode: private on v2, host on
	// v1 and hybrid (as dockerd; the talk's host shares it).
	CgroupV2 bool
	PeerPID  func(idOrName string) (int, error)
}

// WithNamespaces applies the namespace modes.
func WithNamespaces(m NamespaceModes) Opt {
	return func(s *specs.Spec) error {
		join := func(t specs.LinuxNamespaceType, file, who string) error {
			if m.PeerPID == nil {
				return invalid("joining another container's namespaces is not supported here")
			}
			pid, err := m.PeerPID(who)
			if err != nil {
				return err
			}
			setNamespace(s, t, "/proc/"+itoa(pid)+"/ns/"+file)
			return nil
		}
		switch {
		case m.IPC.IsHost():
			removeNamespace(s, specs.IPCNamespace)
			removeMount(s, "/dev/mqueue")
		case m.IPC.IsContainer():
			if err := join(specs.IPCNamespace, "ipc", m.IPC.Container()); err != nil {
				return err
			}
		case m.IPC.IsNone(), m.IPC.IsEmpty(), m.IPC.IsPrivate(), m.IPC.IsShareable():
		default:
			return invalid("invalid IPC mode: %s", m.IPC)
		}
		switch {
		case m.PID.IsHost():
			removeNamespace(s, specs.PIDNamespace)
		case m.PID.IsContainer():
			if err := join(specs.PIDNamespace, "pid", m.PID.Container()); err != nil {
				return err
			}
		case m.PID == "":
		default:
			return invalid("invalid PID mode: %s", m.PID)
		}
		switch {
		case m.UTS.IsHost():
			removeNamespace(s, specs.UTSNamespace)
			s.Hostname = ""
		case m.UTS == "":
		default:
			return invalid("invalid UTS mode: %s", m.UTS)
		}
		switch n := m.Network; {
		case n.IsHost():
			removeNamespace(s, specs.NetworkNamespace)
		case n.IsContainer():
			if err := join(specs.NetworkNamespace, "net", n.ConnectedContainer()); err != nil {
				return err
			}
		case n.IsNone(), n.IsDefault(), n.IsBridge(), n == "":
			// A private network namespace with only loopback: bridge
			// networking is not built yet.
		default:
			return invalid("network %s not found", string(n))
		}
		switch {
		case m.Cgroupns.IsPrivate():
			setNamespace(s, specs.CgroupNamespace, "")
		case m.Cgroupns.IsHost():
			removeNamespace(s, specs.CgroupNamespace)
		case m.Cgroupns.IsEmpty():
			if m.CgroupV2 {
				setNamespace(s, specs.CgroupNamespace, "")
			}
		default:
			return invalid("invalid cgroup namespace mode: %v", m.Cgroupns)
		}
		return nil
	}
}

// WithUserNamespace puts the container in a new user namespace with the
// given mappings (userns-remap); empty mappings keep the host's.
func WithUserNamespace(uids, gids []specs.LinuxIDMapping) Opt {
	return func(s *specs.Spec) error {
		if len(uids) == 0 {
			removeNamespace(s, specs.UserNamespace)
			return nil
		}
		setNamespace(s, specs.UserNamespace, "")
		s.Linux.UIDMappings = append([]specs.LinuxIDMapping(nil), uids...)
		s.Linux.GIDMappings = append([]specs.LinuxIDMapping(nil), gids...)
		// A sysfs of the host's network namespace cannot be mounted from
		// a user namespace; with a private netns it can.
		if !hasNamespace(s, specs.NetworkNamespace) {
			if i := mountIndex(s, "/sys"); i >= 0 {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
		return nil
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// trimSlash is strings.TrimRight(p, "/") keeping "/".
func trimSlash(p string) string {
	if p == "/" {
		return p
	}
	return strings.TrimRight(p, "/")
}
