// Command mkbundle writes an OCI bundle made of the busybox rootfs fixture
// and berth's default config running the talk's first command. It is for
// `make demo` and for trying the runtime by hand.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/busybox"
	"github.com/berth-dev/berth/runtime"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		fail(err)
	}
	if err := busybox.Build(rootfs); err != nil {
		fail(err)
	}
	spec := runtime.DefaultSpec(false, 0, 0)
	spec.Process.Terminal = false
	spec.Process.Args = []string{"sh", "-c", `echo "hello world"`}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkbundle:", err)
	os.Exit(1)
}
