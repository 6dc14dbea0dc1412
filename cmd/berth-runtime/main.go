// Command berth-runtime is berth's OCI runtime with runc's command line
// (package runtimecli), as a binary of its own: the runtime is started
// once per container operation by containerd's shim, dockerd or a user,
// and a binary holding only the runtime starts in a fraction of the time
// the whole berth binary takes and touches a fraction of its memory.
// `berth runtime …` (and bin/berth invoked as berth-runtime) is the same
// command line.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/runtimecli"
)

// version is set at build time, as for bin/berth.
var version = "dev"

func main() {
	runtimecli.Version = version
	os.Exit(runtimecli.Main(os.Args[1:]))
}
