package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/archive"
)

// Limits on what Load accepts from an archive.
const (
	maxMetadataSize = 16 << 20 // manifest.json, index.json, configs, manifests
	maxArchiveFiles = 10000
	maxSymlinkDepth = 16
)

// Docker's distribution media types, accepted alongside OCI's.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// DockerManifest is one entry of a docker-archive's manifest.json.
type DockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ParseDockerManifest parses and checks a docker-archive manifest.json.
func ParseDockerManifest(b []byte) ([]DockerManifest, error) {
	var ms []DockerManifest
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("manifest.json lists no image")
	}
	for i, m := range ms {
		if m.Config == "" {
			return nil, fmt.Errorf("manifest.json entry %d has no Config", i)
		}
		for _, p := range append([]string{m.Config}, m.Layers...) {
			if _, err := archive.CleanName(p); err != nil {
				return nil, fmt.Errorf("manifest.json entry %d: %w", i, err)
			}
		}
		for _, t := range m.RepoTags {
			if _, err := ParseTagReference(t); err != nil {
				return nil, fmt.Errorf("manifest.json entry %d: %w", i, err)
			}
		}
	}
	return ms, nil
}

// LoadedImage is one image Load brought in.
type LoadedImage struct {
	ID   digest.Digest
	Tags []string // familiar form
}

// pending is a file of the archive written into ingest/, not yet a blob.
type pending struct {
	tmp    string // file in ingest/, "" once committed
	digest digest.Digest
	size   int64
}

type loader struct {
	s        *Store
	files    map[string]*pending
	links    map[string]string // symlinks and hard links: name → target (clean)
	meta     map[string][]byte // top-level metadata files
	nFiles   int
	progress io.Writer
}

// Load reads a docker-archive (what `docker save` writes) or an OCI image
// layout tarball, possibly compressed, stores its images and unpacks their
// layers. It verifies every layer against the config's diff IDs (and every
// OCI blob against its digest), and writes Docker's "Loaded image: …" lines
// to progress. A bad archive is refused whole: no image of it is named.
func (s *Store) Load(r io.Reader, progress io.Writer) ([]LoadedImage, error) {
	if progress == nil {
		progress = io.Discard
	}
	unlock, err := s.ingestLock()
	if err != nil {
		return nil, err
	}
	l := &loader{s: s, files: map[string]*pending{}, links: map[string]string{}, meta: map[string][]byte{}, progress: progress}
	loaded, err := l.run(r)
	for _, p := range l.files {
		if p.tmp != "" {
			os.Remove(p.tmp)
		}
	}
	unlock()
	if err != nil {
		s.gc() // drop layers unpacked for images that were never named
		return nil, fmt.Errorf("load: %w", err)
	}
	return loaded, nil
}

func (l *loader) run(r io.Reader) ([]LoadedImage, error) {
	plain, _, err := archive.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	defer plain.Close()
	tr := tar.NewReader(plain)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w: %w", err, ErrInvalid)
		}
		if err := l.entry(tr, hdr); err != nil {
			return nil, fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
	if b, ok := l.meta["manifest.json"]; ok {
		return l.dockerArchive(b)
	}
	if _, ok := l.meta["index.json"]; ok {
		return l.ociLayout()
	}
	return nil, fmt.Errorf("neither manifest.json nor index.json found: not a docker-archive or OCI layout: %w", ErrInvalid)
}

func (l *loader) entry(tr *tar.Reader, hdr *tar.Header) error {
	name, err := archive.CleanName(hdr.Name)
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeXGlobalHeader:
		return nil
	case tar.TypeSymlink, tar.TypeLink:
		target := hdr.Linkname
		if hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(target) {
			target = path.Join(path.Dir(name), target)
		}
		t, err := archive.CleanName(target)
		if err != nil {
			return fmt.Errorf("link target: %w: %w", err, ErrInvalid)
		}
		l.links[name] = t
		return nil
	case tar.TypeReg, tar.TypeRegA:
	default:
		return nil // devices, fifos: not part of an image archive
	}
	switch name {
	case "manifest.json", "index.json", "oci-layout", "repositories":
		if hdr.Size > maxMetadataSize {
			return fmt.Errorf("%d bytes is too large for %s: %w", hdr.Size, name, ErrInvalid)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxMetadataSize))
		if err != nil {
			return err
		}
		l.meta[name] = b
		return nil
	}
	if l.nFiles++; l.nFiles > maxArchiveFiles {
		return fmt.Errorf("more than %d files: %w", maxArchiveFiles, ErrInvalid)
	}
	bw, err := l.s.newBlobWriter(false)
	if err != nil {
		return err
	}
	if _, err := io.Copy(bw, tr); err != nil {
		bw.abort()
		return fmt.Errorf("read: %w", err)
	}
	if err := bw.f.Close(); err != nil {
		os.Remove(bw.f.Name())
		return err
	}
	if old := l.files[name]; old != nil && old.tmp != "" {
		os.Remove(old.tmp)
	}
	l.files[name] = &pending{tmp: bw.f.Name(), digest: bw.h.Digest(), size: bw.n}
	return nil
}

