//go:build !init_embedded

package initbin

var embedded []byte

var embeddedID string
