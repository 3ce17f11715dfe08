package train

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/text"
)

// TestFeatureDropoutDropsTheRegions: with train.feature_dropout p, a
// cross-entropy step of the attention decoder reads each caption's regions
// with a fraction p of the values zeroed and the rest scaled by 1/(1-p), a
// mask of its own per caption and per step, and the cached features stay as
// they were.
func TestFeatureDropoutDropsTheRegions(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	const p = 0.4
	o := synthOptions(t.TempDir(), 1)
	o.Arch, o.Regions, o.Att, o.FeatureDropout = decoder.ArchAttention, 4, 8, p
	v := o.Vocab.(synthVocab)
	trn := synthGrids(synthSplit(48, 1, v), 1)
	r, err := newRun(dev, o, trn, synthGrids(synthSplit(12, 2, v), 2))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	F := len(trn.Feats) / trn.Images()
	idx := r.obj.batches(1)[0]
	step := func() []float32 {
		if _, err := r.obj.forward(context.Background(), r.ts, idx); err != nil {
			t.Fatal(err)
		}
		return host(t, dev, r.batchFeats)[:len(idx)*F]
	}
	first := step()
	r.ts.Update(decoder.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}) // the next step
	second := step()

	bt := makeBatch(r.tf.ex, idx, text.StartID, text.EndID, text.PadID)
	dropped, kept, same := 0, 0, 0
	for b, img := range bt.Images {
		for j := 0; j < F; j++ {
			orig, got := trn.Feats[int(img)*F+j], first[b*F+j]
			switch {
			case got == 0:
				dropped++
			case math.Abs(float64(got-orig/(1-p))) <= 1e-6*math.Abs(float64(orig)):
				kept++
			default:
				t.Fatalf("caption %d, value %d: %g from the cached %g, neither dropped nor scaled by 1/(1-p)", b, j, got, orig)
			}
			if (got == 0) == (second[b*F+j] == 0) {
				same++
			}
		}
	}
	n := float64(dropped + kept)
	if frac := float64(dropped) / n; math.Abs(frac-p) > 0.03 {
		t.Errorf("%.3f of the values dropped, want %.1f", frac, p)
	}
	if agree := float64(same) / n; agree > 0.6 { // independent masks agree on p²+(1-p)² = 0.52
		t.Errorf("the two steps' masks agree on %.2f of the values; want fresh masks", agree)
	}
	// Two captions of one image get masks of their own.
	for a := range bt.Images {
		for b := a + 1; b < len(bt.Images); b++ {
			if bt.Images[a] == bt.Images[b] && slices.Equal(first[a*F:(a+1)*F], first[b*F:(b+1)*F]) {
				t.Errorf("captions %d and %d of image %d read the same dropped-out features", a, b, bt.Images[a])
			}
		}
	}
	if got := host(t, dev, r.trainFeats); !slices.Equal(got, trn.Feats) {
		t.Error("the cached features changed")
	}

	// Merge, whose train.dropout already drops its pooled features, refuses it.
	o.Arch = decoder.ArchMerge
	if _, err := newRun(dev, o, synthSplit(48, 1, v), synthSplit(12, 2, v)); err == nil || !strings.Contains(err.Error(),
		"train: train.feature_dropout: 0.4 with train.arch merge, train.objective xe, train.finetune_blocks 0; it drops the cached regions' features of attention's cross-entropy training only (train.dropout drops merge's features and cider's): set it to 0") {
		t.Errorf("feature dropout with merge: %v", err)
	}
}
