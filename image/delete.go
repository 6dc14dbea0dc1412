package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DeleteResponse is one line of `docker rmi`'s answer (the API's
// ImageDeleteResponseItem).
type DeleteResponse struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// conflict kinds, as dockerd distinguishes them: hard ones cannot be
// forced.
type conflictKind int

const (
	conflictRunningContainer conflictKind = 1 << iota
	conflictActiveReference
	conflictStoppedContainer
	conflictHard = conflictRunningContainer
	conflictSoft = conflictActiveReference | conflictStoppedContainer
)

type conflictError struct {
	id     digest.Digest
	reason string
	hard   bool
	used   bool
}

func (e *conflictError) Error() string {
	how := "must be forced"
	if e.hard {
		how = "cannot be forced"
	}
	return fmt.Sprintf("conflict: unable to delete %s (%s) - %s", e.id.Encoded()[:12], how, e.reason)
}

func (e *conflictError) Unwrap() error { return ErrConflict }

func (s *Store) use(id digest.Digest) ContainerUse {
	if s.InUse == nil {
		return ContainerUse{}
	}
	return s.InUse(id)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (s *Store) checkConflict(img *Image, mask conflictKind) *conflictError {
	u := s.use(img.ID)
	if mask&conflictRunningContainer != 0 && len(u.Running) > 0 {
		return &conflictError{id: img.ID, hard: true, used: true, reason: "image is being used by running container " + short(u.Running[0])}
	}
	if mask&conflictActiveReference != 0 && len(img.names) > 0 {
		return &conflictError{id: img.ID, reason: "image is referenced in multiple repositories"}
	}
	if mask&conflictStoppedContainer != 0 && len(u.Stopped) > 0 {
		return &conflictError{id: img.ID, used: true, reason: "image is being used by stopped container " + short(u.Stopped[0])}
	}
	return nil
}

// Delete removes a name of an image, or an image, with `docker rmi`'s
// rules: removing the last name deletes the image unless a container uses
// it; deleting by ID removes all names when they are in one repository;
// force overrides references and stopped containers, never a running one.
// prune is accepted for API compatibility (images here have no parents).
func (s *Store) Delete(nameOrID string, force, prune bool) ([]DeleteResponse, error) {
	images, err := s.load()
	if err != nil {
		return nil, err
	}
	img, err := resolve(images, nameOrID)
	if err != nil {
		return nil, err
	}
	var out []DeleteResponse
	removedName := false
	if !isIDPrefix(img.ID, nameOrID) {
		named, err := ParseReference(nameOrID)
		if err != nil {
			return nil, err
		}
		u := s.use(img.ID)
		if !force && len(img.names) == 1 && len(u.Running)+len(u.Stopped) > 0 {
			c := append(u.Running, u.Stopped...)[0]
			return nil, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w",
				nameOrID, short(c), img.ShortID(), ErrConflict)
		}
		remove := []string{named.String()}
		// Removing the last tag of a repository also removes its digests.
		if _, isDigest := named.(reference.Digested); !isDigest {
			tagLeft := false
			for _, n := range img.names {
				other, err := reference.ParseNormalizedNamed(n)
				if err != nil || n == named.String() {
					continue
				}
				if _, d := other.(reference.Digested); !d && other.Name() == named.Name() {
					tagLeft = true
				}
			}
			if !tagLeft {
				for _, n := range img.names {
					other, err := reference.ParseNormalizedNamed(n)
					if err == nil && other.Name() == named.Name() && n != named.String() {
						if _, d := other.(reference.Digested); d {
							remove = append(remove, n)
						}
					}
				}
			}
		}
		if err := s.removeNames(img, remove); err != nil {
			return nil, err
		}
		for _, n := range remove {
			out = append(out, DeleteResponse{Untagged: Familiar(n)})
		}
		if len(img.names) > 0 {
			return out, nil
		}
		removedName = true
	} else if singleRepository(img.names) {
		mask := conflictHard
		if !force {
			mask |= conflictSoft &^ conflictActiveReference
		}
		if c := s.checkConflict(img, mask); c != nil {
			return nil, c
		}
		all := append([]string(nil), img.names...)
		if err := s.removeNames(img, all); err != nil {
			return nil, err
		}
		for _, n := range all {
			out = append(out, DeleteResponse{Untagged: Familiar(n)})
		}
	}
	mask := conflictHard
	if !force {
		mask |= conflictSoft
	}
	if c := s.checkConflict(img, mask); c != nil {
		if removedName && (len(img.names) > 0 || c.used) {
			// The name is gone; the image stays for its containers.
			return out, s.addDangling(img.ManifestDescriptor)
		}
		return out, c
	}
	if len(img.names) > 0 {
		all := append([]string(nil), img.names...)
		if err := s.removeNames(img, all); err != nil {
			return nil, err
		}
		for _, n := range all {
			out = append(out, DeleteResponse{Untagged: Familiar(n)})
		}
	}
	if err := s.removeImageEntries(img); err != nil {
		return out, err
	}
	out = append(out, DeleteResponse{Deleted: img.ID.String()})
	layers, err := s.gc()
	for _, l := range layers {
		out = append(out, DeleteResponse{Deleted: l.String()})
	}
	return out, err
}

func isIDPrefix(id digest.Digest, s string) bool {
	if !looksLikeID(s) {
		return false
	}
	return strings.HasPrefix(id.Encoded(), strings.TrimPrefix(s, "sha256:"))
}

