// Command fakedriver builds the stand-in libcuda.so.1 and libcublas.so.13 of
// package gpu/cuda/fakedriver into a folder, for running the GPU bundle's
// check against the emulator (`make gpu-bundle-check`):
//
//	go run ./gpu/cuda/fakedriver/cmd/fakedriver DIR
//
// It runs from the repository root.
package main

import (
	"fmt"
	"os"

	"github.com/captioner/captioner/gpu/cuda/fakedriver"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fakedriver DIR (run from the repository root)")
		os.Exit(2)
	}
	if err := fakedriver.Toolkit(); err != nil {
		fmt.Fprintln(os.Stderr, "fakedriver:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(os.Args[1], 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "fakedriver:", err)
		os.Exit(1)
	}
	if err := fakedriver.Build(os.Args[1], "gpu"); err != nil {
		fmt.Fprintln(os.Stderr, "fakedriver:", err)
		os.Exit(1)
	}
}
