// Command berth-monitor is the per-container monitor (package
// engine/monitor) as a binary of its own: one runs per container, so it
// stays small — it links only the monitor, not the daemon, CLI, image
// store and API types the berth binary carries (whose package
// initialisation alone costs ~2 MiB of private memory per process).
// Invoked as `berth-monitor init -- CMD…` it is the container's `--init`.
package main

import (
	"os"

	"github.com/berth-dev/berth/engine/monitor"
)

func main() { os.Exit(monitor.Main(os.Args[1:])) }
