//go:build ignore

// gen.go writes kernels_gen.c from the kernel signatures in gpu/kernels.
// Run it with `go generate ./gpu/cudaemu` after changing a kernel's parameters.
package main

import (
	"log"
	"os"

	"github.com/captioner/captioner/gpu/cudaemu/internal/dispatch"
	"github.com/captioner/captioner/gpu/kernels"
)

func main() {
	sigs, err := kernels.Signatures()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("kernels_gen.c", dispatch.Render(sigs), 0o644); err != nil {
		log.Fatal(err)
	}
}
