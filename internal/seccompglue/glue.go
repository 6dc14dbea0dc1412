// Package seccompglue is the runtime's one narrow door to the seccomp
// package: compile a spec's filter in the parent, load it in the init
// stage. Nothing else in the runtime knows how filters are built.
package seccompglue

import (
	"encoding/json"
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Compile validates and compiles cfg; the result travels to the init
// stage as JSON. A nil cfg compiles to nil (no filter).
func Compile(cfg *specs.LinuxSeccomp) (json.RawMessage, error) {
	if cfg == nil {
		return nil, nil
	}
	return nil, errors.New("linux.seccomp: this build of berth has no seccomp compiler yet")
}

// Load installs a compiled filter on the calling thread and returns the
// listener fd for SCMP_ACT_NOTIFY filters, or -1.
func Load(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	return -1, errors.New("seccomp: this build of berth cannot load filters yet")
}
