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
		sampledTargets(bt)
		// The full softmax's logits (an evaluation Forward keeps them).
		full, logits, _ := runDevice(t, dev, m, bt, false, 0)
		_, _, fullGrads := runDevice(t, dev, m, bt, true, 0)
		want := sampledCrossEntropy(toF64(logits), bt, c.Vocab)

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

// sampledTargets makes bt's targets a sampled caption's: words decoding
// emits, none of the unspoken ids.
func sampledTargets(bt batch) {
	for i, tg := range bt.targets {
		if slices.Contains(unspoken, tg) {
			bt.targets[i] = 4
		}
	}
}

// sampledCrossEntropy is what ForwardSampled, then ReweightCaptions with
// bt.weights when set, differentiates, from the batch's logits (T*B, V): the
// cross-entropy of each target token under decoding's distribution (the
// softmax without the unspoken words), weighed by its caption's weight, summed
// and divided by the number of target tokens.
func sampledCrossEntropy(logits []float64, bt batch, V int) float64 {
	var sum float64
	n := 0
	for row, tg := range bt.targets {
		if tg < 0 {
			continue
		}
		lg := logits[row*V : (row+1)*V]
		z := 0.0
		for j, v := range lg {
			if !slices.Contains(unspoken, int32(j)) {
				z += math.Exp(v)
			}
		}
		w := 1.0
		if bt.weights != nil {
			w = float64(bt.weights[row%bt.B])
		}
		sum -= w * (lg[tg] - math.Log(z))
		n++
	}
	return sum / float64(n)
}

// refLogits is the float64 reference decoder's logits (T*B, V), time-major,
// without dropout, for either architecture.
func refLogits(c Config, flat []float64, bt batch) []float64 {
	if c.Arch != ArchAttention {
		_, logits := refLoss(c, flat, bt, false, 0)
		return logits
	}
	r := newRefParams(c, flat)
	V, B := c.Vocab, bt.B
	out := make([]float64, bt.T*B*V)
	for b := range B {
		im, s := r.attStart(bt.feats[b*c.InputDim() : (b+1)*c.InputDim()])
		for t := range bt.T {
			var logits []float64
			s, _, logits = r.attStep(im, s, int(bt.ids[t*B+b]), func(int) float64 { return 1 })
			copy(out[(t*B+b)*V:], logits)
		}
	}
	return out
}

// Self-critical training's pass (ForwardSampled, then ReweightCaptions with
// negative, zero and positive weights) has the gradient of
// sampledCrossEntropy, for every parameter and every feature value, on all
// three decoders. Adam's steps hardly depend on a gradient's scale, so a
// wrong factor would still train; only this check sees it. The TrainState is
// made for more captions and tokens than the batch and runs a larger batch
// first: its rows and strides must not leak stale values in.
func TestSampledGradientsMatchFiniteDifferences(t *testing.T) {
	configs := attentionConfigs()
	configs[ArchMerge] = tinyConfig()
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			c.Dropout, c.AttPenalty = 0, 0 // as ModelConfig sets them for train.objective cider
			dev := openCPU(t)
			m, host := randomModel(t, dev, c, 9, 0.5)
			bt := tinyBatch(c, 4)
			sampledTargets(bt)
			bt.weights = []float32{-1.5, 0, 2.25}
			ts := m.NewTrainState(bt.B+2, bt.T+3)
			t.Cleanup(ts.Close)
			ts.KeepInputGrad()
			larger := largerBatch(c)
			lf := dev.Alloc(len(larger.feats))
			t.Cleanup(func() { dev.Free(lf) })
			dev.Upload(lf, larger.feats)
			if _, _, err := ts.Forward(lf, larger.ids, larger.targets, larger.B, larger.T, true, 3); err != nil {
				t.Fatal(err)
			}
			ts.Backward()

			feats := dev.Alloc(len(bt.feats))
			t.Cleanup(func() { dev.Free(feats) })
			dev.Upload(feats, bt.feats)
			ts.ZeroGrad()
			if _, _, err := ts.ForwardSampled(feats, bt.ids, bt.targets, bt.B, bt.T, 0); err != nil {
				t.Fatal(err)
			}
			ts.ReweightCaptions(bt.weights)
			ts.Backward()
			grads := make([]float32, c.NumParams())
			if err := dev.Download(grads, ts.Grads()); err != nil {
				t.Fatal(err)
			}
			loss := func(flat []float64) float64 { return sampledCrossEntropy(refLogits(c, flat, bt), bt, c.Vocab) }
			compareFiniteDifferences(t, c, grads, toF64(host), loss)
			got := make([]float32, len(bt.feats))
			if err := dev.Download(got, ts.InputGrad()); err != nil {
				t.Fatal(err)
			}
			compareInputGradient(t, got, bt, func() float64 { return loss(toF64(host)) })
		})
	}
}

// largerBatch is 5 captions of 8 tokens, more of both than tinyBatch's.
func largerBatch(c Config) batch {
	tiny := tinyBatch(c, 9)
	B, T := 5, 8
	bt := batch{B: B, T: T, feats: make([]float32, B*c.InputDim()), ids: make([]int32, B*T), targets: make([]int32, B*T)}
	for i := range bt.feats {
		bt.feats[i] = tiny.feats[i%len(tiny.feats)] * 0.7
	}
	for t := range T {
		for b := range B {
			bt.ids[t*B+b] = int32(1 + (t*3+b*5)%(c.Vocab-1))
			bt.targets[t*B+b] = int32(4 + (t*7+b)%(c.Vocab-4))
		}
	}
	return bt
}
