package decoder

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/captioner/captioner/gpu"
)

// Params are named views into one flat buffer. Gradients use the same struct over
// a second flat buffer of the same layout, so the optimiser is one AdamW call and
// a checkpoint is one write.
//
// Weights are stored (out, in), PyTorch's nn.Linear layout; LSTM gate blocks are
// in PyTorch's order i, f, g, o. Views an architecture does not have are nil.
type Params struct {
	Embed gpu.Buf // (V, E)  word embeddings
	Wx    gpu.Buf // (4H, E) LSTM input weights; attention: (4H, E+F), [embedding, context], or (4H, E) with CtxRank
	Wh    gpu.Buf // (4H, H) LSTM recurrent weights
	LB    gpu.Buf // (4H)    LSTM bias (PyTorch's b_ih + b_hh)
	OutW  gpu.Buf // (V, M)  output dense over the vocabulary; attention: (V, E)
	OutB  gpu.Buf // (V)

	// Merge.
	ImgW gpu.Buf // (H, F)  image branch dense
	ImgB gpu.Buf // (H)
	DecW gpu.Buf // (M, H)  merge dense
	DecB gpu.Buf // (M)

	// Attention.
	InitHW, InitHB gpu.Buf // (H, F), (H) h0 = tanh(mean region · InitHWᵀ + InitHB)
	InitCW, InitCB gpu.Buf // (H, F), (H) c0 likewise
	AttFW, AttFB   gpu.Buf // (A, F), (A) regions' side of the attention MLP
	AttHW          gpu.Buf // (A, H)      the state's side
	AttV           gpu.Buf // (A)         region score = AttV · tanh(...)
	GateW, GateB   gpu.Buf // (F, H), (F) context gate beta = sigmoid(h · GateWᵀ + GateB)
	OutHW, OutHB   gpu.Buf // (E, H), (E) deep output's state term
	OutZW          gpu.Buf // (E, F)      deep output's context term
	// A factorized context weight (Config.CtxRank r > 0): Wx holds the
	// embedding's columns only, and the context's are CtxU·CtxV.
	CtxU, CtxV gpu.Buf // (4H, r), (r, F)
}

// Tensor names one parameter: its safetensors name, shape and place in the flat buffer.
type Tensor struct {
	Name  string
	Shape []int
	Off   int
	Len   int
}

// Tensors lists the parameters in flat-buffer order. Names follow the PyTorch
// peers in shared/bench/torch_captioner.py.
func (c Config) Tensors() []Tensor {
	F, E, H, M, V, A := c.FeatDim, c.Embed, c.Hidden, c.Mid, c.Vocab, c.Att
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
	if c.Arch == ArchAttention {
		ts = []Tensor{
			{Name: "init_h.weight", Shape: []int{H, F}},
			{Name: "init_h.bias", Shape: []int{H}},
			{Name: "init_c.weight", Shape: []int{H, F}},
			{Name: "init_c.bias", Shape: []int{H}},
			{Name: "att_f.weight", Shape: []int{A, F}},
			{Name: "att_f.bias", Shape: []int{A}},
			{Name: "att_h.weight", Shape: []int{A, H}},
			{Name: "att_v.weight", Shape: []int{A}},
			{Name: "gate.weight", Shape: []int{F, H}},
			{Name: "gate.bias", Shape: []int{F}},
			{Name: "embed.weight", Shape: []int{V, E}},
			{Name: "lstm.weight_ih", Shape: []int{4 * H, E + F}},
			{Name: "lstm.weight_hh", Shape: []int{4 * H, H}},
			{Name: "lstm.bias", Shape: []int{4 * H}},
			{Name: "out_h.weight", Shape: []int{E, H}},
			{Name: "out_h.bias", Shape: []int{E}},
			{Name: "out_z.weight", Shape: []int{E, F}},
			{Name: "out.weight", Shape: []int{V, E}},
			{Name: "out.bias", Shape: []int{V}},
		}
	}
	if r := c.CtxRank; r > 0 {
		for i, t := range ts {
			if t.Name == "lstm.weight_ih" {
				ts[i].Shape = []int{4 * H, E}
				ts = slices.Insert(ts, i+1, Tensor{Name: "lstm.ctx_u", Shape: []int{4 * H, r}}, Tensor{Name: "lstm.ctx_v", Shape: []int{r, F}})
				break
			}
		}
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

// field returns the view that holds the tensor named name.
func (p *Params) field(name string) *gpu.Buf {
	f, ok := map[string]*gpu.Buf{
		"img.weight": &p.ImgW, "img.bias": &p.ImgB, "embed.weight": &p.Embed,
		"lstm.weight_ih": &p.Wx, "lstm.weight_hh": &p.Wh, "lstm.bias": &p.LB,
		"dec.weight": &p.DecW, "dec.bias": &p.DecB, "out.weight": &p.OutW, "out.bias": &p.OutB,
		"init_h.weight": &p.InitHW, "init_h.bias": &p.InitHB, "init_c.weight": &p.InitCW, "init_c.bias": &p.InitCB,
		"att_f.weight": &p.AttFW, "att_f.bias": &p.AttFB, "att_h.weight": &p.AttHW, "att_v.weight": &p.AttV,
		"gate.weight": &p.GateW, "gate.bias": &p.GateB, "out_h.weight": &p.OutHW, "out_h.bias": &p.OutHB,
		"out_z.weight": &p.OutZW, "lstm.ctx_u": &p.CtxU, "lstm.ctx_v": &p.CtxV,
	}[name]
	if !ok {
		panic("decoder: no parameter view for tensor " + name)
	}
	return f
}

// views slices flat (NumParams) into named parameter views.
func views(c Config, flat gpu.Buf) Params {
	var p Params
	for _, t := range c.Tensors() {
		*p.field(t.Name) = flat.Slice(t.Off, t.Len)
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
		case "att_v.weight":
			uniform(dst, math.Sqrt(3/float64(c.Att)))
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
