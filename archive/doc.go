// Package archive reads and writes tar streams safely: it unpacks image
// layers and `docker cp` archives into a directory so that no entry — by
// `..`, an absolute name, a symlink planted earlier in the same stream, a
// hard link, or a symlink already in the destination — can create, change
// or read anything outside that directory, and it writes tar streams of a
// directory tree (layers, `docker cp` out of a container, `export`).
//
// Every path of an entry is resolved inside the destination with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), then the last component is
// created with the *at system calls relative to the resolved parent, never
// followed. Names that climb above the root with `..` are refused outright.
//
// Whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) are either
// turned into overlayfs whiteouts (a 0/0 character device and the
// trusted.overlay.opaque xattr) for a layer directory that overlayfs stacks,
// or applied by deleting, for a stream unpacked onto a merged tree.
//
// The package owns no directory of its own and touches nothing but the
// destination it is given; it knows nothing about images or containers.
package archive
