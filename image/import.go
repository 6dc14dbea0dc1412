package image

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/archive"
)

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip, bzip2 or zstd), like `docker import`: changes are Dockerfile-like
// instructions (see ApplyChanges), message the history comment, ref the
// name to give it ("" for none; `imported` means imported:latest). The
// layer is stored uncompressed (its digest is its diff ID) and unpacked.
func (s *Store) Import(r io.Reader, ref string, changes []string, message string) (*Image, error) {
	var name string
	if ref != "" {
		tagged, err := ParseTagReference(ref)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		name = tagged.String()
	}
	var cfg dockerspec.DockerOCIImageConfig
	if err := ApplyChanges(&cfg, changes); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	unlock, err := s.ingestLock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	plain, _, err := archive.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("import: %w: %w", err, ErrInvalid)
	}
	defer plain.Close()
	layer, err := s.ingestLayer(plain, "", "")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	now := time.Now().UTC()
	if message == "" {
		message = "Imported from -"
	}
	img := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &now,
			Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.DiffID}},
			History:  []ocispec.History{{Created: &now, Comment: message}},
		},
		Config: cfg,
	}
	desc, err := s.commitImage(img, []ocispec.Descriptor{layer.Descriptor}, name)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	images, err := s.load()
	if err != nil {
		return nil, err
	}
	for _, im := range images {
		if im.ManifestDescriptor.Digest == desc.Digest {
			return im, nil
		}
	}
	return nil, fmt.Errorf("import: image %s vanished", desc.Digest)
}

// storedLayer is a layer blob in the store, unpacked.
type storedLayer struct {
	Descriptor ocispec.Descriptor
	DiffID     digest.Digest
	Size       int64 // bytes of file content
}

// ingestLayer stores the uncompressed layer tar r as a blob and unpacks it
// on top of parentChain (the chain ID of the layers below, "" for a base
// layer) in one pass. wantDiffID, when set, is checked. The caller holds
// the ingest lock.
func (s *Store) ingestLayer(r io.Reader, parentChain, wantDiffID digest.Digest) (storedLayer, error) {
	bw, err := s.newBlobWriter(false)
	if err != nil {
		return storedLayer{}, err
	}
	tee := io.TeeReader(r, bw)
	var size int64
	var commitLayer func(digest.Digest) error
	if s.snaps != nil {
		lw, err := s.snaps.NewLayer()
		if err != nil {
			bw.abort()
			return storedLayer{}, err
		}
		defer lw.Abort()
		st, err := lw.Apply(tee)
		if err != nil {
			bw.abort()
			return storedLayer{}, fmt.Errorf("unpack layer: %w: %w", err, ErrInvalid)
		}
		size = st.Size
		commitLayer = lw.Commit
	}
	// The tar reader stops at the end-of-archive marker: hash the rest.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		bw.abort()
		return storedLayer{}, fmt.Errorf("read layer: %w", err)
	}
	d, n, err := bw.commit(wantDiffID)
	if err != nil {
		return storedLayer{}, err
	}
	if commitLayer != nil {
		if err := commitLayer(chainID(parentChain, d)); err != nil {
			return storedLayer{}, err
		}
	}
	if s.snaps == nil {
		size = n
	}
	return storedLayer{
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: n},
		DiffID:     d, Size: size,
	}, nil
}

func chainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// commitImage writes the config and an OCI manifest and names the image
// (or records it dangling when name is ""). The caller holds the ingest
// lock and has stored the layers.
func (s *Store) commitImage(img dockerspec.DockerOCIImage, layers []ocispec.Descriptor, name string) (ocispec.Descriptor, error) {
	cb, err := json.Marshal(img)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cd, err := s.writeBlob(cb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		Versioned: specsgo.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cb))},
		Layers:    layers,
	}
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md, err := s.writeBlob(mb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}
	if name == "" {
		return desc, s.addDangling(desc)
	}
	return desc, s.setName(desc, name)
}

// EnsureUnpacked unpacks any layer of img that is not (or no longer)
// unpacked, from the stored blobs, verifying each diff ID. Cheap when all
// are there: call it before snapshot.Prepare.
func (s *Store) EnsureUnpacked(img *Image) error {
	if s.snaps == nil {
		return fmt.Errorf("unpack %s: no snapshotter", img.ID)
	}
	chain := img.ChainIDs()
	missing := false
	for _, c := range chain {
		if !s.snaps.HasLayer(c) {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	unlock, err := s.ingestLock()
	if err != nil {
		return err
	}
	defer unlock()
	if len(img.Manifest.Layers) != len(chain) {
		return fmt.Errorf("unpack %s: manifest has %d layers, config %d", img.ID, len(img.Manifest.Layers), len(chain))
	}
	for i, c := range chain {
		if s.snaps.HasLayer(c) {
			continue
		}
		var parent digest.Digest
		if i > 0 {
			parent = chain[i-1]
		}
		if err := s.unpackBlob(img.Manifest.Layers[i], parent, img.DiffIDs()[i]); err != nil {
			return fmt.Errorf("unpack %s: %w", img.ID, err)
		}
	}
	return nil
}

// unpackBlob unpacks a stored (possibly compressed) layer blob, checking
// that its uncompressed content is diffID.
func (s *Store) unpackBlob(desc ocispec.Descriptor, parent, diffID digest.Digest) error {
	f, err := openBlob(s, desc.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	plain, _, err := archive.Decompress(f)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer plain.Close()
	lw, err := s.snaps.NewLayer()
	if err != nil {
		return err
	}
	defer lw.Abort()
	h := digest.Canonical.Digester()
	tee := io.TeeReader(plain, h.Hash())
	if _, err := lw.Apply(tee); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if h.Digest() != diffID {
		return fmt.Errorf("layer %s: uncompressed content is %s, config says %s", desc.Digest, h.Digest(), diffID)
	}
	return lw.Commit(chainID(parent, diffID))
}