// file returns the archive file called name, following links.
func (l *loader) file(name string) (*pending, error) {
	n, err := archive.CleanName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	for range maxSymlinkDepth {
		if p, ok := l.files[n]; ok {
			return p, nil
		}
		t, ok := l.links[n]
		if !ok {
			return nil, fmt.Errorf("%s is missing from the archive: %w", name, ErrInvalid)
		}
		n = t
	}
	return nil, fmt.Errorf("%s: too many levels of links: %w", name, ErrInvalid)
}

// commit turns an archive file into a blob (idempotent).
func (l *loader) commit(p *pending) error {
	if p.tmp == "" {
		return nil
	}
	tmp := p.tmp
	p.tmp = ""
	if l.s.hasBlob(p.digest, p.size) {
		os.Remove(tmp)
		return nil
	}
	if err := os.Rename(tmp, l.s.BlobPath(p.digest)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store blob %s: %w", p.digest, err)
	}
	return nil
}

// small reads a metadata file of the archive (config, manifest) into memory.
func (l *loader) small(p *pending) ([]byte, error) {
	if p.size > maxMetadataSize {
		return nil, fmt.Errorf("%d bytes is too large for a config or manifest: %w", p.size, ErrInvalid)
	}
	if p.tmp == "" {
		return l.s.readBlob(p.digest)
	}
	return readAllAt(p.tmp, p.size)
}

func (l *loader) dockerArchive(b []byte) ([]LoadedImage, error) {
	ms, err := ParseDockerManifest(b)
	if err != nil {
		return nil, invalid(err)
	}
	var out []LoadedImage
	for _, m := range ms {
		cp, err := l.file(m.Config)
		if err != nil {
			return nil, err
		}
		var layers []*pending
		for _, lp := range m.Layers {
			p, err := l.file(lp)
			if err != nil {
				return nil, err
			}
			layers = append(layers, p)
		}
		img, err := l.image(cp, layers, nil)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", m.Config, err)
		}
		var names []string
		for _, t := range m.RepoTags {
			ref, _ := ParseTagReference(t)
			names = append(names, ref.String())
		}
		li, err := l.name(img, names)
		if err != nil {
			return nil, err
		}
		out = append(out, li)
	}
	return out, nil
}

// loadedImage is an image whose blobs are stored and layers unpacked.
type loadedImage struct {
	manifest ocispec.Descriptor
	id       digest.Digest
}

// image stores config and layers and writes a manifest for them. With
// ociManifest set (OCI layout), that manifest is kept as it is.
func (l *loader) image(cp *pending, layers []*pending, ociManifest *pending) (*loadedImage, error) {
	cb, err := l.small(cp)
	if err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, fmt.Errorf("image config: %w: %w", err, ErrInvalid)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(layers) {
		return nil, fmt.Errorf("config lists %d layers, archive %d: %w", len(diffIDs), len(layers), ErrInvalid)
	}
	for _, d := range diffIDs {
		if d.Validate() != nil {
			return nil, fmt.Errorf("config has a bad diff ID %q: %w", d, ErrInvalid)
		}
	}
	if err := l.commit(cp); err != nil {
		return nil, err
	}
	chain := ChainIDs(diffIDs)
	var descs []ocispec.Descriptor
	for i, p := range layers {
		if err := l.commit(p); err != nil {
			return nil, err
		}
		mt := ocispec.MediaTypeImageLayer
		if c, err := l.s.blobCompression(p.digest); err == nil && c != archive.Uncompressed {
			mt = ocispec.MediaTypeImageLayerGzip
			if c == archive.Zstd {
				mt = ocispec.MediaTypeImageLayerZstd
			}
		}
		descs = append(descs, ocispec.Descriptor{MediaType: mt, Digest: p.digest, Size: p.size})
		if l.s.snaps != nil && !l.s.snaps.HasLayer(chain[i]) {
			var parent digest.Digest
			if i > 0 {
				parent = chain[i-1]
			}
			if err := l.s.unpackBlob(descs[i], parent, diffIDs[i]); err != nil {
				return nil, invalid(err)
			}
		}
	}
	if ociManifest != nil {
		if err := l.commit(ociManifest); err != nil {
			return nil, err
		}
		return &loadedImage{id: cp.digest, manifest: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: ociManifest.digest, Size: ociManifest.size}}, nil
	}
	desc, err := l.s.writeManifest(cp.digest, int64(len(cb)), descs)
	if err != nil {
		return nil, err
	}
	return &loadedImage{id: cp.digest, manifest: desc}, nil
}

