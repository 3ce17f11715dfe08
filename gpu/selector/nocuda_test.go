//go:build !cuda

package selector

import (
	"slices"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// The default binary must not link the CUDA backend (its init exits without a GPU).
func TestNoCUDABackendLinked(t *testing.T) {
	if slices.Contains(gpu.Backends(), "cuda") {
		t.Fatal("the cuda backend is linked into a binary built without the cuda tag")
	}
}
