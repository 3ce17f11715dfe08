package encoder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
)

// randomImages returns n images of c's input size, uniform in [-1, 1).
func randomImages(c Config, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, seed))
	images := make([]float32, n*c.Input*c.Input*3)
	for i := range images {
		images[i] = rng.Float32()*2 - 1
	}
	return images
}

// bottomTopGrid runs images through NewBottom(first) and a Top from first on dev.
func bottomTopGrid(t *testing.T, dev gpu.Device, w *Weights, first int, images []float32, n int) (cut, grid []float32) {
	t.Helper()
	b, err := NewBottom(dev, w, first, n)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.probs != nil || b.classifier.w != nil {
		t.Error("a bottom encoder holds the classifier's weights or probabilities, which only the head's output feeds")
	}
	if err := b.Encode(images, n); err != nil {
		t.Fatal(err)
	}
	top, err := NewTop(dev, w, first, n)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	cut, grid = make([]float32, b.Cut().Len()), make([]float32, n*top.GridLen())
	if err := dev.Download(cut, b.Cut()); err != nil {
		t.Fatal(err)
	}
	if err := dev.Download(grid, top.Forward(b.Cut(), n)); err != nil {
		t.Fatal(err)
	}
	return cut, grid
}

// TestBottomThenTopIsTheEncoder: the bottom to any cut followed by the top
// from there gives the whole encoder's grid, on a oneDNN chain and on the
// per-layer kernels.
func TestBottomThenTopIsTheEncoder(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	n := 3
	images := randomImages(smallConfig, n, 3)
	for _, dev := range []gpu.Device{cpu.New(2), perLayer{cpu.New(2)}} {
		e, err := New(dev, w, n, "float32")
		if err != nil {
			t.Fatal(err)
		}
		want, _, _ := encodeAll(t, e, images, n)
		e.Close()
		for first := range smallConfig.Blocks {
			cut, got := bottomTopGrid(t, dev, w, first, images, n)
			if len(cut) != n*smallConfig.CutLen(first) {
				t.Errorf("cut %d: %d values, want %d", first, len(cut), n*smallConfig.CutLen(first))
			}
			if d := maxDiff(got, want); d > 1e-5 {
				t.Errorf("%s, cut at block %d: bottom+top grid is %.2g from the encoder's", dev.Name(), first, d)
			}
		}
		dev.Close()
	}
}

// refTop is an independent float64 forward pass of the top (blocks first.. and
// the head) on n images' activations at the cut: plain loops over the
// architecture's definition (TFLite SAME padding).
func refTop(c Config, p map[string][]float64, first int, cut []float64, n int) []float64 {
	x, s := cut, c.CutSide(first)
	relu6 := func(v float64) float64 { return math.Min(math.Max(v, 0), 6) }
	pointwise := func(x []float64, rows, cin, cout int, w, b []float64, act bool) []float64 {
		out := make([]float64, rows*cout)
		for r := 0; r < rows; r++ {
			for o := 0; o < cout; o++ {
				v := b[o]
				for i := 0; i < cin; i++ {
					v += x[r*cin+i] * w[o*cin+i]
				}
				if act {
					v = relu6(v)
				}
				out[r*cout+o] = v
			}
		}
		return out
	}
	for i := first; i < len(c.Blocks); i++ {
		b, pre := c.Blocks[i], fmt.Sprintf("blocks.%d.", i)
		h := x
		if b.Expand {
			h = pointwise(x, n*s*s, b.In, b.Hidden, p[pre+"expand.weight"], p[pre+"expand.bias"], true)
		}
		o := (s + b.Stride - 1) / b.Stride
		pad := max((o-1)*b.Stride+3-s, 0) / 2
		d := make([]float64, n*o*o*b.Hidden)
		w, bias := p[pre+"dw.weight"], p[pre+"dw.bias"]
		for im := 0; im < n; im++ {
			for oy := 0; oy < o; oy++ {
				for ox := 0; ox < o; ox++ {
					for ch := 0; ch < b.Hidden; ch++ {
						v := bias[ch]
						for ky := 0; ky < 3; ky++ {
							for kx := 0; kx < 3; kx++ {
								iy, ix := oy*b.Stride-pad+ky, ox*b.Stride-pad+kx
								if iy >= 0 && iy < s && ix >= 0 && ix < s {
									v += h[((im*s+iy)*s+ix)*b.Hidden+ch] * w[(ky*3+kx)*b.Hidden+ch]
								}
							}
						}
						d[((im*o+oy)*o+ox)*b.Hidden+ch] = relu6(v)
					}
				}
			}
		}
		out := pointwise(d, n*o*o, b.Hidden, b.Out, p[pre+"project.weight"], p[pre+"project.bias"], false)
		if b.Residual {
			for j := range out {
				out[j] += x[j]
			}
		}
		x, s = out, o
	}
	return pointwise(x, n*s*s, c.Blocks[len(c.Blocks)-1].Out, c.Head, p["head.weight"], p["head.bias"], true)
}

