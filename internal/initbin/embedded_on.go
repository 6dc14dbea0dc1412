//go:build init_embedded

package initbin

import _ "embed"

// embedded is cmd/berth-init, built by `make build`.
//
//go:embed embedded/berth-init
var embedded []byte

// embeddedID names the program's content (a prefix of its SHA-256,
// written by the build), so every binary embedding the same init shares
// one sealed copy.
//
//go:embed embedded/berth-init.id
var embeddedID string
