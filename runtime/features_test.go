package runtime_test

import (
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Namespaced sysctls are written before /proc/sys becomes read-only
// (Docker's readonlyPaths): dockerd sets net.ipv4.ip_unprivileged_port_start
// on every container, so with the order the other way round no container
// of dockerd's started.
func TestSysctlsWithReadOnlyProcSys(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; echo 1 > /proc/sys/kernel/shmmni && echo writable; true"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmni": "1234"}
	})
	if f := strings.Fields(out); len(f) < 2 || f[0] != "0" || f[1] != "1234" {
		t.Errorf("sysctls not applied: %q", out)
	}
	if strings.Contains(out, "writable") {
		t.Errorf("/proc/sys is writable in the container: %q", out)
	}
}

// linux.devices: a node with the spec's type, numbers, mode and owner,
// next to the default devices and /dev links.
func TestLinuxDevicesAndDefaultDev(t *testing.T) {
	e := newEnv(t)
	mode := os.FileMode(0o600)
	uid, gid := uint32(1000), uint32(1001)
	out := e.mustRun([]string{"sh", "-c", "stat -c '%F %t:%T %a %u:%g' /dev/mydev; stat -c '%t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done"}, func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid}}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"})
	})
	want := "character special file 1:3 600 1000:1001\n1:3\n1:5\n1:7\n1:8\n1:9\n5:0\n/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n"
	if out != want {
		t.Errorf("devices:\n%s\nwant:\n%s", out, want)
	}
}

func i64(v int64) *int64 { return &v }

// Masked paths read empty, read-only paths refuse writes, a read-only root
// refuses writes while its tmpfs mounts take them.
func TestMaskedReadonlyPathsAndReadonlyRoot(t *testing.T) {
	e := newEnv(t)
	out := e.mustRun([]string{"sh", "-c", `
echo timer_list $(wc -c < /proc/timer_list) firmware $(ls /sys/firmware | wc -l)
echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable
touch /newfile 2>/dev/null && echo root-writable
touch /dev/shm/x && echo shm-writable
awk '$5=="/" {print $6}' /proc/self/mountinfo | cut -d, -f1`}, func(s *specs.Spec) {
		s.Root.Readonly = true
	})
	if out != "timer_list 0 firmware 0\nshm-writable\nro\n" {
		t.Errorf("got:\n%s", out)
	}
	if _, err := os.Stat("/proc/timer_list"); err != nil {
		t.Logf("this kernel has no /proc/timer_list: its masking is not shown")
	}
}

// linux.rootfsPropagation: what the root mount's propagation becomes.
func TestRootfsPropagation(t *testing.T) {
	e := newEnv(t)
	// (The default, rslave, makes the root a slave only when the host's
	// mount holding the bundle is shared, which depends on the host.)
	for prop, want := range map[string]string{"shared": "shared:", "private": "none", "unbindable": "unbindable"} {
		out := e.mustRun([]string{"sh", "-c", `awk '$5=="/" {f=""; for (i=7; $i!="-"; i++) f=f" "$i; print f}' /proc/self/mountinfo`}, func(s *specs.Spec) {
			s.Linux.RootfsPropagation = prop
		})
		got := strings.TrimSpace(out)
		if want == "none" {
			if strings.Contains(got, "shared:") || strings.Contains(got, "master:") {
				t.Errorf("rootfsPropagation %q: root has %q, want private", prop, got)
			}
		} else if !strings.Contains(got, want) {
			t.Errorf("rootfsPropagation %q: root has %q, want %s", prop, got, want)
		}
	}
}

