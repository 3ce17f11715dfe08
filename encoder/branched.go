package encoder

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// Branched runs the encoder branched at a cut: the layers below it, which the
// original weights and any fine-tuned ones share, once, then the original top
// and each fine-tuned top on their output. Captions of a tuned model read its
// top's features (TunedGrid, TunedPooled); tags, classify and untuned models
// keep reading the original features (Grid, Pooled), which the ImageNet
// classifier was trained on. For MobileNetV2 1.0/224 with the last two blocks
// tuned, a top runs on 7x7 activations: about a fifth of the network's
// multiply-adds.
type Branched struct {
	bottom   *Encoder
	original *Top
	tuned    []*Top
	cfg      Config    // the original's
	tunedCfg []Config  // each tuned top's (its ID names the tuned weights)
	pooled   []gpu.Buf // (B, F) per top: the original's, then the tuned ones'
	grids    []gpu.Buf // the last EncodeEach's (n, G, G, F) per top, same order
	n        int
}

// NewBranched makes a Branched encoder of the original weights and tuned
// ones (WithTuned's, each tuned from block first) for batches of up to
// maxBatch images. It runs in float32.
func NewBranched(dev gpu.Device, original *Weights, tuned []*Weights, first, maxBatch int) (*Branched, error) {
	if original.Config.Tuned != "" {
		return nil, fmt.Errorf("encoder: NewBranched wants the original weights, not tuned ones (%s)", original.Config.ID())
	}
	for _, w := range tuned {
		if w.Config.Tuned == "" {
			return nil, fmt.Errorf("encoder: NewBranched wants tuned weights (WithTuned's) beside the original")
		}
	}
	bottom, err := NewBottom(dev, original, first, maxBatch)
	if err != nil {
		return nil, err
	}
	b := &Branched{bottom: bottom, cfg: original.Config}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	if b.original, err = NewTop(dev, original, first, maxBatch); err != nil {
		return nil, err
	}
	for _, w := range tuned {
		top, err := NewTop(dev, w, first, maxBatch)
		if err != nil {
			return nil, err
		}
		b.tuned = append(b.tuned, top)
		b.tunedCfg = append(b.tunedCfg, w.Config)
	}
	for range 1 + len(tuned) {
		b.pooled = append(b.pooled, dev.Alloc(maxBatch*b.cfg.Head))
	}
	b.grids = make([]gpu.Buf, 1+len(tuned))
	ok = true
	return b, nil
}

// EncodeEach is Encoder.EncodeEach through every top.
func (b *Branched) EncodeEach(images [][]float32) error {
	if err := b.bottom.EncodeEach(images); err != nil {
		return err
	}
	n, dev, G, F := len(images), b.bottom.dev, b.cfg.GridSize(), b.cfg.Head
	b.n = n
	for i, top := range append([]*Top{b.original}, b.tuned...) {
		b.grids[i] = top.Forward(b.bottom.Cut(), n)
		dev.GlobalAvgPool(b.pooled[i].Slice(0, n*F), b.grids[i], n, G*G, F)
	}
	return nil
}

// Grid returns the original (n, G, G, F) grid of the last EncodeEach.
func (b *Branched) Grid() gpu.Buf { return b.grids[0] }

// Pooled returns the original (n, F) pooled features of the last EncodeEach:
// what the ImageNet classifier reads.
func (b *Branched) Pooled() gpu.Buf { return b.pooled[0].Slice(0, b.n*b.cfg.Head) }

// TunedGrid returns tuned weights i's (n, G, G, F) grid of the last EncodeEach.
func (b *Branched) TunedGrid(i int) gpu.Buf { return b.grids[1+i] }

// TunedPooled returns tuned weights i's (n, F) pooled features of the last
// EncodeEach.
func (b *Branched) TunedPooled(i int) gpu.Buf { return b.pooled[1+i].Slice(0, b.n*b.cfg.Head) }

// Config is the original encoder's architecture and ID.
func (b *Branched) Config() Config { return b.cfg }

// TunedConfig is tuned weights i's architecture, whose ID names them.
func (b *Branched) TunedConfig(i int) Config { return b.tunedCfg[i] }

// ImageLen is the number of floats of one input image.
func (b *Branched) ImageLen() int { return b.bottom.ImageLen() }

// FeatureDim is the length of a pooled feature vector (1280).
func (b *Branched) FeatureDim() int { return b.cfg.Head }

// GridLen is the length of one image's feature grid: G*G*F (7*7*1280).
func (b *Branched) GridLen() int { return b.original.GridLen() }

// Precision is what the encoder computes in: float32.
func (b *Branched) Precision() gpu.Precision { return gpu.Float32 }

// Close frees the device memory.
func (b *Branched) Close() {
	b.bottom.Close()
	for _, top := range append([]*Top{b.original}, b.tuned...) {
		if top != nil {
			top.Close()
		}
	}
	for _, p := range b.pooled {
		b.bottom.dev.Free(p)
	}
}
