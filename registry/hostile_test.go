package registry

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/image"
)

var zeroTime time.Time

func randomBytes(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return string(b)
}

// sampleImage is two layers, the second with 256 KiB of incompressible
// data (so a download spans many reads).
func sampleImage(t testing.TB) *testImage {
	return makeImage(t, "amd64",
		layerTar(t, tarEntry{name: "etc/", typ: '5'}, tarEntry{name: "etc/hello", body: "hello\n"}),
		layerTar(t, tarEntry{name: "data", body: randomBytes(256 << 10)}))
}

// pullFails pulls from a lying registry and checks the pull failed with
// want in its message, named nothing and left nothing half written.
func pullFails(t *testing.T, f *fakeRegistry, ref, want string, opts PullOptions) error {
	t.Helper()
	s := newStore(t)
	_, err := Pull(ctxT(t), s, f.host()+"/"+ref, opts, nil)
	if err == nil {
		t.Fatalf("pull from a lying registry succeeded")
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("a failed pull left %d images", len(imgs))
	}
	if l := storeLeftovers(t, s); len(l) != 0 {
		t.Errorf("a failed pull left %q", l)
	}
	return err
}

func TestPullRefusesWrongDigest(t *testing.T) {
	f := newFakeRegistry(t)
	ti := sampleImage(t)
	f.add("lying/img", "latest", ti)
	bad := ti.m.Layers[1].Digest
	f.blob = func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
		if d != bad {
			return false
		}
		c := append([]byte(nil), b...)
		c[len(c)/2] ^= 0xff // same size, other content
		http.ServeContent(w, r, "", zeroTime, bytes.NewReader(c))
		return true
	}
	err := pullFails(t, f, "lying/img", "filesystem layer verification failed", PullOptions{})
	if !errors.Is(err, ErrVerification) {
		t.Errorf("error does not wrap ErrVerification: %v", err)
	}
}

func TestPullRefusesWrongSize(t *testing.T) {
	f := newFakeRegistry(t)
	ti := sampleImage(t)
	f.add("lying/img", "latest", ti)
	f.blob = func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+10))
		w.WriteHeader(http.StatusOK)
		w.Write(append(b, make([]byte, 10)...))
		return true
	}
	pullFails(t, f, "lying/img", "the manifest declares", PullOptions{})
}

func TestPullRefusesTruncatedBlob(t *testing.T) {
	f := newFakeRegistry(t)
	ti := sampleImage(t)
	f.add("lying/img", "latest", ti)
	var gets atomic.Int64
	f.blob = func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
		if d != ti.m.Layers[1].Digest {
			return false
		}
		gets.Add(1)
		// Announce everything, send half, hang up: every time.
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		panic(http.ErrAbortHandler)
	}
	pullFails(t, f, "lying/img", "truncated", PullOptions{})
	// Resumed a few times, then given up (the HTTP client itself may
	// retry one request whose connection broke early).
	if n := gets.Load(); n < 2 || n > maxBlobAttempts+1 {
		t.Errorf("%d requests for a truncated blob, want 2..%d", n, maxBlobAttempts+1)
	}
}

