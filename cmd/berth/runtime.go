package main

import (
	"github.com/berth-dev/berth/internal/initproc"
	"github.com/berth-dev/berth/internal/runtimecli"
)

func init() {
	register(&command{name: "runtime", summary: "The runc-compatible OCI runtime (also as berth-runtime)", run: func(args []string) int {
		runtimecli.Version = version
		return runtimecli.Main(args)
	}})
	// The container's init stage, re-executed by the runtime inside the
	// new namespaces. Not a user command.
	register(&command{name: "init", hidden: true, run: func([]string) int { return initproc.Main() }})
}
