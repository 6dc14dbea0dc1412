// Package snapshot owns the unpacked image layers and the per-container
// root filesystems built from them.
//
// On disk, under the root given to Open (e.g. /var/lib/berth/snapshots):
//
//	layers/<chain-id hex>/diff     one unpacked layer, shared by every image and
//	                               container whose layer chain reaches it;
//	                               whiteouts are overlayfs whiteouts
//	layers/<chain-id hex>/size     bytes of file content in the layer
//	containers/<id>/meta.json      the container's layer chain and id map
//	containers/<id>/{upper,work}   the container's own writable layer
//	containers/<id>/rootfs         the overlayfs mount point (the bundle rootfs)
//	idmapped/<map key>/<chain>     chowned copies of layers, cached per id map,
//	                               when the kernel cannot idmap overlay lowers
//	tmp/                           unpacks in progress; emptied by Open
//
// A layer appears under layers/ only once complete (rename of a finished
// directory), so a crash never leaves a half layer that looks whole. Layers
// are written without fsync: a crash may lose recent layers' content, which
// the image store re-unpacks from its blobs (Prepare reports a missing
// layer; the store's EnsureUnpacked redoes it).
//
// The package mounts only under its own root and never touches the image
// blobs; it knows layers by chain ID, not images by name.
package snapshot
