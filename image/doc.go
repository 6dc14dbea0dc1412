// Package image is berth's image store: content-addressed blobs in the OCI
// image layout, the names (tags and digests) that point at images, and the
// operations of `docker images`, `import`, `load`, `save`, `tag`, `rmi`,
// `image prune`, `history` and `image inspect`.
//
// On disk, under the root given to Open (e.g. /var/lib/berth/image):
//
//	oci-layout, index.json   an OCI image layout; each index entry is one
//	                         name of an image (annotation
//	                         io.containerd.image.name = the full normalized
//	                         reference, docker.io/library/busybox:latest or
//	                         …@sha256:…), or, without a name, a dangling image
//	blobs/sha256/<hex>       manifests, image configs and layer blobs
//	ingest/                  blobs being written; emptied by Open
//	index.lock, gc.lock      flock(2) locks shared with other processes
//
// An image's ID is the digest of its config blob, as in Docker. Layers are
// unpacked once, by chain ID, into the snapshot package's store when an
// image arrives (import, load, pull), so a container starts from
// snapshot.Prepare(containerID, img.ChainIDs(), …) without unpacking.
//
// Concurrency: index.json is replaced atomically (write, fsync, rename)
// under index.lock; blobs are written under a shared gc.lock and deleted
// only under an exclusive one, so a concurrent import in another process
// never loses a blob it is about to reference.
//
// Names follow Docker's normalization (github.com/distribution/reference):
// `busybox` is docker.io/library/busybox:latest; RepoTags and RepoDigests
// are reported in Docker's familiar form (busybox:latest).
//
// The package touches nothing outside its root and the snapshotter it is
// given; it knows nothing about containers except through the InUse hook.
package image
