//go:build cgo && !purecpu

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// splitChain is a small chain in MobileNetV2's shape whose rows split unevenly
// and whose every kind of layer crosses the halves' border: a strided stem and
// a strided depthwise layer with TensorFlow's padding (none above, one row
// below), depthwise layers reading a row of the other half, 1x1 layers whose
// pixel halves cut a row that a depthwise half wrote whole, and a residual
// added into a buffer that the other half's depthwise layer has read.
func splitChain(rng *rand.Rand) []gpu.ConvLayer {
	return withWeights(rng, []gpu.ConvLayer{
		{P: convParams(14, 12, 3, 8, 3, 2, 0, 0), Act: gpu.ActReLU6, InMax: 1, OutMax: 6},
		{Depthwise: true, P: convParams(7, 6, 8, 8, 3, 1, 1, 1), Act: gpu.ActReLU6, OutMax: 6},
		{P: convParams(7, 6, 8, 4, 1, 1, 0, 0), OutMax: 3},
		{P: convParams(7, 6, 4, 12, 1, 1, 0, 0), Act: gpu.ActReLU6, OutMax: 6},
		{Depthwise: true, P: convParams(7, 6, 12, 12, 3, 1, 1, 1), Act: gpu.ActReLU6, OutMax: 6},
		{P: convParams(7, 6, 12, 4, 1, 1, 0, 0), Residual: 2, OutMax: 5},
		{P: convParams(7, 6, 4, 12, 1, 1, 0, 0), Act: gpu.ActReLU6, OutMax: 6},
		{Depthwise: true, P: convParams(7, 6, 12, 12, 3, 2, 1, 0), Act: gpu.ActReLU6, OutMax: 6},
		{P: convParams(4, 3, 12, 16, 1, 1, 0, 0)},
	})
}

// convParams is a square k x k convolution's shape with TensorFlow's "same"
// output size.
func convParams(h, w, c, oc, k, stride, padTop, padLeft int) gpu.ConvParams {
	oh, ow := (h+stride-1)/stride, (w+stride-1)/stride
	return gpu.ConvParams{H: h, W: w, C: c, OC: oc, KH: k, KW: k, StrideH: stride, StrideW: stride,
		PadTop: padTop, PadLeft: padLeft, OH: oh, OW: ow}
}

