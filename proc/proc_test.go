package proc

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/caps"
)

// The talk's container: its sleep process as /proc/5484/status shows it.
const talkStatus = `Name:	sleep
Umask:	0022
State:	S (sleeping)
Tgid:	5484
Ngid:	0
Pid:	5484
PPid:	5460
TracerPid:	0
Uid:	100000	100000	100000	100000
Gid:	100000	100000	100000	100000
FDSize:	64
Groups:	100010 
NStgid:	5484	1
NSpid:	5484	1
NSpgid:	5484	1
NSsid:	5484	1
Threads:	1
CapInh:	00000000a80425fb
CapPrm:	00000000a80425fb
CapEff:	00000000a80425fb
CapBnd:	00000000a80425fb
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	2
Seccomp_filters:	1
Speculation_Store_Bypass:	thread force mitigated
`

func TestParseStatusTalk(t *testing.T) {
	s, err := ParseStatus([]byte(talkStatus))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "sleep" || s.Pid != 5484 || s.Tgid != 5484 || s.PPid != 5460 {
		t.Errorf("ids: %+v", s)
	}
	if s.Uid != [4]uint32{100000, 100000, 100000, 100000} {
		t.Errorf("Uid = %v", s.Uid)
	}
	if len(s.NStgid) != 2 || s.NStgid[0] != 5484 || s.NStgid[1] != 1 {
		t.Errorf("NStgid = %v", s.NStgid)
	}
	want, _ := caps.FromNames(caps.DockerDefault)
	for name, got := range map[string]caps.Set{"inh": s.CapInh, "prm": s.CapPrm, "eff": s.CapEff, "bnd": s.CapBnd} {
		if got != want {
			t.Errorf("Cap%s = %s, want %s", name, got.Hex(), want.Hex())
		}
	}
	if s.CapAmb != 0 || s.NoNewPrivs || s.Seccomp != SeccompFilter || s.SeccompFilters != 1 {
		t.Errorf("amb/nnp/seccomp: %+v", s)
	}
	if len(s.Groups) != 1 || s.Groups[0] != 100010 {
		t.Errorf("Groups = %v", s.Groups)
	}
}

func TestParseStatusRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":       "",
		"no caps":     "Name:\tx\nPid:\t1\n",
		"bad cap":     strings.Replace(talkStatus, "CapEff:\t00000000a80425fb", "CapEff:\tzz", 1),
		"bad uid":     strings.Replace(talkStatus, "Uid:\t100000\t100000\t100000\t100000", "Uid:\t1 2", 1),
		"bad seccomp": strings.Replace(talkStatus, "Seccomp:\t2", "Seccomp:\t7", 1),
		"bad nstgid":  strings.Replace(talkStatus, "NStgid:\t5484\t1", "NStgid:\t5484\tx", 1),
	} {
		if _, err := ParseStatus([]byte(in)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// TestReadStatusSelf compares the parser with what the kernel and the Go
// runtime say about this very process.
func TestReadStatusSelf(t *testing.T) {
	pid := os.Getpid()
	s, err := ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pid != pid || s.Tgid != pid || s.PPid != os.Getppid() {
		t.Errorf("pid %d tgid %d ppid %d; want %d %d %d", s.Pid, s.Tgid, s.PPid, pid, pid, os.Getppid())
	}
	if s.Uid[0] != uint32(os.Getuid()) || s.Uid[1] != uint32(os.Geteuid()) || s.Gid[1] != uint32(os.Getegid()) {
		t.Errorf("uid %v gid %v", s.Uid, s.Gid)
	}
	if len(s.NStgid) == 0 || s.NStgid[0] != pid {
		t.Errorf("NStgid %v", s.NStgid)
	}
	cur, err := caps.Current()
	if err != nil {
		t.Fatal(err)
	}
	// The main thread's sets; any thread of a Go test has the same ones.
	if s.CapEff != cur.Effective || s.CapPrm != cur.Permitted || s.CapInh != cur.Inheritable {
		t.Errorf("status caps e=%s p=%s i=%s, capget e=%s p=%s i=%s", s.CapEff.Hex(), s.CapPrm.Hex(),
			s.CapInh.Hex(), cur.Effective.Hex(), cur.Permitted.Hex(), cur.Inheritable.Hex())
	}
	if s.Threads < 1 {
		t.Errorf("Threads = %d", s.Threads)
	}
}

func TestReadStatusGoneProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	pid := cmd.Process.Pid // reaped: the PID is free (reuse within the test is very unlikely)
	if Exists(pid) {
		t.Skipf("PID %d was reused", pid)
	}
	_, err := ReadStatus(pid)
	if !errors.Is(err, ErrNoProcess) {
		t.Fatalf("ReadStatus(gone) = %v, want ErrNoProcess", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Errorf("error %q does not name the PID", err)
	}
	if _, err := ReadStatus(-3); err == nil {
		t.Error("ReadStatus(-3) succeeded")
	}
}

func TestParseCgroupHybrid(t *testing.T) {
	in := "11:blkio:/system.slice/docker-b9b.scope\n2:cpu,cpuacct:/a:b\n1:name=systemd:/x\n0::/system.slice/docker-b9b.scope\n"
	e, err := ParseCgroup([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(e) != 4 {
		t.Fatalf("%d entries", len(e))
	}
	if !e[1].Has("cpuacct") || e[1].Path != "/a:b" || e[1].HierarchyID != 2 {
		t.Errorf("entry 1 = %+v", e[1])
	}
	if !e[3].Unified() || e[0].Unified() || !e[2].Has("name=systemd") {
		t.Errorf("unified detection wrong: %+v", e)
	}
	var back []string
	for _, x := range e {
		back = append(back, x.String())
	}
	if got := strings.Join(back, "\n") + "\n"; got != in {
		t.Errorf("round trip:\n%s\nwant\n%s", got, in)
	}
	for _, bad := range []string{"", "x:cpu:/", "1:cpu", "1:cpu:relative"} {
		if _, err := ParseCgroup([]byte(bad)); err == nil {
			t.Errorf("ParseCgroup(%q) succeeded", bad)
		}
	}
}

func TestReadCgroupSelfMatchesKernel(t *testing.T) {
	e, err := ReadCgroup(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("/proc/self/cgroup")
	if len(e) != strings.Count(string(raw), "\n") {
		t.Errorf("%d entries for %d lines", len(e), strings.Count(string(raw), "\n"))
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `22 27 0:21 / /proc rw,relatime - proc proc rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate
600 500 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw,size=10k
601 500 8:1 /a\040b /mnt/with\040space\134x ro,nosuid - ext4 /dev/sda1 rw
`
	m, err := ParseMountinfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 4 {
		t.Fatalf("%d mounts", len(m))
	}
	if m[1].FSType != "cgroup2" || len(m[1].Optional) != 2 || m[1].Optional[1] != "master:2" || !m[1].HasSuperOption("nsdelegate") {
		t.Errorf("mount 1 = %+v", m[1])
	}
	if m[2].Root != "/null" || m[2].MountPoint != "/proc/kcore" || m[2].ReadOnly() {
		t.Errorf("mount 2 = %+v", m[2])
	}
	if m[3].Root != "/a b" || m[3].MountPoint != `/mnt/with space\x` || !m[3].ReadOnly() || m[3].Major != 8 {
		t.Errorf("mount 3 = %+v", m[3])
	}
	for _, bad := range []string{"1 2 3", "x 1 0:1 / / rw - a b c", "1 1 0:1 / / rw a b c", `1 1 0:1 /\04 / rw - a b c`} {
		if _, err := ParseMountinfo([]byte(bad)); err == nil {
			t.Errorf("ParseMountinfo(%q) succeeded", bad)
		}
	}
}

func TestReadMountinfoSelfHasRootAndProc(t *testing.T) {
	m, err := ReadMountinfo(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var root, procfs bool
	for _, x := range m {
		root = root || x.MountPoint == "/"
		procfs = procfs || (x.MountPoint == "/proc" && x.FSType == "proc")
	}
	if !root || !procfs {
		t.Errorf("no / or /proc among %d mounts", len(m))
	}
}

func TestParseIDMap(t *testing.T) {
	m, err := ParseIDMap([]byte("         0     100000      65536\n     65536          0          1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if FormatIDMaps(m) != "0 100000 65536; 65536 0 1" || IsIdentity(m) {
		t.Errorf("maps = %v", m)
	}
	id, err := ReadUIDMap(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile("/proc/self/uid_map")
	if len(id) != len(strings.Fields(string(raw)))/3 {
		t.Errorf("uid_map %q parsed as %v", raw, id)
	}
	for _, bad := range []string{"0 1", "0 1 0", "a 1 2", "0 1 4294967296"} {
		if _, err := ParseIDMap([]byte(bad)); err == nil {
			t.Errorf("ParseIDMap(%q) succeeded", bad)
		}
	}
	if m, err := ParseIDMap(nil); err != nil || len(m) != 0 {
		t.Errorf("empty map: %v %v", m, err)
	}
}

func TestPIDsContainsSelf(t *testing.T) {
	pids, err := PIDs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pids {
		found = found || p == os.Getpid()
	}
	if !found {
		t.Errorf("own PID %d not among %d PIDs", os.Getpid(), len(pids))
	}
}