// --no-pivot moves the rootfs over / and chroots (for ramfs roots, where
// pivot_root is refused): the container's root is still its rootfs, with
// its mounts.
func TestNoPivot(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "cat /marker; awk '$5==\"/proc\" {print $9}' /proc/self/mountinfo"}, nil)
	if err := os.WriteFile(filepath.Join(b, "rootfs", "marker"), []byte("in the rootfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.rt("run", "--no-pivot", "--bundle", b, newID("nopivot"))
	if r.code != 0 || r.stdout != "in the rootfs\nproc\n" {
		t.Errorf("run --no-pivot: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
}

// --preserve-fds N passes fds 3..3+N-1 to the container; without it no
// descriptor above stdio gets in.
func TestPreserveFDs(t *testing.T) {
	e := newEnv(t)
	secret := filepath.Join(t.TempDir(), "passed")
	if err := os.WriteFile(secret, []byte("through fd 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, preserve := range []bool{true, false} {
		f, err := os.Open(secret)
		if err != nil {
			t.Fatal(err)
		}
		b := e.bundle([]string{"sh", "-c", "cat <&3 || echo no-fd-3; ls /proc/self/fd | wc -l"}, nil)
		args := []string{"--root", e.root, "run", "--bundle", b}
		if preserve {
			args = append(args, "--preserve-fds", "1")
		}
		cmd := exec.Command(e.bin, append(args, newID("fds"))...)
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.Output()
		f.Close()
		if err != nil {
			t.Fatalf("run (preserve %v): %v", preserve, err)
		}
		// ls sees 0, 1, 2, its own directory fd, and 3 when preserved.
		want := "no-fd-3\n4\n"
		if preserve {
			want = "through fd 3\n5\n"
		}
		if string(out) != want {
			t.Errorf("preserve %v: got %q, want %q", preserve, out, want)
		}
	}
}

// An id-mapped bind mount (mounts[].uidMappings) shows its files'
// owners through the mapping, whatever the container's own namespaces:
// here, without a user namespace, disk uid 0 shows as 100000 and 1000 as
// 101000; the host sees the files unchanged.
func TestIDMappedBindMount(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	if tmpfsWithoutIDMap(src) {
		t.Skip("tmpfs supports id-mapped mounts from Linux 6.3; this kernel is older (the VM guest's 6.1)")
	}
	for name, uid := range map[string]int{"root-owned": 0, "user-owned": 1000} {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	out := e.mustRun([]string{"stat", "-c", "%n %u:%g", "/idm/root-owned", "/idm/user-owned"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/idm", Type: "bind", Source: src, Options: []string{"rbind"},
			UIDMappings: m, GIDMappings: m})
	})
	if out != "/idm/root-owned 100000:100000\n/idm/user-owned 101000:101000\n" {
		t.Errorf("id-mapped mount shows:\n%s", out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(src, "user-owned"), &st); err != nil || st.Uid != 1000 {
		t.Errorf("the host file's owner changed: %d %v", st.Uid, err)
	}
	r := e.run([]string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/idm", Type: "tmpfs", Source: "tmpfs", UIDMappings: m, GIDMappings: m})
	})
	if r.code == 0 || !strings.Contains(r.stderr, "bind mounts") {
		t.Errorf("id-mapped tmpfs: exit %d %q, want a clear refusal", r.code, r.stderr)
	}
}

// tmpcopyup: a tmpfs mounted over a directory of the image starts with
// that directory's content (owners, modes, symlinks), and writes to it
// stay in the tmpfs.
func TestTmpfsCopyUp(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sh", "-c", "stat -c '%n %u %a' /data/f /data/sub /data/sub/g; readlink /data/link; echo new > /data/f; cat /data/f; awk '$5==\"/data\" {print $9}' /proc/self/mountinfo"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "mode=755"}})
	})
	data := filepath.Join(b, "rootfs", "data")
	os.MkdirAll(filepath.Join(data, "sub"), 0o750)
	os.WriteFile(filepath.Join(data, "f"), []byte("old\n"), 0o640)
	os.WriteFile(filepath.Join(data, "sub", "g"), []byte("g"), 0o600)
	os.Chown(filepath.Join(data, "sub", "g"), 1000, 1000)
	os.Symlink("sub/g", filepath.Join(data, "link"))
	r := e.rt("run", "--bundle", b, newID("copyup"))
	want := "/data/f 0 640\n/data/sub 0 750\n/data/sub/g 1000 600\nsub/g\nnew\ntmpfs\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d, got:\n%s%s\nwant:\n%s", r.code, r.stdout, r.stderr, want)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "f")); string(b) != "old\n" {
		t.Errorf("the write reached the image: %q", b)
	}
}

// tmpfsWithoutIDMap reports whether dir is on tmpfs under a kernel
// older than 6.3, which cannot id-map tmpfs mounts.
func tmpfsWithoutIDMap(dir string) bool {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Type != unix.TMPFS_MAGIC {
		return false
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	return major < 6 || (major == 6 && minor < 3)
}