func (l *loader) name(img *loadedImage, names []string) (LoadedImage, error) {
	li := LoadedImage{ID: img.id}
	if len(names) == 0 {
		if err := l.s.addDangling(img.manifest); err != nil {
			return li, err
		}
		fmt.Fprintf(l.progress, "Loaded image ID: %s\n", img.id)
		return li, nil
	}
	for _, n := range names {
		if err := l.s.setName(img.manifest, n); err != nil {
			return li, err
		}
		li.Tags = append(li.Tags, Familiar(n))
		fmt.Fprintf(l.progress, "Loaded image: %s\n", Familiar(n))
	}
	return li, nil
}

func (l *loader) ociLayout() ([]LoadedImage, error) {
	var layout ocispec.ImageLayout
	if b, ok := l.meta["oci-layout"]; ok {
		if err := json.Unmarshal(b, &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("oci-layout: unsupported version %q: %w", layout.Version, ErrInvalid)
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(l.meta["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w: %w", err, ErrInvalid)
	}
	var out []LoadedImage
	for _, d := range idx.Manifests {
		li, err := l.ociDescriptor(d, 0)
		if err != nil {
			return nil, err
		}
		if li != nil {
			out = append(out, *li)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("index.json has no image for linux/%s: %w", runtime.GOARCH, ErrInvalid)
	}
	return out, nil
}

// blob returns the OCI layout blob of a descriptor, checking its digest
// and size.
func (l *loader) blob(d ocispec.Descriptor) (*pending, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("descriptor digest %q: %w", d.Digest, ErrInvalid)
	}
	p, err := l.file(path.Join("blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		return nil, err
	}
	if p.digest != d.Digest || (d.Size > 0 && p.size != d.Size) {
		return nil, fmt.Errorf("blob %s: content is %s (%d bytes), descriptor says %s (%d bytes): %w", d.Digest, p.digest, p.size, d.Digest, d.Size, ErrInvalid)
	}
	return p, nil
}

func (l *loader) ociDescriptor(d ocispec.Descriptor, depth int) (*LoadedImage, error) {
	if depth > 4 {
		return nil, fmt.Errorf("indexes nested too deep: %w", ErrInvalid)
	}
	p, err := l.blob(d)
	if err != nil {
		return nil, err
	}
	b, err := l.small(p)
	if err != nil {
		return nil, err
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("index %s: %w: %w", d.Digest, err, ErrInvalid)
		}
		for _, m := range idx.Manifests {
			if m.Platform != nil && (m.Platform.OS != "linux" || m.Platform.Architecture != runtime.GOARCH) {
				continue
			}
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			for _, k := range []string{AnnotationName, ocispec.AnnotationRefName} {
				if v := d.Annotations[k]; v != "" && m.Annotations[k] == "" {
					m.Annotations[k] = v
				}
			}
			return l.ociDescriptor(m, depth+1)
		}
		return nil, nil
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
	default:
		return nil, nil // not an image (e.g. an attestation)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %w", d.Digest, err, ErrInvalid)
	}
	cp, err := l.blob(m.Config)
	if err != nil {
		return nil, err
	}
	var layers []*pending
	for _, ld := range m.Layers {
		lp, err := l.blob(ld)
		if err != nil {
			return nil, err
		}
		layers = append(layers, lp)
	}
	img, err := l.image(cp, layers, p)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", d.Digest, err)
	}
	img.manifest.MediaType = d.MediaType
	var names []string
	if n := d.Annotations[AnnotationName]; n != "" {
		ref, err := ParseTagReference(n)
		if err != nil {
			return nil, err
		}
		names = append(names, ref.String())
	} else if n := d.Annotations[ocispec.AnnotationRefName]; n != "" && strings.ContainsAny(n, "/:") {
		if ref, err := ParseTagReference(n); err == nil {
			names = append(names, ref.String())
		}
	}
	li, err := l.name(img, names)
	return &li, err
}

// invalid marks err as the caller's bad input (once).
func invalid(err error) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", err, ErrInvalid)
}
