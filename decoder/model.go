package decoder

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/text"
)

// Model is the decoder's parameters on a device, plus the inference caches.
// It is not safe for concurrent use: one goroutine owns the device.
type Model struct {
	Cfg  Config
	dev  gpu.Device
	flat gpu.Buf // (NumParams) every parameter, in Tensors order
	P    Params  // named views into flat

	// proj (V, 4H) = Embed·Wx[:, :E]ᵀ + LB: each word's LSTM input preactivation, so a
	// decoding step gathers one row instead of running the input Gemm. It is
	// rebuilt lazily after the parameters change.
	proj      gpu.Buf
	projStale bool
	// outB (V) is the output bias decoding uses: OutB with neverEmitted added
	// at the ids no caption should contain (see unspoken), rebuilt with proj.
	outB gpu.Buf
	// exact are views of P's weights: training's products, current with every
	// update. dw are decoding's: exact, or copies packed in precision
	// (SetPrecision), packed again by prepare after the parameters change.
	exact, dw weights
	precision gpu.Precision
	ws        *workspace    // merge's decoding buffers, grown on demand
	aws       *attWorkspace // attention's
	guided    guidedScratch // constrained decoding's
}

// weights are the weights a model multiplies activations by, each ready for
// products A·Wᵀ in one precision (gpu.PackedWeight). Fields an architecture
// lacks are nil.
type weights struct {
	wh, out            gpu.PackedWeight // the recurrence (4H, H); the vocabulary's (V, M), attention's (V, E)
	img, dec           gpu.PackedWeight // merge: the image branch (H, F), the dense after the merge (M, H)
	initH, initC, attF gpu.PackedWeight // attention's start: h0 (H, F), c0 (H, F), the regions' term (A, F)
	attH, gate         gpu.PackedWeight // the state's attention term (A, H), the context gate (F, H)
	outH, outZ         gpu.PackedWeight // the deep output's state (E, H) and context (E, F) terms
	ctx                gpu.PackedWeight // the context's columns of Wx (4H, F), unless factorized into
	ctxV, ctxU         gpu.PackedWeight // (r, F) and (4H, r)
}

// all lists the weights present.
func (w *weights) all() []gpu.PackedWeight {
	var out []gpu.PackedWeight
	for _, pw := range []gpu.PackedWeight{w.wh, w.out, w.img, w.dec, w.initH, w.initC, w.attF, w.attH, w.gate, w.outH, w.outZ, w.ctx, w.ctxV, w.ctxU} {
		if pw != nil {
			out = append(out, pw)
		}
	}
	return out
}

func (w *weights) free() {
	for _, pw := range w.all() {
		pw.Free()
	}
}

// pack prepares the model's weights for products in precision p.
func (m *Model) pack(p gpu.Precision) (weights, error) {
	c, P := m.Cfg, &m.P
	F, E, H, M, V, A, r := c.FeatDim, c.Embed, c.Hidden, c.Mid, c.Vocab, c.Att, c.CtxRank
	var w weights
	var err error
	add := func(dst *gpu.PackedWeight, buf gpu.Buf, n, k, ldw int) {
		if err == nil {
			*dst, err = gpu.PackWeight(m.dev, buf, n, k, ldw, p)
		}
	}
	add(&w.wh, P.Wh, 4*H, H, H)
	if c.Arch != ArchAttention {
		add(&w.out, P.OutW, V, M, M)
		add(&w.img, P.ImgW, H, F, F)
		add(&w.dec, P.DecW, M, H, H)
	} else {
		add(&w.out, P.OutW, V, E, E)
		add(&w.initH, P.InitHW, H, F, F)
		add(&w.initC, P.InitCW, H, F, F)
		add(&w.attF, P.AttFW, A, F, F)
		add(&w.attH, P.AttHW, A, H, H)
		add(&w.gate, P.GateW, F, H, H)
		add(&w.outH, P.OutHW, E, H, H)
		add(&w.outZ, P.OutZW, E, F, F)
		if r > 0 {
			add(&w.ctxV, P.CtxV, r, F, F)
			add(&w.ctxU, P.CtxU, 4*H, r, r)
		} else {
			add(&w.ctx, contextColumns(P.Wx, c), 4*H, F, E+F)
		}
	}
	if err != nil {
		w.free()
		return weights{}, fmt.Errorf("decoder: %w", err)
	}
	return w, nil
}

