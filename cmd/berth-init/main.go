// Command berth-init is the container's init stage as a small program of
// its own: the runtime runs it inside the new namespaces to finish the
// container and execve the user's process (package initproc). It is
// embedded in bin/berth by `make build` and run from a sealed read-only
// copy; it is a tenth of berth's size and starts several times faster,
// which is most of a container's start latency. Not a user command.
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Go's runtime sizes GOMAXPROCS from the cgroup's CPU limit, reading
// /proc/self/cgroup and cgroupfs at start and then periodically; the init
// starts while the runtime moves it into its cgroup, when those reads
// would wait on the kernel's cgroup lock, and it needs one thread anyway.
package main

import (
	"os"
	"runtime"

	"github.com/berth-dev/berth/internal/initproc"
)

// The init stage must run on the main thread from the start: namespaces
// it joins or unshares apply per thread, and /proc/self (the thread group
// leader) must show them.
func init() { runtime.LockOSThread() }

func main() { os.Exit(initproc.Main()) }
