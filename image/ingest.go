package image

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/snapshot"
)

// Limits on what an ingest accepts as a manifest or an image config.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 8 << 20
)

// Ingest brings content verified elsewhere (a registry pull) into the
// store: layer blobs written while they are being unpacked, then the
// config and manifest that name them. It holds the store's ingest lock
// (shared), so a concurrent prune never deletes a blob the ingest wrote
// and has not yet referenced. Nothing is named until Commit: an ingest
// abandoned half way (Close without Commit) leaves blobs that the next
// prune or rmi removes and no image.
//
// An Ingest is safe for concurrent use: layers are written in parallel.
type Ingest struct {
	s      *Store
	unlock func()
}

// NewIngest starts an ingest. Close it when done.
func (s *Store) NewIngest() (*Ingest, error) {
	unlock, err := s.ingestLock()
	if err != nil {
		return nil, err
	}
	return &Ingest{s: s, unlock: unlock}, nil
}

// Close ends the ingest and releases its lock.
func (in *Ingest) Close() {
	if in.unlock != nil {
		in.unlock()
		in.unlock = nil
	}
}

// Snapshotter is where layers are unpacked (nil when the store keeps
// blobs only).
func (in *Ingest) Snapshotter() *snapshot.Snapshotter { return in.s.snaps }

// HasBlob tells whether a blob of that digest and size is stored.
func (in *Ingest) HasBlob(desc ocispec.Descriptor) bool {
	return desc.Digest.Validate() == nil && in.s.hasBlob(desc.Digest, desc.Size)
}

// HasLayer tells whether the layer with this chain ID is unpacked (always
// true without a snapshotter: nothing to unpack).
func (in *Ingest) HasLayer(chainID digest.Digest) bool {
	return in.s.snaps == nil || in.s.snaps.HasLayer(chainID)
}

// BlobWriter writes one blob whose descriptor is known in advance. It
// refuses to write past the descriptor's size, and Commit publishes the
// blob only if its size and digest match.
type BlobWriter struct {
	w    *blobWriter
	want ocispec.Descriptor
}

// NewBlob starts writing the blob desc describes.
func (in *Ingest) NewBlob(desc ocispec.Descriptor) (*BlobWriter, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w: %w", desc.Digest, err, ErrInvalid)
	}
	if desc.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("blob %s: only sha256 digests are supported: %w", desc.Digest, ErrInvalid)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("blob %s: negative size %d: %w", desc.Digest, desc.Size, ErrInvalid)
	}
	w, err := in.s.newBlobWriter(false)
	if err != nil {
		return nil, err
	}
	return &BlobWriter{w: w, want: desc}, nil
}

// Write appends to the blob; more bytes than the descriptor's size is an
// error.
func (b *BlobWriter) Write(p []byte) (int, error) {
	if b.w.n+int64(len(p)) > b.want.Size {
		return 0, fmt.Errorf("blob %s: more than the %d bytes its descriptor declares: %w", b.want.Digest, b.want.Size, ErrInvalid)
	}
	return b.w.Write(p)
}

// Written is the number of bytes written so far.
func (b *BlobWriter) Written() int64 { return b.w.n }

// Digest is the digest of what was written so far.
func (b *BlobWriter) Digest() digest.Digest { return b.w.h.Digest() }

// Commit verifies size and digest and publishes the blob. On a mismatch
// the blob is discarded and the error wraps ErrInvalid.
func (b *BlobWriter) Commit() error {
	if b.w.n != b.want.Size {
		b.w.abort()
		return fmt.Errorf("blob %s: got %d bytes, its descriptor declares %d: %w", b.want.Digest, b.w.n, b.want.Size, ErrInvalid)
	}
	if _, _, err := b.w.commit(b.want.Digest); err != nil {
		return invalid(err)
	}
	return nil
}

// Abort discards the blob.
func (b *BlobWriter) Abort() { b.w.abort() }

// WriteBlob stores a small blob (a config or a manifest) after checking
// it against desc.
func (in *Ingest) WriteBlob(desc ocispec.Descriptor, b []byte) error {
	if int64(len(b)) != desc.Size || digest.FromBytes(b) != desc.Digest {
		return fmt.Errorf("blob %s: content is %s (%d bytes), descriptor says %d bytes: %w",
			desc.Digest, digest.FromBytes(b), len(b), desc.Size, ErrInvalid)
	}
	_, err := in.s.writeBlob(b)
	return err
}

