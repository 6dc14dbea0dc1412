package main

import (
	"os"

	"github.com/berth-dev/berth/internal/busybox"
)

func main() {
	if err := busybox.WriteTar(os.Stdout); err != nil {
		panic(err)
	}
}