// TestTopGradients checks Top.Backward's gradient of every parameter tensor
// (at up to 5 elements each) against central differences of refTop, for the
// loss Σ r · grid with random r, on the CPU device; the top's forward is
// checked against refTop first. Cutting at block 0 trains a block without an
// expansion; at block 1 the first trained block has one, then a residual block
// and two stride-2 blocks with odd sizes (15 -> 8 -> 4).
func TestTopGradients(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	for _, first := range []int{0, 1} {
		t.Run(fmt.Sprintf("from_block_%d", first), func(t *testing.T) { checkTopGradients(t, dev, first) })
	}
}

func checkTopGradients(t *testing.T, dev gpu.Device, first int) {
	_, w := importSynthetic(t, smallConfig, 7)
	c := w.Config
	n := 2
	cut, _ := bottomTopGrid(t, dev, w, first, randomImages(c, n, 5), n)
	top, err := NewTop(dev, w, first, n)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	cutBuf := dev.Alloc(len(cut))
	defer dev.Free(cutBuf)
	dev.Upload(cutBuf, cut)
	grid := top.Forward(cutBuf, n)
	got := make([]float32, grid.Len())
	if err := dev.Download(got, grid); err != nil {
		t.Fatal(err)
	}
	params := map[string][]float64{}
	for _, p := range c.TopParams(first) {
		params[p.Name] = to64(w.Tensors[p.Name])
	}
	cut64 := to64(cut)
	want := refTop(c, params, first, cut64, n)
	if d := maxDiff(got, to32(want)); d > 1e-5 {
		t.Fatalf("forward: %.2g from the float64 reference", d)
	}
	rng := rand.New(rand.NewPCG(uint64(first), 1))
	r := make([]float32, len(got))
	for i := range r {
		r[i] = rng.Float32()*2 - 1
	}
	loss := func() float64 {
		var s float64
		for i, v := range refTop(c, params, first, cut64, n) {
			s += v * float64(r[i])
		}
		return s
	}
	dgrid := dev.Alloc(len(r))
	defer dev.Free(dgrid)
	dev.Upload(dgrid, r)
	top.ZeroGrad()
	top.Backward(dgrid)
	grads := make([]float32, top.NumParams())
	if err := dev.Download(grads, top.grad); err != nil {
		t.Fatal(err)
	}
	const h = 1e-6
	off := 0
	for _, p := range c.TopParams(first) {
		v := params[p.Name]
		for k := 0; k < 5; k++ {
			i := k * (len(v) - 1) / 4
			old := v[i]
			v[i] = old + h
			lp := loss()
			v[i] = old - h
			lm := loss()
			v[i] = old
			fd := (lp - lm) / (2 * h)
			g := float64(grads[off+i])
			if math.Abs(g-fd) > 1e-3+1e-3*math.Abs(fd) {
				t.Errorf("%s[%d]: gradient %.6g, finite differences %.6g", p.Name, i, g, fd)
			}
		}
		off += len(v)
	}
}

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func to32(s []float64) []float32 {
	d := make([]float32, len(s))
	for i, v := range s {
		d[i] = float32(v)
	}
	return d
}
