package engine

import (
	"archive/tar"
	"fmt"
	"io"
	"path"

	"github.com/berth-dev/berth/engine/ctrfs"
	"github.com/berth-dev/berth/engine/errdefs"
	"github.com/docker/docker/api/types/container"
)

// withRootfs runs f with the container's root filesystem mounted (it is
// while the container runs; a stopped one is mounted for the call), under
// the container's operation lock so a start cannot race the unmount.
func (e *Engine) withRootfs(c *Container, f func(rootfs string) error) error {
	return e.withRootfsFor(c, false, f)
}

// withRootfsFor is withRootfs; write says f changes the files (a start
// made ahead, which read the image's users, is undone).
func (e *Engine) withRootfsFor(c *Container, write bool, f func(rootfs string) error) error {
	c.op.Lock()
	defer c.op.Unlock()
	if write {
		e.unprepare(c)
	}
	c.mu.Lock()
	s := c.snapshot()
	removed := c.removed
	c.mu.Unlock()
	if removed {
		return errdefs.NotFoundf("No such container: %s", c.ID)
	}
	rootfs, err := e.opts.RootFS.Prepare(c.ID, s.ImageChain, s.UIDMaps, s.GIDMaps, s.HostConfig.AutoRemove)
	if err != nil {
		return fmt.Errorf("mount the root filesystem of %s: %w", c.ID[:12], err)
	}
	if !s.State.Running() {
		defer e.opts.RootFS.Unmount(c.ID)
	}
	return f(rootfs)
}

// ctrMounts says where c's /etc files and bind mounts live on the host.
func ctrMounts(c *Container) ctrfs.Mounts {
	return ctrfs.Mounts{HostnamePath: c.HostnamePath, HostsPath: c.HostsPath, ResolvPath: c.ResolvPath,
		Binds: c.HostConfig.Binds}
}

// ArchiveStat is HEAD /containers/{id}/archive.
func (e *Engine) ArchiveStat(ref, p string) (container.PathStat, error) {
	c, err := e.Get(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	if p == "" {
		return container.PathStat{}, errdefs.InvalidParameterf("path is required")
	}
	var st container.PathStat
	err = e.withRootfs(c, func(rootfs string) error {
		root, rel := ctrfs.HostRoot(ctrMounts(c), rootfs, p)
		st, err = ctrfs.Stat(root, rel, p)
		return err
	})
	return st, err
}

// ArchiveGet is GET /containers/{id}/archive: a tar of p whose entries
// are rooted at p's base name. start is called once the stat is known,
// and returns where to write.
func (e *Engine) ArchiveGet(ref, p string, start func(container.PathStat) io.Writer, started func() bool) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.InvalidParameterf("path is required")
	}
	return e.withRootfs(c, func(rootfs string) error {
		root, rel := ctrfs.HostRoot(ctrMounts(c), rootfs, p)
		st, err := ctrfs.Stat(root, rel, p)
		if err != nil {
			return err
		}
		// A trailing "/." or a symlink: follow it, as docker cp does.
		w := start(st)
		tw := tar.NewWriter(w)
		name := st.Name
		if err := ctrfs.WriteTree(tw, root, path.Clean("/"+rel), name); err != nil {
			return nil // the status line is out; the stream just ends
		}
		tw.Close()
		return nil
	})
}

// Export is GET /containers/{id}/export: the container's filesystem.
func (e *Engine) Export(ref string, w io.Writer) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	return e.withRootfs(c, func(rootfs string) error {
		tw := tar.NewWriter(w)
		if err := ctrfs.WriteTree(tw, rootfs, "/", "."); err != nil {
			return err
		}
		return tw.Close()
	})
}

// ArchivePut is PUT /containers/{id}/archive: unpack a tar into the
// directory p. Entries can never land outside the container (tar-slip,
// absolute names, symlinks in the stream or in the container are resolved
// inside its root). Without copyUIDGID files belong to container root.
func (e *Engine) ArchivePut(ref, p string, body io.Reader, noOverwriteDirNonDir, copyUIDGID bool) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.InvalidParameterf("path is required")
	}
	c.mu.Lock()
	ro := c.HostConfig.ReadonlyRootfs
	uids, gids := c.UIDMaps, c.GIDMaps
	c.mu.Unlock()
	if ro {
		return errdefs.Forbiddenf("container rootfs is marked read-only")
	}
	return e.withRootfsFor(c, true, func(rootfs string) error {
		root, rel := ctrfs.HostRoot(ctrMounts(c), rootfs, p)
		return ctrfs.Extract(root, rel, p, body, ctrfs.ExtractOptions{
			UIDs: uids, GIDs: gids, CopyUIDGID: copyUIDGID, NoOverwriteDirNonDir: noOverwriteDirNonDir})
	})
}
