package pipeline

import (
	"context"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
)

// Vocab turns generated token ids into a sentence (*text.Vocab).
type Vocab interface {
	Sentence(ids []int32) string
}

// featureBatch is how many images CaptionFeatures decodes at once: features
// already on the device cost no upload, so batches are as large as the
// decoder's workspace comfortably allows.
const featureBatch = 100

// CaptionFeatures captions the n images of a (n, F) feature buffer on m's
// device, featureBatch at a time: eval on cached features and the trainer's dev
// evaluation, which have every image's features on the device already.
func CaptionFeatures(ctx context.Context, m *decoder.Model, feats gpu.Buf, n int, d decoder.DecodeOptions, v Vocab) ([]Result, error) {
	F := m.Cfg.InputDim()
	out := make([]Result, 0, n)
	for lo := 0; lo < n; lo += featureBatch {
		b := min(featureBatch, n-lo)
		res, err := generate(ctx, m, feats.Slice(lo*F, b*F), b, d, v)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// generate captions n images whose features are on m's device: the best
// hypothesis of each, with the n-best list when d asks for more than one.
func generate(ctx context.Context, m *decoder.Model, feats gpu.Buf, n int, d decoder.DecodeOptions, v Vocab) ([]Result, error) {
	hyps, err := m.Generate(ctx, feats, n, d)
	if err != nil {
		return nil, err
	}
	out := make([]Result, n)
	for i, hs := range hyps {
		out[i] = Result{Caption: v.Sentence(hs[0].Tokens), Score: hs[0].Score, Attention: hs[0].Attention}
		if d.NBest > 1 {
			for _, h := range hs {
				out[i].Alternatives = append(out[i].Alternatives, Alternative{Caption: v.Sentence(h.Tokens), Score: h.Score})
			}
		}
	}
	return out, nil
}