// A download that breaks is resumed where it broke (Range), or re-read
// and skipped by a registry that does not do ranges.
func TestPullResumesBrokenDownload(t *testing.T) {
	for _, ranges := range []bool{true, false} {
		t.Run(fmt.Sprintf("ranges=%v", ranges), func(t *testing.T) {
			f := newFakeRegistry(t)
			ti := sampleImage(t)
			f.add("flaky/img", "latest", ti)
			var calls atomic.Int64
			var rangeSeen atomic.Value
			f.blob = func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
				if d != ti.m.Layers[1].Digest {
					return false
				}
				if calls.Add(1) == 1 {
					w.Header().Set("Content-Length", strconv.Itoa(len(b)))
					w.WriteHeader(http.StatusOK)
					w.Write(b[:len(b)/3])
					panic(http.ErrAbortHandler)
				}
				rangeSeen.Store(r.Header.Get("Range"))
				if !ranges {
					r.Header.Del("Range")
				}
				http.ServeContent(w, r, "", zeroTime, bytes.NewReader(b))
				return true
			}
			s := newStore(t)
			img, err := Pull(ctxT(t), s, f.host()+"/flaky/img", PullOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if calls.Load() != 2 {
				t.Errorf("%d requests for the broken blob, want 2", calls.Load())
			}
			if r, _ := rangeSeen.Load().(string); !strings.HasPrefix(r, "bytes=") || r == "bytes=0-" {
				t.Errorf("the second request asked for Range %q, want the rest", r)
			}
			rootfs := prepare(t, s, img)
			if b, err := os.ReadFile(filepath.Join(rootfs, "etc/hello")); err != nil || string(b) != "hello\n" {
				t.Errorf("etc/hello: %q %v", b, err)
			}
		})
	}
}

func TestPullBoundsEndlessBlob(t *testing.T) {
	f := newFakeRegistry(t)
	ti := sampleImage(t)
	f.add("lying/img", "latest", ti)
	var sent atomic.Int64
	f.blob = func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
		if d != ti.m.Layers[1].Digest {
			return false
		}
		w.WriteHeader(http.StatusOK) // chunked, no length
		w.Write(b)
		junk := make([]byte, 32<<10)
		for sent.Load() < 1<<30 { // a bound for the test itself
			n, err := w.Write(junk)
			sent.Add(int64(n))
			if err != nil {
				break
			}
		}
		return true
	}
	start := time.Now()
	pullFails(t, f, "lying/img", "more than the", PullOptions{})
	if n := sent.Load(); n > 64<<20 {
		t.Errorf("the client let an endless blob send %d bytes past its size", n)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("refusing an endless blob took %v", d)
	}
}

