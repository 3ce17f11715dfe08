package train

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/metrics"
	"github.com/captioner/captioner/text"
)

// objective is what an optimisation step minimises. forward runs one step's
// forward pass over a batch and leaves in ts the gradient that Backward then
// propagates.
type objective interface {
	// batches lists one epoch's batches (indices into what the objective
	// iterates over); the order depends only on (seed, epoch).
	batches(epoch int) [][]int
	forward(ctx context.Context, ts *decoder.TrainState, idx []int) (stepStats, error)
	// unit names what the progress bar counts, and units how many one epoch has.
	unit() string
	units() int
}

// stepStats is what one forward pass measured.
type stepStats struct {
	loss   float64 // mean cross-entropy per target token
	tokens int     // target tokens
	reward float64 // summed reward of the sampled captions (self-critical only)
	units  int     // progress made, in unit()s
}

// batchFeatures gathers the feature rows of a batch into the front of buf.
func batchFeatures(dev gpu.Device, buf, all gpu.Buf, rows []int32, featDim int) gpu.Buf {
	out := buf.Slice(0, len(rows)*featDim)
	dev.EmbeddingForward(out, all, rows, featDim)
	return out
}

// teacherForcing is cross-entropy of the reference captions (objective xe).
type teacherForcing struct {
	ex                []Example
	feats, batchFeats gpu.Buf
	featDim           int
	o                 Options
	tuned             *tunedEncoder // computes the features when the encoder is fine-tuned
	mirror            *mirroring    // nil without train.mirror
}

func (x *teacherForcing) batches(epoch int) [][]int {
	return epochOrder(x.ex, x.o.BatchSize, x.o.Seed, epoch)
}

func (x *teacherForcing) unit() string { return "tok" }

func (x *teacherForcing) units() int {
	n := 0
	for _, e := range x.ex {
		n += len(e.Words) + 1
	}
	return n
}

func (x *teacherForcing) forward(_ context.Context, ts *decoder.TrainState, idx []int) (stepStats, error) {
	bt := makeBatch(x.ex, idx, text.StartID, text.EndID, text.PadID)
	if x.mirror != nil {
		x.mirror.apply(&bt, ts.Steps())
	}
	var feats gpu.Buf
	if x.tuned != nil {
		feats = x.tuned.features(bt.Images, x.batchFeats)
	} else {
		feats = batchFeatures(ts.Model().Device(), x.batchFeats, x.feats, bt.Images, x.featDim)
	}
	loss, n, err := ts.Forward(feats, bt.IDs, bt.Targets, bt.B, bt.T, true, dropoutSeed(x.o.Seed, ts.Steps()))
	return stepStats{loss: loss, tokens: n, units: n}, err
}

// selfCritical is self-critical sequence training (Rennie et al. 2017, with the
// mean reward of an image's other samples as each sample's baseline, Luo 2020):
// sample o.Samples captions per image, reward each by CIDEr-D against the
// image's references, and weigh each caption's log-likelihood gradient by its
// reward minus the baseline, so better-than-usual captions become more likely.
//
// Dropout (train.dropout) applies to the image features only, with one mask
// for both the sampling and the gradient pass, so that the captions are scored
// by the network that drew them; the decoder itself runs without dropout.
type selfCritical struct {
	images            []Example // one per training image, Words unused
	scorer            *metrics.CIDErDScorer
	feats, batchFeats gpu.Buf
	imgFeats, mask    gpu.Buf // (images per step, F) a step's image features after dropout, the mask
	featDim           int
	o                 Options
	mirror            *mirroring // nil without train.mirror
}

func newSelfCritical(dev gpu.Device, trn *Split, feats, batchFeats gpu.Buf, featDim int, o Options, mirror *mirroring) *selfCritical {
	images := make([]Example, trn.Images())
	for i := range images {
		images[i].Image = i
	}
	n := o.BatchSize / o.Samples * featDim
	return &selfCritical{images: images, scorer: metrics.NewCIDErDScorer(trn.Refs),
		feats: feats, batchFeats: batchFeats, imgFeats: dev.Alloc(n), mask: dev.Alloc(n), featDim: featDim, o: o, mirror: mirror}
}

func (s *selfCritical) close(dev gpu.Device) {
	dev.Free(s.imgFeats)
	dev.Free(s.mask)
}

