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
	ws   *workspace    // merge's decoding buffers, grown on demand
	aws  *attWorkspace // attention's
}

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
	m := &Model{Cfg: cfg, dev: dev, flat: dev.Alloc(cfg.NumParams()), projStale: true}
	m.P = views(cfg, m.flat)
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
	m.ws.free(m.dev)
	m.aws.free(m.dev)
	m.flat, m.proj, m.outB, m.ws, m.aws = nil, nil, nil, nil, nil
}

// linear writes out (n, o) = in (n, i) · w (o, i)ᵀ + bias (o), then act.
func linear(dev gpu.Device, out, in, w, bias gpu.Buf, n, i, o int, act gpu.Act) {
	dev.Gemm(false, true, n, o, i, 1, in, i, w, i, 0, out, o)
	dev.BiasAct(out, out, bias, n, o, act)
}

// linearBackward is linear's backward given dout (n, o), which it overwrites with
// the gradient of the preactivation: dbias += column sums, dw += doutᵀ·in, and,
// when din is not nil, din = dout·w (writes).
func linearBackward(dev gpu.Device, din, dw, dbias, dout, out, in, w gpu.Buf, n, i, o int, act gpu.Act) {
	dev.BiasActBackward(dout, dbias, dout, out, n, o, act)
	dev.Gemm(true, false, o, i, n, 1, dout, o, in, i, 1, dw, i)
	if din != nil {
		dev.Gemm(false, false, n, i, o, 1, dout, o, w, i, 0, din, i)
	}
}

// imageBranch writes img (B, H) = relu(x (B, F) · ImgWᵀ + ImgB).
func (m *Model) imageBranch(img, x gpu.Buf, B int) {
	linear(m.dev, img, x, m.P.ImgW, m.P.ImgB, B, m.Cfg.FeatDim, m.Cfg.Hidden, gpu.ActReLU)
}

// head runs the layers after the merge for R rows: mid (R, M) = relu(sum (R, H)
// · DecWᵀ + DecB), logits (R, V) = mid · OutWᵀ + OutB.
func (m *Model) head(logits, mid, sum, outB gpu.Buf, R int) {
	c := m.Cfg
	linear(m.dev, mid, sum, m.P.DecW, m.P.DecB, R, c.Hidden, c.Mid, gpu.ActReLU)
	linear(m.dev, logits, mid, m.P.OutW, outB, R, c.Mid, c.Vocab, gpu.ActNone)
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

// prepare rebuilds proj when the parameters changed since the last build.
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
	// The embedding's columns of Wx: all of merge's (4H, E) and of a factorized
	// attention model's, the first E of attention's (4H, E+F).
	m.dev.Gemm(false, true, c.Vocab, 4*c.Hidden, c.Embed, 1, m.P.Embed, c.Embed, m.P.Wx, c.wxCols(), 0, m.proj, 4*c.Hidden)
	m.dev.BiasAct(m.proj, m.proj, m.P.LB, c.Vocab, 4*c.Hidden, gpu.ActNone)
	m.projStale = false
}