func TestPullBoundsEndlessManifest(t *testing.T) {
	f := newFakeRegistry(t)
	f.add("lying/img", "latest", sampleImage(t))
	var sent atomic.Int64
	f.manifest = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.Header().Set("Content-Type", mtDockerManifest)
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"schemaVersion":2,"layers":[`))
		junk := bytes.Repeat([]byte(`{"digest":"x"},`), 2048)
		for sent.Load() < 1<<30 {
			n, err := w.Write(junk)
			sent.Add(int64(n))
			if err != nil {
				break
			}
		}
		return true
	}
	pullFails(t, f, "lying/img", "larger than", PullOptions{})
	if n := sent.Load(); n > 64<<20 {
		t.Errorf("the client read %d bytes of an endless manifest", n)
	}
}

func TestPullRefusesMalformedManifests(t *testing.T) {
	good := sampleImage(t)
	badDigest := good.m
	badDigest.Layers = append([]ocispec.Descriptor(nil), good.m.Layers...)
	badDigest.Layers[0].Digest = "sha256:nothex"
	badDigestJSON, _ := json.Marshal(badDigest)
	badType := good.m
	badType.Layers = append([]ocispec.Descriptor(nil), good.m.Layers...)
	badType.Layers[0].MediaType = "text/html"
	badTypeJSON, _ := json.Marshal(badType)
	hugeCfg := good.m
	hugeCfg.Config.Size = 1 << 40
	hugeCfgJSON, _ := json.Marshal(hugeCfg)
	for _, c := range []struct {
		name, mt, body, want string
	}{
		{"not json", mtDockerManifest, `{"schemaVersion":2,"layers":[`, "manifest of"},
		{"wrong schema", mtDockerManifest, `{"schemaVersion":3}`, "schemaVersion 3"},
		{"schema1", mtDockerSchema1JWS, `{"schemaVersion":1}`, "schema 1 is not supported"},
		{"html", "text/html", `<html></html>`, "unsupported manifest media type"},
		{"bad layer digest", mtDockerManifest, string(badDigestJSON), "nothex"},
		{"bad layer type", mtDockerManifest, string(badTypeJSON), "unsupported media type"},
		{"huge config", mtDockerManifest, string(hugeCfgJSON), "too large"},
		{"bad index", mtOCIIndex, `{"manifests":{}}`, "manifest list"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			f.add("lying/img", "base", good)
			f.addManifest("lying/img", "latest", c.mt, []byte(c.body))
			err := pullFails(t, f, "lying/img", c.want, PullOptions{})
			if !errors.Is(err, ErrVerification) {
				t.Errorf("error does not wrap ErrVerification: %v", err)
			}
		})
	}
}

// The config must describe the layers the registry sends.
func TestPullRefusesWrongDiffID(t *testing.T) {
	ti := sampleImage(t)
	other := makeImage(t, "amd64", layerTar(t, tarEntry{name: "x", body: "x"}), layerTar(t, tarEntry{name: "y", body: "y"}))
	// other's config (diff IDs of x and y) with ti's layers.
	m := ti.m
	m.Config = other.m.Config
	mb, _ := json.Marshal(m)
	f := newFakeRegistry(t)
	f.add("lying/img", "base", ti)
	f.add("lying/other", "base", other)
	f.addManifest("lying/img", "latest", mtDockerManifest, mb)
	pullFails(t, f, "lying/img", "the image config says", PullOptions{})
}

func TestPullGivesUpOnStalledRegistry(t *testing.T) {
	f := newFakeRegistry(t)
	ti := sampleImage(t)
	f.add("slow/img", "latest", ti)
	f.blob = func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:10])
		w.(http.Flusher).Flush()
		select { // then nothing
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		return true
	}
	start := time.Now()
	pullFails(t, f, "slow/img", "sent nothing for 200ms", PullOptions{IdleTimeout: 200 * time.Millisecond})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("giving up took %v", d)
	}
}

// A layer whose digest is right but whose tar escapes is refused by the
// extractor; nothing is written outside the store.
func TestPullRefusesEscapingLayer(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	ti := makeImage(t, "amd64", layerTar(t,
		tarEntry{name: "link", typ: '2', link: outside},
		tarEntry{name: "link/victim", body: "pwned"},
		tarEntry{name: "../../../../../../" + strings.TrimPrefix(victim, "/") + "2", body: "pwned"}))
	f := newFakeRegistry(t)
	f.add("evil/img", "latest", ti)
	pullFails(t, f, "evil/img", "layer", PullOptions{})
	for _, p := range []string{victim, victim + "2"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a layer wrote %s outside the store", p)
		}
	}
}

func TestPullPlatformSelection(t *testing.T) {
	amd := makeImage(t, "amd64", layerTar(t, tarEntry{name: "arch", body: "amd64\n"}))
	arm := makeImage(t, "arm64", layerTar(t, tarEntry{name: "arch", body: "arm64\n"}))
	armv7 := makeImage(t, "arm", layerTar(t, tarEntry{name: "arch", body: "armv7\n"}))
	f := newFakeRegistry(t)
	f.add("multi/img", "amd", amd)
	f.add("multi/img", "arm", arm)
	f.add("multi/img", "armv7", armv7)
	desc := func(ti *testImage, p ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mtDockerManifest, Digest: digest.FromBytes(ti.manifest), Size: int64(len(ti.manifest)), Platform: &p}
	}
	idx := ocispec.Index{MediaType: mtDockerManifestList, Manifests: []ocispec.Descriptor{
		{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest.FromString("attestation"), Size: 10,
			Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}},
		desc(arm, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		desc(armv7, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}),
		desc(amd, ocispec.Platform{OS: "linux", Architecture: "amd64"}),
	}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	f.addManifest("multi/img", "latest", mtDockerManifestList, ib)
	for _, c := range []struct {
		platform string
		want     *testImage
	}{{"", amd}, {"linux/amd64", amd}, {"linux/arm64", arm}, {"linux/arm64/v8", arm}, {"linux/arm/v7", armv7}, {"aarch64", arm}} {
		s := newStore(t)
		img, err := Pull(ctxT(t), s, f.host()+"/multi/img", PullOptions{Platform: c.platform}, nil)
		if err != nil {
			t.Fatalf("platform %q: %v", c.platform, err)
		}
		if img.ID != c.want.m.Config.Digest {
			t.Errorf("platform %q: got %s, want %s", c.platform, img.ID, c.want.m.Config.Digest)
		}
		// RepoDigests name the index, as dockerd's do.
		if want := f.host() + "/multi/img@" + digest.FromBytes(ib).String(); len(img.RepoDigests) != 1 || img.RepoDigests[0] != want {
			t.Errorf("platform %q: RepoDigests %q, want %s", c.platform, img.RepoDigests, want)
		}
	}
	_, err := Pull(ctxT(t), newStore(t), f.host()+"/multi/img", PullOptions{Platform: "linux/s390x"}, nil)
	if err == nil || !errors.Is(err, image.ErrNotFound) || !strings.Contains(err.Error(), "no matching manifest for linux/s390x in the manifest list entries") {
		t.Errorf("pull for a platform the index lacks: %v", err)
	}
	// A plain manifest for another platform is refused only when asked.
	_, err = Pull(ctxT(t), newStore(t), f.host()+"/multi/img:arm", PullOptions{Platform: "linux/amd64"}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not match the specified platform: wanted linux/amd64, actual: linux/arm64") {
		t.Errorf("pull of an arm64 image for amd64: %v", err)
	}
	if _, err := Pull(ctxT(t), newStore(t), f.host()+"/multi/img:arm", PullOptions{}, nil); err != nil {
		t.Errorf("pull of an arm64 image without --platform: %v", err)
	}
}

// The anonymous bearer-token flow, and a token server that wants
// credentials (sent as the docker CLI sends them, in X-Registry-Auth).
func TestPullBearerTokenFlow(t *testing.T) {
	f := newFakeRegistry(t)
	ti := sampleImage(t)
	f.add("private/img", "latest", ti)
	f.add("public/img", "latest", ti)
	var tokens atomic.Int64
	f.auth = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			scope := r.URL.Query().Get("scope")
			user, pass, ok := r.BasicAuth()
			if strings.Contains(scope, "private/img") && (!ok || user != "alice" || pass != "s3cret") {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return false
			}
			tokens.Add(1)
			json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + base64.RawURLEncoding.EncodeToString([]byte(scope))})
			return false
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake"`, f.URL))
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return false
		}
		return true
	}
	if _, err := Pull(ctxT(t), newStore(t), f.host()+"/public/img", PullOptions{}, nil); err != nil {
		t.Fatalf("anonymous pull with a bearer token: %v", err)
	}
	if tokens.Load() == 0 {
		t.Fatal("no token was fetched")
	}
	_, err := Pull(ctxT(t), newStore(t), f.host()+"/private/img", PullOptions{}, nil)
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("anonymous pull of a private image: %v, want unauthorized", err)
	}
	auth, err := DecodeAuthHeader(EncodeAuthHeader(&AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: f.host()}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctxT(t), newStore(t), f.host()+"/private/img", PullOptions{Auth: auth}, nil); err != nil {
		t.Errorf("pull with credentials: %v", err)
	}
}

// A registry that never answers a manifest request is given up on after
// the request timeout, not waited for forever.
func TestPullGivesUpOnSilentManifest(t *testing.T) {
	f := newFakeRegistry(t)
	f.add("slow/img", "latest", sampleImage(t))
	f.manifest = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.Header().Set("Content-Type", mtDockerManifest)
		w.WriteHeader(http.StatusOK)
		w.Write(body[:5])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		return true
	}
	start := time.Now()
	s := newStore(t)
	_, err := Pull(ctxT(t), s, f.host()+"/slow/img", PullOptions{Timeout: 300 * time.Millisecond}, nil)
	if err == nil {
		t.Fatal("pull from a silent registry succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("giving up took %v (%v)", d, err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("%d images", len(imgs))
	}
}
