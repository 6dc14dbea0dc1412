package image

import (
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// FuzzParseDockerManifest: the manifest.json of a loaded archive is
// untrusted; parsing must not panic and accepted paths must stay inside.
func FuzzParseDockerManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"c.json","RepoTags":["busybox:latest"],"Layers":["a/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"../x","Layers":["/etc/passwd"]}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"Config":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseDockerManifest(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Config == "" {
				t.Fatalf("accepted an entry without Config")
			}
			for _, tag := range m.RepoTags {
				if _, err := ParseTagReference(tag); err != nil {
					t.Fatalf("accepted bad tag %q", tag)
				}
			}
		}
	})
}

// FuzzApplyChanges: `changes` come from API requests.
func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{`CMD ["sh"]`, "ENV A=1 B=\"two words\"", "EXPOSE 1-65535/udp", "HEALTHCHECK --interval=1s CMD true",
		"LABEL 'a b'=c", "WORKDIR ../..", "ONBUILD RUN x", "ENV \"", "VOLUME [\"/data\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		var cfg dockerspec.DockerOCIImageConfig
		ApplyChanges(&cfg, []string{change})
		if cfg.WorkingDir != "" && cfg.WorkingDir[0] != '/' {
			t.Fatalf("WORKDIR %q is not absolute", cfg.WorkingDir)
		}
	})
}