// UnpackBlob unpacks a stored layer blob as the layer chainID(parent,
// diffID), verifying that its uncompressed content is diffID (for a layer
// whose blob is stored but not unpacked, e.g. shared with another chain).
func (in *Ingest) UnpackBlob(desc ocispec.Descriptor, parent, diffID digest.Digest) error {
	if in.s.snaps == nil || in.s.snaps.HasLayer(chainID(parent, diffID)) {
		return nil
	}
	return in.s.unpackBlob(desc, parent, diffID)
}

// Commit stores the config and the manifest (kept byte for byte, so the
// image keeps the digest its registry gave it) and gives the image the
// full normalized names (tags and digests; none: a dangling image). It
// checks that the manifest names this config, that every layer blob is
// stored and (with a snapshotter) every layer unpacked under the chain of
// the config's diff IDs. mediaType is the manifest's (OCI or Docker
// schema 2 image manifest).
func (in *Ingest) Commit(mediaType string, manifest, config []byte, names []string) (*Image, error) {
	if len(manifest) > MaxManifestSize || len(config) > MaxConfigSize {
		return nil, fmt.Errorf("commit image: manifest or config too large: %w", ErrInvalid)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("commit image: manifest: %w: %w", err, ErrInvalid)
	}
	if m.Config.Digest != digest.FromBytes(config) || m.Config.Size != int64(len(config)) {
		return nil, fmt.Errorf("commit image: config does not match the manifest's descriptor %s: %w", m.Config.Digest, ErrInvalid)
	}
	var cfg struct {
		RootFS ocispec.RootFS `json:"rootfs"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("commit image: config: %w: %w", err, ErrInvalid)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("commit image: config lists %d layers, manifest %d: %w", len(cfg.RootFS.DiffIDs), len(m.Layers), ErrInvalid)
	}
	chain := ChainIDs(cfg.RootFS.DiffIDs)
	for i, l := range m.Layers {
		if !in.HasBlob(l) {
			return nil, fmt.Errorf("commit image: layer blob %s is not stored: %w", l.Digest, ErrInvalid)
		}
		if !in.HasLayer(chain[i]) {
			return nil, fmt.Errorf("commit image: layer %s is not unpacked: %w", chain[i], ErrInvalid)
		}
	}
	for _, n := range names {
		if _, err := ParseReference(n); err != nil {
			return nil, fmt.Errorf("commit image: %w", err)
		}
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	if err := in.WriteBlob(m.Config, config); err != nil {
		return nil, fmt.Errorf("commit image: %w", err)
	}
	if err := in.WriteBlob(desc, manifest); err != nil {
		return nil, fmt.Errorf("commit image: %w", err)
	}
	if len(names) == 0 {
		if err := in.s.addDangling(desc); err != nil {
			return nil, fmt.Errorf("commit image: %w", err)
		}
	}
	for _, n := range names {
		if err := in.s.setName(desc, n); err != nil {
			return nil, fmt.Errorf("commit image: %w", err)
		}
	}
	return in.s.byManifest(desc.Digest)
}

// byManifest returns the image whose manifest has digest d.
func (s *Store) byManifest(d digest.Digest) (*Image, error) {
	images, err := s.load()
	if err != nil {
		return nil, err
	}
	for _, im := range images {
		if im.ManifestDescriptor.Digest == d {
			return im, nil
		}
	}
	return nil, fmt.Errorf("image with manifest %s: %w", d, ErrNotFound)
}

// AddName gives an image one more full normalized name (a tag or a
// digest reference such as the repository digest a push produced),
// moving the name away from any image that had it.
func (s *Store) AddName(img *Image, name string) error {
	if _, err := ParseReference(name); err != nil {
		return err
	}
	return s.setName(img.ManifestDescriptor, name)
}

// ReadBlob returns a small stored blob (a manifest or config, at most
// 16 MiB), verified against its digest.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) { return s.readBlob(d) }

// BlobSize is the size of a stored blob.
func (s *Store) BlobSize(d digest.Digest) (int64, error) {
	if err := d.Validate(); err != nil {
		return 0, fmt.Errorf("blob %q: %w", d, err)
	}
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return fi.Size(), nil
}

var _ io.Writer = (*BlobWriter)(nil)
