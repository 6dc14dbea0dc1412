//go:build init_embedded

package initbin

import _ "embed"

// embedded is cmd/berth-init, built by `make build`.
//
//go:embed embedded/berth-init
var embedded []byte
