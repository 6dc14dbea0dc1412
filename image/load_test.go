package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func save(t *testing.T, s *Store, refs ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Save(&b, refs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	src := newStore(t)
	img := importBusybox(t, src, "busybox", `CMD ["sh"]`)
	if err := src.Tag("busybox", "busybox:talk"); err != nil {
		t.Fatal(err)
	}
	data := save(t, src, "busybox")
	dst := newStore(t)
	var progress bytes.Buffer
	loaded, err := dst.Load(bytes.NewReader(data), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != img.ID {
		t.Fatalf("loaded %+v, want ID %s", loaded, img.ID)
	}
	if p := progress.String(); !strings.Contains(p, "Loaded image: busybox:latest\n") || !strings.Contains(p, "Loaded image: busybox:talk\n") {
		t.Fatalf("progress = %q", p)
	}
	got, err := dst.Get("busybox:talk")
	if err != nil || got.ID != img.ID || strings.Join(got.Config.Config.Cmd, " ") != "sh" {
		t.Fatalf("loaded image: %+v %v", got, err)
	}
	rootfs, err := dst.Snapshotter().Prepare("berth-test-load", got.ChainIDs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Snapshotter().Remove("berth-test-load")
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfs, "bin/sh"), &st); err != nil || st.Nlink < 100 {
		t.Fatalf("hard links lost through save/load: %d %v", st.Nlink, err)
	}
	// Saving by ID gives an archive without names.
	var m []DockerManifest
	tr := tar.NewReader(bytes.NewReader(save(t, src, img.ShortID())))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "manifest.json" {
			json.NewDecoder(tr).Decode(&m)
		}
	}
	if len(m) != 1 || len(m[0].RepoTags) != 0 || len(m[0].Layers) != 1 {
		t.Fatalf("save by ID manifest = %+v", m)
	}
}

// skopeo (containers/image) reads berth's docker-archive, converts it to
// an OCI layout and back; berth loads both results.
func TestSkopeoInterop(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (hack/deps.sh installs it)")
	}
	src := newStore(t)
	img := importBusybox(t, src, "busybox", `CMD ["sh"]`)
	dir := t.TempDir()
	archivePath := filepath.Join(dir, "busybox.tar")
	if err := os.WriteFile(archivePath, save(t, src, "busybox"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(skopeo, append([]string{"--insecure-policy"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ociDir := filepath.Join(dir, "oci")
	run("copy", "docker-archive:"+archivePath, "oci:"+ociDir+":busybox:latest")
	back := filepath.Join(dir, "back.tar")
	run("copy", "oci:"+ociDir+":busybox:latest", "docker-archive:"+back+":berth/roundtrip:v1")

	dst := newStore(t)
	// The OCI layout, as a tarball (what `docker load` of an OCI archive gets).
	var layout bytes.Buffer
	tarDir(t, ociDir, &layout)
	if _, err := dst.Load(&layout, nil); err != nil {
		t.Fatalf("load skopeo's OCI layout: %v", err)
	}
	f, err := os.Open(back)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	loaded, err := dst.Load(f, nil)
	if err != nil {
		t.Fatalf("load skopeo's docker-archive: %v", err)
	}
	got, err := dst.Get("berth/roundtrip:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.DiffIDs()[0] != img.DiffIDs()[0] || loaded[0].ID != got.ID {
		t.Fatalf("layer changed through skopeo: %v vs %v", got.DiffIDs(), img.DiffIDs())
	}
	if strings.Join(got.Config.Config.Cmd, " ") != "sh" {
		t.Fatalf("config lost through skopeo: %+v", got.Config.Config)
	}
}

func tarDir(t *testing.T, dir string, w *bytes.Buffer) {
	tw := tar.NewWriter(w)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
}

type file struct {
	name, body, link string
}

func mkArchive(files ...file) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		if f.link != "" {
			tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeSymlink, Linkname: f.link})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body))})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return b.Bytes()
}

