package specopts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/caps"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func capHex(t *testing.T, list []string) string {
	t.Helper()
	s, err := caps.FromNames(list)
	if err != nil {
		t.Fatal(err)
	}
	return s.Hex()
}

func TestDefaultSpecIsDockers(t *testing.T) {
	s := Default()
	if err := Apply(s, WithCapabilities(nil, nil)); err != nil {
		t.Fatal(err)
	}
	for _, set := range [][]string{s.Process.Capabilities.Bounding, s.Process.Capabilities.Permitted, s.Process.Capabilities.Effective} {
		if got := capHex(t, set); got != "00000000a80425fb" {
			t.Fatalf("default caps %s, want a80425fb", got)
		}
	}
	if len(s.Process.Capabilities.Inheritable) != 0 || len(s.Process.Capabilities.Ambient) != 0 {
		t.Fatal("inheritable/ambient must be empty")
	}
	want := map[string]string{"/proc": "proc", "/dev/mqueue": "mqueue", "/sys/fs/cgroup": "cgroup", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}
	for dest, typ := range want {
		i := mountIndex(s, dest)
		if i < 0 || s.Mounts[i].Type != typ {
			t.Errorf("mount %s: want type %s", dest, typ)
		}
	}
	if !contains(s.Linux.MaskedPaths, "/proc/kcore") || !contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Error("masked/readonly paths missing")
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		if !hasNamespace(s, ns) {
			t.Errorf("namespace %s missing", ns)
		}
	}
	if hasNamespace(s, specs.UserNamespace) {
		t.Error("no user namespace without remap")
	}
}

func contains(l []string, x string) bool {
	for _, v := range l {
		if v == x {
			return true
		}
	}
	return false
}

func TestCapabilityFlags(t *testing.T) {
	cases := []struct {
		add, drop []string
		want      string
	}{
		{nil, []string{"ALL"}, "0000000000000000"},
		{[]string{"CAP_NET_ADMIN"}, []string{"ALL"}, "0000000000001000"},
		{[]string{"net_admin"}, nil, "00000000a80435fb"},
		{nil, []string{"chown", "CAP_KILL"}, "00000000a80425da"},
		{[]string{"KILL"}, []string{"KILL"}, "00000000a80425fb"},
	}
	for _, c := range cases {
		s := Default()
		if err := Apply(s, WithCapabilities(c.add, c.drop)); err != nil {
			t.Fatal(err)
		}
		if got := capHex(t, s.Process.Capabilities.Effective); got != c.want {
			t.Errorf("add %v drop %v: %s, want %s", c.add, c.drop, got, c.want)
		}
	}
	s := Default()
	if err := Apply(s, WithCapabilities([]string{"ALL"}, nil)); err != nil {
		t.Fatal(err)
	}
	if got, want := capHex(t, s.Process.Capabilities.Bounding), caps.All(caps.LastCap()).Hex(); got != want {
		t.Errorf("add ALL: %s want %s", got, want)
	}
	if err := Apply(Default(), WithCapabilities([]string{"CAP_FLY"}, nil)); err == nil {
		t.Error("unknown capability accepted")
	}
}

func TestPrivilegedUsesHeldCaps(t *testing.T) {
	held := caps.Set(0x1ff)
	s := Default()
	if err := Apply(s, WithPrivileged(held)); err != nil {
		t.Fatal(err)
	}
	if capHex(t, s.Process.Capabilities.Bounding) != "00000000000001ff" || s.Linux.MaskedPaths != nil {
		t.Fatalf("privileged spec: %+v", s.Process.Capabilities)
	}
}

func TestResources(t *testing.T) {
	s := Default()
	pids := int64(50)
	r := container.Resources{CPUPeriod: 2000, CPUQuota: 1000, CPUShares: 512, Memory: 64 << 20, PidsLimit: &pids}
	if err := Apply(s, WithResources(r)); err != nil {
		t.Fatal(err)
	}
	c := s.Linux.Resources.CPU
	if *c.Period != 2000 || *c.Quota != 1000 || *c.Shares != 512 {
		t.Fatalf("cpu %+v", c)
	}
	if *s.Linux.Resources.Memory.Limit != 64<<20 || *s.Linux.Resources.Memory.Swap != 128<<20 || *s.Linux.Resources.Pids.Limit != 50 {
		t.Fatal("memory/pids")
	}
	s = Default()
	if err := Apply(s, WithResources(container.Resources{NanoCPUs: 5e8})); err != nil {
		t.Fatal(err)
	}
	if *s.Linux.Resources.CPU.Quota != 50000 || *s.Linux.Resources.CPU.Period != 100000 {
		t.Fatal("--cpus 0.5")
	}
	bad := []container.Resources{
		{CPUPeriod: 10}, {CPUQuota: 10}, {NanoCPUs: 1, CPUQuota: 2000}, {Memory: 1024},
		{MemorySwap: 1 << 30}, {CpusetCpus: "0-999"}, {CpusetCpus: "x"}, {NanoCPUs: 1000e9},
	}
	for _, b := range bad {
		if err := Apply(Default(), WithResources(b)); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}

func TestUlimitsAboveHardLimitRefused(t *testing.T) {
	s := Default()
	ok := []*container.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}
	if err := Apply(s, WithUlimits(nil, ok, false)); err != nil {
		t.Fatal(err)
	}
	if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Hard != 200 {
		t.Fatalf("rlimits %+v", s.Process.Rlimits)
	}
	huge := []*container.Ulimit{{Name: "nofile", Soft: 1 << 40, Hard: 1 << 40}}
	if err := Apply(Default(), WithUlimits(nil, huge, false)); err == nil || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") {
		t.Fatalf("huge nofile: %v", err)
	}
	if err := Apply(Default(), WithUlimits(nil, []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}, false)); err == nil {
		t.Fatal("bogus ulimit accepted")
	}
}

