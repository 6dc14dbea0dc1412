//go:build nsenter_embedded

package nsjoin

import _ "embed"

// embedded is the berth-nsenter helper, built by `make build`.
//
//go:embed embedded/berth-nsenter
var embedded []byte
