package train

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/structdiff"
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
	featMask          gpu.Buf       // (batch_size, F) train.feature_dropout's mask; nil without it
}

func newTeacherForcing(dev gpu.Device, ex []Example, feats, batchFeats gpu.Buf, featDim int, o Options) *teacherForcing {
	x := &teacherForcing{ex: truncate(ex, o.MaxLen), feats: feats, batchFeats: batchFeats, featDim: featDim, o: o}
	if o.FeatureDropout > 0 {
		x.featMask = dev.Alloc(o.BatchSize * featDim)
	}
	return x
}

func (x *teacherForcing) close(dev gpu.Device) {
	if x.featMask != nil {
		dev.Free(x.featMask)
	}
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
	if x.featMask != nil { // the gathered copy: every caption gets a mask of its own
		ts.Model().Device().Dropout(feats, x.featMask.Slice(0, feats.Len()), feats, float32(x.o.FeatureDropout), dropoutSeed(x.o.Seed, ts.Steps())^featureDropoutStream)
	}
	loss, n, err := ts.Forward(feats, bt.IDs, bt.Targets, bt.B, bt.T, true, dropoutSeed(x.o.Seed, ts.Steps()))
	return stepStats{loss: loss, tokens: n, units: n}, err
}

// featureDropoutStream sets the features' dropout masks apart from the deep
// output's, drawn from the same step seed.
const featureDropoutStream = 0x5851F42D4C957F2D

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
	// refs are each image's reference captions (cut at train.max_len), the
	// cross-entropy targets of train.xe_weight; nil without it.
	refs [][][]int32
}

func newSelfCritical(dev gpu.Device, trn *Split, feats, batchFeats gpu.Buf, featDim int, o Options, mirror *mirroring) *selfCritical {
	images := make([]Example, trn.Images())
	for i := range images {
		images[i].Image = i
	}
	var refs [][][]int32
	if o.XEWeight > 0 {
		refs = make([][][]int32, trn.Images())
		for _, e := range truncate(trn.Examples, o.MaxLen) {
			refs[e.Image] = append(refs[e.Image], e.Words)
		}
	}
	n := o.BatchSize / o.Samples * featDim
	return &selfCritical{images: images, scorer: metrics.NewCIDErDScorer(trn.Refs),
		feats: feats, batchFeats: batchFeats, imgFeats: dev.Alloc(n), mask: dev.Alloc(n), featDim: featDim, o: o, mirror: mirror, refs: refs}
}

// extraRows is how many caption rows a step adds to the batch_size samples:
// one reference per image with train.xe_weight.
func extraRows(o Options) int {
	if o.Objective == "cider" && o.XEWeight > 0 {
		return o.BatchSize / o.Samples
	}
	return 0
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
	// With train.xe_weight, rows R.. hold one reference of each image (its
	// words swapped as the photo is mirrored).
	for b, i := range idx {
		if len(s.refs) == 0 || len(s.refs[i]) == 0 { // no train.xe_weight, or an image without captions
			continue
		}
		ref := s.refs[i][rng.IntN(len(s.refs[i]))]
		if flips != nil && flips[b] {
			ref = s.mirror.caption(ref)
		}
		ex, order = append(ex, Example{Image: b, Words: ref}), append(order, len(ex))
	}
	rows := len(ex)
	bt := makeBatch(ex, order, text.StartID, text.EndID, text.PadID)
	for r, smp := range samples {
		if !smp.Ended { // cut at the maximum length: no <end> was drawn, so none is a target
			bt.Targets[len(smp.Tokens)*rows+r] = -1
		}
	}
	for t := 0; t < bt.T; t++ { // a reference's rare words: decoding's distribution has no <unk> to learn
		for r := R; r < rows; r++ {
			if bt.Targets[t*rows+r] == text.UnkID {
				bt.Targets[t*rows+r] = -1
			}
		}
	}
	feats := batchFeatures(dev, s.batchFeats, imgFeats, bt.Images, s.featDim)
	if st.loss, st.tokens, err = ts.ForwardSampled(feats, bt.IDs, bt.Targets, rows, bt.T, 0); err != nil {
		return st, err
	}
	// Forward's gradient is that of the mean loss over st.tokens tokens; weight
	// caption r by advantage·tokens/R to get the gradient of
	// -(1/R) Σ_r advantage_r · log p(caption r), and each reference by
	// xe_weight·tokens/B for -(xe_weight/B) Σ_b log p(reference b).
	weights := make([]float32, rows)
	for r := R; r < rows; r++ {
		weights[r] = float32(s.o.XEWeight * float64(st.tokens) / float64(B))
	}
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
// are training settings). A factorized context weight is the model's own: it
// returns the parameters and want with the model's ctx_rank, which the run keeps.
func checkInit(dev gpu.Device, dir string, want decoder.Config) ([]float32, decoder.Config, error) {
	init, err := decoder.Load(dev, dir)
	if err != nil {
		return nil, want, fmt.Errorf("train.init: %w", err)
	}
	defer init.Close()
	want.CtxRank = init.Cfg.CtxRank
	if init.Cfg.Network() != want.Network() {
		return nil, want, fmt.Errorf("train.init: %s is another network than this run asks for: %s (the model's -> this run's); captioner train takes train.arch, embed, hidden, mid and att from the model where they are not set: unset those that differ, or set them as its config.json has them (feat_dim and regions follow the features: captioner extract, --grid for attention), or train from scratch without train.init",
			dir, structdiff.Join(structdiff.Fields(init.Cfg.Network(), want.Network())))
	}
	flat, err := init.FlatHost()
	return flat, want, err
}
