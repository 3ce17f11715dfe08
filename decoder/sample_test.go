package decoder

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSampleMatchesNaiveReference replays the same uniform draws through the
// float64 reference decoder: every sampled caption must be word for word the
// same, so Sample draws from the model's distribution, row by row.
func TestSampleMatchesNaiveReference(t *testing.T) { bothArchs(t, testSample) }

func testSample(t *testing.T, c Config) {
	// Small weights: near-uniform word probabilities, so about 1 in 9 steps draws <end>.
	m, host := randomModel(t, openCPU(t), c, 12, 0.3)
	B, K := 4, 3
	rng0 := rand.New(rand.NewPCG(12, 34))
	feats := make([]float32, B*c.InputDim())
	for i := range feats {
		feats[i] = float32(rng0.NormFloat64())
	}
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 12, Beam: 1}
	dev := m.Device()
	buf := dev.Alloc(len(feats))
	defer dev.Free(buf)
	dev.Upload(buf, feats)
	got, err := m.Sample(context.Background(), buf, B, K, o, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}

	ref := newRefDecoder(c, host)
	rng := rand.New(rand.NewPCG(5, 6))
	R := B * K
	steps := make([]refStep, R)
	states := make([]refState, R)
	want := make([]Sampled, R)
	prev := make([]int32, R)
	F := c.InputDim()
	for r := range steps {
		steps[r], states[r] = ref.begin(feats[(r/K)*F : (r/K+1)*F])
		prev[r] = o.Start
	}
	ended, lengths := 0, map[int]bool{}
	for step := 0; step < o.MaxLen; step++ {
		live := 0
		for r := range want { // the same order of draws as Sample: live rows in row order
			if want[r].Ended {
				continue
			}
			var lp []float64
			states[r], lp, _ = steps[r](states[r], prev[r])
			u, cum, tok := rng.Float64(), 0.0, int32(-1)
			for w, v := range lp {
				if cum += math.Exp(v); u < cum {
					tok = int32(w)
					break
				}
			}
			if tok != o.End {
				want[r].Tokens = append(want[r].Tokens, tok)
				prev[r] = tok
				live++
				continue
			}
			want[r].Ended = true
			ended++
			lengths[len(want[r].Tokens)] = true
		}
		if live == 0 {
			break
		}
	}
	for r := range want {
		if got[r].Ended != want[r].Ended || !slices.Equal(got[r].Tokens, want[r].Tokens) {
			t.Errorf("row %d: sampled %+v, reference %+v", r, got[r], want[r])
		}
	}
	// The check is only meaningful if samples differ in length and some were cut.
	if ended == 0 || ended == R || len(lengths) < 2 {
		t.Errorf("degenerate samples (%d of %d ended, lengths %v): pick another seed", ended, R, lengths)
	}
	// Two samples of one image differ somewhere (a sampler, not greedy decoding).
	distinct := 0
	for b := 0; b < B; b++ {
		if !slices.Equal(got[b*K].Tokens, got[b*K+1].Tokens) {
			distinct++
		}
	}
	if distinct == 0 {
		t.Errorf("every image's first two samples are identical: not sampling")
	}
}

// draw picks where the cumulative probability first exceeds u, and when
// float32 rounding leaves u beyond the total, the last word that has any
// probability: never a word the log-probabilities rule out (-Inf, as the
// unspoken words and banned repeats are).
func TestDrawNeverPicksAnImpossibleWord(t *testing.T) {
	half, justUnder := float32(math.Log(0.5)), float32(math.Log(0.4999))
	inf := float32(math.Inf(-1))
	for _, tc := range []struct {
		logp []float32
		u    float64
		want int32
	}{
		{[]float32{half, justUnder, inf}, 0.25, 0},
		{[]float32{half, justUnder, inf}, 0.5, 1},
		{[]float32{half, justUnder, inf}, 0.99995, 1}, // past the total 0.9999
		{[]float32{inf, half, inf, justUnder, inf}, 0.99995, 3},
		// Exactly on a boundary: the word whose share u has passed, the next.
		{[]float32{half, half}, math.Exp(float64(half)), 1},
	} {
		if got := draw(tc.logp, tc.u); got != tc.want {
			t.Errorf("draw(%v, %g) = %d, want %d", tc.logp, tc.u, got, tc.want)
		}
	}
}
