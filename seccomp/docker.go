package seccomp

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/seccomp/profile"
	"github.com/berth-dev/berth/seccomp/syscalls"
)

// DefaultProfile returns Docker's default profile (berth embeds the data
// of moby's current default.json) resolved for a container with the given
// capabilities (any form caps.Number accepts) on the native architecture
// and the running kernel, as an OCI LinuxSeccomp.
func DefaultProfile(capabilities []string) (*specs.LinuxSeccomp, error) {
	return FromDockerJSON(profile.DefaultJSON(), capabilities)
}

// FromDockerJSON converts a Docker-format profile for a container with
// these capabilities on the native architecture and the running kernel,
// exactly as dockerd does. A profile with neither defaultAction nor
// syscalls means no filter (nil, nil), as in Docker. Malformed profiles
// are errors that say where the mistake is.
func FromDockerJSON(data []byte, capabilities []string) (*specs.LinuxSeccomp, error) {
	native := syscalls.Native()
	if native == nil {
		return nil, fmt.Errorf("seccomp: berth has no syscall table for this architecture")
	}
	k, err := KernelVersion()
	if err != nil {
		return nil, err
	}
	return FromDockerJSONFor(data, profile.Env{Arch: native, Caps: capabilities, Kernel: k})
}

// FromDockerJSONFor is FromDockerJSON for an explicit architecture,
// capability set and kernel version.
func FromDockerJSONFor(data []byte, env profile.Env) (*specs.LinuxSeccomp, error) {
	p, err := profile.Parse(data)
	if err != nil {
		return nil, err
	}
	for _, c := range env.Caps {
		if _, err := caps.Number(c); err != nil {
			return nil, fmt.Errorf("seccomp profile: capabilities: %w", err)
		}
	}
	return p.Resolve(env)
}

// KernelVersion returns the running kernel's major and minor version.
func KernelVersion() ([2]int, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return [2]int{}, fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, fmt.Errorf("cannot parse kernel release %q", rel)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("cannot parse kernel release %q", rel)
	}
	return [2]int{maj, min}, nil
}