// SetPrecision makes decoding multiply in p: float32, the default, or
// bfloat16 or int8 on a device that keeps weights in it (gpu.WeightPacker:
// the CPU with AVX512-BF16, with AVX512-VNNI), where a step's products run
// about twice (bfloat16) or four times (int8) as fast as float32's and some
// captions change (MODEL.md measures how many). Training always multiplies in
// float32.
func (m *Model) SetPrecision(p gpu.Precision) error {
	if p == m.precision {
		return nil
	}
	m.prepare() // packs current parameters, which prepare then need not pack again
	w := m.exact
	if p != gpu.Float32 {
		var err error
		if w, err = m.pack(p); err != nil {
			return err
		}
	}
	m.dw.free() // nothing for float32's views
	m.dw, m.precision = w, p
	return nil
}

// Precision is what decoding multiplies in (SetPrecision).
func (m *Model) Precision() gpu.Precision { return m.precision }

// New returns a model with freshly initialised parameters (seeded, so the same
// seed gives the same weights on every backend).
func New(dev gpu.Device, cfg Config, seed uint64) (*Model, error) {
	m, err := alloc(dev, cfg)
	if err != nil {
		return nil, err
	}
	dev.Upload(m.flat, initParams(cfg, seed))
	return m, nil
}

// alloc makes a model with zero parameters.
func alloc(dev gpu.Device, cfg Config) (*Model, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg, dev: dev, flat: dev.Alloc(cfg.NumParams()), projStale: true, precision: gpu.Float32}
	m.P = views(cfg, m.flat)
	var err error
	if m.exact, err = m.pack(gpu.Float32); err != nil {
		dev.Free(m.flat)
		return nil, err
	}
	m.dw = m.exact
	return m, nil
}

// Device is the device the model lives on.
func (m *Model) Device() gpu.Device { return m.dev }

// Flat is the flat parameter buffer (NumParams).
func (m *Model) Flat() gpu.Buf { return m.flat }

// SetFlat uploads host parameters in Tensors order (len NumParams).
func (m *Model) SetFlat(host []float32) error {
	if len(host) != m.Cfg.NumParams() {
		return fmt.Errorf("decoder: %d parameters given, the config needs %d", len(host), m.Cfg.NumParams())
	}
	m.dev.Upload(m.flat, host)
	m.projStale = true
	return nil
}

// CopyFrom copies parameters (NumParams, Tensors order) from a device buffer,
// such as a weight average kept by the trainer.
func (m *Model) CopyFrom(src gpu.Buf) {
	m.dev.Copy(m.flat, src)
	m.projStale = true
}

// FlatHost downloads the parameters (NumParams) in Tensors order.
func (m *Model) FlatHost() ([]float32, error) {
	host := make([]float32, m.Cfg.NumParams())
	return host, m.dev.Download(host, m.flat)
}

// Close frees the model's device memory.
func (m *Model) Close() {
	m.dev.Free(m.flat)
	if m.proj != nil {
		m.dev.Free(m.proj)
		m.dev.Free(m.outB)
	}
	m.dw.free()
	m.ws.free(m.dev)
	m.aws.free(m.dev)
	gpu.FreeAll(m.dev, m.guided.feats, m.guided.logp)
	m.flat, m.proj, m.outB, m.ws, m.aws, m.guided = nil, nil, nil, nil, nil, guidedScratch{}
}

// dense writes out (n, o) = act(in (n, i) · Wᵀ + bias (o)) for W (o, i).
func dense(dev gpu.Device, out, in gpu.Buf, w gpu.PackedWeight, bias gpu.Buf, n, i, o int, act gpu.Act) {
	w.MulT(n, in, i, 0, out, o)
	dev.BiasAct(out, out, bias, n, o, act)
}

