package image

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/snapshot"
)

// Annotations of index.json entries.
const (
	// AnnotationName holds the full normalized reference an entry names.
	AnnotationName = "io.containerd.image.name"
	// AnnotationTagTime is when the name was given (Docker's LastTagTime).
	AnnotationTagTime = "dev.berth.image.tagged"
)

// ContainerUse tells which containers use an image; the engine provides it
// through Store.InUse so rmi and prune follow Docker's conflict rules.
type ContainerUse struct {
	Running []string // IDs of running containers
	Stopped []string // IDs of created, exited or paused containers
}

// Store is the image store. Its methods are safe for concurrent use, also
// by several processes sharing the same root.
type Store struct {
	root  string
	snaps *snapshot.Snapshotter

	// InUse, when set, reports the containers that use an image (by ID).
	// Set it once, before the store is used concurrently.
	InUse func(id digest.Digest) ContainerUse

	mu    sync.Mutex
	blobs map[digest.Digest][]byte // immutable small blobs (manifests, configs)
}

// Open opens (creating if needed) the image store at root, unpacking
// layers into snaps (nil: keep blobs only, for tools and tests that never
// run a container). Leftovers of interrupted writes are removed when no
// other process is writing.
func Open(root string, snaps *snapshot.Snapshotter) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	s := &Store{root: root, snaps: snaps, blobs: map[digest.Digest][]byte{}}
	layout := filepath.Join(root, ocispec.ImageLayoutFile)
	if _, err := os.Stat(layout); os.IsNotExist(err) {
		b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := writeFileAtomic(layout, b); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	if _, err := os.Stat(s.indexPath()); os.IsNotExist(err) {
		if err := s.updateIndex(func(*ocispec.Index) error { return nil }); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	// Nobody ingests while we hold gc.lock exclusively: clean up.
	if unlock, err := flock(filepath.Join(root, "gc.lock"), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		ents, _ := os.ReadDir(filepath.Join(root, "ingest"))
		for _, e := range ents {
			os.RemoveAll(filepath.Join(root, "ingest", e.Name()))
		}
		unlock()
	}
	return s, nil
}

// Root is the directory the store owns.
func (s *Store) Root() string { return s.root }

// Snapshotter is where the store unpacks layers (may be nil).
func (s *Store) Snapshotter() *snapshot.Snapshotter { return s.snaps }

func (s *Store) indexPath() string { return filepath.Join(s.root, ocispec.ImageIndexFile) }

// BlobPath is the file holding a blob.
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

func flock(path string, how int) (func(), error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}

// ingestLock is held (shared) while blobs are written and referenced.
func (s *Store) ingestLock() (func(), error) {
	return flock(filepath.Join(s.root, "gc.lock"), unix.LOCK_SH)
}

func (s *Store) gcLock() (func(), error) {
	return flock(filepath.Join(s.root, "gc.lock"), unix.LOCK_EX)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%s", path, randomHex(6))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Store) readIndex() (*ocispec.Index, error) {
	b, err := os.ReadFile(s.indexPath())
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("read image index %s: %w", s.indexPath(), err)
	}
	return &idx, nil
}

// updateIndex applies fn to index.json under the index lock and writes the
// result atomically.
func (s *Store) updateIndex(fn func(*ocispec.Index) error) error {
	unlock, err := flock(filepath.Join(s.root, "index.lock"), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	idx := &ocispec.Index{Versioned: specsgo.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if _, err := os.Stat(s.indexPath()); err == nil {
		if idx, err = s.readIndex(); err != nil {
			return err
		}
	}
	if err := fn(idx); err != nil {
		return err
	}
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.indexPath(), b); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// readBlob returns a small blob (manifest, config), verified and cached.
func (s *Store) readBlob(d digest.Digest) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.blobs[d]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	b, err = io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s: content does not match its digest (corrupted store)", d)
	}
	s.mu.Lock()
	s.blobs[d] = b
	s.mu.Unlock()
	return b, nil
}

// hasBlob tells whether a complete blob of the given size is stored.
func (s *Store) hasBlob(d digest.Digest, size int64) bool {
	fi, err := os.Stat(s.BlobPath(d))
	return err == nil && (size < 0 || fi.Size() == size)
}

// blobWriter writes one blob into ingest/, hashing it, until commit moves
// it under blobs/ by digest. The caller holds the ingest lock.
type blobWriter struct {
	s    *Store
	f    *os.File
	h    digest.Digester
	n    int64
	sync bool
}

