package registry

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registry responses are untrusted: manifest and index parsing must
// return an error, never panic or accept a descriptor it cannot use.
func FuzzParseManifest(f *testing.F) {
	f.Add(mtDockerManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:5395c3a5dff84e37c11668c19bd5a170f46ce4df2be33cd13c1655220dc34649","size":409},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:31194a518d24b51b1e6680b0fd4b0f9db339b45e7af90cc2fae0c925e2b484cd","size":1083584}]}`))
	f.Add(mtOCIIndex, []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5395c3a5dff84e37c11668c19bd5a170f46ce4df2be33cd13c1655220dc34649","size":409,"platform":{"os":"linux","architecture":"amd64"}}]}`))
	f.Add(mtDockerManifest, []byte(`{"schemaVersion":2,"layers":[`))
	f.Add(mtDockerSchema1JWS, []byte(`{}`))
	named, _ := reference.ParseNormalizedNamed("busybox:latest")
	f.Fuzz(func(t *testing.T, mt string, b []byte) {
		p := &puller{named: named, want: DefaultPlatform()}
		if isIndex(mt) {
			d, err := p.resolveIndex(b)
			if err == nil && (d.Digest.Validate() != nil || d.Size <= 0 || d.Platform == nil) {
				t.Fatalf("index entry %+v accepted", d)
			}
			return
		}
		m, err := p.parseManifest(mt, b)
		if err != nil {
			return
		}
		if m.Config.Digest.Validate() != nil || m.Config.Size < 0 {
			t.Fatalf("config descriptor %+v accepted", m.Config)
		}
		for _, l := range m.Layers {
			if l.Digest.Validate() != nil || l.Size < 0 || !isLayer(l.MediaType) {
				t.Fatalf("layer descriptor %+v accepted", l)
			}
		}
	})
}

func FuzzDecodeAuthHeader(f *testing.F) {
	f.Add("e30=")
	f.Add(EncodeAuthHeader(&AuthConfig{Username: "a", Password: "b"}))
	f.Add("eyJhdXRoIjoiWVd4cFkyVTZjek5qY21WMCJ9") // {"auth":"YWxpY2U6czNjcmV0"}
	f.Add("!!")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := DecodeAuthHeader(h)
		if err != nil || a == nil {
			return
		}
		a.authenticator() // may fail, must not panic
		if back, err := DecodeAuthHeader(EncodeAuthHeader(a)); err != nil || back == nil || *back != *a {
			t.Fatalf("%+v does not round-trip: %+v %v", a, back, err)
		}
	})
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "aarch64", "windows/amd64", "linux//", "linux/arm64/v8/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			return
		}
		if p.OS == "" || p.Architecture == "" {
			t.Fatalf("%q parsed to %+v", s, p)
		}
		if platformRank(p, p) == 0 {
			t.Fatalf("%+v does not match itself", p)
		}
		again, err := ParsePlatform(PlatformString(p))
		if err != nil || PlatformString(again) != PlatformString(p) {
			t.Fatalf("%q → %s → %s %v", s, PlatformString(p), PlatformString(again), err)
		}
		selectManifest([]ocispec.Descriptor{{Platform: &p, MediaType: mtOCIManifest}}, p)
	})
}

// The CLI draws whatever the daemon streams.
func FuzzDisplay(f *testing.F) {
	f.Add([]byte(`{"status":"Pulling fs layer","progressDetail":{},"id":"a"}` + "\n" + `{"status":"Downloading","progressDetail":{"current":5,"total":1},"id":"a"}`))
	f.Add([]byte(`{"errorDetail":{"message":"x"}}`))
	f.Add([]byte(`{"progressDetail":{"current":-5,"total":-1},"id":"a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, term := range []bool{false, true} {
			Display(bytes.NewReader(b), io.Discard, term, 200, nil)
		}
		if strings.Count(string(b), "\n") > 1000 {
			return
		}
	})
}
