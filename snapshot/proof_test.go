package snapshot

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cacheState lists idmapped/: map key → layer copy name → inode.
func cacheState(t *testing.T, s *Snapshotter) map[string]map[string]uint64 {
	t.Helper()
	out := map[string]map[string]uint64{}
	keys, err := os.ReadDir(filepath.Join(s.Root(), "idmapped"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		out[k.Name()] = map[string]uint64{}
		layers, err := os.ReadDir(filepath.Join(s.Root(), "idmapped", k.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(s.Root(), "idmapped", k.Name(), l.Name()), &st); err != nil {
				t.Fatal(err)
			}
			out[k.Name()][l.Name()] = st.Ino
		}
	}
	return out
}

// TestProofChownedCopyCacheReused: with the chowned-copy fallback, a
// second container with the same id map reuses the one cached copy of
// each layer: still exactly one cache directory for the map, holding the
// same directories (same inodes), mounted as the second container's lower
// layers (a file planted in the cached copy shows in its rootfs), and no
// layer is copied again (a file the map cannot own, added to the shared
// layer after the first copy, would make a second copy fail). Another
// map gets a cache directory of its own.
func TestProofChownedCopyCacheReused(t *testing.T) {
	s, chain := fixture(t)
	forceCopyFallback = true
	defer func() { forceCopyFallback = false }()

	prepare(t, s, "berth-test-proof-copy1", chain, &PrepareOptions{IDMap: talkMap})
	first := cacheState(t, s)
	if len(first) != 1 || first[talkMap.key()] == nil {
		t.Fatalf("after one prepare: cache directories %v, want only %s", first, talkMap.key())
	}
	var want []string
	for _, c := range chain {
		want = append(want, c.Encoded())
	}
	sort.Strings(want)
	var got []string
	for name := range first[talkMap.key()] {
		got = append(got, name)
	}
	sort.Strings(got)
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("cached copies %v, want one per layer %v", got, want)
	}

	top := filepath.Join(s.Root(), "idmapped", talkMap.key(), chain[len(chain)-1].Encoded())
	if err := os.WriteFile(filepath.Join(top, "berth-proof-marker"), []byte("cached\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Owned by a uid outside the map: copying the layer again would fail.
	unmapped := filepath.Join(s.LayerPath(chain[len(chain)-1]), "berth-proof-unmapped")
	if err := os.WriteFile(unmapped, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(unmapped, 99999, 99999); err != nil {
		t.Fatal(err)
	}

	rootfs2 := prepare(t, s, "berth-test-proof-copy2", chain, &PrepareOptions{IDMap: talkMap})
	checkShifted(t, rootfs2)
	second := cacheState(t, s)
	if len(second) != 1 {
		t.Fatalf("after two prepares with one map: %d cache directories, want 1: %v", len(second), second)
	}
	for name, ino := range first[talkMap.key()] {
		if second[talkMap.key()][name] != ino {
			t.Errorf("cached copy %s replaced (inode %d, was %d)", name, second[talkMap.key()][name], ino)
		}
	}
	if len(second[talkMap.key()]) != len(chain) {
		t.Errorf("%d cached copies after the second prepare, want %d", len(second[talkMap.key()]), len(chain))
	}
	if b, err := os.ReadFile(filepath.Join(rootfs2, "berth-proof-marker")); err != nil || string(b) != "cached\n" {
		t.Errorf("the second container's rootfs is not built on the cached copy: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs2, "berth-proof-unmapped")); !os.IsNotExist(err) {
		t.Errorf("the second container's rootfs has a layer copied anew: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d entries after the prepares", len(ents))
	}

	// A different map is a different cache directory. The file it cannot
	// own goes first, else its copy fails.
	os.Remove(unmapped)
	other := &IDMap{
		UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
	}
	rootfs3 := prepare(t, s, "berth-test-proof-copy3", chain, &PrepareOptions{IDMap: other})
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(rootfs3, "bin/busybox"), &st); err != nil || st.Uid != 200000 || st.Gid != 200000 {
		t.Errorf("bin/busybox under another map owned by %d:%d (%v), want 200000:200000", st.Uid, st.Gid, err)
	}
	if third := cacheState(t, s); len(third) != 2 || len(third[other.key()]) != len(chain) {
		t.Errorf("after a prepare with another map: %v, want a second directory %s", third, other.key())
	}
}
