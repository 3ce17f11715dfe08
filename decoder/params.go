package decoder

import (
	"math"
	"math/rand/v2"

	"github.com/captioner/captioner/gpu"
)

// Params are named views into one flat buffer. Gradients use the same struct over
// a second flat buffer of the same layout, so the optimiser is one AdamW call and
// a checkpoint is one write.
//
// Weights are stored (out, in), PyTorch's nn.Linear layout; LSTM gate blocks are
// in PyTorch's order i, f, g, o.
type Params struct {
	ImgW  gpu.Buf // (H, F)  image branch dense
	ImgB  gpu.Buf // (H)
	Embed gpu.Buf // (V, E)  word embeddings
	Wx    gpu.Buf // (4H, E) LSTM input weights
	Wh    gpu.Buf // (4H, H) LSTM recurrent weights
	LB    gpu.Buf // (4H)    LSTM bias (PyTorch's b_ih + b_hh)
	DecW  gpu.Buf // (M, H)  merge dense
	DecB  gpu.Buf // (M)
	OutW  gpu.Buf // (V, M)  output dense over the vocabulary
	OutB  gpu.Buf // (V)
}

// Tensor names one parameter: its safetensors name, shape and place in the flat buffer.
type Tensor struct {
	Name  string
	Shape []int
	Off   int
	Len   int
}

// Tensors lists the parameters in flat-buffer order.
func (c Config) Tensors() []Tensor {
	F, E, H, M, V := c.FeatDim, c.Embed, c.Hidden, c.Mid, c.Vocab
	ts := []Tensor{
		{Name: "img.weight", Shape: []int{H, F}},
		{Name: "img.bias", Shape: []int{H}},
		{Name: "embed.weight", Shape: []int{V, E}},
		{Name: "lstm.weight_ih", Shape: []int{4 * H, E}},
		{Name: "lstm.weight_hh", Shape: []int{4 * H, H}},
		{Name: "lstm.bias", Shape: []int{4 * H}},
		{Name: "dec.weight", Shape: []int{M, H}},
		{Name: "dec.bias", Shape: []int{M}},
		{Name: "out.weight", Shape: []int{V, M}},
		{Name: "out.bias", Shape: []int{V}},
	}
	off := 0
	for i := range ts {
		n := 1
		for _, d := range ts[i].Shape {
			n *= d
		}
		ts[i].Off, ts[i].Len = off, n
		off += n
	}
	return ts
}

// NumParams is the length of the flat parameter buffer.
func (c Config) NumParams() int {
	ts := c.Tensors()
	last := ts[len(ts)-1]
	return last.Off + last.Len
}

// fields returns pointers to the views in Tensors order.
func (p *Params) fields() []*gpu.Buf {
	return []*gpu.Buf{&p.ImgW, &p.ImgB, &p.Embed, &p.Wx, &p.Wh, &p.LB, &p.DecW, &p.DecB, &p.OutW, &p.OutB}
}

// views slices flat (NumParams) into named parameter views.
func views(c Config, flat gpu.Buf) Params {
	var p Params
	fs := p.fields()
	for i, t := range c.Tensors() {
		*fs[i] = flat.Slice(t.Off, t.Len)
	}
	return p
}

// initParams returns the initial flat parameters (host) for seed, following Keras'
// defaults for the seed's layers, which train this model well: Glorot-uniform
// dense and input weights, orthogonal-like scaled recurrent weights, uniform
// +-0.05 embeddings, zero biases except the LSTM forget gate's, which starts at 1
// so early gradients flow through time.
func initParams(c Config, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	host := make([]float32, c.NumParams())
	uniform := func(dst []float32, lim float64) {
		for i := range dst {
			dst[i] = float32((rng.Float64()*2 - 1) * lim)
		}
	}
	glorot := func(out, in int) float64 { return math.Sqrt(6 / float64(out+in)) }
	H := c.Hidden
	for _, t := range c.Tensors() {
		dst := host[t.Off : t.Off+t.Len]
		switch t.Name {
		case "embed.weight":
			uniform(dst, 0.05)
		case "lstm.weight_hh":
			// Uniform with variance 1/H per row keeps the recurrent map near
			// norm-preserving, as an orthogonal matrix would.
			uniform(dst, math.Sqrt(3/float64(H)))
		case "lstm.bias":
			for i := H; i < 2*H; i++ { // forget gate block
				dst[i] = 1
			}
		default:
			if len(t.Shape) == 2 {
				uniform(dst, glorot(t.Shape[0], t.Shape[1]))
			}
		}
	}
	return host
}

// view is a named slot for carve.
type view struct {
	dst *gpu.Buf
	n   int
}

// carve allocates one flat buffer for every view and points each view at its
// part, so a group of buffers is one allocation and one Free.
func carve(dev gpu.Device, vs []view) gpu.Buf {
	total := 0
	for _, v := range vs {
		total += v.n
	}
	flat := dev.Alloc(total)
	off := 0
	for _, v := range vs {
		*v.dst = flat.Slice(off, v.n)
		off += v.n
	}
	return flat
}
