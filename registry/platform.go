package registry

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPlatform is the platform berth runs: linux and the host's
// architecture (with ARM's variant).
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses Docker's --platform value: os[/arch[/variant]] or
// a bare architecture ("linux/arm64/v8", "linux/amd64", "arm64"). The
// empty string is the default platform. Common aliases (x86_64, aarch64,
// armhf) are normalized as dockerd does.
func ParsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return DefaultPlatform(), nil
	}
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t") {
			return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
		}
	}
	var p ocispec.Platform
	switch {
	case len(parts) == 1 && isKnownOS(parts[0]):
		p = ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
	case len(parts) == 1:
		p = ocispec.Platform{OS: "linux", Architecture: parts[0]}
	default:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
	}
	if !isKnownOS(p.OS) {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: unknown operating system %q", s, p.OS)
	}
	return normalizePlatform(p), nil
}

func isKnownOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9", "js", "wasip1", "android", "ios", "dragonfly":
		return true
	}
	return false
}

// normalizePlatform maps architecture aliases and default variants to the
// names image indexes use.
func normalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "i386", "i686", "x86":
		p.Architecture = "386"
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "amd64":
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "8" || p.Variant == "v8" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	}
	return p
}

// PlatformString is "os/arch[/variant]".
func PlatformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformRank scores how well have satisfies want: 0 is no match, higher
// is better. An ARM variant runs older variants (v7 runs v6 and v5), and
// without a wanted variant any variant matches.
func platformRank(want, have ocispec.Platform) int {
	want, have = normalizePlatform(want), normalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return 0
	}
	if want.Variant == have.Variant {
		return 100
	}
	if want.Architecture == "arm" && len(want.Variant) == 2 && len(have.Variant) == 2 && have.Variant < want.Variant {
		return 50 + int(have.Variant[1]-'0')
	}
	if want.Variant == "" {
		return 10
	}
	return 0
}

// selectManifest picks the best entry of an index for the platform (the
// first of the best); entries without a platform never match.
func selectManifest(manifests []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, bool) {
	best, bestRank := ocispec.Descriptor{}, 0
	for _, d := range manifests {
		if d.Platform == nil || !isImageManifest(d.MediaType) {
			continue
		}
		if r := platformRank(want, *d.Platform); r > bestRank {
			best, bestRank = d, r
		}
	}
	return best, bestRank > 0
}
