package encoder

import (
	"errors"
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// Top is the trainable top of the encoder: its last blocks and the head
// convolution, run on the activations at the cut (the input of the first
// trained block, which Bottom computes) with everything the backward pass
// needs kept. Its parameters, their gradients and Adam's moments are each one
// flat buffer in TopParams order, so the update is one AdamW call.
//
// Dimension legend as in the package comment; s is the side at the cut (7 for
// the last three blocks of MobileNetV2 1.0/224), G the grid side.
type Top struct {
	dev    gpu.Device
	cfg    Config
	first  int // the first trained block
	maxB   int
	params []Param // TopParams(first)

	flat, grad, mom1, mom2 gpu.Buf // (NumParams) each
	w, g                   []blockParams
	head, dhead            layer
	steps                  int

	// Activations of the last Forward, for n images: xs[k] is block first+k's
	// input (xs[0] is the caller's cut), xs[len] the head's input; e[k] and
	// d[k] the expanded and depthwise activations of block first+k.
	xs, e, d []gpu.Buf
	grid     gpu.Buf // (B, G, G, F)
	n        int
	// Gradient scratch: dx, dy the gradients of block inputs and outputs
	// (ping-pong), de and dd of the expanded and depthwise activations.
	dx, dy, de, dd gpu.Buf
	bufs           []gpu.Buf // every allocation, for Close
}

// CutSide is the side of the activations at the input of block first.
func (c *Config) CutSide(first int) int {
	s := ceilDiv(c.Input, 2)
	for _, b := range c.Blocks[:first] {
		s = ceilDiv(s, b.Stride)
	}
	return s
}

// CutLen is the length of one image's activations at the input of block
// first: CutSide^2 * that block's input channels.
func (c *Config) CutLen(first int) int {
	s := c.CutSide(first)
	return s * s * c.Blocks[first].In
}

// TopParams lists the parameters of blocks first.. and the head, in Params order.
func (c *Config) TopParams(first int) []Param {
	var ps []Param
	for _, p := range c.Params() {
		if p.Name == "head.weight" || p.Name == "head.bias" {
			ps = append(ps, p)
			continue
		}
		var i int
		if _, err := fmt.Sscanf(p.Name, "blocks.%d.", &i); err == nil && i >= first {
			ps = append(ps, p)
		}
	}
	return ps
}

// FirstTuned is the first trained block when the last n blocks are trained; it
// fails unless 1 <= n <= the number of blocks.
func (c *Config) FirstTuned(n int) (int, error) {
	if n < 1 || n > len(c.Blocks) {
		return 0, fmt.Errorf("encoder: cannot fine-tune the last %d blocks of a network of %d; choose 1..%d", n, len(c.Blocks), len(c.Blocks))
	}
	return len(c.Blocks) - n, nil
}

// NewTop uploads the weights of the last blocks of w from block first, and the
// head, to dev and allocates activations for batches of up to maxB images.
func NewTop(dev gpu.Device, w *Weights, first, maxB int) (*Top, error) {
	c := w.Config
	if err := c.validate(); err != nil {
		return nil, err
	}
	if first < 0 || first >= len(c.Blocks) || maxB < 1 {
		return nil, fmt.Errorf("encoder: top from block %d of %d for batches of %d", first, len(c.Blocks), maxB)
	}
	t := &Top{dev: dev, cfg: c, first: first, maxB: maxB, params: c.TopParams(first)}
	host := make([]float32, 0, t.NumParams())
	for _, p := range t.params {
		v, ok := w.Tensors[p.Name]
		if !ok || len(v) != numel(p.Shape) {
			return nil, fmt.Errorf("encoder: weight %s: have %d values, want shape %v", p.Name, len(v), p.Shape)
		}
		host = append(host, v...)
	}
	t.flat = t.alloc(len(host))
	dev.Upload(t.flat, host)
	t.w, t.head = t.views(t.flat)

	// Activations per block, and the largest gradient of each kind.
	s := c.CutSide(first)
	t.xs = make([]gpu.Buf, 1, len(c.Blocks)-first+1)
	for _, b := range c.Blocks[first:] {
		o := ceilDiv(s, b.Stride)
		t.e = append(t.e, t.alloc(maxB*s*s*b.Hidden))
		t.d = append(t.d, t.alloc(maxB*o*o*b.Hidden))
		t.xs = append(t.xs, t.alloc(maxB*o*o*b.Out))
		s = o
	}
	t.grid = t.alloc(maxB * s * s * c.Head)
	return t, nil
}

// training allocates, on first use, what only training needs: gradients,
// Adam's moments and the backward pass's scratch (a Top that only runs
// Forward, as in the pipeline, never does).
func (t *Top) training() {
	if t.grad != nil {
		return
	}
	n := t.NumParams()
	t.grad, t.mom1, t.mom2 = t.alloc(n), t.alloc(n), t.alloc(n)
	t.g, t.dhead = t.views(t.grad)
	c := &t.cfg
	s, maxX, maxE, maxD := c.CutSide(t.first), 0, 1, 1
	for _, b := range c.Blocks[t.first:] {
		o := ceilDiv(s, b.Stride)
		maxX = max(maxX, s*s*b.In, o*o*b.Out)
		maxE, maxD = max(maxE, s*s*b.Hidden), max(maxD, o*o*b.Hidden)
		s = o
	}
	t.dx, t.dy = t.alloc(t.maxB*maxX), t.alloc(t.maxB*maxX)
	t.de, t.dd = t.alloc(t.maxB*maxE), t.alloc(t.maxB*maxD)
}

func (t *Top) alloc(n int) gpu.Buf {
	b := t.dev.Alloc(n)
	t.bufs = append(t.bufs, b)
	return b
}

// views cuts flat (a parameter or gradient buffer) into the blocks' and the
// head's layers, in TopParams order.
func (t *Top) views(flat gpu.Buf) ([]blockParams, layer) {
	off := 0
	next := func(p Param) gpu.Buf {
		n := numel(p.Shape)
		v := flat.Slice(off, n)
		off += n
		return v
	}
	byName := map[string]gpu.Buf{}
	for _, p := range t.params {
		byName[p.Name] = next(p)
	}
	get := func(name string) layer { return layer{byName[name+".weight"], byName[name+".bias"]} }
	bs := make([]blockParams, len(t.cfg.Blocks)-t.first)
	for k := range bs {
		pre := fmt.Sprintf("blocks.%d.", t.first+k)
		bs[k] = blockParams{dw: get(pre + "dw"), project: get(pre + "project")}
		if t.cfg.Blocks[t.first+k].Expand {
			bs[k].expand = get(pre + "expand")
		}
	}
	return bs, get("head")
}

// First is the first trained block.
func (t *Top) First() int { return t.first }

// NumParams is the number of trained parameters.
func (t *Top) NumParams() int {
	n := 0
	for _, p := range t.params {
		n += numel(p.Shape)
	}
	return n
}

// CutLen is the length of one image's input: the activations at the cut.
func (t *Top) CutLen() int { return t.cfg.CutLen(t.first) }

// GridLen is the length of one image's output grid (G*G*F).
func (t *Top) GridLen() int { g := t.cfg.GridSize(); return g * g * t.cfg.Head }

// Forward runs the top on n images' activations at the cut, cut (n, s, s, C),
// which must stay unchanged until Backward, and returns the (n, G, G, F) grid:
// what Encoder.Grid gives for the same images when the weights are the same.
func (t *Top) Forward(cut gpu.Buf, n int) gpu.Buf {
	if n < 1 || n > t.maxB || cut.Len() != n*t.CutLen() {
		panic(fmt.Sprintf("encoder: Top.Forward of %d images (%d values); want 1..%d images of %d values", n, cut.Len(), t.maxB, t.CutLen()))
	}
	t.n = n
	t.xs[0] = cut
	s := t.cfg.CutSide(t.first)
	for k, b := range t.cfg.Blocks[t.first:] {
		o := ceilDiv(s, b.Stride)
		blockForward(t.dev, &t.w[k], b, t.xs[k+1].Slice(0, n*o*o*b.Out), t.xs[k].Slice(0, n*s*s*b.In), t.e[k], t.d[k], n, s)
		s = o
	}
	p := conv(n, s, t.cfg.Blocks[len(t.cfg.Blocks)-1].Out, t.cfg.Head, 1, 1)
	grid := act(t.grid, p)
	t.dev.Conv2D(grid, t.xs[len(t.xs)-1].Slice(0, n*s*s*p.C), t.head.w, t.head.b, p, gpu.ActReLU6)
	return grid
}

// Backward adds the gradients of the parameters given dgrid (n, G, G, F), the
// gradient of the last Forward's grid, which it overwrites; in the reverse
// order of the forward pass. The cut gets no gradient: everything below it is
// frozen.
func (t *Top) Backward(dgrid gpu.Buf) {
	t.training()
	dev, n, c := t.dev, t.n, &t.cfg
	G := c.GridSize()
	if dgrid.Len() != n*G*G*c.Head {
		panic(fmt.Sprintf("encoder: Top.Backward of %d gradient values after a Forward of %d images of %d", dgrid.Len(), n, G*G*c.Head))
	}
	// Head: grid (rows, F) = relu6(x (rows, C) · Wᵀ + b).
	last := c.Blocks[len(c.Blocks)-1]
	rows, C, F := n*G*G, last.Out, c.Head
	x := t.xs[len(t.xs)-1].Slice(0, rows*C)
	dev.BiasActBackward(dgrid, t.dhead.b, dgrid, act(t.grid, conv(n, G, C, F, 1, 1)), rows, F, gpu.ActReLU6)
	dev.Gemm(true, false, F, C, rows, 1, dgrid, F, x, C, 1, t.dhead.w, C)
	outBuf, inBuf := t.dy, t.dx // ping-pong for the gradients of block outputs and inputs
	dout := outBuf.Slice(0, rows*C)
	dev.Gemm(false, false, rows, C, F, 1, dgrid, F, t.head.w, C, 0, dout, C)

	// Blocks, last first. dout is the gradient of block k's output; din gets
	// its input's (not for the first trained block, whose input is the cut).
	sides := make([]int, len(t.w)+1)
	sides[0] = c.CutSide(t.first)
	for k, b := range c.Blocks[t.first:] {
		sides[k+1] = ceilDiv(sides[k], b.Stride)
	}
	for k := len(t.w) - 1; k >= 0; k-- {
		b, s, o := c.Blocks[t.first+k], sides[k], sides[k+1]
		w, g := &t.w[k], &t.g[k]
		rowsI, rowsO := n*s*s, n*o*o
		var din gpu.Buf
		if k > 0 {
			din = inBuf.Slice(0, rowsI*b.In)
		}
		xk := t.xs[k].Slice(0, rowsI*b.In)
		d := t.d[k].Slice(0, rowsO*b.Hidden)
		// Project: out (rowsO, Out) = d · Wpᵀ + bp (+ x).
		dev.BiasActBackward(dout, g.project.b, dout, dout, rowsO, b.Out, gpu.ActNone)
		dev.Gemm(true, false, b.Out, b.Hidden, rowsO, 1, dout, b.Out, d, b.Hidden, 1, g.project.w, b.Hidden)
		dd := t.dd.Slice(0, rowsO*b.Hidden)
		dev.Gemm(false, false, rowsO, b.Hidden, b.Out, 1, dout, b.Out, w.project.w, b.Hidden, 0, dd, b.Hidden)
		// Depthwise: d = relu6(dw(h) + bd), h the expanded activation (or x).
		dev.BiasActBackward(dd, nil, dd, d, rowsO, b.Hidden, gpu.ActReLU6)
		p := conv(n, s, b.Hidden, b.Hidden, 3, b.Stride)
		if !b.Expand {
			dev.DepthwiseConv2DBackward(din, g.dw.w, g.dw.b, dd, xk, w.dw.w, p)
		} else {
			h := t.e[k].Slice(0, rowsI*b.Hidden)
			de := t.de.Slice(0, rowsI*b.Hidden)
			dev.DepthwiseConv2DBackward(de, g.dw.w, g.dw.b, dd, h, w.dw.w, p)
			// Expand: h = relu6(x · Weᵀ + be).
			dev.BiasActBackward(de, g.expand.b, de, h, rowsI, b.Hidden, gpu.ActReLU6)
			dev.Gemm(true, false, b.Hidden, b.In, rowsI, 1, de, b.Hidden, xk, b.In, 1, g.expand.w, b.In)
			if din != nil {
				dev.Gemm(false, false, rowsI, b.In, b.Hidden, 1, de, b.Hidden, w.expand.w, b.In, 0, din, b.In)
			}
		}
		if din != nil && b.Residual { // out = ... + x: x's gradient gets dout too
			dev.Add(din, din, dout)
		}
		dout, outBuf, inBuf = din, inBuf, outBuf
	}
}

// ZeroGrad clears the gradients before a step's Backward.
func (t *Top) ZeroGrad() {
	t.training()
	t.dev.Zero(t.grad)
}

// ClipGradNorm is gpu.ClipGradNorm of the fine-tuned layers' gradients (a
// gpu.ErrDiverged names them).
func (t *Top) ClipGradNorm(maxNorm float64) (float64, error) {
	t.training()
	norm, err := gpu.ClipGradNorm(t.dev, t.grad, maxNorm)
	if errors.Is(err, gpu.ErrDiverged) {
		err = fmt.Errorf("the fine-tuned encoder layers: %w", err)
	}
	return norm, err
}

// Update applies one AdamW step to every trained parameter.
func (t *Top) Update(lr, beta1, beta2, eps, weightDecay float32) {
	t.training()
	t.steps++
	t.dev.AdamW(t.flat, t.grad, t.mom1, t.mom2, lr, beta1, beta2, eps, weightDecay, t.steps)
}

// Flat is the parameter buffer (NumParams), in TopParams order.
func (t *Top) Flat() gpu.Buf { return t.flat }

// Tensors downloads the trained parameters by name.
func (t *Top) Tensors() (map[string][]float32, error) {
	host := make([]float32, t.NumParams())
	if err := t.dev.Download(host, t.flat); err != nil {
		return nil, err
	}
	out := map[string][]float32{}
	off := 0
	for _, p := range t.params {
		n := numel(p.Shape)
		out[p.Name] = host[off : off+n : off+n]
		off += n
	}
	return out, nil
}

// Describe names the trained layers, for logs.
func (t *Top) Describe() string {
	return fmt.Sprintf("encoder blocks %d-%d and head, %d parameters", t.first, len(t.cfg.Blocks)-1, t.NumParams())
}

// Close frees the device memory.
func (t *Top) Close() {
	for _, b := range t.bufs {
		t.dev.Free(b)
	}
	t.bufs = nil
}

// State downloads the parameters, Adam's moments and the step count: what a
// checkpoint saves so that a resumed run continues exactly.
func (t *Top) State() (flat, m1, m2 []float32, steps int, err error) {
	t.training()
	n := t.NumParams()
	flat, m1, m2 = make([]float32, n), make([]float32, n), make([]float32, n)
	for i, b := range []gpu.Buf{t.flat, t.mom1, t.mom2} {
		if err = t.dev.Download([][]float32{flat, m1, m2}[i], b); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	return flat, m1, m2, t.steps, nil
}

// SetState restores what State returned.
func (t *Top) SetState(flat, m1, m2 []float32, steps int) error {
	t.training()
	n := t.NumParams()
	if len(flat) != n || len(m1) != n || len(m2) != n {
		return fmt.Errorf("encoder: top state of %d, %d and %d values for %d parameters", len(flat), len(m1), len(m2), n)
	}
	t.dev.Upload(t.flat, flat)
	t.dev.Upload(t.mom1, m1)
	t.dev.Upload(t.mom2, m2)
	t.steps = steps
	return nil
}
