package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/text"
)

// The self-critical step's gradient is that of its definition,
//
//	L(θ) = -(1/R) Σ_r advantage_r · log p_θ(sample r) - (λ/B) Σ_b log p_θ(reference b),
//
// along random directions of the parameters, against central differences of
// L computed caption by caption (each log p from ForwardSampled on that
// caption alone, whose loss TestForwardSampledScoresTheDecodingDistribution
// checks), for both architectures, with and without train.xe_weight λ. The
// advantages are recomputed from the step's own draws, which come from
// (seed, step) alone. Adam's steps hardly depend on a gradient's scale, so a
// wrong factor in the advantages would still train: the reward tests miss it.
func TestSelfCriticalGradientMatchesFiniteDifferences(t *testing.T) {
	for _, arch := range []string{decoder.ArchMerge, decoder.ArchAttention} {
		for _, xe := range []float64{0, 0.3} {
			t.Run(fmt.Sprintf("%s/xe_weight=%g", arch, xe), func(t *testing.T) { checkSelfCriticalGradient(t, arch, xe) })
		}
	}
}

func checkSelfCriticalGradient(t *testing.T, arch string, xe float64) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 1)
	o.Objective, o.Samples, o.XEWeight = "cider", 4, xe
	v := o.Vocab.(synthVocab)
	trn, dv := synthSplit(48, 1, v), synthSplit(12, 2, v)
	if arch == decoder.ArchAttention {
		o.Arch, o.Cleaning, o.Regions, o.Att = arch, "standard", 4, 8
		trn, dv = synthGrids(trn, 1), synthGrids(dv, 2)
	}
	r, err := newRun(dev, o, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ctx := context.Background()
	idx := r.obj.batches(1)[0]
	r.ts.ZeroGrad()
	if _, err := r.sc.forward(ctx, r.ts, idx); err != nil {
		t.Fatal(err)
	}
	r.ts.Backward()
	grad := host(t, dev, r.ts.Grads())

	// The step's draws again: its samples, then each image's reference.
	B, K, F := len(idx), o.Samples, r.sc.featDim
	R := B * K
	imgFeats := r.sc.imgFeats.Slice(0, B*F)
	d := o.Decode
	d.Beam = 1
	rng := rand.New(rand.NewPCG(uint64(o.Seed), uint64(r.ts.Steps())))
	samples, err := r.m.Sample(ctx, imgFeats, B, K, d, rng)
	if err != nil {
		t.Fatal(err)
	}
	type term struct {
		image int
		words []int32
		ended bool
		coef  float64 // of -log p in L
	}
	var terms []term
	rewards := make([]float64, R)
	for i, s := range samples {
		rewards[i] = r.sc.scorer.Score(idx[i/K], o.Vocab.Words(s.Tokens))
	}
	maxAdv := 0.0
	for i, s := range samples {
		b := i / K
		sum := 0.0
		for k := range K {
			sum += rewards[b*K+k]
		}
		adv := rewards[i] - (sum-rewards[i])/float64(K-1)
		maxAdv = math.Max(maxAdv, math.Abs(adv))
		terms = append(terms, term{b, s.Tokens, s.Ended, adv / float64(R)})
	}
	if xe > 0 {
		for b, i := range idx {
			refs := r.sc.refs[i]
			terms = append(terms, term{b, refs[rng.IntN(len(refs))], true, xe / float64(B)})
		}
	}
	if maxAdv == 0 {
		t.Fatal("every advantage is 0; the check is vacuous")
	}
	one := r.m.NewTrainState(1, o.MaxLen+2)
	defer one.Close()
	loss := func() float64 {
		var sum float64
		for _, tm := range terms {
			bt := makeBatch([]Example{{Image: 0, Words: tm.words}}, []int{0}, text.StartID, text.EndID, text.PadID)
			if !tm.ended {
				bt.Targets[len(tm.words)] = -1
			}
			for j, tg := range bt.Targets {
				if tg == text.UnkID {
					bt.Targets[j] = -1
				}
			}
			meanNLL, n, err := one.ForwardSampled(imgFeats.Slice(tm.image*F, F), bt.IDs, bt.Targets, 1, bt.T, 0)
			if err != nil {
				t.Fatal(err)
			}
			sum += tm.coef * meanNLL * float64(n)
		}
		return sum
	}
	flat, err := r.m.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	drng := rand.New(rand.NewPCG(3, 4))
	for trial := range 3 {
		dir := make([]float64, len(flat))
		along := 0.0
		for i := range dir {
			dir[i] = drng.NormFloat64()
			along += dir[i] * float64(grad[i])
		}
		// Small enough that no ReLU kink falls inside the step (2e-4 crossed some
		// for another batch: 3-12% off), large enough for float32 losses.
		const eps = 2e-5
		at := func(s float64) float64 {
			p := make([]float32, len(flat))
			for i := range p {
				p[i] = flat[i] + float32(s*dir[i])
			}
			if err := r.m.SetFlat(p); err != nil {
				t.Fatal(err)
			}
			return loss()
		}
		fd := (at(eps) - at(-eps)) / (2 * eps)
		if math.Abs(fd-along) > 1e-4+0.02*math.Abs(fd) {
			t.Errorf("direction %d: gradient·d %.6g, finite difference %.6g", trial, along, fd)
		}
	}
}