// withWeights gives layers random weights and biases in [-1, 1), and a
// residual of -1 (none) where they have none.
func withWeights(rng *rand.Rand, layers []gpu.ConvLayer) []gpu.ConvLayer {
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

// splitMatchesWhole runs layers on images in precision p: whole, on a
// one-thread device, then split in halves (runSplit) on a two-thread device,
// rounds times on both threads (so that the halves meet at the phases' borders
// in different orders) and six times on one thread doing both halves, as when
// its partner is late, each image once in each order (it alternates from run
// to run). Every split output must be the whole one, to the bit: a half that
// read a row the other half had not yet written, or overwrote one it was still
// reading, would change it; a wrong row or padding count would change it on one
// thread too. The images take turns, so that a row read too early holds the
// last image's values, not this one's.
func splitMatchesWhole(t *testing.T, layers []gpu.ConvLayer, in []float32, p gpu.Precision, rounds int) {
	t.Helper()
	last := layers[len(layers)-1].P
	nan := make([]float32, last.OH*last.OW*last.OC)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	images := [][]float32{in, make([]float32, len(in)), make([]float32, len(in))}
	for i, v := range in {
		images[1][i], images[2][i] = -v, v/2
	}
	plan := func(d *Device) (out []float32, run func(image int, alone bool)) {
		chain, err := d.PlanConvChain(layers, 2, p)
		if err != nil {
			t.Skipf("oneDNN plans no %s chain on this CPU: %v", p, err)
		}
		t.Cleanup(chain.Close)
		x, o := d.Alloc(len(in)), d.Alloc(len(nan))
		return d.f(o), func(image int, alone bool) {
			d.Upload(x, images[image])
			d.Upload(o, nan) // every output must be written
			if alone {
				err = chain.(*convChain).runSplit(d.f(o), d.f(x), 1)
			} else {
				err = chain.Run(o, x, 1)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	one := New(1) // one thread: no split
	defer one.Close()
	out, run := plan(one)
	var whole [][]float32
	for i := range images {
		run(i, false)
		whole = append(whole, slices.Clone(out))
	}
	two := New(2)
	defer two.Close()
	out, run = plan(two)
	for i := range rounds {
		k := i % len(images)
		if run(k, false); !slices.Equal(out, whole[k]) {
			t.Fatalf("run %d on two threads: %v, want %v", i, out, whole[k])
		}
	}
	for i := range 2 * len(images) { // the order alternates run by run and the count is odd: each image in both orders
		k := i % len(images)
		if run(k, true); !slices.Equal(out, whole[k]) {
			t.Fatalf("both halves of image %d on one thread (run %d): %v, want %v", k, i, out, whole[k])
		}
	}
}

func TestSplitRunMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	splitMatchesWholeIn3(t, rng, splitChain(rng))
}

// TestSplitPointwiseEnds: a chain that begins and ends with a pointwise layer
// over an odd number of pixels (7x5: halves of 18 and 17 pixels, where rows
// give 20 and 15), so that the input's conversion (bfloat16, int8), the
// caller's input and output and the phases all split pixels, across a row.
func TestSplitPointwiseEnds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	splitMatchesWholeIn3(t, rng, withWeights(rng, []gpu.ConvLayer{
		{P: convParams(7, 5, 3, 8, 1, 1, 0, 0), Act: gpu.ActReLU6, InMax: 1, OutMax: 6},
		{Depthwise: true, P: convParams(7, 5, 8, 8, 3, 1, 1, 1), Act: gpu.ActReLU6, OutMax: 6},
		{P: convParams(7, 5, 8, 6, 1, 1, 0, 0)},
	}))
}

// splitMatchesWholeIn3 checks layers with splitMatchesWhole on a random image
// in float32, bfloat16 and int8.
func splitMatchesWholeIn3(t *testing.T, rng *rand.Rand, layers []gpu.ConvLayer) {
	first := layers[0].P
	in := make([]float32, first.H*first.W*first.C)
	for i := range in {
		in[i] = rng.Float32()*2 - 1
	}
	for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16, gpu.Int8} {
		t.Run(string(p), func(t *testing.T) { splitMatchesWhole(t, layers, in, p, 20) })
	}
}

// TestSplitOneRow: a layer of one output row leaves the lower half none, and
// nothing to compute; the image still comes out whole. A 1x1 layer of stride
// 2 would have given that half a negative count of input rows.
func TestSplitOneRow(t *testing.T) {
	for _, q := range []gpu.ConvParams{
		{H: 2, W: 3, C: 2, OC: 4, KH: 3, KW: 3, StrideH: 2, StrideW: 2, OH: 1, OW: 2},
		{H: 2, W: 4, C: 2, OC: 4, KH: 1, KW: 1, StrideH: 2, StrideW: 2, OH: 1, OW: 2},
	} {
		l := gpu.ConvLayer{P: q, Residual: -1, InMax: 12, Bias: []float32{1, 2, 3, 4}}
		for i := range q.OC * q.KH * q.KW * q.C {
			l.Weight = append(l.Weight, float32(i%7)-3)
		}
		in := make([]float32, q.H*q.W*q.C)
		for i := range in {
			in[i] = float32(i + 1)
		}
		for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16, gpu.Int8} {
			t.Run(fmt.Sprintf("%dx%d/%s", q.KH, q.KW, p), func(t *testing.T) {
				splitMatchesWhole(t, []gpu.ConvLayer{l}, in, p, 3)
			})
		}
	}
}

