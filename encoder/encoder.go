// Package encoder is captioner's image encoder: MobileNetV2 (ImageNet-pretrained,
// imported from a TFLite file and dequantized to float32) running on a gpu.Device.
// It turns (B, 224, 224, 3) images in [-1, 1] into the (B, 7, 7, 1280) feature
// grid, the pooled (B, 1280) features and, for classify, ImageNet probabilities.
//
// Dimension legend: B batch, H W spatial, C channels, E hidden (expanded)
// channels, K classes, F head features (1280).
package encoder

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/listing"
)

// Encoder runs MobileNetV2 on a device. Activation buffers are allocated once for
// MaxBatch images, so Encode allocates no activation memory. Like its Device, an Encoder is
// not safe for concurrent use.
type Encoder struct {
	dev      gpu.Device
	cfg      Config
	maxBatch int
	params   []gpu.Buf // every weight buffer, for Close
	// cut is the number of blocks Forward runs: all of them for an encoder
	// from New, which then runs the head; fewer for one from NewBottom, whose
	// output is the input of block cut.
	cut int
	// chainEnd is the number of blocks the planned chain runs: cut, or fewer
	// for a bottom whose last blocks are residual (run by the per-layer kernels).
	chainEnd  int
	precision gpu.Precision

	// chain, when set, runs the stem, the blocks and the head as one planned
	// call (see gpu.ConvPlanner) instead of the per-layer kernels below.
	chain gpu.ConvChain

	stem, head, classifier layer
	blocks                 []blockParams

	// The network runs in two parts (see lateArea): the stem and blocks
	// [0, split) image chunk by image chunk, earlyChunk images at a time, in the
	// small buffers ex, ey; then blocks [split, end) on the whole batch in x, y,
	// each block in chunks of chunks[i] images.
	split, earlyChunk int
	chunks            []int

	// Activations:
	in     gpu.Buf // (B, S, S, 3) input images
	ex, ey gpu.Buf // early block inputs and outputs, ping-pong, for earlyChunk images
	x, y   gpu.Buf // late block inputs and outputs, ping-pong: (B, H, W, C) at most
	e      gpu.Buf // expanded (chunk, H, W, E)
	d      gpu.Buf // depthwise output (chunk, H/stride, W/stride, E)
	grid   gpu.Buf // (B, G, G, F)
	pooled gpu.Buf // (B, F)
	probs  gpu.Buf // (B, K)
	n      int     // images in the last Encode
}

// The per-layer path bounds a block's expanded activation per chunk of images
// by the device's ChunkFloats: on the CPU (1M floats), the expand/depthwise/
// project chain of a chunk stays in the last-level cache. The early,
// high-resolution part of the network (block inputs larger than lateArea
// positions) goes further and runs depth-first, one chunk of images through the
// stem and all its blocks, so that its block inputs and outputs stay in cache
// too; the late part, where a single image gives GEMMs of only 196 or 49 rows,
// runs in chunks as large as the bound allows. A GPU's bound is its kernels'
// index range: whole batches.
const lateArea = 16 * 16

// layer is the weight (OC, KH, KW, C) or (KH, KW, C) and bias (OC) of a convolution.
type layer struct{ w, b gpu.Buf }

// blockParams are the layers of one block; expand is unset when the block has none.
type blockParams struct{ expand, dw, project layer }

// PrecisionAuto asks New for bfloat16 where the device computes it faster than
// float32 (on the CPU: gpu.FastBFloat16, AMX or Zen 4's dot products) and
// float32 elsewhere.
const PrecisionAuto = "auto"

