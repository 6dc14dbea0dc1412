package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ImageErr classifies an image store error for the API.
func ImageErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, image.ErrNotFound):
		return errdefs.As(errdefs.NotFound, err)
	case errors.Is(err, image.ErrConflict):
		return errdefs.As(errdefs.Conflict, err)
	case errors.Is(err, image.ErrInvalid):
		return errdefs.As(errdefs.InvalidParameter, err)
	}
	return err
}

// StoreImages adapts the image store to Images.
type StoreImages struct{ Store *image.Store }

// Resolve finds an image and makes sure its layers are unpacked.
func (s StoreImages) Resolve(ref string) (*Image, error) {
	img, err := s.Store.Get(ref)
	if err != nil {
		return nil, ImageErr(err)
	}
	if err := s.Store.EnsureUnpacked(img); err != nil {
		return nil, err
	}
	c := img.Config.Config
	return &Image{
		ID: img.ID.String(), Chain: img.ChainIDs(), RepoTags: img.RepoTags,
		Config: ocispec.ImageConfig{
			User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Entrypoint: c.Entrypoint,
			Cmd: c.Cmd, Volumes: c.Volumes, WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
		},
	}, nil
}

// SnapshotRootFS adapts the snapshotter to RootFS.
type SnapshotRootFS struct{ Snaps *snapshot.Snapshotter }

// Prepare mounts the container's root filesystem, idmapped when the
// container has a user namespace.
func (s SnapshotRootFS) Prepare(id string, chain []digest.Digest, uids, gids []specs.LinuxIDMapping, scratch bool) (string, error) {
	opts := &snapshot.PrepareOptions{Volatile: scratch}
	if len(uids) > 0 {
		opts.IDMap = &snapshot.IDMap{UIDs: uids, GIDs: gids}
	}
	rootfs, err := s.Snaps.Prepare(id, chain, opts)
	if err == nil && len(uids) > 0 {
		err = traversable(rootfs)
	}
	return rootfs, err
}

// traversable lets a user namespace's root (an unprivileged host uid)
// reach the rootfs: every directory above it needs search permission for
// others, as dockerd's remapped data root has.
func traversable(p string) error {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("make %s searchable for the remapped root: %w", d, err)
			}
		}
	}
	return nil
}

// Unmount unmounts it, keeping the writable layer.
func (s SnapshotRootFS) Unmount(id string) error { return s.Snaps.Unmount(id) }

// Remove deletes it.
func (s SnapshotRootFS) Remove(id string) error { return s.Snaps.Remove(id) }

// RemoveLater takes it away now and deletes its files when finish runs.
func (s SnapshotRootFS) RemoveLater(id string) (func() error, error) { return s.Snaps.RemoveLater(id) }

// PrepareAhead makes a spare root filesystem for the next Prepare alike.
func (s SnapshotRootFS) PrepareAhead(chain []digest.Digest, uids, gids []specs.LinuxIDMapping, scratch bool) error {
	opts := &snapshot.PrepareOptions{Volatile: scratch}
	if len(uids) > 0 {
		opts.IDMap = &snapshot.IDMap{UIDs: uids, GIDs: gids}
	}
	return s.Snaps.PrepareSpare(chain, opts)
}

// ImageUse tells the image store which containers use an image, so rmi
// and prune follow Docker's conflict rules.
func (e *Engine) ImageUse(id digest.Digest) image.ContainerUse {
	var u image.ContainerUse
	for _, c := range e.List() {
		c.mu.Lock()
		img, running := c.Image, c.State.Running()
		c.mu.Unlock()
		if img != id.String() {
			continue
		}
		if running {
			u.Running = append(u.Running, c.ID)
		} else {
			u.Stopped = append(u.Stopped, c.ID)
		}
	}
	return u
}