func TestLoadHostileArchives(t *testing.T) {
	s := newStore(t)
	layer := string(mkArchive(file{name: "etc/hostname", body: "x\n"}))
	diff := digest.FromString(layer)
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + diff.String() + `"]}}`
	slip := string(mkArchive(file{name: "../../../evil", body: "pwned"}))
	slipCfg := `{"rootfs":{"type":"layers","diff_ids":["` + digest.FromString(slip).String() + `"]}}`
	good := func(manifest string) []file {
		return []file{{name: "c.json", body: cfg}, {name: "l/layer.tar", body: layer}, {name: "manifest.json", body: manifest}}
	}
	cases := map[string][]byte{
		"garbage":           []byte(strings.Repeat("garbage!", 300)),
		"empty":             mkArchive(),
		"manifest-not-json": mkArchive(good("{not json")...),
		"manifest-empty":    mkArchive(good("[]")...),
		"manifest-escape":   mkArchive(good(`[{"Config":"../../etc/passwd","Layers":[]}]`)...),
		"manifest-bad-tag":  mkArchive(good(`[{"Config":"c.json","RepoTags":["UPPER:x"],"Layers":["l/layer.tar"]}]`)...),
		"missing-layer":     mkArchive(file{name: "c.json", body: cfg}, file{name: "manifest.json", body: `[{"Config":"c.json","Layers":["l/layer.tar"]}]`}),
		"layer-count":       mkArchive(good(`[{"Config":"c.json","Layers":[]}]`)...),
		"diffid-mismatch":   mkArchive(file{name: "c.json", body: cfg}, file{name: "l/layer.tar", body: string(mkArchive(file{name: "other", body: "y"}))}, file{name: "manifest.json", body: `[{"Config":"c.json","Layers":["l/layer.tar"]}]`}),
		"entry-escape":      mkArchive(file{name: "../escape.json", body: cfg}),
		"symlink-loop":      mkArchive(file{name: "a", link: "b"}, file{name: "b", link: "a"}, file{name: "manifest.json", body: `[{"Config":"a","Layers":[]}]`}),
		"tar-slip-layer":    mkArchive(file{name: "c.json", body: slipCfg}, file{name: "l/layer.tar", body: slip}, file{name: "manifest.json", body: `[{"Config":"c.json","RepoTags":["slip:x"],"Layers":["l/layer.tar"]}]`}),
		"config-not-json":   mkArchive(file{name: "c.json", body: "nope"}, file{name: "manifest.json", body: `[{"Config":"c.json","Layers":[]}]`}),
		"oci-bad-digest":    mkArchive(file{name: "oci-layout", body: `{"imageLayoutVersion":"1.0.0"}`}, file{name: "index.json", body: `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("m").String() + `","size":1}]}`}, file{name: "blobs/sha256/" + digest.FromString("m").Encoded(), body: "not m"}),
		"oci-bad-version":   mkArchive(file{name: "oci-layout", body: `{"imageLayoutVersion":"9"}`}, file{name: "index.json", body: `{}`}),
		"truncated":         mkArchive(good(`[{"Config":"c.json","Layers":["l/layer.tar"]}]`)...)[:700],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Load(bytes.NewReader(data), nil)
			if err == nil {
				t.Fatalf("hostile archive loaded")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error is not ErrInvalid: %v", err)
			}
			t.Log(err)
		})
	}
	list, _ := s.List()
	blobs, _ := os.ReadDir(filepath.Join(s.Root(), "blobs/sha256"))
	ingest, _ := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	layers, _ := s.Snapshotter().Layers()
	if len(list)+len(blobs)+len(ingest)+len(layers) != 0 {
		t.Fatalf("failed loads left %d images %d blobs %d ingest files %d layers", len(list), len(blobs), len(ingest), len(layers))
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(s.Root()), "evil")); err == nil {
		t.Fatalf("written outside the store")
	}
	// The same archive, made honest, loads.
	if _, err := s.Load(bytes.NewReader(mkArchive(good(`[{"Config":"c.json","RepoTags":["ok:1"],"Layers":["l/layer.tar"]}]`)...)), nil); err != nil {
		t.Fatalf("valid archive refused: %v", err)
	}
}
