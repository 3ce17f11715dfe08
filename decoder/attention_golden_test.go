package decoder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/captioner/captioner/text"
)

// goldenAttentionConfig is a small attention model whose sizes are neither
// tiny nor multiples of a vector width, so every kernel's main loop and its
// remainder run: 49 regions as in the real grid.
func goldenAttentionConfig() Config {
	return Config{Arch: ArchAttention, Cleaning: text.CleaningStandard, FeatDim: 40, Regions: 49, Att: 36,
		Embed: 24, Hidden: 33, Vocab: 50, Dropout: 0.5, AttPenalty: 1}
}

// goldenCaption is one decoded caption of TestAttentionCaptionsUnchanged.
type goldenCaption struct {
	tokens  []int32
	logProb float64
}

// TestAttentionCaptionsUnchanged decodes a fixed random attention model's
// captions, greedy and beam 3, and compares them with the captions that the
// decoder computed before its attention step was fused into device kernels
// (recorded from commit d778f48, then again when decoding stopped emitting
// <pad>, <start> and <unk>): a faster computation order may move the
// log-probabilities by float rounding, never a word.
func TestAttentionCaptionsUnchanged(t *testing.T) {
	c := goldenAttentionConfig()
	m, _ := randomModel(t, openCPU(t), c, 77, 0.5)
	rng := rand.New(rand.NewPCG(77, 78))
	const B = 6
	feats := make([]float32, B*c.InputDim())
	for i := range feats {
		feats[i] = float32(rng.NormFloat64())
	}
	for _, tc := range []struct {
		beam int
		want []goldenCaption
	}{
		{1, goldenGreedy},
		{3, goldenBeam3},
	} {
		hyps := generate(t, m, feats, DecodeOptions{Start: 1, End: 2, MaxLen: 12, Beam: tc.beam})
		for b, h := range hyps {
			got := h[0]
			if goldenRecord {
				fmt.Printf("{%#v, %.6f},\n", got.Tokens, got.LogProb)
				continue
			}
			w := tc.want[b]
			if !slices.Equal(got.Tokens, w.tokens) || math.Abs(got.LogProb-w.logProb) > 1e-4 {
				t.Errorf("beam %d, image %d: caption %v (log-prob %.6f), want %v (%.6f)", tc.beam, b, got.Tokens, got.LogProb, w.tokens, w.logProb)
			}
		}
	}
}

// goldenRecord prints the captions instead of comparing them, to record new
// ones when the model's computation itself changes.
const goldenRecord = false

var goldenGreedy = []goldenCaption{
	{[]int32{17, 9, 24, 17, 30, 48, 40, 17, 9, 40, 7, 7}, -8.222749},
	{[]int32{5, 5, 5, 7, 45, 10, 10, 15, 20, 7, 10, 27}, -13.277082},
	{[]int32{17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17}, -2.726351},
	{[]int32{7, 7, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, -8.481769},
	{[]int32{17, 17, 9, 7, 49, 9, 40, 49, 44, 49, 44, 49}, -9.002528},
	{[]int32{21, 21, 20, 20, 37, 45}, -5.633836},
}

var goldenBeam3 = []goldenCaption{
	{[]int32{17, 9, 24, 17, 30, 48, 40, 7, 20, 38, 30, 48}, -7.347068},
	{[]int32{43, 30, 48, 5, 5, 5, 5, 5, 5, 7, 45, 10}, -6.123039},
	{[]int32{17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17}, -2.726353},
	{[]int32{7, 7, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, -8.481769},
	{[]int32{17, 17, 9, 40, 49, 9, 40, 49, 44, 49, 44, 49}, -6.541355},
	{[]int32{21, 21, 20, 20, 37, 45}, -5.633836},
}