func (s *Store) newBlobWriter(sync bool) (*blobWriter, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "blob-")
	if err != nil {
		return nil, fmt.Errorf("write blob: %w", err)
	}
	return &blobWriter{s: s, f: f, h: digest.Canonical.Digester(), sync: sync}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Hash().Write(p[:n])
	w.n += int64(n)
	return n, err
}

func (w *blobWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// commit publishes the blob; with want set, a different digest is an error.
func (w *blobWriter) commit(want digest.Digest) (digest.Digest, int64, error) {
	d := w.h.Digest()
	if want != "" && want != d {
		w.abort()
		return "", 0, fmt.Errorf("blob digest mismatch: content is %s, expected %s", d, want)
	}
	if w.sync {
		if err := w.f.Sync(); err != nil {
			w.abort()
			return "", 0, fmt.Errorf("write blob %s: %w", d, err)
		}
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.f.Name())
		return "", 0, fmt.Errorf("write blob %s: %w", d, err)
	}
	if w.s.hasBlob(d, w.n) {
		os.Remove(w.f.Name())
		return d, w.n, nil
	}
	if err := os.Rename(w.f.Name(), w.s.BlobPath(d)); err != nil {
		os.Remove(w.f.Name())
		return "", 0, fmt.Errorf("write blob %s: %w", d, err)
	}
	return d, w.n, nil
}

// writeBlob stores a small blob durably.
func (s *Store) writeBlob(b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if s.hasBlob(d, int64(len(b))) {
		return d, nil
	}
	w, err := s.newBlobWriter(true)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(b); err != nil {
		w.abort()
		return "", fmt.Errorf("write blob: %w", err)
	}
	_, _, err = w.commit(d)
	return d, err
}

// Image is one image of the store.
type Image struct {
	ID          digest.Digest // digest of the config blob
	RepoTags    []string      // familiar form: busybox:latest
	RepoDigests []string      // familiar form: busybox@sha256:…
	Created     time.Time
	// Size is the bytes of file content of all layers (Docker's Size).
	Size        int64
	LastTagTime time.Time
	Config      dockerspec.DockerOCIImage
	Manifest    ocispec.Manifest
	// ManifestDescriptor is the stored manifest.
	ManifestDescriptor ocispec.Descriptor
	names              []string // full normalized names (tags and digests)
}

// ShortID is the 12-hex-digit form `docker images` prints.
func (img *Image) ShortID() string { return img.ID.Encoded()[:12] }

// DiffIDs are the digests of the uncompressed layers, bottom first.
func (img *Image) DiffIDs() []digest.Digest { return img.Config.RootFS.DiffIDs }

// ChainIDs identify each layer with everything below it (OCI image spec
// ChainID), bottom first: the keys of the unpacked layers, for
// snapshot.Prepare.
func (img *Image) ChainIDs() []digest.Digest { return ChainIDs(img.DiffIDs()) }

// ChainIDs computes chain IDs from diff IDs.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
		} else {
			out[i] = digest.FromString(out[i-1].String() + " " + d.String())
		}
	}
	return out
}

// Names are the full normalized references of the image.
func (img *Image) Names() []string { return append([]string(nil), img.names...) }

// load reads every image named in the index.
func (s *Store) load() (map[digest.Digest]*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	images := map[digest.Digest]*Image{}
	for _, desc := range idx.Manifests {
		img, err := s.imageFromManifest(desc, images)
		if err != nil {
			return nil, err
		}
		name := desc.Annotations[AnnotationName]
		if name == "" {
			continue
		}
		img.names = append(img.names, name)
		if t, err := time.Parse(time.RFC3339Nano, desc.Annotations[AnnotationTagTime]); err == nil && t.After(img.LastTagTime) {
			img.LastTagTime = t
		}
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			continue
		}
		if _, ok := named.(reference.Digested); ok {
			img.RepoDigests = append(img.RepoDigests, reference.FamiliarString(named))
		} else {
			img.RepoTags = append(img.RepoTags, reference.FamiliarString(named))
		}
	}
	for _, img := range images {
		sort.Strings(img.RepoTags)
		sort.Strings(img.RepoDigests)
	}
	return images, nil
}