// TestFusedBlocks: three inverted residual blocks whose expanded activations
// pass fuse_blocks' 1 MB (convnet.c), two with a stride-1 depthwise layer
// that add their input (the second adding the first's output) and one with
// TensorFlow's stride-2 padding, over a width that is no multiple of
// the kernel's 4- and 8-pixel tiles and projections of 16 and 24 channels
// (one and one and a half vector blocks). The float32 chain must match the
// device's per-layer kernels up to summation order, name the fused kernel
// where this build and CPU fuse, and give the same bits split in halves as
// whole. A block whose expansion a later layer adds in is not fused (the
// fused block never stores it) and still comes out right.
func TestFusedBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	layers := withWeights(rng, []gpu.ConvLayer{
		{P: convParams(56, 50, 3, 8, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{P: convParams(56, 50, 8, 16, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{P: convParams(56, 50, 16, 96, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{Depthwise: true, P: convParams(56, 50, 96, 96, 3, 1, 1, 1), Act: gpu.ActReLU6},
		{P: convParams(56, 50, 96, 16, 1, 1, 0, 0), Residual: 1},
		// A residual block adding a fused residual block's output, as
		// MobileNetV2's second and third blocks of a stage do.
		{P: convParams(56, 50, 16, 96, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{Depthwise: true, P: convParams(56, 50, 96, 96, 3, 1, 1, 1), Act: gpu.ActReLU6},
		{P: convParams(56, 50, 96, 16, 1, 1, 0, 0), Residual: 4},
		{P: convParams(56, 50, 16, 96, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{Depthwise: true, P: convParams(56, 50, 96, 96, 3, 2, 0, 0), Act: gpu.ActReLU6},
		{P: convParams(28, 25, 96, 24, 1, 1, 0, 0)},
		{P: convParams(28, 25, 24, 8, 1, 1, 0, 0)},
	})
	in := chainMatchesKernels(t, rng, layers, fusedBlocksUsable())
	splitMatchesWhole(t, layers, in, gpu.Float32, 20)

	added := withWeights(rng, []gpu.ConvLayer{
		{P: convParams(56, 50, 3, 16, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{P: convParams(56, 50, 16, 96, 1, 1, 0, 0), Act: gpu.ActReLU6},
		{Depthwise: true, P: convParams(56, 50, 96, 96, 3, 1, 1, 1), Act: gpu.ActReLU6},
		{P: convParams(56, 50, 96, 16, 1, 1, 0, 0)},
		{P: convParams(56, 50, 16, 96, 1, 1, 0, 0), Residual: 1},
		{P: convParams(56, 50, 96, 8, 1, 1, 0, 0)},
	})
	chainMatchesKernels(t, rng, added, false)
}

// chainMatchesKernels runs layers on a random image as a float32 chain and on
// the device's per-layer kernels, which must agree up to summation order, and
// checks that the chain names the fused kernel exactly when fused says. It
// returns the image.
func chainMatchesKernels(t *testing.T, rng *rand.Rand, layers []gpu.ConvLayer, fused bool) []float32 {
	t.Helper()
	first, last := layers[0].P, layers[len(layers)-1].P
	in := make([]float32, first.H*first.W*first.C)
	for i := range in {
		in[i] = rng.Float32()*2 - 1
	}
	d := New(2)
	defer d.Close()
	x := d.Alloc(len(in))
	d.Upload(x, in)
	var outs []gpu.Buf
	for _, l := range layers {
		out, w, b := d.Alloc(l.P.OH*l.P.OW*l.P.OC), d.Alloc(len(l.Weight)), d.Alloc(len(l.Bias))
		d.Upload(w, l.Weight)
		d.Upload(b, l.Bias)
		p := l.P
		p.N = 1
		if l.Depthwise {
			d.DepthwiseConv2D(out, x, w, b, p, l.Act)
		} else {
			d.Conv2D(out, x, w, b, p, l.Act)
		}
		if l.Residual >= 0 {
			d.Add(out, out, outs[l.Residual])
		}
		outs = append(outs, out)
		x = out
	}
	want := d.f(x)
	chain, err := d.PlanConvChain(layers, 1, gpu.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	xin, out := d.Alloc(len(in)), d.Alloc(last.OH*last.OW*last.OC)
	d.Upload(xin, in)
	if err := chain.Run(out, xin, 1); err != nil {
		t.Fatal(err)
	}
	worst, most := 0.0, 0.0
	for i, v := range d.f(out) {
		worst = max(worst, math.Abs(float64(v-want[i])))
		most = max(most, math.Abs(float64(want[i])))
	}
	t.Logf("max |chain - kernels| %.2g, outputs up to %.2g; %s", worst, most, chain.Describe())
	if worst > 1e-5*most {
		t.Errorf("the float32 chain differs from the per-layer kernels by %.2g (outputs up to %.2g)", worst, most)
	}
	if got := strings.Contains(chain.Describe(), "fused_block"); got != fused {
		t.Errorf("fused blocks: %v, want %v (%s)", got, fused, chain.Describe())
	}
	return in
}
