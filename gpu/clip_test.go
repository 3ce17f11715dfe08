package gpu_test

import (
	"errors"
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
)

// ClipGradNorm scales gradients down to maxNorm (a 3-4-5 triangle: norm 5
// clipped to 3 is 1.8, 2.4), leaves them within it or with clipping off, and
// refuses a norm that is not finite.
func TestClipGradNorm(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	for _, c := range []struct {
		maxNorm float64
		want    []float32
	}{
		{3, []float32{1.8, 2.4}},
		{5.5, []float32{3, 4}},
		{0, []float32{3, 4}},
	} {
		g := dev.Alloc(2)
		dev.Upload(g, []float32{3, 4})
		norm, err := gpu.ClipGradNorm(dev, g, c.maxNorm)
		got := make([]float32, 2)
		if err := dev.Download(got, g); err != nil {
			t.Fatal(err)
		}
		dev.Free(g)
		if err != nil || norm != 5 || math.Abs(float64(got[0]-c.want[0])) > 1e-5 || math.Abs(float64(got[1]-c.want[1])) > 1e-5 {
			t.Errorf("maxNorm %v: norm %v, %v, gradients %v; want 5, %v", c.maxNorm, norm, err, got, c.want)
		}
	}
	g := dev.Alloc(2)
	defer dev.Free(g)
	dev.Upload(g, []float32{3, float32(math.Inf(1))})
	if _, err := gpu.ClipGradNorm(dev, g, 1); !errors.Is(err, gpu.ErrDiverged) {
		t.Errorf("an infinite gradient: %v, want ErrDiverged", err)
	}
}

// Grow reallocates only for more elements than the buffer has: the same
// buffer for as many, a new one for one more.
func TestGrow(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	var b gpu.Buf
	first := gpu.Grow(dev, &b, 4)
	kept := b
	if first.Len() != 4 || gpu.Grow(dev, &b, 4).Len() != 4 || gpu.Grow(dev, &b, 3).Len() != 3 || b != kept {
		t.Fatalf("Grow to 4, 4, 3: lengths %d, the buffer replaced %v", first.Len(), b != kept)
	}
	if got := gpu.Grow(dev, &b, 5); got.Len() != 5 || b.Len() != 5 {
		t.Errorf("Grow to one more: %d elements, the buffer %d", got.Len(), b.Len())
	}
	dev.Free(b)
}
