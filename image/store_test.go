package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/snapshot"
)

var (
	busyboxOnce sync.Once
	busyboxTar  []byte
)

func busyboxRootfsTar(t testing.TB) []byte {
	busyboxOnce.Do(func() {
		var b bytes.Buffer
		if err := busybox.WriteTar(&b); err != nil {
			t.Fatal(err)
		}
		busyboxTar = b.Bytes()
	})
	if busyboxTar == nil {
		t.Fatal("busybox tar unavailable")
	}
	return busyboxTar
}

// newStore opens a store and a snapshotter in a temporary data root.
func newStore(t testing.TB) *Store {
	t.Helper()
	testutil.RequiresRoot(t)
	root := t.TempDir()
	snaps, err := snapshot.Open(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(root, "image"), snaps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func importBusybox(t testing.TB, s *Store, ref string, changes ...string) *Image {
	t.Helper()
	img, err := s.Import(bytes.NewReader(busyboxRootfsTar(t)), ref, changes, "")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImportBusyboxAndRunnableRootfs(t *testing.T) {
	s := newStore(t)
	img := importBusybox(t, s, "busybox", `CMD ["sh"]`, "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", "WORKDIR /root",
		`LABEL org.example.talk="docker unplugged"`, "EXPOSE 80 53/udp", "USER root", `ENTRYPOINT ["/bin/sh", "-c"]`)
	if got := img.RepoTags; len(got) != 1 || got[0] != "busybox:latest" {
		t.Fatalf("RepoTags = %v", got)
	}
	if img.ID != digest.FromBytes(mustRead(t, s.BlobPath(img.ID))) {
		t.Fatalf("image ID is not the config digest")
	}
	c := img.Config.Config
	if strings.Join(c.Cmd, " ") != "sh" || c.WorkingDir != "/root" || c.User != "root" ||
		c.Labels["org.example.talk"] != "docker unplugged" || len(c.ExposedPorts) != 2 ||
		strings.Join(c.Entrypoint, "|") != "/bin/sh|-c" || c.Env[0] != "PATH=/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Fatalf("changes not applied: %+v", c)
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok {
		t.Fatalf("ExposedPorts = %v", c.ExposedPorts)
	}
	if img.Size < 500_000 {
		t.Fatalf("Size = %d, want at least the busybox binary", img.Size)
	}
	if h := img.Config.History; len(h) != 1 || h[0].Comment != "Imported from -" {
		t.Fatalf("history = %+v", h)
	}
	// The rootfs a container gets keeps the hard links of /bin (the talk's
	// `ls -l bin` shows the link count) and /etc/group's wheel.
	rootfs, err := s.Snapshotter().Prepare("berth-test-import", img.ChainIDs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Snapshotter().Remove("berth-test-import")
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfs, "bin/ls"), &st); err != nil || st.Nlink < 100 {
		t.Fatalf("bin/ls nlink %d %v", st.Nlink, err)
	}
	group, err := archive.ReadFileIn(rootfs, "/etc/group", 1<<20)
	if err != nil || !strings.Contains(string(group), "wheel:x:10:root") {
		t.Fatalf("etc/group through the rootfs: %q %v", group, err)
	}
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportCompressed(t *testing.T) {
	s := newStore(t)
	raw := busyboxRootfsTar(t)
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	enc, _ := zstd.NewWriter(&zs)
	enc.Write(raw)
	enc.Close()
	a, err := s.Import(&gz, "bb:gz", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Import(&zs, "bb:zstd", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// Same uncompressed content: same diff ID, one unpacked layer.
	if a.DiffIDs()[0] != digest.FromBytes(raw) || b.DiffIDs()[0] != a.DiffIDs()[0] {
		t.Fatalf("diff IDs %v %v, want %v", a.DiffIDs(), b.DiffIDs(), digest.FromBytes(raw))
	}
	layers, _ := s.Snapshotter().Layers()
	if len(layers) != 1 {
		t.Fatalf("%d unpacked layers, want 1 shared", len(layers))
	}
}

func TestGetByNameAndID(t *testing.T) {
	s := newStore(t)
	img := importBusybox(t, s, "busybox")
	for _, q := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", "library/busybox",
		img.ID.String(), img.ID.Encoded(), img.ShortID(), img.ID.Encoded()[:4], "sha256:" + img.ID.Encoded()[:8]} {
		got, err := s.Get(q)
		if err != nil {
			t.Errorf("Get(%q): %v", q, err)
			continue
		}
		if got.ID != img.ID {
			t.Errorf("Get(%q) = %s", q, got.ID)
		}
	}
	for _, q := range []string{"busybox:other", "alpine", "sha256:" + strings.Repeat("0", 64), "ffffffffffff", "Bad Name"} {
		_, err := s.Get(q)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want not found", q, err)
		}
	}
	if _, err := s.Get("alpine"); err == nil || err.Error() != "No such image: alpine" {
		t.Errorf("error wording: %v", err)
	}
}

func TestTagListDelete(t *testing.T) {
	s := newStore(t)
	img := importBusybox(t, s, "busybox")
	if err := s.Tag("busybox", "myrepo/bb:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("busybox", "busybox@sha256:"+strings.Repeat("a", 64)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tag with a digest: %v", err)
	}
	if err := s.Tag("nosuch", "x:y"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag of missing image: %v", err)
	}
	got, _ := s.Get(img.ShortID())
	if strings.Join(got.RepoTags, ",") != "busybox:latest,myrepo/bb:v1" {
		t.Fatalf("RepoTags = %v", got.RepoTags)
	}
	// By ID with tags in two repositories: must be forced.
	if _, err := s.Delete(img.ShortID(), false, true); !errors.Is(err, ErrConflict) ||
		!strings.Contains(err.Error(), "(must be forced) - image is referenced in multiple repositories") {
		t.Fatalf("delete by ID: %v", err)
	}
	// Removing one tag only untags.
	resp, err := s.Delete("myrepo/bb:v1", false, true)
	if err != nil || len(resp) != 1 || resp[0].Untagged != "myrepo/bb:v1" {
		t.Fatalf("untag: %+v %v", resp, err)
	}
	// A running container blocks even force; a stopped one blocks without.
	use := ContainerUse{Running: []string{"c0ffee0000000000"}}
	s.InUse = func(id digest.Digest) ContainerUse {
		if id == img.ID {
			return use
		}
		return ContainerUse{}
	}
	if _, err := s.Delete("busybox", false, true); !errors.Is(err, ErrConflict) {
		t.Fatalf("rmi of image used by a running container: %v", err)
	}
	if _, err := s.Delete(img.ID.String(), true, true); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "cannot be forced") {
		t.Fatalf("rmi -f by ID of image used by a running container: %v", err)
	}
	// rmi -f busybox with a running container: untagged, image kept dangling.
	resp, err = s.Delete("busybox", true, true)
	if err != nil || len(resp) != 1 || resp[0].Untagged != "busybox:latest" {
		t.Fatalf("rmi -f tag: %+v %v", resp, err)
	}
	if got, err := s.Get(img.ID.String()); err != nil || len(got.RepoTags) != 0 {
		t.Fatalf("image not kept dangling: %+v %v", got, err)
	}
	use = ContainerUse{Stopped: []string{"deadbeef00000000"}}
	if _, err := s.Delete(img.ShortID(), false, true); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "stopped container deadbeef0000") {
		t.Fatalf("rmi of image used by a stopped container: %v", err)
	}
	resp, err = s.Delete(img.ShortID(), true, true)
	if err != nil || len(resp) < 2 || resp[0].Deleted != img.ID.String() {
		t.Fatalf("rmi -f: %+v %v", resp, err)
	}
	if _, err := s.Get(img.ID.String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("image still there: %v", err)
	}
	// Its blobs and unpacked layer are gone.
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "blobs/sha256"))
	layers, _ := s.Snapshotter().Layers()
	if len(ents) != 0 || len(layers) != 0 {
		t.Fatalf("left behind: %d blobs, %d layers", len(ents), len(layers))
	}
}

