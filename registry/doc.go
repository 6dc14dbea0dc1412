// Package registry pulls images from and pushes images to registries that
// speak the OCI distribution API (Docker Hub, distribution's registry,
// every cloud registry), into and out of berth's image store.
//
// It owns the client side of the distribution protocol as berth uses it:
// Docker's reference normalization, credentials (X-Registry-Auth,
// ~/.docker/config.json, anonymous bearer tokens, basic auth), insecure
// registries and mirrors (daemon.json's insecure-registries and
// registry-mirrors), platform selection in manifest lists and OCI indexes,
// parallel, resumable, verified layer downloads that unpack while they
// stream, uploads, and the JSON progress stream dockerd sends
// (ProgressMessage) with a renderer that draws it like the docker CLI.
//
// go-containerregistry does the protocol (ping, token flow, manifests,
// blob uploads); this package adds what a container engine needs on top:
// every byte checked against the digest and size its descriptor declares
// before anything is named, bounded reads from hostile registries, and
// streaming into image.Ingest and the snapshotter.
//
// It writes only through the image store it is given and talks only to
// the registries a reference names (or their configured mirrors); it
// knows nothing about containers or the daemon's API.
package registry
