package image

import (
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"
)

func openBlob(s *Store, d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// OpenBlob opens a stored blob for reading (save, push).
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) { return openBlob(s, d) }
