//go:build cgo

package cudaemu

import (
	"bytes"
	"os"
	"testing"

	"github.com/captioner/captioner/gpu/cudaemu/internal/dispatch"
	"github.com/captioner/captioner/gpu/gputest"
	"github.com/captioner/captioner/gpu/kernels"
)

// TestKernels runs the shared kernel suite on the emulated CUDA kernels.
func TestKernels(t *testing.T) {
	dev, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	gputest.Run(t, dev)
}

// TestDispatchGenerated checks that kernels_gen.c is what gen.go writes today.
func TestDispatchGenerated(t *testing.T) {
	sigs, err := kernels.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("kernels_gen.c")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dispatch.Render(sigs)) {
		t.Fatal("kernels_gen.c is stale: run `go generate ./gpu/cudaemu`")
	}
}