func (s *Store) imageFromManifest(desc ocispec.Descriptor, images map[digest.Digest]*Image) (*Image, error) {
	mb, err := s.readBlob(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("image manifest %s: %w", desc.Digest, err)
	}
	if img, ok := images[m.Config.Digest]; ok {
		return img, nil
	}
	cb, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	img := &Image{ID: m.Config.Digest, Manifest: m, ManifestDescriptor: ocispec.Descriptor{
		MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}}
	if err := json.Unmarshal(cb, &img.Config); err != nil {
		return nil, fmt.Errorf("image config %s: %w", m.Config.Digest, err)
	}
	if img.Config.Created != nil {
		img.Created = *img.Config.Created
	}
	for i, c := range img.ChainIDs() {
		if s.snaps != nil {
			if n, err := s.snaps.LayerSize(c); err == nil {
				img.Size += n
				continue
			}
		}
		if i < len(m.Layers) {
			img.Size += m.Layers[i].Size
		}
	}
	images[img.ID] = img
	return img, nil
}

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	images, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(images))
	for _, img := range images {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Get finds an image by name (busybox, busybox:latest,
// docker.io/library/busybox@sha256:…), by full ID or by a unique ID prefix
// (with or without "sha256:"), in Docker's order.
func (s *Store) Get(nameOrID string) (*Image, error) {
	images, err := s.load()
	if err != nil {
		return nil, err
	}
	return resolve(images, nameOrID)
}

func resolve(images map[digest.Digest]*Image, nameOrID string) (*Image, error) {
	if id, ok := fullID(nameOrID); ok {
		if img, ok := images[id]; ok {
			return img, nil
		}
		return nil, notFound{nameOrID}
	}
	if named, err := ParseReference(nameOrID); err == nil {
		full := named.String()
		for _, img := range images {
			for _, n := range img.names {
				if n == full {
					return img, nil
				}
			}
		}
	}
	if looksLikeID(nameOrID) {
		prefix := strings.TrimPrefix(nameOrID, "sha256:")
		var found *Image
		for id, img := range images {
			if strings.HasPrefix(id.Encoded(), prefix) {
				if found != nil {
					return nil, fmt.Errorf("short ID %s is ambiguous: %w", nameOrID, ErrInvalid)
				}
				found = img
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, notFound{nameOrID}
}

// Tag gives the image source (a name or an ID) the name target.
func (s *Store) Tag(source, target string) error {
	ref, err := ParseTagReference(target)
	if err != nil {
		return err
	}
	img, err := s.Get(source)
	if err != nil {
		return err
	}
	return s.setName(img.ManifestDescriptor, ref.String())
}

// setName points name at the manifest, replacing what it named before and
// the image's dangling entry. An image the name leaves with no other entry
// stays, dangling (dockerd's <none>:<none>, for image prune), never lost.
func (s *Store) setName(manifest ocispec.Descriptor, name string) error {
	return s.updateIndex(func(idx *ocispec.Index) error {
		out := idx.Manifests[:0]
		var left []ocispec.Descriptor
		for _, d := range idx.Manifests {
			n := d.Annotations[AnnotationName]
			if n == name || (n == "" && d.Digest == manifest.Digest) {
				if n == name && d.Digest != manifest.Digest {
					left = append(left, d)
				}
				continue
			}
			out = append(out, d)
		}
		for _, d := range left {
			if !slices.ContainsFunc(out, func(o ocispec.Descriptor) bool { return o.Digest == d.Digest }) {
				out = append(out, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
			}
		}
		desc := ocispec.Descriptor{MediaType: manifest.MediaType, Digest: manifest.Digest, Size: manifest.Size,
			Annotations: map[string]string{AnnotationName: name, AnnotationTagTime: time.Now().UTC().Format(time.RFC3339Nano)}}
		if named, err := reference.ParseNormalizedNamed(name); err == nil {
			if t, ok := named.(reference.Tagged); ok {
				desc.Annotations[ocispec.AnnotationRefName] = t.Tag()
			}
		}
		idx.Manifests = append(out, desc)
		return nil
	})
}

// addDangling records an image without a name (if it has no entry yet).
func (s *Store) addDangling(manifest ocispec.Descriptor) error {
	return s.updateIndex(func(idx *ocispec.Index) error {
		for _, d := range idx.Manifests {
			if d.Digest == manifest.Digest {
				return nil
			}
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: manifest.MediaType, Digest: manifest.Digest, Size: manifest.Size})
		return nil
	})
}
