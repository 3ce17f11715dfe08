//go:build cuda

package cuda

import (
	"fmt"
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
// says so (or that its GPU has none), and a product still comes out right (to TF32's precision on a GPU;
// exactly under the stand-in cuBLAS).
func TestTF32(t *testing.T) {
	dev, err := Open(0, gpu.Options{TF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	// Tensor cores do TF32 from sm_80 (Ampere) on; the emulator is an sm_70.
	var major, minor int
	if _, err := fmt.Sscanf(dev.Name()[strings.Index(dev.Name(), ", sm_")+2:], "sm_%1d%1d", &major, &minor); err != nil {
		t.Fatalf("device %q: no sm_XY in its name: %v", dev.Name(), err)
	}
	suffix := ", TF32 tensor-core GEMMs)"
	if major < 8 {
		suffix = ", cuda.tf32 without effect: no TF32 before sm_80)"
	}
	if !strings.HasSuffix(dev.Name(), suffix) {
		t.Errorf("device %q (sm_%d%d) does not end with %q", dev.Name(), major, minor, suffix)
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
