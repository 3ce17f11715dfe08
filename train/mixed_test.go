package train

import (
	"context"
	"math"
	"testing"

	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/text"
)

// TestXEWeightAddsTheReferencesCrossEntropy: with train.xe_weight λ a
// self-critical step's gradient is the policy gradient of the same samples
// plus that of -(λ/B) Σ_b log p(reference b) under decoding's distribution, a
// reference's <unk> being no target. Each image has one reference here, so the
// step's choice of reference is known. With train.mirror a mirrored photo's
// reference has its words swapped and reads the mirrored features.
func TestXEWeightAddsTheReferencesCrossEntropy(t *testing.T) {
	for _, mirror := range []bool{false, true} {
		t.Run(map[bool]string{false: "photos", true: "mirrored"}[mirror], func(t *testing.T) { testXEWeight(t, mirror) })
	}
}

func testXEWeight(t *testing.T, mirror bool) {
	dev := cpu.New(1)
	defer dev.Close()
	const lambda = 0.3
	o := synthOptions(t.TempDir(), 1)
	o.Objective, o.Samples, o.Dropout, o.XEWeight, o.Mirror = "cider", 4, 0, lambda, mirror
	v := o.Vocab.(synthVocab)
	one := func(s *Split) *Split { // each image's first caption only
		var ex []Example
		for i, e := range s.Examples {
			if i%2 == 0 {
				ex = append(ex, Example{Image: e.Image, Words: append([]int32(nil), e.Words...)})
			}
		}
		s.Examples = ex
		return s
	}
	trn := one(synthSplit(48, 1, v))
	trn.Examples[0].Words[1] = text.UnkID // a rare word in a reference
	if mirror {
		mirrorSplit(trn, v)
	}
	r, err := newRun(dev, o, trn, synthSplit(12, 2, v))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	// The batch holding image 0.
	var idx []int
	for _, b := range r.obj.batches(1) {
		for _, i := range b {
			if i == 0 {
				idx = b
			}
		}
	}
	grads := func(xeWeight float64) ([]float32, stepStats) {
		r.ts.ZeroGrad()
		r.sc.o.XEWeight = xeWeight
		if xeWeight == 0 {
			r.sc.refs, r.sc.o.XEWeight = nil, 0
		}
		st, err := r.sc.forward(context.Background(), r.ts, idx)
		if err != nil {
			t.Fatal(err)
		}
		r.ts.Backward()
		return host(t, dev, r.ts.Grads()), st
	}
	mixed, st := grads(lambda)
	refs := r.sc.refs
	policy, pst := grads(0)

	// The references' part alone: their cross-entropy under decoding's
	// distribution, each caption weighted λ·tokens/B.
	ex := make([]Example, len(idx))
	order := make([]int, len(idx))
	var flips []bool
	if mirror {
		flips = r.sc.mirror.flips(r.ts.Steps(), len(idx))
	}
	flipped := 0
	for b, i := range idx {
		ex[b], order[b] = Example{Image: i, Words: refs[i][0]}, b
		if flips != nil && flips[b] {
			words := make([]int32, len(refs[i][0]))
			for k, w := range refs[i][0] {
				if m, ok := trn.MirrorWords[w]; ok {
					w = m
				}
				words[k] = w
			}
			ex[b].Image, ex[b].Words = i+trn.Images(), words // the mirrored photo's row follows the photos'
			flipped++
		}
	}
	if mirror && (flipped == 0 || flipped == len(idx)) {
		t.Fatalf("%d of %d photos mirrored in this step; want some of each", flipped, len(idx))
	}
	bt := makeBatch(ex, order, text.StartID, text.EndID, text.PadID)
	unk := 0
	for i, tg := range bt.Targets {
		if tg == text.UnkID {
			bt.Targets[i], unk = -1, unk+1
		}
	}
	if unk != 1 {
		t.Fatalf("%d <unk> targets in the reference batch, want the one planted", unk)
	}
	r.ts.ZeroGrad()
	feats := batchFeatures(dev, r.batchFeats, r.trainFeats, bt.Images, r.sc.featDim)
	_, ntok, err := r.ts.ForwardSampled(feats, bt.IDs, bt.Targets, bt.B, bt.T, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float32, bt.B)
	for b := range w {
		w[b] = float32(lambda * float64(ntok) / float64(len(idx)))
	}
	r.ts.ReweightCaptions(w)
	r.ts.Backward()
	xe := host(t, dev, r.ts.Grads())

	if st.tokens != pst.tokens+ntok {
		t.Errorf("mixed step scored %d tokens, want the samples' %d + the references' %d", st.tokens, pst.tokens, ntok)
	}
	var worst, norm float64
	for i := range mixed {
		want := float64(policy[i]) + float64(xe[i])
		worst = max(worst, math.Abs(float64(mixed[i])-want))
		norm = max(norm, math.Abs(float64(xe[i])))
	}
	if worst > 1e-5 || norm < 1e-3 {
		t.Errorf("mixed gradient differs from policy + λ·cross-entropy by up to %.2g (the cross-entropy part's largest element %.3g)", worst, norm)
	}
}

// TestXEWeightNeedsTheCiderObjective: a run built in code, without the
// configuration's validation, refuses xe_weight outside self-critical training.
func TestXEWeightNeedsTheCiderObjective(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 1)
	o.XEWeight = 0.2
	v := o.Vocab.(synthVocab)
	_, err := newRun(dev, o, synthSplit(12, 1, v), synthSplit(6, 2, v))
	if want := "train: train.xe_weight: 0.2 with train.objective xe; it mixes cross-entropy into the cider objective: set train.objective cider, or train.xe_weight 0"; err == nil || err.Error() != want {
		t.Errorf("xe_weight with objective xe: %v, want %q", err, want)
	}
}
