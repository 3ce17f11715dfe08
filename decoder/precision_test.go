package decoder

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// TestPackedDecoding: a model decoding in bfloat16, or in int8, finds the
// float32 model's greedy captions with log-probabilities within the
// precision's rounding, yet not bit for bit (the products did run in it),
// while training still computes in float32; it follows parameters set after
// SetPrecision (prepare packs them again); and SetPrecision(float32) gives
// float32's results again exactly.
func TestPackedDecoding(t *testing.T) {
	for _, p := range []struct {
		precision gpu.Precision
		needs     string  // what a CPU that cannot pack it lacks
		tol       float64 // a step's log-probability moved by up to about half this on these models
		flips     int     // images of 5 whose greedy caption may differ: a near tie decided the other way
	}{
		// bfloat16 keeps 8 bits of each product's operands: 0.011 at most.
		{gpu.BFloat16, "AVX512-BF16", 0.02, 0},
		// int8, 8 bits of each weight and 256 steps over each row of
		// activations: 0.032 at most; the random models' captions meet near
		// ties (after new parameters, one caption of 5 took another word).
		{gpu.Int8, "AVX512-VNNI", 0.06, 1},
	} {
		t.Run(string(p.precision), func(t *testing.T) {
			bothArchs(t, func(t *testing.T, c Config) { testPackedDecoding(t, c, p.precision, p.needs, p.tol, p.flips) })
		})
	}
}

func testPackedDecoding(t *testing.T, c Config, p gpu.Precision, needs string, tol float64, flips int) {
	m, host, feats := peakedModel(t, c)
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: 1, NBest: 1}
	want := generate(t, m, feats, o)
	bt := tinyBatch(m.Cfg, 5)
	loss, dlogits, grads := runDevice(t, m.Device(), m, bt, true, 9)
	if err := m.SetPrecision(p); err != nil {
		// Only a CPU with the instructions packs (not the pure-Go build).
		_, packs := m.Device().(gpu.WeightPacker)
		if packs && !strings.Contains(err.Error(), needs) {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	loss2, dlogits2, grads2 := runDevice(t, m.Device(), m, bt, true, 9)
	if loss2 != loss || !slices.Equal(dlogits2, dlogits) || !slices.Equal(grads2, grads) {
		t.Errorf("training after SetPrecision(%s): loss %v, float32's %v; the logits' or the parameters' gradients differ too: training must stay float32", p, loss2, loss)
	}
	near := func(what string, got, want [][]Hypothesis) {
		t.Helper()
		exact, worst, flipped := true, 0.0, 0
		for b := range want {
			g, w := got[b][0], want[b][0]
			if !slices.Equal(g.Tokens, w.Tokens) {
				flipped++
				t.Logf("%s image %d: %s %v (log-prob %.5f), float32 %v (%.5f)", what, b, p, g.Tokens, g.LogProb, w.Tokens, w.LogProb)
				continue
			}
			d := math.Abs(g.LogProb-w.LogProb) / float64(len(w.Tokens)+1)
			if d > tol {
				t.Errorf("%s image %d: %s log-prob %.5f, float32 %.5f for %v", what, b, p, g.LogProb, w.LogProb, w.Tokens)
			}
			exact, worst = exact && g.LogProb == w.LogProb, max(worst, d)
		}
		if flipped > flips {
			t.Errorf("%s: %d of %d captions differ from float32's, want at most %d", what, flipped, len(want), flips)
		}
		t.Logf("%s: %s moved a step's log-probability by %.4f at most", what, p, worst)
		if exact {
			t.Errorf("%s: %s's log-probabilities equal float32's exactly: the products did not run in %s", what, p, p)
		}
	}
	near("packed", generate(t, m, feats, o), want)

	rng := rand.New(rand.NewPCG(77, 78))
	for i := range host {
		host[i] += float32(rng.NormFloat64() * 0.5)
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	got := generate(t, m, feats, o)
	if err := m.SetPrecision(gpu.Float32); err != nil {
		t.Fatal(err)
	}
	want2 := generate(t, m, feats, o)
	near("new parameters", got, want2)
	changed := false
	for b := range want {
		changed = changed || !slices.Equal(want[b][0].Tokens, want2[b][0].Tokens)
	}
	if !changed {
		t.Error("the new parameters caption every image as the old: the test cannot see stale packed weights")
	}
	if again := generate(t, m, feats, o); !slices.EqualFunc(again, want2, func(a, b []Hypothesis) bool {
		return slices.Equal(a[0].Tokens, b[0].Tokens) && a[0].LogProb == b[0].LogProb
	}) {
		t.Errorf("float32 again: %v, before bfloat16: %v", again, want2)
	}
	// The test's Cleanup closes the model with packed weights to free.
	if err := m.SetPrecision(p); err != nil {
		t.Fatal(err)
	}
}