func TestResolveUserInBusybox(t *testing.T) {
	root := t.TempDir()
	if err := busybox.Build(root); err != nil {
		t.Skip(err)
	}
	u, err := ResolveUser(root, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 0 || u.GID != 0 || len(u.AdditionalGids) != 1 || u.AdditionalGids[0] != 10 || u.Home != "/root" {
		t.Fatalf("root: %+v (want groups=10(wheel))", u)
	}
	u, err = ResolveUser(root, "daemon:www-data", nil)
	if err != nil || u.UID != 1 || u.GID != 33 {
		t.Fatalf("daemon:www-data: %+v %v", u, err)
	}
	u, err = ResolveUser(root, "1234:5678", []string{"wheel"})
	if err != nil || u.UID != 1234 || u.GID != 5678 || u.AdditionalGids[0] != 10 {
		t.Fatalf("numeric: %+v %v", u, err)
	}
	if _, err := ResolveUser(root, "nosuchuser", nil); err == nil {
		t.Fatal("unknown user accepted")
	}
	// A hostile /etc/passwd symlink must not be followed out of the rootfs.
	os.Remove(filepath.Join(root, "etc/passwd"))
	os.Symlink("/etc/passwd", filepath.Join(root, "etc/passwd"))
	if _, err := ResolveUser(root, "root", nil); err == nil {
		// /etc/passwd inside resolves to itself inside the root: a
		// dangling link, so no user "root" exists there.
		t.Fatal("symlinked passwd resolved outside the rootfs")
	}
}

func TestMountsAndSecurityOpts(t *testing.T) {
	s := Default()
	err := Apply(s, WithMounts(MountSet{Binds: []string{"/tmp:/data:ro"}, Tmpfs: map[string]string{"/run": "size=1m"}, ReadonlyRootfs: true, Hostname: "/x/hostname"}))
	if err != nil {
		t.Fatal(err)
	}
	i := mountIndex(s, "/data")
	if i < 0 || !contains(s.Mounts[i].Options, "ro") || !s.Root.Readonly || mountIndex(s, "/run") < 0 || mountIndex(s, "/etc/hostname") < 0 {
		t.Fatalf("mounts %+v", s.Mounts)
	}
	for _, b := range []string{"data:/x", "/a", "/a:b", "/a:/"} {
		if err := Apply(Default(), WithMounts(MountSet{Binds: []string{b}})); err == nil {
			t.Errorf("bind %q accepted", b)
		}
	}
	sec, err := ParseSecurityOpts([]string{"no-new-privileges", `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`})
	if err != nil || !sec.NoNewPrivileges || sec.SeccompProfile == nil {
		t.Fatalf("%+v %v", sec, err)
	}
	for _, bad := range []string{"seccomp=/etc/x.json", "bogus=1", "nonsense"} {
		if _, err := ParseSecurityOpts([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var gotCaps []string
	build := func(p []byte, c []string) (*specs.LinuxSeccomp, error) {
		gotCaps = c
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, nil
	}
	s = Default()
	if err := Apply(s, WithCapabilities(nil, []string{"ALL"}), WithSecurity(Security{}, false, []byte("{}"), build)); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || len(gotCaps) != 0 {
		t.Fatalf("seccomp built for caps %v", gotCaps)
	}
	s = Default()
	Apply(s, WithSecurity(Security{SeccompUnconfined: true}, false, nil, build))
	if s.Linux.Seccomp != nil {
		t.Fatal("unconfined kept a filter")
	}
}

func TestNamespaceModes(t *testing.T) {
	s := Default()
	err := Apply(s, WithNamespaces(NamespaceModes{IPC: "host", PID: "host", UTS: "host", Network: "host", Cgroupns: "private"}))
	if err != nil {
		t.Fatal(err)
	}
	if hasNamespace(s, specs.IPCNamespace) || hasNamespace(s, specs.PIDNamespace) || hasNamespace(s, specs.NetworkNamespace) ||
		!hasNamespace(s, specs.CgroupNamespace) || mountIndex(s, "/dev/mqueue") >= 0 {
		t.Fatalf("namespaces %+v", s.Linux.Namespaces)
	}
	s = Default()
	err = Apply(s, WithNamespaces(NamespaceModes{Network: "container:web", PeerPID: func(string) (int, error) { return 42, nil }}))
	if err != nil || s.Linux.Namespaces[1].Path != "/proc/42/ns/net" {
		t.Fatalf("%v %+v", err, s.Linux.Namespaces)
	}
	if err := Apply(Default(), WithNamespaces(NamespaceModes{Network: "mynet"})); err == nil {
		t.Fatal("unknown network accepted")
	}
	s = Default()
	Apply(s, WithUserNamespace([]specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}, []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}))
	if !hasNamespace(s, specs.UserNamespace) || s.Linux.UIDMappings[0].HostID != 100000 {
		t.Fatal("userns")
	}
}