// linearBackward is dense's backward given dout (n, o), which it overwrites with
// the gradient of the preactivation: dbias += column sums, dw += doutᵀ·in, and,
// when din is not nil, din = dout·w (writes).
func linearBackward(dev gpu.Device, din, dw, dbias, dout, out, in, w gpu.Buf, n, i, o int, act gpu.Act) {
	dev.BiasActBackward(dout, dbias, dout, out, n, o, act)
	dev.Gemm(true, false, o, i, n, 1, dout, o, in, i, 1, dw, i)
	if din != nil {
		dev.Gemm(false, false, n, i, o, 1, dout, o, w, i, 0, din, i)
	}
}

// imageBranch writes img (B, H) = relu(x (B, F) · ImgWᵀ + ImgB), with the weights w.
func (m *Model) imageBranch(w *weights, img, x gpu.Buf, B int) {
	dense(m.dev, img, x, w.img, m.P.ImgB, B, m.Cfg.FeatDim, m.Cfg.Hidden, gpu.ActReLU)
}

// head runs the layers after the merge for R rows: mid (R, M) = relu(sum (R, H)
// · DecWᵀ + DecB), logits (R, V) = mid · OutWᵀ + OutB, with the weights w.
func (m *Model) head(w *weights, logits, mid, sum, outB gpu.Buf, R int) {
	c := m.Cfg
	dense(m.dev, mid, sum, w.dec, m.P.DecB, R, c.Hidden, c.Mid, gpu.ActReLU)
	dense(m.dev, logits, mid, w.out, outB, R, c.Mid, c.Vocab, gpu.ActNone)
}

// wordGates writes gates (n, 4H) = emb (n, E) · Wx[:, :E]ᵀ + LB, the LSTM
// input's word term of n embeddings: over the embedding's columns of Wx, all
// of merge's (4H, E) and of a factorized attention model's, the first E of
// attention's (4H, E+F). Training runs it on a batch's words, prepare on the
// whole vocabulary (proj), which decoding then gathers.
func (m *Model) wordGates(gates, emb gpu.Buf, n int) {
	c := m.Cfg
	m.dev.Gemm(false, true, n, 4*c.Hidden, c.Embed, 1, emb, c.Embed, m.P.Wx, c.wxCols(), 0, gates, 4*c.Hidden)
	m.dev.BiasAct(gates, gates, m.P.LB, n, 4*c.Hidden, gpu.ActNone)
}

// unspoken are the ids decoding never emits: <pad> and <start> are not words,
// and <unk> stands for the training captions' rare words, which a caption
// cannot name ("a man is standing on a <unk>"): the model learned to say it
// (2% of the attention model's dev captions did), so decoding forbids it.
var unspoken = []int32{text.PadID, text.StartID, text.UnkID}

// neverEmitted is added to an unspoken word's logit: its probability becomes
// 0 in float32, so no search picks it, and the other words share its mass as
// if it were not in the vocabulary.
const neverEmitted = -1e30

// unspeakable is a log-probability at or below which a word is an unspoken
// one (its logit plus neverEmitted): beam search leaves it out even where a
// beam has no other word to take (a vocabulary of a few words), and that beam
// stays empty.
const unspeakable = neverEmitted / 2

// prepare rebuilds proj, and packs decoding's weights again, when the
// parameters changed since the last build.
func (m *Model) prepare() {
	if !m.projStale {
		return
	}
	c := m.Cfg
	if m.proj == nil {
		m.proj = m.dev.Alloc(c.Vocab * 4 * c.Hidden)
		m.outB = m.dev.Alloc(c.Vocab)
	}
	mask := make([]float32, c.Vocab)
	for _, id := range unspoken {
		if int(id) < c.Vocab {
			mask[id] = neverEmitted
		}
	}
	m.dev.Upload(m.outB, mask)
	m.dev.Add(m.outB, m.outB, m.P.OutB)
	m.wordGates(m.proj, m.P.Embed, c.Vocab)
	for _, w := range m.dw.all() { // float32's views read the parameters themselves
		w.Update()
	}
	m.projStale = false
}
