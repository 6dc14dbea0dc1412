package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/internal/testregistry"
)

// gcrLayer is a layer of an uncompressed tar, gzip or zstd compressed.
func gcrLayer(t testing.TB, tb []byte, zstd bool) v1.Layer {
	t.Helper()
	opts := []tarball.LayerOption{tarball.WithCompressedCaching}
	if zstd {
		opts = append(opts, tarball.WithCompression(compression.ZStd))
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func gcrRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushBusybox imports busybox into a store and pushes it with berth.
func pushBusybox(t *testing.T, host, repo string) (*PushResult, v1.Image) {
	t.Helper()
	src := newStore(t)
	ref := host + "/" + repo
	importBusybox(t, src, ref)
	res, err := Push(ctxT(t), src, ref, PushOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(gcrRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return res, img
}

func TestBasicAuthRegistry(t *testing.T) {
	reg := testregistry.StartT(t, testregistry.Options{User: "alice", Password: "s3cret"})
	src := newStore(t)
	ref := reg.Host + "/berth-test/private:v1"
	orig := importBusybox(t, src, ref)

	if _, err := Push(ctxT(t), src, ref, PushOptions{}, nil); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("anonymous push: %v, want unauthorized", err)
	}
	if _, err := Push(ctxT(t), src, ref, PushOptions{Auth: &AuthConfig{Username: "alice", Password: "wrong"}}, nil); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("push with a wrong password: %v, want unauthorized", err)
	}
	if _, err := Push(ctxT(t), src, ref, PushOptions{Auth: &AuthConfig{Username: "alice", Password: "s3cret"}}, nil); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}

	_, err := Pull(ctxT(t), newStore(t), ref, PullOptions{}, nil)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "pull access denied for "+reg.Host+"/berth-test/private") {
		t.Errorf("anonymous pull: %v", err)
	}

	// Credentials from a docker CLI config.json, both ways docker login
	// may have written them.
	for _, entry := range []string{
		fmt.Sprintf(`{"auth":%q}`, base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))),
		`{"username":"alice","password":"s3cret"}`,
	} {
		dir := t.TempDir()
		cfg := fmt.Sprintf(`{"auths":{%q:%s}}`, reg.Host, entry)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		auth, err := DockerConfigAuth(dir, reg.Host)
		if err != nil || auth == nil {
			t.Fatalf("DockerConfigAuth: %v %v", auth, err)
		}
		// Through the header, as the CLI sends it to the daemon.
		hdr, err := DecodeAuthHeader(EncodeAuthHeader(auth))
		if err != nil {
			t.Fatal(err)
		}
		img, err := Pull(ctxT(t), newStore(t), ref, PullOptions{Auth: hdr}, nil)
		if err != nil {
			t.Fatalf("pull with %s: %v", entry, err)
		}
		if img.ID != orig.ID {
			t.Errorf("pulled %s, pushed %s", img.ID, orig.ID)
		}
	}
	if a, err := DockerConfigAuth(t.TempDir(), reg.Host); a != nil || err != nil {
		t.Errorf("no config.json: %v %v, want anonymous", a, err)
	}
}

// skopeo reads what berth pushes, and berth pulls what skopeo converts
// (Docker schema 2 with gzip layers).
func TestSkopeoInterop(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatal("skopeo is not installed (make deps)")
	}
	reg := testregistry.StartT(t, testregistry.Options{})
	res, _ := pushBusybox(t, reg.Host, "berth-test/busybox:v1")
	skopeo := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("skopeo", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("skopeo %v: %v: %s", args, err, ee.Stderr)
			}
			t.Fatalf("skopeo %v: %v", args, err)
		}
		return out
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(h[:]) }
	raw := skopeo("inspect", "--raw", "--tls-verify=false", "docker://"+reg.Host+"/berth-test/busybox:v1")
	if sum(raw) != res.Digest.String() {
		t.Errorf("skopeo sees manifest %s, berth pushed %s", sum(raw), res.Digest)
	}
	skopeo("copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", "v2s2",
		"docker://"+reg.Host+"/berth-test/busybox:v1", "docker://"+reg.Host+"/berth-test/converted:v1")
	conv := skopeo("inspect", "--raw", "--tls-verify=false", "docker://"+reg.Host+"/berth-test/converted:v1")
	if !bytes.Contains(conv, []byte(mtDockerManifest)) || !bytes.Contains(conv, []byte(mtDockerLayer)) {
		t.Fatalf("skopeo did not convert to Docker schema 2 with gzip layers: %s", conv)
	}
	s := newStore(t)
	img, err := Pull(ctxT(t), s, reg.Host+"/berth-test/converted:v1", PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ManifestDescriptor.Digest.String() != sum(conv) || img.ManifestDescriptor.MediaType != mtDockerManifest {
		t.Errorf("pulled manifest %s (%s), skopeo wrote %s", img.ManifestDescriptor.Digest, img.ManifestDescriptor.MediaType, sum(conv))
	}
	if out := runIn(t, prepare(t, s, img), "/bin/sh", "-c", "echo $((6*7))"); out != "42\n" {
		t.Errorf("sh in the converted image says %q", out)
	}
	// And skopeo copies berth's image out to an OCI layout intact.
	dir := t.TempDir()
	skopeo("copy", "-q", "--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers", "docker://"+reg.Host+"/berth-test/busybox:v1", "oci:"+dir+":v1")
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || !bytes.Contains(idx, []byte(res.Digest.String())) {
		t.Errorf("skopeo's OCI layout does not hold manifest %s: %s %v", res.Digest, idx, err)
	}
}

