package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testImage is an image made in memory: gzip layers, a config, a Docker
// schema 2 manifest.
type testImage struct {
	manifest []byte
	config   []byte
	layers   [][]byte
	m        ocispec.Manifest
}

type tarEntry struct {
	name, body, link string
	typ              byte
}

func layerTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// makeImage builds an image of the given uncompressed layer tars.
func makeImage(t testing.TB, arch string, tars ...[]byte) *testImage {
	t.Helper()
	ti := &testImage{}
	var diffIDs []digest.Digest
	var descs []ocispec.Descriptor
	for _, tb := range tars {
		diffIDs = append(diffIDs, digest.FromBytes(tb))
		z := gz(tb)
		ti.layers = append(ti.layers, z)
		descs = append(descs, ocispec.Descriptor{MediaType: mtDockerLayer, Digest: digest.FromBytes(z), Size: int64(len(z))})
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	ti.config, _ = json.Marshal(cfg)
	ti.m = ocispec.Manifest{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: mtDockerManifest,
		Config: ocispec.Descriptor{MediaType: mtDockerConfig, Digest: digest.FromBytes(ti.config), Size: int64(len(ti.config))},
		Layers: descs}
	ti.manifest, _ = json.Marshal(ti.m)
	return ti
}

// fakeRegistry serves images from memory, with hooks that make it lie.
// It is a fake for the hostile-registry tests only; the real protocol is
// tested against docker-registry.
type fakeRegistry struct {
	*httptest.Server
	mu        sync.Mutex
	manifests map[string][]byte // "repo:ref" → body
	mtypes    map[string]string
	blobs     map[digest.Digest][]byte
	// blob, when set, serves blob requests instead (return false to fall
	// through to the honest answer).
	blob func(w http.ResponseWriter, r *http.Request, d digest.Digest, b []byte) bool
	// manifest, likewise for manifests.
	manifest func(w http.ResponseWriter, r *http.Request, body []byte) bool
	// auth, when set, guards every /v2/ request.
	auth      func(w http.ResponseWriter, r *http.Request) bool
	blobGets  atomic.Int64
	bytesSent atomic.Int64
}

func newFakeRegistry(t testing.TB) *fakeRegistry {
	f := &fakeRegistry{manifests: map[string][]byte{}, mtypes: map[string]string{}, blobs: map[digest.Digest][]byte{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.URL, "http://") }

// add stores an image under repo:tag (and repo@digest).
func (f *fakeRegistry) add(repo, tag string, ti *testImage) {
	f.addManifest(repo, tag, mtDockerManifest, ti.manifest)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[digest.FromBytes(ti.config)] = ti.config
	for _, l := range ti.layers {
		f.blobs[digest.FromBytes(l)] = l
	}
}

func (f *fakeRegistry) addManifest(repo, tag, mt string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ref := range []string{tag, digest.FromBytes(body).String()} {
		f.manifests[repo+":"+ref] = body
		f.mtypes[repo+":"+ref] = mt
	}
}

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	if f.auth != nil && !f.auth(w, r) {
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	if r.URL.Path == "/v2/" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if i := strings.LastIndex(p, "/manifests/"); i > 0 {
		key := p[:i] + ":" + p[i+len("/manifests/"):]
		f.mu.Lock()
		body, ok := f.manifests[key]
		mt := f.mtypes[key]
		f.mu.Unlock()
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		if f.manifest != nil && f.manifest(w, r, body) {
			return
		}
		w.Header().Set("Content-Type", mt)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method != http.MethodHead {
			w.Write(body)
		}
		return
	}
	if i := strings.LastIndex(p, "/blobs/"); i > 0 {
		d := digest.Digest(p[i+len("/blobs/"):])
		f.mu.Lock()
		b, ok := f.blobs[d]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}`)
			return
		}
		if r.Method == http.MethodGet {
			f.blobGets.Add(1)
		}
		if f.blob != nil && f.blob(w, r, d, b) {
			return
		}
		http.ServeContent(w, r, "", zeroTime, bytes.NewReader(b))
		f.bytesSent.Add(int64(len(b)))
		return
	}
	w.WriteHeader(http.StatusNotFound)
}
