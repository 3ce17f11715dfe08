//go:build cgo

package encoder

import (
	"math/rand/v2"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/gpu/cudaemu"
)

// TestCUDAKernelsMatchCPU runs the small synthetic network through the CUDA
// kernels (gpu/kernels, the code gpu/cuda launches on a GPU, here executed by
// the host emulator so that no GPU is needed) and through the CPU backend: the
// encoder's kernel calls must compute the same on both.
func TestCUDAKernelsMatchCPU(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 11)
	emu, err := cudaemu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cpuDev := cpu.New(2)
	defer cpuDev.Close()
	n := 3
	rng := rand.New(rand.NewPCG(9, 9))
	images := make([]float32, n*smallConfig.Input*smallConfig.Input*3)
	for i := range images {
		images[i] = rng.Float32()*2 - 1
	}
	var outs [2][3][]float32
	for i, dev := range []gpu.Device{cpuDev, emu} {
		e, err := New(dev, w, n, "float32")
		if err != nil {
			t.Fatal(err)
		}
		outs[i][0], outs[i][1], outs[i][2] = encodeAll(t, e, images, n)
		e.Close()
	}
	for k, what := range []string{"grid", "pooled", "probs"} {
		if d := maxDiff(outs[1][k], outs[0][k]); d > 1e-5 {
			t.Errorf("%s: CUDA kernels differ from the CPU by %.2g", what, d)
		}
	}
}

// TestTopGradientsOnCUDAKernels is TestTopGradients through the CUDA kernels
// (emulated): the backward kernels in the composition the trainer runs.
func TestTopGradientsOnCUDAKernels(t *testing.T) {
	emu, err := cudaemu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	checkTopGradients(t, emu, 1)
}
