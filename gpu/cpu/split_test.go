//go:build cgo && !purecpu

package cpu

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// splitChain is a small chain in MobileNetV2's shape whose rows split unevenly
// and whose every kind of layer crosses the halves' border: a strided stem and
// a strided depthwise layer with TensorFlow's padding (none above, one row
// below), depthwise layers reading a row of the other half, 1x1 layers reading
// only their own, and a residual added into a buffer that the other half's
// depthwise layer has read.
func splitChain(rng *rand.Rand) []gpu.ConvLayer {
	conv := func(h, w, c, oc, k, stride, padTop, padLeft int) gpu.ConvParams {
		oh, ow := (h+stride-1)/stride, (w+stride-1)/stride
		return gpu.ConvParams{H: h, W: w, C: c, OC: oc, KH: k, KW: k, StrideH: stride, StrideW: stride,
			PadTop: padTop, PadLeft: padLeft, OH: oh, OW: ow}
	}
	layers := []gpu.ConvLayer{
		{P: conv(14, 12, 3, 8, 3, 2, 0, 0), Act: gpu.ActReLU6, InMax: 1, OutMax: 6},
		{Depthwise: true, P: conv(7, 6, 8, 8, 3, 1, 1, 1), Act: gpu.ActReLU6, OutMax: 6},
		{P: conv(7, 6, 8, 4, 1, 1, 0, 0), OutMax: 3},
		{P: conv(7, 6, 4, 12, 1, 1, 0, 0), Act: gpu.ActReLU6, OutMax: 6},
		{Depthwise: true, P: conv(7, 6, 12, 12, 3, 1, 1, 1), Act: gpu.ActReLU6, OutMax: 6},
		{P: conv(7, 6, 12, 4, 1, 1, 0, 0), Residual: 2, OutMax: 5},
		{P: conv(7, 6, 4, 12, 1, 1, 0, 0), Act: gpu.ActReLU6, OutMax: 6},
		{Depthwise: true, P: conv(7, 6, 12, 12, 3, 2, 1, 0), Act: gpu.ActReLU6, OutMax: 6},
		{P: conv(4, 3, 12, 16, 1, 1, 0, 0)},
	}
	for i := range layers {
		l := &layers[i]
		if l.Residual == 0 {
			l.Residual = -1
		}
		n := l.P.OC * l.P.KH * l.P.KW * l.P.C
		if l.Depthwise {
			n = l.P.KH * l.P.KW * l.P.C
		}
		for range n {
			l.Weight = append(l.Weight, rng.Float32()*2-1)
		}
		for range l.P.OC {
			l.Bias = append(l.Bias, rng.Float32()*2-1)
		}
	}
	return layers
}

// TestSplitRunMatchesWhole: one image split in halves of rows (runSplit) gives
// the same output, to the bit, as the same chain run whole on one thread, on
// two threads (repeatedly, so that the halves meet at the phases' borders in
// different orders) and on one thread doing both halves, as when its partner
// is late. A half that read a row the other half had not yet written, or
// overwrote one it was still reading, would change the output; a wrong row or
// padding count would fail on one thread too.
func TestSplitRunMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	layers := splitChain(rng)
	first, last := layers[0].P, layers[len(layers)-1].P
	in := make([]float32, first.H*first.W*first.C)
	for i := range in {
		in[i] = rng.Float32()*2 - 1
	}
	for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16, gpu.Int8} {
		t.Run(string(p), func(t *testing.T) {
			run := func(d *Device, split func(c *convChain, out, in []float32) error) []float32 {
				chain, err := d.PlanConvChain(layers, 2, p)
				if err != nil {
					t.Skipf("oneDNN plans no %s chain on this CPU: %v", p, err)
				}
				defer chain.Close()
				x, out := d.Alloc(len(in)), d.Alloc(last.OH*last.OW*last.OC)
				defer d.Free(x)
				defer d.Free(out)
				d.Upload(x, in)
				if split == nil {
					err = chain.Run(out, x, 1)
				} else {
					err = split(chain.(*convChain), d.f(out), d.f(x))
				}
				if err != nil {
					t.Fatal(err)
				}
				return slices.Clone(d.f(out))
			}
			whole := run(New(1), nil) // one thread: no split
			d := New(2)
			defer d.Close()
			for i := range 20 {
				if got := run(d, nil); !slices.Equal(got, whole) {
					t.Fatalf("run %d on two threads: %v, want %v", i, got, whole)
				}
			}
			alone := func(c *convChain, out, in []float32) error { return c.runSplit(out, in, 1) }
			if got := run(d, alone); !slices.Equal(got, whole) {
				t.Fatalf("both halves on one thread: %v, want %v", got, whole)
			}
		})
	}
}

// TestSplitOneRow: a layer of one output row leaves the lower half no rows
// (an empty oneDNN primitive), and the image still comes out whole.
func TestSplitOneRow(t *testing.T) {
	l := gpu.ConvLayer{P: gpu.ConvParams{H: 2, W: 3, C: 2, OC: 4, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 1, OW: 2},
		Residual: -1, Weight: make([]float32, 4*3*3*2), Bias: []float32{1, 2, 3, 4}}
	for i := range l.Weight {
		l.Weight[i] = float32(i%7) - 3
	}
	d := New(2)
	defer d.Close()
	chain, err := d.PlanConvChain([]gpu.ConvLayer{l}, 1, gpu.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	x, out := d.Alloc(2*3*2), d.Alloc(2*4)
	defer d.Free(x)
	defer d.Free(out)
	d.Upload(x, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	if err := chain.Run(out, x, 1); err != nil {
		t.Fatal(err)
	}
	// Output pixel (0, ow) sums input rows 0-2 and columns 2·ow .. 2·ow+2, of
	// which row 2 and columns 3 and 4 are zero padding.
	in := d.f(x)
	want := make([]float32, 8)
	for ow := range 2 {
		for o := range 4 {
			sum := l.Bias[o]
			for kh := range 3 {
				for kw := range 3 {
					iw := 2*ow + kw
					if kh >= 2 || iw >= 3 {
						continue
					}
					for c := range 2 {
						sum += in[(kh*3+iw)*2+c] * l.Weight[((o*3+kh)*3+kw)*2+c]
					}
				}
			}
			want[ow*4+o] = sum
		}
	}
	if got := d.f(out); !slices.Equal(got, want) {
		t.Errorf("one-row chain: %v, want %v", got, want)
	}
}
