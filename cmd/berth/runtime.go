package main

import (
	"os"
	goruntime "runtime"

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

// The init stage must run on the main thread from the start: namespaces
// it joins or unshares apply per thread, and /proc/self (the thread group
// leader) must show them. LockOSThread in an init function pins main.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		goruntime.LockOSThread()
	}
}
