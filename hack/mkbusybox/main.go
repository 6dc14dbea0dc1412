// Command mkbusybox writes a busybox root filesystem built from Debian's
// busybox-static (internal/busybox: the layout of Docker Hub's busybox
// image) as a tar stream, to a file or stdout, for `berth import`:
//
//	go run ./hack/mkbusybox | berth import - busybox
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/busybox"
)

func main() {
	out := os.Stdout
	if len(os.Args) > 2 || (len(os.Args) == 2 && os.Args[1] == "-h") {
		fmt.Fprintln(os.Stderr, "usage: mkbusybox [FILE.tar]   (default: stdout)")
		os.Exit(2)
	}
	if len(os.Args) == 2 && os.Args[1] != "-" {
		f, err := os.Create(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkbusybox:", err)
			os.Exit(1)
		}
		out = f
	}
	w := bufio.NewWriterSize(out, 1<<20)
	if err := busybox.WriteTar(w); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
	if err := out.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
}