// New uploads w to dev and allocates activations for up to maxBatch images (with
// a planned chain, only the classifier's weights and the input and output buffers:
// the chain holds the rest).
//
// precision is float32, bfloat16 or auto. On a gpu.ConvPlanner device the whole
// network is planned as one chain; elsewhere float32 runs the device's per-layer
// kernels. A float32 chain gives the per-layer kernels' features up to summation
// order (pooled features within 1.2e-5 of their scale: TestFloat32ChainMatchesKernels),
// so extract's cached features do not depend on which ran, and runs 2-3x faster
// than them on the CPU. Bfloat16 keeps weights and activations in bfloat16, sums
// in float32: pooled features 3-4% from float32's (relative L2; the shipped
// model's dev BLEU-4 does not move), 2-3x faster than float32 on CPUs with AMX, 1.9x on AMD's Zen 4.
func New(dev gpu.Device, w *Weights, maxBatch int, precision string) (*Encoder, error) {
	return build(dev, w, maxBatch, precision, len(w.Config.Blocks), true)
}

// NewFeatures is New without the ImageNet classifier (Classify panics): for a
// caller that classifies the pooled features elsewhere, as the pipeline's
// Tagger does on the decoding device, and need not hold a second copy of its
// weights (5 MB).
func NewFeatures(dev gpu.Device, w *Weights, maxBatch int, precision string) (*Encoder, error) {
	return build(dev, w, maxBatch, precision, len(w.Config.Blocks), false)
}

// NewBottom is New for the network below block cut: its Forward computes, in
// float32, the activations at the input of block cut, (n, s, s, C) with
// s = Config.CutSide(cut), which Cut returns and a Top continues from.
func NewBottom(dev gpu.Device, w *Weights, cut, maxBatch int) (*Encoder, error) {
	if cut < 0 || cut >= len(w.Config.Blocks) {
		return nil, fmt.Errorf("encoder: cut at block %d of %d", cut, len(w.Config.Blocks))
	}
	return build(dev, w, maxBatch, string(gpu.Float32), cut, false)
}

// build makes an encoder running blocks [0, cut), and the head when cut is all
// of them, with the classifier when classifier is set.
func build(dev gpu.Device, w *Weights, maxBatch int, precision string, cut int, classifier bool) (*Encoder, error) {
	if maxBatch <= 0 {
		return nil, fmt.Errorf("encoder: max batch %d must be positive", maxBatch)
	}
	c := w.Config
	if err := c.validate(); err != nil {
		return nil, err
	}
	for _, p := range c.Params() {
		if v, ok := w.Tensors[p.Name]; !ok || len(v) != numel(p.Shape) {
			return nil, fmt.Errorf("encoder: weight %s: have %d values, want shape %v", p.Name, len(v), p.Shape)
		}
	}
	planner, canPlan := dev.(gpu.ConvPlanner)
	// A planned chain cannot end in a residual add (the CPU's adds in place
	// into the source's buffer, and the last layer writes the caller's), so a
	// bottom cut after residual blocks plans the chain up to them and runs them
	// with the per-layer kernels.
	chainEnd := cut
	for chainEnd > 0 && chainEnd < len(c.Blocks) && c.Blocks[chainEnd-1].Residual {
		chainEnd--
	}
	e := &Encoder{dev: dev, cfg: c, maxBatch: maxBatch, precision: gpu.Float32, cut: cut, chainEnd: chainEnd}
	// What a failed or panicking build got to is freed: a panic is recovered by
	// a server reloading its models, and the chain's plans are C memory.
	built := false
	defer func() {
		if !built {
			e.Close()
		}
	}()
	layers, unranged := chainLayers(w, chainEnd)
	switch precision {
	case string(gpu.Float32):
	case string(gpu.BFloat16), string(gpu.Int8):
		if !canPlan {
			return nil, fmt.Errorf("encoder: device %s cannot run the encoder in %s; use precision float32 (or auto)", dev.Name(), precision)
		}
		if precision == string(gpu.Int8) && len(unranged) > 0 {
			return nil, fmt.Errorf("encoder: precision int8 needs the activation range of every layer, which only weights imported from a quantized TFLite file carry (not a float file's, nor fine-tuned layers'); these weights have none for %s; use precision float32 or bfloat16", listing.First(unranged, 3))
		}
		e.precision = gpu.Precision(precision)
	case PrecisionAuto:
		if gpu.FastBFloat16(dev) {
			e.precision = gpu.BFloat16
		}
	default:
		return nil, fmt.Errorf("encoder: precision %q: want auto, float32, bfloat16 or int8", precision)
	}
	if chainEnd < cut {
		e.prepareLayers(w)
		// The chain's output goes into the late part's buffers.
		canPlan = canPlan && chainEnd >= e.split
	}
	if canPlan {
		chain, err := planner.PlanConvChain(layers, maxBatch, e.precision)
		if err != nil {
			return nil, fmt.Errorf("encoder: %w", err)
		}
		e.chain = chain
	}
	B := maxBatch
	e.in = dev.Alloc(B * c.Input * c.Input * 3)
	e.grid = dev.Alloc(B * e.outLen())
	e.pooled = dev.Alloc(B * c.Head)
	if classifier {
		e.classifier = e.upload(w, "classifier")
		e.probs = dev.Alloc(B * c.Classes)
	}
	if e.chain == nil && chainEnd == cut {
		e.prepareLayers(w)
	}
	built = true
	return e, nil
}

