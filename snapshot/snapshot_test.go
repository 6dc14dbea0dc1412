package snapshot

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
)

func layerTar(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		h := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

func unpack(t *testing.T, s *Snapshotter, data []byte, chainID digest.Digest) {
	t.Helper()
	w, err := s.NewLayer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Apply(bytes.NewReader(data)); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Commit(chainID); err != nil {
		t.Fatal(err)
	}
}

// fixture opens a snapshotter in a temporary root with the busybox rootfs
// as layer 1 and a layer 2 that deletes /etc/shadow and adds /etc/motd.
func fixture(t *testing.T) (*Snapshotter, []digest.Digest) {
	testutil.RequiresRoot(t)
	s, err := Open(filepath.Join(t.TempDir(), "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var bb bytes.Buffer
	if err := busybox.WriteTar(&bb); err != nil {
		t.Fatal(err)
	}
	l1 := digest.FromBytes(bb.Bytes())
	unpack(t, s, bb.Bytes(), l1)
	l2 := digest.FromString(l1.String() + " 2")
	unpack(t, s, layerTar(t, map[string]string{"etc/": "", "etc/.wh.shadow": "", "etc/motd": "hi\n"}), l2)
	return s, []digest.Digest{l1, l2}
}

func prepare(t *testing.T, s *Snapshotter, id string, chain []digest.Digest, opts *PrepareOptions) string {
	t.Helper()
	rootfs, err := s.Prepare(id, chain, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Remove(id); err != nil {
			t.Errorf("remove: %v", err)
		}
	})
	return rootfs
}

func TestPrepareStacksLayersWithOverlay(t *testing.T) {
	s, chain := fixture(t)
	rootfs := prepare(t, s, "berth-test-c1", chain, nil)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfs, "bin/ls"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink < 100 {
		t.Fatalf("bin/ls has %d links through overlay, want the busybox applet count", st.Nlink)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/shadow")); !os.IsNotExist(err) {
		t.Fatalf("whited-out etc/shadow visible: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(rootfs, "etc/motd")); string(b) != "hi\n" {
		t.Fatalf("etc/motd = %q", b)
	}
	// Writes go to the container's own upper layer, not the shared layer.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.LayerPath(chain[0]), "etc/passwd")); string(b) == "changed" {
		t.Fatalf("write through the container reached the shared layer")
	}
	other := prepare(t, s, "berth-test-c2", chain, nil)
	if b, _ := os.ReadFile(filepath.Join(other, "etc/passwd")); string(b) == "changed" {
		t.Fatalf("a second container sees the first one's write")
	}
	// The layer is in use: it cannot be removed.
	if err := s.RemoveLayer(chain[0]); err == nil {
		t.Fatalf("removed a layer in use")
	}
	// Prepare again is idempotent (daemon restart), also after unmount.
	if err := s.Unmount("berth-test-c1"); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Prepare("berth-test-c1", chain, nil); err != nil || again != rootfs {
		t.Fatalf("prepare again: %q %v", again, err)
	}
	if b, _ := os.ReadFile(filepath.Join(rootfs, "etc/passwd")); string(b) != "changed" {
		t.Fatalf("upper layer lost across remount: %q", b)
	}
	if _, err := s.Prepare("berth-test-c1", chain[:1], nil); err == nil {
		t.Fatalf("prepare with another chain accepted")
	}
}

func TestRemoveUnmountsAndFreesLayers(t *testing.T) {
	s, chain := fixture(t)
	rootfs, err := s.Prepare("berth-test-rm", chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("berth-test-rm"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rootfs); !os.IsNotExist(err) {
		t.Fatalf("rootfs left behind: %v", err)
	}
	for _, c := range chain {
		if err := s.RemoveLayer(c); err != nil {
			t.Fatal(err)
		}
		if s.HasLayer(c) {
			t.Fatalf("layer %s still there", c)
		}
	}
	if _, err := s.Prepare("berth-test-rm", chain, nil); err == nil {
		t.Fatalf("prepare with missing layers accepted")
	}
}

func TestPrepareRejectsBadIDs(t *testing.T) {
	s, chain := fixture(t)
	for _, id := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("a", 200)} {
		if _, err := s.Prepare(id, chain, nil); err == nil {
			t.Errorf("container id %q accepted", id)
		}
	}
}

var talkMap = &IDMap{
	UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
	GIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
}

func checkShifted(t *testing.T, rootfs string) {
	t.Helper()
	for p, want := range map[string]uint32{"bin/busybox": 100000, "etc/passwd": 100000, ".": 100000} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(rootfs, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want || st.Gid != want {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, want, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfs, "bin/sh"), &st); err != nil || st.Nlink < 100 {
		t.Errorf("hard links lost in the id-mapped rootfs: nlink %d %v", st.Nlink, err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/shadow")); !os.IsNotExist(err) {
		t.Errorf("whiteout lost in the id-mapped rootfs: %v", err)
	}
}

func TestPrepareIDMapped(t *testing.T) {
	s, chain := fixture(t)
	if !IdmappedMountsSupported() {
		t.Logf("kernel cannot idmap overlayfs: the chowned-copy fallback is used")
	}
	rootfs := prepare(t, s, "berth-test-idmap", chain, &PrepareOptions{IDMap: talkMap})
	checkShifted(t, rootfs)
	// The shared layer keeps the image's own owners.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.LayerPath(chain[0]), "bin/busybox"), &st); err != nil || st.Uid != 0 {
		t.Fatalf("shared layer owner changed: %d %v", st.Uid, err)
	}
}

func TestPrepareChownedCopyFallback(t *testing.T) {
	s, chain := fixture(t)
	forceCopyFallback = true
	defer func() { forceCopyFallback = false }()
	rootfs := prepare(t, s, "berth-test-copy", chain, &PrepareOptions{IDMap: talkMap})
	checkShifted(t, rootfs)
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "idmapped"))
	if len(ents) != 1 {
		t.Fatalf("want one cached map directory, got %d", len(ents))
	}
	// A second container with the same map reuses the copies.
	prepare(t, s, "berth-test-copy2", chain, &PrepareOptions{IDMap: talkMap})
}
