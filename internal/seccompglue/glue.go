// Package seccompglue is the runtime's one narrow door to the seccomp
// package: compile a spec's filter in the parent, load it in the init
// stage. Nothing else in the runtime knows how filters are built.
package seccompglue

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/berth-dev/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Compile validates and compiles cfg; the result travels to the init
// stage as JSON. A nil cfg compiles to nil (no filter). Warnings are what
// the compiler did that the user should hear of (unknown syscall names
// skipped, as runc does). cfg must not change once compiled: the result
// is kept for the object.
func Compile(cfg *specs.LinuxSeccomp) (prog json.RawMessage, warnings []string, err error) {
	if cfg == nil {
		return nil, nil, nil
	}
	// A long-lived caller (the daemon) hands the same configuration for
	// every container: the encoded program is kept per configuration
	// object, which nothing modifies once built. Finding it in
	// seccomp's cache would marshal and hash the profile (hundreds of
	// syscall names) again. The weak key dies with the object: another
	// object at the same address is another key.
	key := weakKey(cfg)
	if v, ok := compiled.Load(key); ok {
		c := v.(*compiledProg)
		return c.prog, c.warnings, nil
	}
	p, err := seccomp.Compile(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	prog, err = json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	compiled.Store(key, &compiledProg{prog, p.Warnings})
	runtime.AddCleanup(cfg, func(k weak.Pointer[specs.LinuxSeccomp]) { compiled.Delete(k) }, key)
	return prog, p.Warnings, nil
}

type compiledProg struct {
	prog     json.RawMessage
	warnings []string
}

var compiled sync.Map // weak.Pointer[specs.LinuxSeccomp] → *compiledProg

func weakKey(cfg *specs.LinuxSeccomp) weak.Pointer[specs.LinuxSeccomp] { return weak.Make(cfg) }

// Load installs a compiled filter on the calling thread and returns the
// listener fd for SCMP_ACT_NOTIFY filters, or -1.
func Load(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	var p seccomp.Program
	if err := json.Unmarshal(raw, &p); err != nil {
		return -1, fmt.Errorf("decode seccomp program: %w", err)
	}
	return p.Load()
}