// upload copies the weight and bias of layer name to the device.
func (e *Encoder) upload(w *Weights, name string) layer {
	return layer{e.uploadTensor(w.Tensors[name+".weight"]), e.uploadTensor(w.Tensors[name+".bias"])}
}

func (e *Encoder) uploadTensor(v []float32) gpu.Buf {
	b := e.dev.Alloc(len(v))
	e.dev.Upload(b, v)
	e.params = append(e.params, b)
	return b
}

// prepareLayers uploads the weights the per-layer kernels read (a planned chain
// holds its own) and allocates their activations: the early chunk and late
// chunk sizes, and the ping-pong buffers they need.
func (e *Encoder) prepareLayers(w *Weights) {
	c, dev := &e.cfg, e.dev
	e.stem, e.head = e.upload(w, "stem"), e.upload(w, "head")
	for i, b := range c.Blocks {
		pre := fmt.Sprintf("blocks.%d.", i)
		bp := blockParams{dw: e.upload(w, pre+"dw"), project: e.upload(w, pre+"project")}
		if b.Expand {
			bp.expand = e.upload(w, pre+"expand")
		}
		e.blocks = append(e.blocks, bp)
	}
	s := ceilDiv(c.Input, 2)
	e.split = e.cut
	maxEarly := 1 // floats per image of the largest early expanded activation
	for i, b := range c.Blocks[:e.cut] {
		if s*s <= lateArea {
			e.split = i
			break
		}
		maxEarly = max(maxEarly, s*s*b.Hidden)
		s = ceilDiv(s, b.Stride)
	}
	chunkFloats := dev.ChunkFloats()
	e.earlyChunk = min(e.maxBatch, max(1, chunkFloats/maxEarly))
	s = ceilDiv(c.Input, 2)
	maxEX, maxXY, maxE, maxD := s*s*c.Stem, 0, 0, 0
	e.chunks = make([]int, len(c.Blocks))
	for i, b := range c.Blocks {
		o := ceilDiv(s, b.Stride)
		k := e.earlyChunk
		if i >= e.split {
			k = min(e.maxBatch, max(1, chunkFloats/(s*s*b.Hidden)))
			maxXY = max(maxXY, s*s*b.In, o*o*b.Out)
		} else {
			maxEX = max(maxEX, o*o*b.Out)
		}
		e.chunks[i] = k
		maxE = max(maxE, k*s*s*b.Hidden)
		maxD = max(maxD, k*o*o*b.Hidden)
		s = o
	}
	maxXY = max(maxXY, s*s*c.Blocks[len(c.Blocks)-1].Out)
	e.ex, e.ey = dev.Alloc(e.earlyChunk*maxEX), dev.Alloc(e.earlyChunk*maxEX)
	e.x, e.y = dev.Alloc(e.maxBatch*maxXY), dev.Alloc(e.maxBatch*maxXY)
	e.e, e.d = dev.Alloc(max(maxE, 1)), dev.Alloc(max(maxD, 1))
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Config returns the architecture.
func (e *Encoder) Config() Config { return e.cfg }

// MaxBatch is the largest batch Encode accepts.
func (e *Encoder) MaxBatch() int { return e.maxBatch }

// ImageLen is the number of floats of one input image: S*S*3.
func (e *Encoder) ImageLen() int { return e.cfg.Input * e.cfg.Input * 3 }

// FeatureDim is the length of a pooled feature vector (1280).
func (e *Encoder) FeatureDim() int { return e.cfg.Head }

// GridLen is the length of one image's feature grid: G*G*F (7*7*1280).
func (e *Encoder) GridLen() int { g := e.cfg.GridSize(); return g * g * e.cfg.Head }

// Precision is what the encoder computes in: float32 or bfloat16.
func (e *Encoder) Precision() gpu.Precision { return e.precision }

// Describe says how the encoder runs, for logs: the device's per-layer kernels,
// or the planned chain's library and kernels.
func (e *Encoder) Describe() string {
	if e.chain != nil {
		return e.chain.Describe()
	}
	return "per-layer kernels of " + e.dev.Name()
}

// Encode runs the network up to the pooled features on n images, (n, S, S, 3)
// NHWC in [-1, 1] as imgproc.ToTensor writes them, flattened into images. The
// results stay on the device: Grid and Pooled return views of them. Errors are
// a planned chain's (one that could not prepare a new batch size, say); the
// per-layer kernels report theirs from the device's Sync and Download.
func (e *Encoder) Encode(images []float32, n int) error {
	if n <= 0 || n > e.maxBatch || len(images) != n*e.ImageLen() {
		panic(fmt.Sprintf("encoder: Encode of %d images (%d floats); want 1..%d images of %d floats", n, len(images), e.maxBatch, e.ImageLen()))
	}
	in := e.in.Slice(0, len(images))
	e.dev.Upload(in, images)
	return e.Forward(in, n)
}

// EncodeEach is Encode for images held apart, each (S, S, 3): each is uploaded
// into its place in the batch, without first being copied into one host array.
func (e *Encoder) EncodeEach(images [][]float32) error {
	n, l := len(images), e.ImageLen()
	if n == 0 || n > e.maxBatch {
		panic(fmt.Sprintf("encoder: EncodeEach of %d images; want 1..%d", n, e.maxBatch))
	}
	for i, x := range images {
		if len(x) != l {
			panic(fmt.Sprintf("encoder: EncodeEach: image %d has %d floats, want %d", i, len(x), l))
		}
		e.dev.Upload(e.in.Slice(i*l, l), x)
	}
	return e.Forward(e.in.Slice(0, n*l), n)
}

// Forward is Encode for images already on the device: in is (n, S, S, 3).
func (e *Encoder) Forward(in gpu.Buf, n int) error {
	e.n = n
	if e.chain != nil {
		if e.chainEnd < e.cut {
			out := e.x.Slice(0, n*e.cfg.CutLen(e.chainEnd))
			if err := e.chain.Run(out, in, n); err != nil {
				return fmt.Errorf("encoder: %w", err)
			}
			x, _ := e.runBlocks(e.chainEnd, e.cut, e.x, e.y, n, e.cfg.CutSide(e.chainEnd))
			e.dev.Copy(e.Cut(), x.Slice(0, n*e.outLen()))
			return nil
		}
		if err := e.chain.Run(e.grid.Slice(0, n*e.outLen()), in, n); err != nil {
			return fmt.Errorf("encoder: %w", err)
		}
		if e.cut < len(e.cfg.Blocks) {
			return nil
		}
		g := e.cfg.GridSize()
		e.dev.GlobalAvgPool(e.Pooled(), e.Grid(), n, g*g, e.cfg.Head)
		return nil
	}
	c, dev := &e.cfg, e.dev
	il := e.ImageLen()
	var s int
	for lo := 0; lo < n; lo += e.earlyChunk {
		k := min(e.earlyChunk, n-lo)
		p := conv(k, c.Input, 3, c.Stem, 3, 2)
		dev.Conv2D(act(e.ex, p), in.Slice(lo*il, k*il), e.stem.w, e.stem.b, p, gpu.ActReLU6)
		var out gpu.Buf
		out, s = e.runBlocks(0, e.split, e.ex, e.ey, k, p.OH)
		// The early part's output (k, s, s, C) joins the batch at image lo.
		m := s * s * c.Stem
		if e.split > 0 {
			m = s * s * c.Blocks[e.split-1].Out
		}
		dev.Copy(e.x.Slice(lo*m, k*m), out.Slice(0, k*m))
	}
	x, s := e.runBlocks(e.split, e.cut, e.x, e.y, n, s)
	if e.cut < len(c.Blocks) {
		dev.Copy(e.Cut(), x.Slice(0, n*e.outLen()))
		return nil
	}
	p := conv(n, s, c.Blocks[len(c.Blocks)-1].Out, c.Head, 1, 1)
	grid := act(e.grid, p)
	dev.Conv2D(grid, x.Slice(0, n*s*s*p.C), e.head.w, e.head.b, p, gpu.ActReLU6)
	dev.GlobalAvgPool(e.Pooled(), grid, n, s*s, c.Head)
	return nil
}

// runBlocks runs blocks [from, to) on n images of side s held in x, using y as
// the other ping-pong buffer; it returns the buffer holding the output and its side.
func (e *Encoder) runBlocks(from, to int, x, y gpu.Buf, n, s int) (gpu.Buf, int) {
	for i := from; i < to; i++ {
		b := e.cfg.Blocks[i]
		o := ceilDiv(s, b.Stride)
		for lo := 0; lo < n; lo += e.chunks[i] {
			k := min(e.chunks[i], n-lo)
			// Images [lo, lo+k): NHWC slices of a batch are contiguous.
			e.block(&e.blocks[i], b, y.Slice(lo*o*o*b.Out, k*o*o*b.Out), x.Slice(lo*s*s*b.In, k*s*s*b.In), k, s)
		}
		x, y = y, x
		s = o
	}
	return x, s
}

// act returns the view of buf that holds the output of the convolution p.
func act(buf gpu.Buf, p gpu.ConvParams) gpu.Buf { return buf.Slice(0, p.N*p.OH*p.OW*p.OC) }

// block runs one inverted residual block: out = project(dw(expand(x))) (+ x),
// x is (n, s, s, In), out is (n, s/stride, s/stride, Out).
func (e *Encoder) block(w *blockParams, b Block, out, x gpu.Buf, n, s int) {
	blockForward(e.dev, w, b, out, x, e.e, e.d, n, s)
}

// blockForward runs one inverted residual block on dev, leaving the expanded
// activation (n, s, s, Hidden) at the front of eBuf (when the block expands)
// and the depthwise output (n, o, o, Hidden) at the front of dBuf: what the
// backward pass (Top) keeps, and scratch for inference.
func blockForward(dev gpu.Device, w *blockParams, b Block, out, x, eBuf, dBuf gpu.Buf, n, s int) {
	h := x
	if b.Expand {
		p := conv(n, s, b.In, b.Hidden, 1, 1)
		h = act(eBuf, p)
		dev.Conv2D(h, x, w.expand.w, w.expand.b, p, gpu.ActReLU6)
	}
	p := conv(n, s, b.Hidden, b.Hidden, 3, b.Stride)
	d := act(dBuf, p)
	dev.DepthwiseConv2D(d, h, w.dw.w, w.dw.b, p, gpu.ActReLU6)
	p = conv(n, p.OH, b.Hidden, b.Out, 1, 1)
	dev.Conv2D(out, d, w.project.w, w.project.b, p, gpu.ActNone)
	if b.Residual {
		dev.Add(out, out, x)
	}
}

// chainLayers lists the network from the stem to the head as a gpu.ConvLayer
// chain, the same layers Forward runs one by one, with the quantization of
// w.Quant (for an int8 chain), and the names of the layers w has none for
// ("input" for the image).
func chainLayers(w *Weights, cut int) (layers []gpu.ConvLayer, unranged []string) {
	c := &w.Config
	quant := func(name string) LayerQuant {
		q, ok := w.Quant[name]
		if !ok {
			unranged = append(unranged, name)
		}
		return q
	}
	add := func(name string, p gpu.ConvParams, depthwise bool, act gpu.Act, residual int) {
		q := quant(name)
		layers = append(layers, gpu.ConvLayer{Depthwise: depthwise, P: p, Act: act, Residual: residual,
			Weight: w.Tensors[name+".weight"], Bias: w.Tensors[name+".bias"],
			OutMax: max(-q.Out[0], q.Out[1]), WeightStep: q.WeightStep})
	}
	in := quant("input")
	p := conv(1, c.Input, 3, c.Stem, 3, 2)
	add("stem", p, false, gpu.ActReLU6, -1)
	layers[0].InMax = max(-in.Out[0], in.Out[1])
	s := p.OH
	for i, b := range c.Blocks[:cut] {
		pre := fmt.Sprintf("blocks.%d.", i)
		in := len(layers) - 1 // the layer whose output is the block's input
		if b.Expand {
			add(pre+"expand", conv(1, s, b.In, b.Hidden, 1, 1), false, gpu.ActReLU6, -1)
		}
		p := conv(1, s, b.Hidden, b.Hidden, 3, b.Stride)
		add(pre+"dw", p, true, gpu.ActReLU6, -1)
		residual := -1
		if b.Residual {
			residual = in
		}
		add(pre+"project", conv(1, p.OH, b.Hidden, b.Out, 1, 1), false, gpu.ActNone, residual)
		s = p.OH
	}
	if cut == len(c.Blocks) {
		add("head", conv(1, s, c.Blocks[len(c.Blocks)-1].Out, c.Head, 1, 1), false, gpu.ActReLU6, -1)
	}
	return layers, unranged
}

// conv returns the parameters of a k x k convolution with the given stride on
// (n, s, s, cin) input, padded the TFLite SAME way: the output is ceil(s/stride)
// and the total padding max((o-1)*stride+k-s, 0) is split with the smaller half
// on top/left (so stride 2 on an even size pads only bottom/right).
func conv(n, s, cin, cout, k, stride int) gpu.ConvParams {
	o := ceilDiv(s, stride)
	pad := max((o-1)*stride+k-s, 0) / 2
	return gpu.ConvParams{N: n, H: s, W: s, C: cin, OC: cout, KH: k, KW: k,
		StrideH: stride, StrideW: stride, PadTop: pad, PadLeft: pad, OH: o, OW: o}
}

// outLen is the length of one image's output: the grid, or the activations at
// the cut.
func (e *Encoder) outLen() int {
	if e.cut < len(e.cfg.Blocks) {
		return e.cfg.CutLen(e.cut)
	}
	return e.GridLen()
}

// Cut returns the (n, s, s, C) activations at the cut of the last Encode of an
// encoder from NewBottom.
func (e *Encoder) Cut() gpu.Buf { return e.grid.Slice(0, e.n*e.outLen()) }

// Grid returns the (n, G, G, F) feature grid of the last Encode.
func (e *Encoder) Grid() gpu.Buf { return e.grid.Slice(0, e.n*e.GridLen()) }

// Pooled returns the (n, F) pooled features of the last Encode.
func (e *Encoder) Pooled() gpu.Buf { return e.pooled.Slice(0, e.n*e.cfg.Head) }

// Classify runs the classifier on the pooled features of the last Encode and
// returns the (n, K) probabilities (softmax of the logits) on the device.
func (e *Encoder) Classify() gpu.Buf {
	if e.probs == nil {
		panic("encoder: Classify on an encoder without a classifier (from NewBottom or NewFeatures)")
	}
	c := &e.cfg
	probs := e.probs.Slice(0, e.n*c.Classes)
	classify(e.dev, *c, e.classifier, probs, e.Pooled(), e.n)
	return probs
}

// Close frees the device memory.
func (e *Encoder) Close() {
	if e.chain != nil {
		e.chain.Close()
		e.chain = nil
	}
	gpu.FreeAll(e.dev, append(e.params, e.in, e.ex, e.ey, e.x, e.y, e.e, e.d, e.grid, e.pooled, e.probs)...)
	e.params = nil
}