// batches holds batch_size captions each: batch_size/samples images.
func (s *selfCritical) batches(epoch int) [][]int {
	return epochOrder(s.images, s.o.BatchSize/s.o.Samples, s.o.Seed, epoch)
}

func (s *selfCritical) unit() string { return "cap" }
func (s *selfCritical) units() int   { return len(s.images) * s.o.Samples }

func (s *selfCritical) forward(ctx context.Context, ts *decoder.TrainState, idx []int) (stepStats, error) {
	m, K := ts.Model(), s.o.Samples
	dev := m.Device()
	B, R := len(idx), len(idx)*K
	imgRows := make([]int32, B)
	var flips []bool // nil without train.mirror
	if s.mirror != nil {
		flips = s.mirror.flips(ts.Steps(), B)
	}
	for b, i := range idx {
		imgRows[b] = int32(i)
		if flips != nil && flips[b] {
			imgRows[b] += s.mirror.offset
		}
	}
	d := s.o.Decode
	d.Beam = 1
	// Each step's draws come from (seed, step) alone, so a resumed run repeats them.
	rng := rand.New(rand.NewPCG(uint64(s.o.Seed), uint64(ts.Steps())))
	imgFeats := batchFeatures(dev, s.imgFeats, s.feats, imgRows, s.featDim)
	if s.o.Dropout > 0 {
		dev.Dropout(imgFeats, s.mask.Slice(0, B*s.featDim), imgFeats, float32(s.o.Dropout), dropoutSeed(s.o.Seed, ts.Steps()))
	}
	samples, err := m.Sample(ctx, imgFeats, B, K, d, rng)
	if err != nil {
		return stepStats{}, err
	}

	rewards := make([]float64, R)
	ex := make([]Example, R)
	order := make([]int, R)
	st := stepStats{units: R}
	for r, smp := range samples {
		img := idx[r/K]
		said := smp.Tokens
		if flips != nil && flips[r/K] { // judged as the caption of the photo the references describe
			said = s.mirror.caption(smp.Tokens)
		}
		rewards[r] = s.scorer.Score(img, s.o.Vocab.Words(said))
		st.reward += rewards[r]
		// Image is the row of imgFeats: the batch's own, dropped-out features.
		ex[r], order[r] = Example{Image: r / K, Words: smp.Tokens}, r
	}
	bt := makeBatch(ex, order, text.StartID, text.EndID, text.PadID)
	for r, smp := range samples {
		if !smp.Ended { // cut at the maximum length: no <end> was drawn, so none is a target
			bt.Targets[len(smp.Tokens)*R+r] = -1
		}
	}
	feats := batchFeatures(dev, s.batchFeats, imgFeats, bt.Images, s.featDim)
	if st.loss, st.tokens, err = ts.ForwardSampled(feats, bt.IDs, bt.Targets, R, bt.T, 0); err != nil {
		return st, err
	}
	// Forward's gradient is that of the mean loss over st.tokens tokens; weight
	// caption r by advantage·tokens/R to get the gradient of
	// -(1/R) Σ_r advantage_r · log p(caption r).
	weights := make([]float32, R)
	for b := 0; b < B; b++ {
		var sum float64
		for k := 0; k < K; k++ {
			sum += rewards[b*K+k]
		}
		for k := 0; k < K; k++ {
			r := b*K + k
			baseline := (sum - rewards[r]) / float64(K-1)
			weights[r] = float32((rewards[r] - baseline) * float64(st.tokens) / float64(R))
		}
	}
	ts.ReweightCaptions(weights)
	return st, nil
}

// checkInit loads the model folder a run starts from and checks that it has the
// architecture the run asks for (dropout and the attention penalty aside: they
// are training settings).
func checkInit(dev gpu.Device, dir string, want decoder.Config) ([]float32, error) {
	init, err := decoder.Load(dev, dir)
	if err != nil {
		return nil, fmt.Errorf("train.init: %w", err)
	}
	defer init.Close()
	if err := init.Cfg.Trainable(); err != nil {
		return nil, fmt.Errorf("train.init: %s is %w", dir, err)
	}
	if init.Cfg.Network() != want.Network() {
		return nil, fmt.Errorf("train.init: %s has the architecture %+v, this run asks for %+v; set the train sizes to the model's (or train from scratch without train.init)", dir, init.Cfg, want)
	}
	return init.FlatHost()
}
