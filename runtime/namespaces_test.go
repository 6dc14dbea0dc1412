package runtime_test

import (
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A container without a mount namespace (runc allows it; runtime-tools'
// linux_ns_itype asks for it) shares the runtime's: its mounts live under
// one private bind of the rootfs, the root is changed with chroot (a
// pivot_root would move everyone's root), and delete removes them all.
// The runtime runs in a private mount namespace of the test's own, so
// nothing reaches the host's.
func TestNoMountNamespaceMountsGoAwayOnDelete(t *testing.T) {
	e := newEnv(t)
	b := e.bundle([]string{"sleep", "100"}, func(s *specs.Spec) {
		var keep []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.MountNamespace {
				keep = append(keep, n)
			}
		}
		s.Linux.Namespaces = keep
	})
	id := newID("nomnt")
	rootfs := b + "/rootfs"
	script := `set -e
rt() { "$BIN" --root "$ROOT" "$@"; }
rt create --bundle "$BUNDLE" "$ID"
pid=$(rt state "$ID" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "same-mntns=$( [ "$(readlink /proc/$pid/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && echo yes || echo no)"
echo "root=$(readlink /proc/$pid/root)"
echo "mounts-before=$(grep -c " $ROOTFS" /proc/self/mountinfo)"
rt delete --force "$ID"
echo "mounts-after=$(grep -c " $ROOTFS" /proc/self/mountinfo || true)"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BIN=" + e.bin, "ROOT=" + e.root, "BUNDLE=" + b, "ID=" + id, "ROOTFS=" + rootfs}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{"same-mntns=yes", "root=" + rootfs + "\n", "mounts-after=0"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%s", want, got)
		}
	}
	// proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and the rootfs bind.
	if strings.Contains(got, "mounts-before=0\n") || strings.Contains(got, "mounts-before=1\n") {
		t.Errorf("the container's mounts were not made under its rootfs:\n%s", got)
	}
}
