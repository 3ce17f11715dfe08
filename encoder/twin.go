package encoder

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// Twin runs an encoder whose top was fine-tuned beside the original top: the
// layers below the cut, which the two share, once, then each top on their
// output. Captions read the tuned top's features (Grid, Pooled); tags and
// classify keep reading the original's pooled features (OriginalPooled),
// which the ImageNet classifier was trained on. For MobileNetV2 1.0/224 with
// the last two blocks tuned, the tops run on 7x7 activations: about a fifth of
// the network's multiply-adds each.
type Twin struct {
	bottom         *Encoder
	original, tune *Top
	cfg            Config
	pooled, orig   gpu.Buf // (B, F) the tuned and the original pooled features
	grid           gpu.Buf // (n, G, G, F) the tuned grid of the last Encode
	n              int
}

// NewTwin makes a Twin of the original weights and the tuned ones (WithTuned's,
// tuned from block first) for batches of up to maxBatch images. It runs in
// float32.
func NewTwin(dev gpu.Device, original, tuned *Weights, first, maxBatch int) (*Twin, error) {
	if original.Config.Tuned != "" || tuned.Config.Tuned == "" {
		return nil, fmt.Errorf("encoder: NewTwin wants the original weights and tuned ones (WithTuned)")
	}
	bottom, err := NewBottom(dev, original, first, maxBatch)
	if err != nil {
		return nil, err
	}
	t := &Twin{bottom: bottom, cfg: tuned.Config}
	if t.original, err = NewTop(dev, original, first, maxBatch); err == nil {
		t.tune, err = NewTop(dev, tuned, first, maxBatch)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	t.pooled, t.orig = dev.Alloc(maxBatch*t.cfg.Head), dev.Alloc(maxBatch*t.cfg.Head)
	return t, nil
}

// EncodeEach is Encoder.EncodeEach through both tops.
func (t *Twin) EncodeEach(images [][]float32) error {
	if err := t.bottom.EncodeEach(images); err != nil {
		return err
	}
	n, dev, G, F := len(images), t.bottom.dev, t.cfg.GridSize(), t.cfg.Head
	t.n = n
	dev.GlobalAvgPool(t.orig.Slice(0, n*F), t.original.Forward(t.bottom.Cut(), n), n, G*G, F)
	t.grid = t.tune.Forward(t.bottom.Cut(), n)
	dev.GlobalAvgPool(t.pooled.Slice(0, n*F), t.grid, n, G*G, F)
	return nil
}

// Grid returns the tuned (n, G, G, F) grid of the last EncodeEach.
func (t *Twin) Grid() gpu.Buf { return t.grid }

// Pooled returns the tuned (n, F) pooled features of the last EncodeEach.
func (t *Twin) Pooled() gpu.Buf { return t.pooled.Slice(0, t.n*t.cfg.Head) }

// OriginalPooled returns the original weights' (n, F) pooled features of the
// last EncodeEach: what the ImageNet classifier reads.
func (t *Twin) OriginalPooled() gpu.Buf { return t.orig.Slice(0, t.n*t.cfg.Head) }

// Config is the tuned encoder's architecture (its ID names the tuned weights).
func (t *Twin) Config() Config { return t.cfg }

// ImageLen is the number of floats of one input image.
func (t *Twin) ImageLen() int { return t.bottom.ImageLen() }

// Describe says how the twin runs, for logs.
func (t *Twin) Describe() string {
	return fmt.Sprintf("%s below block %d, then the original and the fine-tuned top on the per-layer kernels", t.bottom.Describe(), t.tune.First())
}

// Close frees the device memory.
func (t *Twin) Close() {
	t.bottom.Close()
	for _, top := range []*Top{t.original, t.tune} {
		if top != nil {
			top.Close()
		}
	}
	for _, b := range []gpu.Buf{t.pooled, t.orig} {
		if b != nil {
			t.bottom.dev.Free(b)
		}
	}
}
