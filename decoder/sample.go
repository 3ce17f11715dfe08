package decoder

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/captioner/captioner/gpu"
)

// Sampled is one caption drawn from the model.
type Sampled struct {
	Tokens []int32 // words, without <start> and <end>
	Ended  bool    // <end> was drawn; false when the caption was cut at the maximum length
}

// Sample draws K captions for each of B images (feats (B, F) on the device) from
// the model's own distribution, word by word at temperature 1, with rng as the
// only source of randomness. out[b*K+k] is image b's k-th caption. Self-critical
// training scores such samples and makes the better ones more likely.
func (m *Model) Sample(ctx context.Context, feats gpu.Buf, B, K int, o DecodeOptions, rng *rand.Rand) ([]Sampled, error) {
	if err := o.check(m.Cfg); err != nil {
		return nil, err
	}
	if feats.Len() != B*m.Cfg.InputDim() || K < 1 {
		return nil, fmt.Errorf("decoder: %d feature values for %d images of %d features, %d samples each", feats.Len(), B, m.Cfg.InputDim(), K)
	}
	return sample(ctx, m.dev, m.stepper(feats, B, K), B, K, m.Cfg.Vocab, o, rng)
}

// sample draws the K captions of each of the B images of s (made for K rows
// per image): the first word of all K from the image's one first row (spread),
// and the image leaves the batch (stepper.keep) once all of its captions ended.
func sample(ctx context.Context, dev gpu.Device, s stepper, B, K, V int, o DecodeOptions, rng *rand.Rand) ([]Sampled, error) {
	R := B * K
	out := make([]Sampled, R)
	order := make([]int, B) // the image of each device row block still sampling
	toks := make([]int32, R)
	for b := range order {
		order[b] = b
	}
	for r := range toks {
		toks[r] = o.Start
	}
	logp := make([]float32, R*V)
	keep := make([]int32, 0, B)
	per := 1 // device rows per image: one, the start, until the first step spreads it over K
	for t := 0; t < o.MaxLen && len(order) > 0; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		DR := len(order) * per
		logpDev := s.step(toks[:DR])
		if t == 0 {
			s.spread(K)
		} else {
			s.advance(nil)
		}
		if err := dev.Download(logp[:DR*V], logpDev); err != nil {
			return nil, err
		}
		keep = keep[:0]
		for i, b := range order {
			live := false
			for k := 0; k < K; k++ {
				d, r := i*per+k%per, b*K+k // the device row drawn from; the caption
				if out[r].Ended {
					continue // an image's ended samples decode on (one batch) until all of its K end; their rows are not read
				}
				tok := draw(logp[d*V:(d+1)*V], rng.Float64())
				if tok == o.End {
					out[r].Ended = true
					continue
				}
				out[r].Tokens = append(out[r].Tokens, tok)
				toks[i*K+k] = tok
				live = true
			}
			if live {
				keep = append(keep, int32(i))
			}
		}
		per = K
		order = keepImages(s, keep, order, toks, K)
	}
	return out, nil
}

// draw returns the index where the cumulative probability exp(logp) first
// exceeds u in [0, 1); rounding that leaves u beyond the total picks the last
// word with non-zero probability.
func draw(logp []float32, u float64) int32 {
	var cum float64
	last := int32(0)
	for i, lp := range logp {
		p := math.Exp(float64(lp))
		if p == 0 {
			continue
		}
		cum += p
		last = int32(i)
		if u < cum {
			return last
		}
	}
	return last
}
