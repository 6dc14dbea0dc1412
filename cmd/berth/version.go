package main

import (
	"fmt"
	"runtime"
)

// Set by the Makefile with -ldflags -X.
var (
	version   = "dev"
	gitCommit = "unknown"
)

func init() {
	register(&command{name: "version", summary: "Show the berth version information", run: func([]string) int {
		fmt.Printf("berth version %s, commit %s, %s\n", version, gitCommit, runtime.Version())
		return 0
	}})
}
