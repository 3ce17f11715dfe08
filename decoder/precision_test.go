package decoder

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// TestBFloat16Decoding: a model decoding in bfloat16 finds the float32
// model's greedy captions with log-probabilities within bfloat16's rounding,
// yet not bit for bit (the products did run in bfloat16), while training
// still computes in float32; it follows parameters set after SetPrecision
// (prepare packs them again); and SetPrecision(float32) gives float32's
// results again exactly.
func TestBFloat16Decoding(t *testing.T) { bothArchs(t, testBFloat16Decoding) }

func testBFloat16Decoding(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: 1, NBest: 1}
	want := generate(t, m, feats, o)
	bt := tinyBatch(m.Cfg, 5)
	loss, dlogits, grads := runDevice(t, m.Device(), m, bt, true, 9)
	if err := m.SetPrecision(gpu.BFloat16); err != nil {
		// Only a CPU with AVX512-BF16 packs bfloat16 (not the pure-Go build).
		_, packs := m.Device().(gpu.WeightPacker)
		if packs && !strings.Contains(err.Error(), "AVX512-BF16") {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	loss2, dlogits2, grads2 := runDevice(t, m.Device(), m, bt, true, 9)
	if loss2 != loss || !slices.Equal(dlogits2, dlogits) || !slices.Equal(grads2, grads) {
		t.Errorf("training after SetPrecision(bfloat16): loss %v, float32's %v; the logits' or the parameters' gradients differ too: training must stay float32", loss2, loss)
	}
	near := func(what string, got, want [][]Hypothesis) {
		t.Helper()
		exact := true
		for b := range want {
			g, w := got[b][0], want[b][0]
			// bfloat16 keeps 8 bits of each product's operands: a step's
			// log-probability moved by up to 0.011 on these models.
			if !slices.Equal(g.Tokens, w.Tokens) || math.Abs(g.LogProb-w.LogProb) > 0.02*float64(len(w.Tokens)+1) {
				t.Errorf("%s image %d: bfloat16 %v (log-prob %.5f), float32 %v (%.5f)", what, b, g.Tokens, g.LogProb, w.Tokens, w.LogProb)
			}
			exact = exact && g.LogProb == w.LogProb
		}
		if exact {
			t.Errorf("%s: bfloat16's log-probabilities equal float32's exactly: the products did not run in bfloat16", what)
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
	// The test's Cleanup closes the model with bfloat16 weights to free.
	if err := m.SetPrecision(gpu.BFloat16); err != nil {
		t.Fatal(err)
	}
}
