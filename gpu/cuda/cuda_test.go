//go:build cuda

package cuda

import (
	"math"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/gputest"
)

// TestKernels runs the shared kernel suite on GPU 0. The test binary can only
// start on a machine with a GPU (see the package comment); elsewhere the
// untagged TestSuiteOnGPU reports the suite as skipped.
func TestKernels(t *testing.T) {
	dev, err := Open(0, gpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	t.Logf("device: %s", dev.Name())
	gputest.Run(t, dev)
}

// TestTF32 opens the GPU with its float32 GEMMs on tensor cores: the device
// says so, and a product still comes out right (to TF32's precision on a GPU;
// exactly under the stand-in cuBLAS).
func TestTF32(t *testing.T) {
	dev, err := Open(0, gpu.Options{TF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if !strings.HasSuffix(dev.Name(), ", TF32 tensor-core GEMMs)") {
		t.Errorf("device %q does not say its GEMMs run on tensor cores", dev.Name())
	}
	// C (2, 3) = A (2, 4) B (3, 4)ᵀ.
	a := []float32{1, 2, 3, 4, -1, 0.5, 0, 2}
	b := []float32{1, 0, 0, 1, 0, 1, 1, 0, 2, 2, 2, 2}
	want := []float32{5, 5, 20, 1, 0.5, 3}
	ab, bb, cb := dev.Alloc(len(a)), dev.Alloc(len(b)), dev.Alloc(len(want))
	dev.Upload(ab, a)
	dev.Upload(bb, b)
	dev.Gemm(false, true, 2, 3, 4, 1, ab, 4, bb, 4, 0, cb, 3)
	got := make([]float32, len(want))
	if err := dev.Download(got, cb); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-2*max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("A·Bᵀ = %v, want %v", got, want)
		}
	}
}