func TestDeleteLastTagDeletesImage(t *testing.T) {
	s := newStore(t)
	img := importBusybox(t, s, "busybox")
	resp, err := s.Delete("busybox", false, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []DeleteResponse{{Untagged: "busybox:latest"}, {Deleted: img.ID.String()}, {Deleted: img.ChainIDs()[0].String()}}
	if fmt.Sprint(resp) != fmt.Sprint(want) {
		t.Fatalf("rmi busybox = %+v, want %+v", resp, want)
	}
}

func TestPruneAndHistory(t *testing.T) {
	s := newStore(t)
	dangling, err := s.Import(bytes.NewReader(busyboxRootfsTar(t)), "", []string{"LABEL keep=no"}, "first")
	if err != nil {
		t.Fatal(err)
	}
	tagged := importBusybox(t, s, "busybox", "LABEL keep=yes")
	h, err := s.History("busybox")
	if err != nil || len(h) != 1 || h[0].ID != tagged.ID.String() || h[0].Size != tagged.Size || h[0].Tags[0] != "busybox:latest" {
		t.Fatalf("history: %+v %v", h, err)
	}
	resp, _, err := s.Prune(PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) != 1 || resp[0].Deleted != dangling.ID.String() {
		t.Fatalf("prune = %+v", resp)
	}
	if _, err := s.Get("busybox"); err != nil {
		t.Fatalf("prune removed a tagged image: %v", err)
	}
	if resp, _, _ := s.Prune(PruneOptions{All: true, NotLabels: []string{"keep=yes"}}); len(resp) != 0 {
		t.Fatalf("label filter ignored: %+v", resp)
	}
	resp, _, err = s.Prune(PruneOptions{All: true})
	if err != nil || len(resp) != 3 {
		t.Fatalf("prune -a = %+v %v", resp, err)
	}
}

func TestImportHostileTarLeavesNothing(t *testing.T) {
	s := newStore(t)
	outside := filepath.Join(filepath.Dir(s.Root()), "evil")
	for name, entries := range map[string][]*tar.Header{
		"tar-slip":   {{Name: "../../evil", Typeflag: tar.TypeReg, Mode: 0o644}},
		"hardlink":   {{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../../../etc/passwd"}},
		"bad-type":   {{Name: "x", Typeflag: 'Z'}},
		"bad-owner":  {{Name: "x", Typeflag: tar.TypeReg, Uid: -5}},
		"root-file":  {{Name: "./", Typeflag: tar.TypeSymlink, Linkname: "/"}},
		"deep-climb": {{Name: "a/b/../../../evil", Typeflag: tar.TypeReg}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			tw.WriteHeader(h)
		}
		tw.Close()
		if _, err := s.Import(&b, "hostile:"+name, nil, ""); err == nil {
			t.Errorf("%s: hostile tar imported", name)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v is not ErrInvalid", name, err)
		}
	}
	if _, err := s.Import(strings.NewReader("garbage garbage garbage"), "garbage", nil, ""); err == nil {
		t.Errorf("garbage imported")
	}
	if _, err := os.Lstat(outside); err == nil {
		t.Fatalf("file written outside the store")
	}
	list, _ := s.List()
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "blobs/sha256"))
	ingest, _ := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	layers, _ := s.Snapshotter().Layers()
	tmp, _ := os.ReadDir(filepath.Join(s.Snapshotter().Root(), "tmp"))
	if len(list)+len(ents)+len(ingest)+len(layers)+len(tmp) != 0 {
		t.Fatalf("failed imports left: %d images %d blobs %d ingest %d layers %d tmp", len(list), len(ents), len(ingest), len(layers), len(tmp))
	}
}

func TestBadChanges(t *testing.T) {
	s := newStore(t)
	for _, c := range []string{"ADD . /", "RUN true", "EXPOSE 99999", "WORKDIR", `ENV "unterminated`, "HEALTHCHECK --bogus=1 CMD true", "SHELL sh"} {
		if _, err := s.Import(bytes.NewReader(busyboxRootfsTar(t)), "x", []string{c}, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("change %q: %v", c, err)
		}
	}
	if _, err := s.Import(bytes.NewReader(busyboxRootfsTar(t)), "UPPER", nil, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad reference accepted: %v", err)
	}
}

// Concurrent imports through separate Store values (separate lock file
// descriptors, as two processes have) must all land intact.
func TestConcurrentImportsAndDeletes(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := Open(s.Root(), s.Snapshotter())
			if err != nil {
				errs <- err
				return
			}
			ref := fmt.Sprintf("concurrent:%d", i)
			if _, err := other.Import(bytes.NewReader(busyboxRootfsTar(t)), ref, []string{fmt.Sprintf("LABEL n=%d", i)}, ""); err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				if _, err := other.Delete(ref, false, true); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d images, want 3", len(list))
	}
	for _, img := range list {
		if err := s.EnsureUnpacked(img); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(s.BlobPath(img.Manifest.Layers[0].Digest)); err != nil {
			t.Fatalf("layer blob of %v lost: %v", img.RepoTags, err)
		}
	}
}
