package decoder

import (
	"math"
	"slices"
	"testing"
)

// ForwardSampled scores captions under decoding's distribution: its loss is
// the full softmax's renormalised without the unspoken words, and no gradient
// reaches their output weights, which Forward's full softmax would move.
func TestForwardSampledScoresTheDecodingDistribution(t *testing.T) {
	bothArchs(t, func(t *testing.T, c Config) {
		c.Dropout, c.AttPenalty = 0, 0 // the same logits with train on and off
		dev := openCPU(t)
		m, _ := randomModel(t, dev, c, 5, 0.5)
		bt := tinyBatch(c, 3)
		for i, tg := range bt.targets {
			if slices.Contains(unspoken, tg) {
				bt.targets[i] = 4 // a word: sampled captions hold no unspoken one
			}
		}
		// The full softmax's logits (an evaluation Forward keeps them).
		full, logits, _ := runDevice(t, dev, m, bt, false, 0)
		_, _, fullGrads := runDevice(t, dev, m, bt, true, 0)
		V := c.Vocab
		want, ntok := 0.0, 0
		for row, tg := range bt.targets {
			if tg < 0 {
				continue
			}
			lg := logits[row*V : (row+1)*V]
			z := 0.0
			for j, v := range lg {
				if !slices.Contains(unspoken, int32(j)) {
					z += math.Exp(float64(v))
				}
			}
			want -= float64(lg[tg]) - math.Log(z)
			ntok++
		}
		want /= float64(ntok)

		ts, feats := batchState(t, dev, m, bt)
		got, _, err := ts.ForwardSampled(feats, bt.ids, bt.targets, bt.B, bt.T, 0)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-5 || !(got < full) {
			t.Errorf("loss %.7f, want %.7f (the full softmax's %.7f, renormalised without the unspoken words: lower)", got, want, full)
		}
		ts.Backward()
		grads := make([]float32, c.NumParams())
		if err := dev.Download(grads, ts.Grads()); err != nil {
			t.Fatal(err)
		}
		outB := c.Tensors()[len(c.Tensors())-1] // out.bias, last in both architectures
		if outB.Name != "out.bias" {
			t.Fatalf("the last tensor is %s, not out.bias", outB.Name)
		}
		for _, id := range unspoken {
			if g := grads[outB.Off+int(id)]; g != 0 {
				t.Errorf("output bias of unspoken id %d: gradient %g, want 0", id, g)
			}
			if g := fullGrads[outB.Off+int(id)]; g == 0 {
				t.Errorf("output bias of unspoken id %d: Forward's gradient is 0; the test cannot tell the two apart", id)
			}
		}

		bt.targets[0] = 3 // <unk>
		if _, _, err := ts.ForwardSampled(feats, bt.ids, bt.targets, bt.B, bt.T, 0); err == nil || err.Error() != "decoder: ForwardSampled target 3 (row 0) is a word decoding never emits; sampled captions cannot contain it" {
			t.Errorf("an <unk> target: %v", err)
		}
	})
}
