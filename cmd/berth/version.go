package main

// Set by the Makefile with -ldflags -X. `berth version` (system.go) shows
// them with the daemon's version, as docker version does.
var (
	version   = "dev"
	gitCommit = "unknown"
)
