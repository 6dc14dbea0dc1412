package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ParseReference normalizes a user's image reference the way Docker does:
// `busybox` → docker.io/library/busybox:latest; a reference with a digest
// keeps its digest and gets no tag.
func ParseReference(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w: %w", s, err, ErrInvalid)
	}
	return reference.TagNameOnly(named), nil
}

// ParseTagReference parses a reference that names a tag (for tag, import
// and load), refusing digests.
func ParseTagReference(s string) (reference.NamedTagged, error) {
	named, err := ParseReference(s)
	if err != nil {
		return nil, err
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, fmt.Errorf("refusing to create a tag with a digest reference %q: %w", s, ErrInvalid)
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("reference %q has no tag: %w", s, ErrInvalid)
	}
	return tagged, nil
}

// Familiar is Docker's short form of a normalized reference
// (docker.io/library/busybox:latest → busybox:latest).
func Familiar(full string) string {
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return reference.FamiliarString(named)
}

// looksLikeID tells whether s could be an image ID or a prefix of one.
func looksLikeID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// fullID returns the digest when s is a complete image ID.
func fullID(s string) (digest.Digest, bool) {
	if !strings.HasPrefix(s, "sha256:") {
		if len(s) != 64 {
			return "", false
		}
		s = "sha256:" + s
	}
	d := digest.Digest(s)
	return d, d.Validate() == nil
}