func singleRepository(names []string) bool {
	repo, tags := "", 0
	for _, n := range names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			return false
		}
		if repo != "" && named.Name() != repo {
			return false
		}
		repo = named.Name()
		if _, d := named.(reference.Digested); !d {
			tags++
		}
	}
	return tags <= 1
}

// removeNames drops names of img from the index (and from img.names).
func (s *Store) removeNames(img *Image, names []string) error {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	err := s.updateIndex(func(idx *ocispec.Index) error {
		out := idx.Manifests[:0]
		for _, d := range idx.Manifests {
			if !drop[d.Annotations[AnnotationName]] {
				out = append(out, d)
			}
		}
		idx.Manifests = out
		return nil
	})
	if err != nil {
		return err
	}
	keep := img.names[:0]
	for _, n := range img.names {
		if !drop[n] {
			keep = append(keep, n)
		}
	}
	img.names = keep
	return nil
}

// removeImageEntries drops every index entry whose manifest has img's config.
func (s *Store) removeImageEntries(img *Image) error {
	return s.updateIndex(func(idx *ocispec.Index) error {
		out := idx.Manifests[:0]
		for _, d := range idx.Manifests {
			if d.Digest == img.ManifestDescriptor.Digest {
				continue
			}
			if im, err := s.imageFromManifest(d, map[digest.Digest]*Image{}); err == nil && im.ID == img.ID {
				continue
			}
			out = append(out, d)
		}
		idx.Manifests = out
		return nil
	})
}

// gc deletes blobs no image references and unpacked layers no image
// needs (and no container uses), returning the chain IDs of removed layers.
func (s *Store) gc() ([]digest.Digest, error) {
	unlock, err := s.gcLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	images, err := s.load()
	if err != nil {
		return nil, err
	}
	keepBlobs := map[string]bool{}
	keepLayers := map[digest.Digest]bool{}
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	for _, d := range idx.Manifests {
		keepBlobs[d.Digest.Encoded()] = true
	}
	for _, img := range images {
		keepBlobs[img.ManifestDescriptor.Digest.Encoded()] = true
		keepBlobs[img.ID.Encoded()] = true
		for _, l := range img.Manifest.Layers {
			keepBlobs[l.Digest.Encoded()] = true
		}
		for _, c := range img.ChainIDs() {
			keepLayers[c] = true
		}
	}
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !keepBlobs[e.Name()] {
			os.Remove(filepath.Join(dir, e.Name()))
			s.mu.Lock()
			delete(s.blobs, digest.NewDigestFromEncoded(digest.SHA256, e.Name()))
			s.mu.Unlock()
		}
	}
	var removed []digest.Digest
	if s.snaps != nil {
		layers, err := s.snaps.Layers()
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			if keepLayers[l] {
				continue
			}
			if err := s.snaps.RemoveLayer(l); err == nil {
				removed = append(removed, l)
			}
		}
	}
	return removed, nil
}

// PruneOptions select what Prune removes (`docker image prune` filters).
type PruneOptions struct {
	All       bool      // also tagged images no container uses
	Until     time.Time // only images created before (zero: any)
	Labels    []string  // label=key or label=key=value, all must match
	NotLabels []string  // label!=…, none may match
}

// Prune deletes dangling images (with All, every image) that no container
// uses, and returns what was deleted and the bytes reclaimed.
func (s *Store) Prune(opts PruneOptions) ([]DeleteResponse, int64, error) {
	list, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var out []DeleteResponse
	var reclaimed int64
	for _, img := range list {
		if len(img.RepoTags) > 0 && !opts.All {
			continue
		}
		if !opts.Until.IsZero() && !img.Created.Before(opts.Until) {
			continue
		}
		if !labelsMatch(img.Config.Config.Labels, opts.Labels, opts.NotLabels) {
			continue
		}
		u := s.use(img.ID)
		if len(u.Running)+len(u.Stopped) > 0 {
			continue
		}
		if err := s.removeImageEntries(img); err != nil {
			return out, reclaimed, err
		}
		for _, n := range img.names {
			out = append(out, DeleteResponse{Untagged: Familiar(n)})
		}
		out = append(out, DeleteResponse{Deleted: img.ID.String()})
		reclaimed += img.Size
	}
	layers, err := s.gc()
	for _, l := range layers {
		out = append(out, DeleteResponse{Deleted: l.String()})
	}
	return out, reclaimed, err
}

func labelsMatch(labels map[string]string, want, not []string) bool {
	has := func(f string) bool {
		k, v, withValue := strings.Cut(f, "=")
		got, ok := labels[k]
		return ok && (!withValue || got == v)
	}
	for _, f := range want {
		if !has(f) {
			return false
		}
	}
	for _, f := range not {
		if has(f) {
			return false
		}
	}
	return true
}

// HistoryEntry is one line of `docker history` (the API's HistoryResponseItem).
type HistoryEntry struct {
	ID        string // the image ID on the newest entry, "<missing>" below
	Created   time.Time
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// History lists the image's history, newest first, with each layer's size
// on the entry that made it.
func (s *Store) History(nameOrID string) ([]HistoryEntry, error) {
	img, err := s.Get(nameOrID)
	if err != nil {
		return nil, err
	}
	chain := img.ChainIDs()
	var out []HistoryEntry
	layer := 0
	for _, h := range img.Config.History {
		e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(chain) {
			if s.snaps != nil {
				e.Size, _ = s.snaps.LayerSize(chain[layer])
			} else if layer < len(img.Manifest.Layers) {
				e.Size = img.Manifest.Layers[layer].Size
			}
			layer++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = img.RepoTags
	}
	return out, nil
}
