package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// Spares: a container's root filesystem costs a handful of directories,
// a small file and an overlay mount (whose set-up probes the upper
// filesystem), metadata operations that wait on the journal when the disk
// is busy: milliseconds on the path of a container's start. The
// snapshotter can make one ahead (PrepareSpare), empty and mounted, under
// spares/; Prepare of a new container with the same layers and options
// takes it with one rename into containers/. Spares are nobody's
// containers (Containers and the layers' users skip them), a layer's
// removal drops those using it, DropSpares drops them all (a daemon that
// stops), and Open drops the ones a crash left.

// PrepareSpare makes a spare root filesystem for chain and opts, unless
// one is there already.
func (s *Snapshotter) PrepareSpare(chain []digest.Digest, opts *PrepareOptions) error {
	if opts == nil {
		opts = &PrepareOptions{}
	}
	if opts.IDMap != nil {
		if err := opts.IDMap.Validate(); err != nil {
			return err
		}
	}
	for _, c := range chain {
		if !s.HasLayer(c) {
			return fmt.Errorf("spare root filesystem: layer %s is not unpacked: %w", c, ErrNotFound)
		}
	}
	want := containerMeta{Chain: chain, IDMap: opts.IDMap, Volatile: opts.Volatile}
	s.mu.Lock()
	for _, sp := range s.spares {
		if sameSpare(&sp.meta, &want) {
			s.mu.Unlock()
			return nil
		}
	}
	s.mu.Unlock()
	// Made outside the lock (it is the slow part); a second spare for the
	// same layers, made meanwhile by another call, is dropped.
	dir := filepath.Join(s.root, "spares", randomName())
	if err := s.create(dir, &want); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("spare root filesystem: %w", err)
	}
	if err := s.mount(dir, &want); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("spare root filesystem: %w", err)
	}
	s.mu.Lock()
	for _, sp := range s.spares {
		if sameSpare(&sp.meta, &want) {
			s.mu.Unlock()
			dropDir(dir)
			return nil
		}
	}
	s.spares = append(s.spares, spare{dir: dir, meta: want})
	s.mu.Unlock()
	return nil
}

type spare struct {
	dir  string
	meta containerMeta
}

func sameSpare(a, b *containerMeta) bool {
	return a.Volatile == b.Volatile && sameMeta(a, b)
}

// takeSpare moves a spare for meta to dir (the new container's), if there
// is one; call with s.mu and the containers lock held.
func (s *Snapshotter) takeSpare(dir string, meta *containerMeta) bool {
	for i, sp := range s.spares {
		if !sameSpare(&sp.meta, meta) {
			continue
		}
		s.spares = append(s.spares[:i], s.spares[i+1:]...)
		if err := os.Rename(sp.dir, dir); err != nil {
			dropDir(sp.dir)
			return false
		}
		// Prepare mounts it again if someone unmounted it meanwhile.
		return true
	}
	return false
}

// dropSparesUsing drops the spares made of layer chainID; s.mu held.
func (s *Snapshotter) dropSparesUsing(chainID digest.Digest) {
	keep := s.spares[:0]
	for _, sp := range s.spares {
		uses := false
		for _, c := range sp.meta.Chain {
			uses = uses || c == chainID
		}
		if uses {
			dropDir(sp.dir)
		} else {
			keep = append(keep, sp)
		}
	}
	s.spares = keep
}

// DropSpares unmounts and deletes every spare root filesystem.
func (s *Snapshotter) DropSpares() error {
	s.mu.Lock()
	spares := s.spares
	s.spares = nil
	s.mu.Unlock()
	var errs []error
	for _, sp := range spares {
		errs = append(errs, dropDir(sp.dir))
	}
	// Those of an earlier process (a crash).
	ents, _ := os.ReadDir(filepath.Join(s.root, "spares"))
	for _, e := range ents {
		errs = append(errs, dropDir(filepath.Join(s.root, "spares", e.Name())))
	}
	return errors.Join(errs...)
}

func dropDir(dir string) error {
	if err := detachAll(filepath.Join(dir, "rootfs"), dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