// An index with busybox for amd64 and another image for arm64, pushed to
// the real registry: each platform gets its own.
func TestMultiPlatformIndex(t *testing.T) {
	reg := testregistry.StartT(t, testregistry.Options{})
	res, bb := pushBusybox(t, reg.Host, "berth-test/busybox:v1")
	arm, err := mutate.AppendLayers(empty.Image, gcrLayer(t, layerTar(t, tarEntry{name: "arch", body: "arm64\n"}), false))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := arm.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", "arm64", "v8"
	if arm, err = mutate.ConfigFile(arm, cf); err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: bb, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	ref := reg.Host + "/berth-test/multi:v1"
	if err := remote.WriteIndex(gcrRef(t, ref), idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	armID, _ := arm.ConfigName()

	s := newStore(t)
	img, err := Pull(ctxT(t), s, ref, PullOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bbID, _ := bb.ConfigName()
	if img.ID.String() != bbID.String() || img.ManifestDescriptor.Digest != res.Digest {
		t.Errorf("default platform got %s (manifest %s), want busybox %s", img.ID, img.ManifestDescriptor.Digest, bbID)
	}
	if want := ref[:strings.LastIndex(ref, ":")] + "@" + idxDigest.String(); len(img.RepoDigests) != 1 || img.RepoDigests[0] != want {
		t.Errorf("RepoDigests %q, want %s", img.RepoDigests, want)
	}
	runIn(t, prepare(t, s, img), "/bin/true")
	armImg, err := Pull(ctxT(t), newStore(t), ref, PullOptions{Platform: "linux/arm64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if armImg.ID.String() != armID.String() || armImg.Config.Architecture != "arm64" {
		t.Errorf("linux/arm64 got %s (%s), want %s", armImg.ID, armImg.Config.Architecture, armID)
	}
}

// countingTransport counts blob downloads.
type countingTransport struct {
	mu    sync.Mutex
	blobs []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		c.mu.Lock()
		c.blobs = append(c.blobs, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A second image sharing all but one layer costs only that layer (and its
// config); zstd layers unpack too.
func TestPullSharesLayers(t *testing.T) {
	reg := testregistry.StartT(t, testregistry.Options{})
	_, bb := pushBusybox(t, reg.Host, "berth-test/busybox:v1")
	x := gcrLayer(t, layerTar(t, tarEntry{name: "x", body: randomBytes(100 << 10)}), false)
	y := gcrLayer(t, layerTar(t, tarEntry{name: "y", body: "zstd compressed\n"}), true)
	a, err := mutate.AppendLayers(bb, x)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mutate.AppendLayers(a, y)
	if err != nil {
		t.Fatal(err)
	}
	for ref, img := range map[string]v1.Image{"a:v1": a, "b:v1": b} {
		if err := remote.Write(gcrRef(t, reg.Host+"/berth-test/"+ref), img); err != nil {
			t.Fatal(err)
		}
	}
	s := newStore(t)
	ct := &countingTransport{}
	if _, err := Pull(ctxT(t), s, reg.Host+"/berth-test/a:v1", PullOptions{Transport: ct}, nil); err != nil {
		t.Fatal(err)
	}
	if len(ct.blobs) != 3 { // config, busybox, x
		t.Errorf("first pull fetched %d blobs, want 3: %q", len(ct.blobs), ct.blobs)
	}
	ct.blobs = nil
	var prog collect
	img, err := Pull(ctxT(t), s, reg.Host+"/berth-test/b:v1", PullOptions{Transport: ct}, prog.fn)
	if err != nil {
		t.Fatal(err)
	}
	yd, _ := y.Digest()
	bcfg, _ := b.ConfigName()
	want := []string{bcfg.String(), yd.String()}
	if strings.Join(ct.blobs, ",") != strings.Join(want, ",") && strings.Join(ct.blobs, ",") != want[1]+","+want[0] {
		t.Errorf("second pull fetched %q, want only config and the new layer %q", ct.blobs, want)
	}
	if n := strings.Count(strings.Join(prog.statuses(), "\n"), "Already exists"); n != 2 {
		t.Errorf("%d layers reported as existing, want 2: %q", n, prog.statuses())
	}
	rootfs := prepare(t, s, img)
	if got, err := os.ReadFile(filepath.Join(rootfs, "y")); err != nil || string(got) != "zstd compressed\n" {
		t.Errorf("the zstd layer's file: %q %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		t.Error(err)
	}
}

// registry-mirrors serve Docker Hub's images: "busybox" comes from the
// first mirror that answers, and keeps its Docker Hub name.
func TestPullThroughMirror(t *testing.T) {
	reg := testregistry.StartT(t, testregistry.Options{})
	res, _ := pushBusybox(t, reg.Host, "library/busybox:latest")
	s := newStore(t)
	cfg := &Config{Mirrors: []string{"http://127.0.0.1:1", "http://" + reg.Host}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	img, err := Pull(ctxT(t), s, "busybox", PullOptions{Config: cfg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ManifestDescriptor.Digest != res.Digest || len(img.RepoTags) != 1 || img.RepoTags[0] != "busybox:latest" {
		t.Errorf("pulled %s tagged %q", img.ManifestDescriptor.Digest, img.RepoTags)
	}
	if got, err := s.Get("docker.io/library/busybox:latest"); err != nil || got.ID != img.ID {
		t.Errorf("docker.io/library/busybox:latest: %v", err)
	}
}
