package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/idmap"
	"github.com/berth-dev/berth/internal/procsetup"
	"github.com/berth-dev/berth/ns"
	"github.com/berth-dev/berth/rootfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxConfigSize bounds config.json: a hostile bundle cannot make the
// runtime read without limit.
const MaxConfigSize = 16 << 20

// LoadSpec reads and checks bundle/config.json, resolving the rootfs and
// relative bind sources against the bundle. The returned spec is the one
// the container is made from.
func LoadSpec(bundle string) (*specs.Spec, error) {
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no config.json in bundle %s (create one with `berth-runtime spec`)", bundle)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxConfigSize {
		return nil, fmt.Errorf("config.json is %d bytes; the limit is %d", st.Size(), MaxConfigSize)
	}
	return ParseSpec(f, bundle)
}

// specVersionOK accepts the 1.x versions of the runtime spec.
func specVersionOK(v string) bool { return strings.HasPrefix(v, "1.") }

// Validate checks everything about a spec that can be checked before a
// container exists, so a bad config fails with a clear message and
// leaves nothing behind.
func Validate(spec *specs.Spec) error {
	if !specVersionOK(spec.Version) {
		return fmt.Errorf("ociVersion %q is not supported (want 1.x)", spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return errors.New("root.path is required")
	}
	if st, err := os.Stat(spec.Root.Path); err != nil {
		return fmt.Errorf("rootfs %s: %w", spec.Root.Path, err)
	} else if !st.IsDir() {
		return fmt.Errorf("rootfs %s is not a directory", spec.Root.Path)
	}
	if spec.Process == nil {
		return errors.New("process is required to create a container")
	}
	if err := validateProcess(spec.Process); err != nil {
		return fmt.Errorf("process: %w", err)
	}
	if spec.Linux == nil {
		return errors.New("linux section is required")
	}
	if err := validateNamespaces(spec); err != nil {
		return err
	}
	for i, m := range spec.Mounts {
		if m.Destination == "" {
			return fmt.Errorf("mounts[%d]: destination is required", i)
		}
		if strings.ContainsRune(m.Destination, 0) || strings.ContainsRune(m.Source, 0) {
			return fmt.Errorf("mounts[%d]: NUL byte in path", i)
		}
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			if !rootfs.IsBind(&spec.Mounts[i]) {
				return fmt.Errorf("mounts[%d] (%s): uidMappings/gidMappings are only supported on bind mounts", i, m.Destination)
			}
			if len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0 {
				return fmt.Errorf("mounts[%d] (%s): an id-mapped mount needs both uidMappings and gidMappings", i, m.Destination)
			}
			if err := idmap.Validate("uid", m.UIDMappings); err != nil {
				return fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
			}
			if err := idmap.Validate("gid", m.GIDMappings); err != nil {
				return fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("mounts[%d] (%s): id-mapped mounts need a privileged runtime", i, m.Destination)
			}
		}
	}
	if err := validateHooks(spec.Hooks); err != nil {
		return err
	}
	if err := validateSysctls(spec); err != nil {
		return err
	}
	l := spec.Linux
	if l.IntelRdt != nil {
		return errors.New("linux.intelRdt: Intel RDT is not supported on this host")
	}
	if (l.MountLabel != "" || spec.Process.SelinuxLabel != "") && selinuxEnabled() {
		// Without SELinux on the host a label means nothing and is
		// ignored, as crun does; with it, berth cannot apply one yet.
		return errors.New("SELinux labels are set and SELinux is enabled on this host, but berth cannot apply SELinux labels")
	}
	if spec.Process.ApparmorProfile != "" {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
			return fmt.Errorf("process.apparmorProfile %q is set but AppArmor is not enabled on this host", spec.Process.ApparmorProfile)
		}
		return errors.New("process.apparmorProfile: AppArmor profiles are not supported by berth yet")
	}
	if len(l.TimeOffsets) > 0 {
		if p, ok := ns.Has(l, specs.TimeNamespace); !ok || p != "" {
			return errors.New("linux.timeOffsets need a new time namespace in linux.namespaces")
		}
		for clock := range l.TimeOffsets {
			if clock != "monotonic" && clock != "boottime" {
				return fmt.Errorf("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
			}
		}
	}
	if l.Personality != nil && l.Personality.Domain != specs.PerLinux && l.Personality.Domain != specs.PerLinux32 {
		return fmt.Errorf("linux.personality.domain %q is not supported (LINUX or LINUX32)", l.Personality.Domain)
	}
	for i, d := range l.Devices {
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d]: path %q is not absolute", i, d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return fmt.Errorf("linux.devices[%d] (%s): unknown type %q", i, d.Path, d.Type)
		}
	}
	return nil
}

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("cwd %q must be an absolute path", p.Cwd)
	}
	seen := map[string]bool{}
	for _, rl := range p.Rlimits {
		if _, err := procsetup.RlimitNumber(rl.Type); err != nil {
			return err
		}
		if seen[rl.Type] {
			return fmt.Errorf("rlimit %s is given twice", rl.Type)
		}
		seen[rl.Type] = true
		if rl.Soft > rl.Hard {
			return fmt.Errorf("rlimit %s: soft limit %d is above the hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
	}
	if _, err := procsetup.CapSets(p.Capabilities); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("oomScoreAdj %d is outside -1000..1000", *p.OOMScoreAdj)
	}
	for _, e := range p.Env {
		if !strings.Contains(e, "=") || strings.ContainsRune(e, 0) {
			return fmt.Errorf("env entry %q is not KEY=value", e)
		}
	}
	return nil
}

