package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sparesMounted(t *testing.T, s *Snapshotter) int {
	t.Helper()
	data, _ := os.ReadFile("/proc/self/mountinfo")
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], filepath.Join(s.root, "spares")+"/") {
			n++
		}
	}
	return n
}

// A spare root filesystem is made ahead, mounted; the next Prepare with
// the same layers and options takes it (no new mount is made), other
// options do not; it is nobody's container; removing its layer, and
// DropSpares, unmount and delete spares.
func TestSpareTakenByPrepare(t *testing.T) {
	s, chain := fixture(t)
	if err := s.PrepareSpare(chain, &PrepareOptions{Volatile: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.PrepareSpare(chain, &PrepareOptions{Volatile: true}); err != nil {
		t.Fatal(err)
	}
	if n := sparesMounted(t, s); n != 1 {
		t.Fatalf("%d spares mounted, want 1 (a second call for the same layers makes none)", n)
	}
	if ids, _ := s.Containers(); len(ids) != 0 {
		t.Fatalf("a spare counts as a container: %v", ids)
	}
	// Other options: a root filesystem of its own.
	plain := prepare(t, s, "berth-test-plain", chain, nil)
	if n := sparesMounted(t, s); n != 1 {
		t.Fatalf("a prepare with other options took the spare")
	}
	rootfs := prepare(t, s, "berth-test-spare", chain, &PrepareOptions{Volatile: true})
	if n := sparesMounted(t, s); n != 0 {
		t.Fatalf("the prepare did not take the spare: %d left", n)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/motd")); err != nil || string(b) != "hi\n" {
		t.Fatalf("the taken spare's layers: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(rootfs), "upper", "new")); err != nil {
		t.Fatalf("a write went elsewhere than the container's upper layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(plain, "new")); !os.IsNotExist(err) {
		t.Fatal("another container sees the write")
	}
	// A layer's removal drops the spares made of it.
	if err := s.PrepareSpare(chain, nil); err != nil {
		t.Fatal(err)
	}
	s.Remove("berth-test-plain")
	s.Remove("berth-test-spare")
	if err := s.RemoveLayer(chain[1]); err != nil {
		t.Fatalf("remove a layer only a spare uses: %v", err)
	}
	if n := sparesMounted(t, s); n != 0 {
		t.Fatalf("%d spares of a removed layer left", n)
	}
	if err := s.PrepareSpare(chain[:1], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DropSpares(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.root, "spares"))
	if n := sparesMounted(t, s); n != 0 || len(ents) != 0 {
		t.Fatalf("DropSpares left %d mounts, %d entries", n, len(ents))
	}
}