func validateNamespaces(spec *specs.Spec) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range spec.Linux.Namespaces {
		if _, err := ns.Lookup(n.Type); err != nil {
			return fmt.Errorf("linux.namespaces: %w", err)
		}
		if seen[n.Type] {
			return fmt.Errorf("linux.namespaces: %s is listed twice", n.Type)
		}
		seen[n.Type] = true
		if n.Path != "" {
			if !filepath.IsAbs(n.Path) {
				return fmt.Errorf("linux.namespaces: %s path %q is not absolute", n.Type, n.Path)
			}
			if _, err := os.Stat(n.Path); err != nil {
				return fmt.Errorf("linux.namespaces: %s: %w", n.Type, err)
			}
		}
	}
	_, userns := ns.Has(spec.Linux, specs.UserNamespace)
	if userns {
		if len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0 {
			if p, _ := ns.Has(spec.Linux, specs.UserNamespace); p == "" {
				return errors.New("linux.namespaces: a new user namespace needs linux.uidMappings and linux.gidMappings")
			}
		}
	} else if len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0 {
		return errors.New("linux.uidMappings/gidMappings are set but there is no user namespace")
	}
	if err := idmap.Validate("uid", spec.Linux.UIDMappings); err != nil {
		return err
	}
	if err := idmap.Validate("gid", spec.Linux.GIDMappings); err != nil {
		return err
	}
	if spec.Hostname != "" || spec.Domainname != "" {
		// A joined UTS namespace gets the name too, as with runc: the
		// spec's author chose to share it.
		if _, ok := ns.Has(spec.Linux, specs.UTSNamespace); !ok {
			return errors.New("hostname/domainname need a UTS namespace of the container's own (add one to linux.namespaces)")
		}
	}
	return nil
}

func validateHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	lists := map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	}
	for kind, list := range lists {
		for i, hk := range list {
			if !filepath.IsAbs(hk.Path) {
				return fmt.Errorf("hooks.%s[%d]: path %q is not absolute", kind, i, hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return fmt.Errorf("hooks.%s[%d]: timeout must be positive", kind, i)
			}
		}
	}
	return nil
}

var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// validateSysctls accepts only sysctls that live in a namespace the
// container has of its own: a container must not change the host.
func validateSysctls(spec *specs.Spec) error {
	newNS := func(t specs.LinuxNamespaceType) bool {
		p, ok := ns.Has(spec.Linux, t)
		return ok && p == ""
	}
	hasNS := func(t specs.LinuxNamespaceType) bool {
		_, ok := ns.Has(spec.Linux, t)
		return ok
	}
	for k := range spec.Linux.Sysctl {
		if strings.ContainsAny(k, "/\x00") || strings.Contains(k, "..") {
			return fmt.Errorf("sysctl %q is not a valid name", k)
		}
		switch {
		case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
			if !hasNS(specs.IPCNamespace) {
				return fmt.Errorf("sysctl %q needs an IPC namespace", k)
			}
		case strings.HasPrefix(k, "net."):
			if !hasNS(specs.NetworkNamespace) {
				return fmt.Errorf("sysctl %q needs a network namespace", k)
			}
		case k == "kernel.hostname" || k == "kernel.domainname":
			if !newNS(specs.UTSNamespace) {
				return fmt.Errorf("sysctl %q needs a new UTS namespace", k)
			}
		default:
			return fmt.Errorf("sysctl %q is not in a separate kernel namespace: setting it would change the host", k)
		}
	}
	return nil
}

// selinuxEnabled reports whether the kernel has SELinux enabled (its
// filesystem is mounted where libselinux looks for it).
func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}
