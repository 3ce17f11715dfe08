package decoder

import (
	"fmt"
	"slices"

	"github.com/captioner/captioner/gpu"
)

// TrainState holds what a training step needs besides the parameters: gradients
// (mirroring the parameters), Adam moments, and the activations of one batch of
// up to maxB captions of up to maxT steps, each kind in one flat buffer.
type TrainState struct {
	m          *Model
	maxB, maxT int

	gradFlat, mom1, mom2 gpu.Buf // (NumParams) each
	G                    Params  // views into gradFlat

	actFlat gpu.Buf
	a       acts
	attFlat gpu.Buf // attention's activations (attention.go); nil for merge
	att     attActs

	// The batch of the last Forward, which Backward differentiates.
	B, T  int
	ids   []int32
	x     gpu.Buf // (B, F) the image features after dropout
	train bool
	step  int // Adam steps taken

	// dfeat (maxB, InputDim): with KeepInputGrad, Backward writes the gradient
	// of the loss with respect to the features into it (for a trained
	// encoder below); regionOnes (L) broadcasts attention's mean over regions
	// (a batched Gemm with one (L, 1) matrix of ones for every image).
	dfeat, regionOnes gpu.Buf

	// Buffers of ReweightCaptions, allocated on its first use.
	weightFlat        gpu.Buf
	ones, rowW, rowWV gpu.Buf // (V) ones, (maxT*maxB) row weights, (maxT*maxB, V) their broadcast
}

// acts are views into actFlat, each sized for (maxT, maxB); a batch uses prefixes.
type acts struct {
	featDrop, featMask gpu.Buf // (B, F)
	img, dimg          gpu.Buf // (B, H) image branch output and its gradient
	emb, embMask, demb gpu.Buf // (T, B, E) embeddings after dropout, the mask, the gradient
	gates              gpu.Buf // (T, B, 4H) preactivations; gate gradients in backward
	act                gpu.Buf // (T, B, 4H) gate activations
	h, c               gpu.Buf // (T, B, H) LSTM outputs and cell states
	zero, dc           gpu.Buf // (B, H) initial state; cell gradient carried back in time
	sum, dsum          gpu.Buf // (T, B, H) merge output and its gradient
	mid, dmid          gpu.Buf // (T, B, M)
	logits             gpu.Buf // (T, B, V) logits; their gradient in place after Forward
	loss               gpu.Buf // (T*B) per-token loss
}

// NewTrainState allocates training buffers for batches of up to maxB captions of
// up to maxT tokens.
func (m *Model) NewTrainState(maxB, maxT int) *TrainState {
	c := m.Cfg
	n := c.NumParams()
	ts := &TrainState{m: m, maxB: maxB, maxT: maxT,
		gradFlat: m.dev.Alloc(n), mom1: m.dev.Alloc(n), mom2: m.dev.Alloc(n)}
	ts.G = views(c, ts.gradFlat)
	if c.Arch == ArchAttention {
		ts.allocAttention()
		return ts
	}
	B, N, F, E, H, M, V := maxB, maxB*maxT, c.FeatDim, c.Embed, c.Hidden, c.Mid, c.Vocab
	a := &ts.a
	ts.actFlat = carve(m.dev, []view{
		{&a.featDrop, B * F}, {&a.featMask, B * F}, {&a.img, B * H}, {&a.dimg, B * H},
		{&a.emb, N * E}, {&a.embMask, N * E}, {&a.demb, N * E}, {&a.gates, N * 4 * H}, {&a.act, N * 4 * H},
		{&a.h, N * H}, {&a.c, N * H}, {&a.zero, B * H}, {&a.dc, B * H},
		{&a.sum, N * H}, {&a.dsum, N * H}, {&a.mid, N * M}, {&a.dmid, N * M},
		{&a.logits, N * V}, {&a.loss, N},
	})
	return ts
}

// Close frees the training buffers.
func (ts *TrainState) Close() {
	gpu.FreeAll(ts.m.dev, ts.gradFlat, ts.mom1, ts.mom2, ts.actFlat, ts.weightFlat, ts.attFlat, ts.dfeat, ts.regionOnes)
}

// KeepInputGrad makes every later Backward also write the gradient of the loss
// with respect to the features Forward read, which InputGrad returns: what
// trains an encoder below the decoder.
func (ts *TrainState) KeepInputGrad() {
	if ts.dfeat != nil {
		return
	}
	c, dev := ts.m.Cfg, ts.m.dev
	ts.dfeat = dev.Alloc(ts.maxB * c.InputDim())
	if c.Arch == ArchAttention {
		ts.regionOnes = dev.Alloc(c.Regions)
		gpu.Ones(dev, ts.regionOnes)
	}
}

// InputGrad is the (B, InputDim) gradient of the last Backward's loss with
// respect to the features of its Forward; it needs KeepInputGrad.
func (ts *TrainState) InputGrad() gpu.Buf {
	if ts.dfeat == nil {
		panic("decoder: InputGrad without KeepInputGrad")
	}
	return ts.dfeat.Slice(0, ts.B*ts.m.Cfg.InputDim())
}

// Grads is the flat gradient buffer (NumParams), in Tensors order.
func (ts *TrainState) Grads() gpu.Buf { return ts.gradFlat }

// Steps is the number of optimiser steps taken.
func (ts *TrainState) Steps() int { return ts.step }

// Forward runs the teacher-forced pass over a batch and returns the mean loss per
// target token and the number of target tokens.
//
//	feats   (B, F) image features on the device
//	ids     (T*B) input tokens, time-major: ids[t*B+b] is caption b's token t
//	        (<start> w1 ... wn, then padding)
//	targets (T*B) the next tokens (w1 ... wn <end>), -1 where padded
//
// With train set, dropout is applied with masks drawn from seed, and the
// gradient of the loss with respect to the logits is kept for Backward.
func (ts *TrainState) Forward(feats gpu.Buf, ids, targets []int32, B, T int, train bool, seed uint64) (float64, int, error) {
	return ts.forward(feats, ids, targets, B, T, train, seed, ts.m.P.OutB)
}

// ForwardSampled is Forward, train set, for captions drawn by Sample: it
// scores them under the distribution Sample draws from, in which the words
// decoding never emits (unspoken: <pad>, <start>, <unk>) have probability 0,
// so that Backward differentiates that distribution. Self-critical training's
// policy gradient must: under Forward's full softmax the never-drawn <unk>
// takes no part in any sample's reward, its logit drifted up unchecked and
// took the probability of the words (the attention model's dev loss went from
// 3.4 to 13.4 in one epoch, dev BLEU-4 0.188 to 0.180). A target that is an
// unspoken word is an error: Sample never draws one.
func (ts *TrainState) ForwardSampled(feats gpu.Buf, ids, targets []int32, B, T int, seed uint64) (float64, int, error) {
	for i, t := range targets {
		if slices.Contains(unspoken, t) {
			return 0, 0, fmt.Errorf("decoder: ForwardSampled target %d (row %d) is a word decoding never emits; sampled captions cannot contain it", t, i)
		}
	}
	ts.m.prepare() // the decoding output bias, current with the parameters
	return ts.forward(feats, ids, targets, B, T, true, seed, ts.m.outB)
}

// forward is Forward with outB (V) as the output bias: the parameter OutB, or
// the decoding bias built from it.
func (ts *TrainState) forward(feats gpu.Buf, ids, targets []int32, B, T int, train bool, seed uint64, outB gpu.Buf) (float64, int, error) {
	m, dev, c, a := ts.m, ts.m.dev, ts.m.Cfg, &ts.a
	if B > ts.maxB || T > ts.maxT || B <= 0 || T <= 0 {
		panic(fmt.Sprintf("decoder: batch (B=%d, T=%d) outside the training buffers (B<=%d, T<=%d)", B, T, ts.maxB, ts.maxT))
	}
	N, F, E, H, M := T*B, c.FeatDim, c.Embed, c.Hidden, c.Mid
	if len(ids) != N || len(targets) != N || feats.Len() != B*c.InputDim() {
		panic(fmt.Sprintf("decoder: Forward got %d ids, %d targets, %d feature values for B=%d T=%d and %d values per image", len(ids), len(targets), feats.Len(), B, T, c.InputDim()))
	}
	ntok := 0
	for _, t := range targets {
		if t >= 0 {
			ntok++
		}
	}
	if ntok == 0 {
		return 0, 0, fmt.Errorf("decoder: batch has no target tokens (every target is padding)")
	}
	ts.B, ts.T, ts.ids, ts.train = B, T, ids, train
	if c.Arch == ArchAttention {
		pen, err := ts.forwardAttention(feats, targets, seed, outB)
		if err != nil {
			return 0, 0, err
		}
		ce, err := ts.crossEntropy(targets, ntok)
		return ce + pen, ntok, err
	}
	drop := train && c.Dropout > 0

	// Image branch: img (B, H) = relu(dropout(feats) · ImgWᵀ + ImgB).
	ts.x = feats
	if drop {
		ts.x = a.featDrop.Slice(0, B*F)
		dev.Dropout(ts.x, a.featMask.Slice(0, B*F), feats, c.Dropout, seed)
	}
	img := a.img.Slice(0, B*H)
	m.imageBranch(&m.exact, img, ts.x, B)

	// Words: emb (T, B, E) = dropout(Embed[ids]).
	emb := a.emb.Slice(0, N*E)
	dev.EmbeddingForward(emb, m.P.Embed, ids, E)
	if drop {
		dev.Dropout(emb, a.embMask.Slice(0, N*E), emb, c.Dropout, seed^0xD1B54A32D192ED03)
	}

	// LSTM: the input projection for every step at once, then the recurrence.
	gates := a.gates.Slice(0, N*4*H)
	m.wordGates(gates, emb, N)
	dev.Zero(a.zero)
	for t := 0; t < T; t++ {
		g := gates.Slice(t*B*4*H, B*4*H)
		cPrev := a.zero.Slice(0, B*H)
		if t > 0 {
			m.exact.wh.MulT(B, a.h.Slice((t-1)*B*H, B*H), H, 1, g, 4*H)
			cPrev = a.c.Slice((t-1)*B*H, B*H)
		}
		dev.LSTMCellForward(a.h.Slice(t*B*H, B*H), a.c.Slice(t*B*H, B*H), a.act.Slice(t*B*4*H, B*4*H), g, cPrev, B, H)
	}

	// Merge: sum (T, B, H) = h + img, img broadcast over T as a bias of length B*H.
	sum := a.sum.Slice(0, N*H)
	dev.BiasAct(sum, a.h.Slice(0, N*H), img, T, B*H, gpu.ActNone)
	m.head(&m.exact, a.logits.Slice(0, N*c.Vocab), a.mid.Slice(0, N*M), sum, outB, N)
	loss, err := ts.crossEntropy(targets, ntok)
	return loss, ntok, err
}

// crossEntropy returns the mean loss per target token of the logits (T, B, V)
// of the last Forward and, when it trains, leaves their gradient in their place.
func (ts *TrainState) crossEntropy(targets []int32, ntok int) (float64, error) {
	dev, N, V := ts.m.dev, ts.T*ts.B, ts.m.Cfg.Vocab
	logits, loss := ts.a.logits.Slice(0, N*V), ts.a.loss.Slice(0, N)
	var dlogits gpu.Buf
	if ts.train {
		dlogits = logits
	}
	dev.CrossEntropy(loss, dlogits, logits, targets, N, V, 1/float32(ntok))
	host := make([]float32, N)
	if err := dev.Download(host, loss); err != nil {
		return 0, err
	}
	var total float64
	for _, l := range host {
		total += float64(l)
	}
	return total / float64(ntok), nil
}

// ReweightCaptions scales the loss gradient that the last Forward kept (train
// set) caption by caption: afterwards Backward differentiates
// Σ_b w[b]·(caption b's tokens' share of the mean loss) instead of the mean loss.
// Self-critical training passes each sampled caption's advantage here. The
// attention penalty's gradient is not the loss's to reweigh, so the penalty
// must be off (ModelConfig turns it off for the cider objective).
func (ts *TrainState) ReweightCaptions(w []float32) {
	if !ts.train {
		panic("decoder: ReweightCaptions after an evaluation Forward (train=false)")
	}
	if c := ts.m.Cfg; c.Arch == ArchAttention && c.AttPenalty != 0 {
		panic(fmt.Sprintf("decoder: ReweightCaptions with the attention penalty on (%g), whose gradient it would leave unweighted; set it to 0", c.AttPenalty))
	}
	B, T, dev, V := ts.B, ts.T, ts.m.dev, ts.m.Cfg.Vocab
	if len(w) != B {
		panic(fmt.Sprintf("decoder: %d caption weights for a batch of %d captions", len(w), B))
	}
	if ts.weightFlat == nil {
		n := ts.maxB * ts.maxT
		ts.weightFlat = carve(dev, []view{{&ts.ones, V}, {&ts.rowW, n}, {&ts.rowWV, n * V}})
		gpu.Ones(dev, ts.ones)
	}
	N := T * B
	host := make([]float32, N)
	for t := 0; t < T; t++ {
		copy(host[t*B:(t+1)*B], w) // time-major: row t*B+b is caption b's
	}
	rowW, rowWV := ts.rowW.Slice(0, N), ts.rowWV.Slice(0, N*V)
	dev.Upload(rowW, host)
	// The device has no row-scaling kernel: the broadcast (N, V) = rowW (N, 1) ·
	// ones (1, V) is a rank-1 Gemm, then an elementwise product scales the rows.
	dev.Gemm(false, false, N, V, 1, 1, rowW, 1, ts.ones, V, 0, rowWV, V)
	dlogits := ts.a.logits.Slice(0, N*V)
	dev.Mul(dlogits, dlogits, rowWV)
}

// Backward adds the gradients of the last Forward's mean loss into the gradient
// buffers, in the reverse order of the forward pass. Forward must have run with
// train set.
func (ts *TrainState) Backward() {
	if !ts.train {
		panic("decoder: Backward after an evaluation Forward (train=false)")
	}
	if ts.m.Cfg.Arch == ArchAttention {
		ts.backwardAttention()
		return
	}
	m, dev, c, a, G := ts.m, ts.m.dev, ts.m.Cfg, &ts.a, &ts.G
	B, T := ts.B, ts.T
	N, F, E, H, M, V := T*B, c.FeatDim, c.Embed, c.Hidden, c.Mid, c.Vocab
	sum, dsum := a.sum.Slice(0, N*H), a.dsum.Slice(0, N*H)
	mid, dmid := a.mid.Slice(0, N*M), a.dmid.Slice(0, N*M)
	logits := a.logits.Slice(0, N*V) // holds dlogits

	// Head.
	linearBackward(dev, dmid, G.OutW, G.OutB, logits, logits, mid, m.P.OutW, N, M, V, gpu.ActNone)
	linearBackward(dev, dsum, G.DecW, G.DecB, dmid, mid, sum, m.P.DecW, N, H, M, gpu.ActReLU)

	// Merge: the image branch gets the sum over T of dsum; the LSTM output gets dsum.
	img, dimg := a.img.Slice(0, B*H), a.dimg.Slice(0, B*H)
	dev.Zero(dimg)
	dev.BiasActBackward(dsum, dimg, dsum, sum, T, B*H, gpu.ActNone)
	var dx gpu.Buf
	if ts.dfeat != nil {
		dx = ts.InputGrad()
	}
	linearBackward(dev, dx, G.ImgW, G.ImgB, dimg, img, ts.x, m.P.ImgW, B, F, H, gpu.ActReLU)
	if dx != nil && c.Dropout > 0 { // after a train Forward (Backward panics otherwise), feats reached the branch through dropout
		dev.Mul(dx, dx, a.featMask.Slice(0, B*F))
	}

	// LSTM, backward through time. dsum serves as dh; gates is overwritten with dgates.
	dgates := a.gates.Slice(0, N*4*H)
	dc := a.dc.Slice(0, B*H)
	dev.Zero(dc)
	for t := T - 1; t >= 0; t-- {
		dh := dsum.Slice(t*B*H, B*H)
		if t < T-1 {
			dev.Gemm(false, false, B, H, 4*H, 1, dgates.Slice((t+1)*B*4*H, B*4*H), 4*H, m.P.Wh, H, 1, dh, H)
		}
		cPrev := a.zero.Slice(0, B*H)
		if t > 0 {
			cPrev = a.c.Slice((t-1)*B*H, B*H)
		}
		dev.LSTMCellBackward(dgates.Slice(t*B*4*H, B*4*H), dc, dh, dc, a.act.Slice(t*B*4*H, B*4*H), a.c.Slice(t*B*H, B*H), cPrev, B, H)
	}
	if T > 1 { // dWh += Σ_t dgates[t]ᵀ · h[t-1], as one Gemm over steps 1..T-1
		dev.Gemm(true, false, 4*H, H, (T-1)*B, 1, dgates.Slice(B*4*H, (T-1)*B*4*H), 4*H, a.h.Slice(0, (T-1)*B*H), H, 1, G.Wh, H)
	}
	emb := a.emb.Slice(0, N*E)
	demb := a.demb.Slice(0, N*E)
	linearBackward(dev, demb, G.Wx, G.LB, dgates, dgates, emb, m.P.Wx, N, E, 4*H, gpu.ActNone)
	if c.Dropout > 0 { // Backward runs only after a train Forward, which applied dropout
		dev.Mul(demb, demb, a.embMask.Slice(0, N*E))
	}
	dev.EmbeddingBackward(G.Embed, demb, ts.ids, E)
}

// ZeroGrad clears the gradients before a step's Backward.
func (ts *TrainState) ZeroGrad() { ts.m.dev.Zero(ts.gradFlat) }

// ClipGradNorm is gpu.ClipGradNorm of the decoder's gradients: Step leaves
// the weights as they were on its gpu.ErrDiverged.
func (ts *TrainState) ClipGradNorm(maxNorm float64) (float64, error) {
	return gpu.ClipGradNorm(ts.m.dev, ts.gradFlat, maxNorm)
}

// Step is one optimiser step: clear the gradients, run forward (one batch's
// Forward, whatever the objective), back-propagate, clip the global gradient
// norm at clip and update with adam.
func (ts *TrainState) Step(clip float64, adam Adam, forward func() error) error {
	ts.ZeroGrad()
	if err := forward(); err != nil {
		return err
	}
	ts.Backward()
	if _, err := ts.ClipGradNorm(clip); err != nil {
		return err
	}
	ts.Update(adam)
	return nil
}

// Adam are the AdamW hyperparameters of one update.
type Adam struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
}

// Update applies one AdamW step to every parameter.
func (ts *TrainState) Update(h Adam) {
	ts.step++
	ts.m.dev.AdamW(ts.m.flat, ts.gradFlat, ts.mom1, ts.mom2, h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay, ts.step)
	ts.m.projStale = true
}

// Moments downloads Adam's first and second moments and the step count, which a
// checkpoint saves so a resumed run continues exactly.
func (ts *TrainState) Moments() (m1, m2 []float32, step int, err error) {
	n := ts.m.Cfg.NumParams()
	m1, m2 = make([]float32, n), make([]float32, n)
	if err = ts.m.dev.Download(m1, ts.mom1); err != nil {
		return nil, nil, 0, err
	}
	err = ts.m.dev.Download(m2, ts.mom2)
	return m1, m2, ts.step, err
}

// SetMoments restores what Moments returned.
func (ts *TrainState) SetMoments(m1, m2 []float32, step int) error {
	n := ts.m.Cfg.NumParams()
	if len(m1) != n || len(m2) != n {
		return fmt.Errorf("decoder: Adam moments have %d and %d values, the model has %d parameters", len(m1), len(m2), n)
	}
	ts.m.dev.Upload(ts.mom1, m1)
	ts.m.dev.Upload(ts.mom2, m2)
	ts.step = step
	return nil
}

// Model is the model this state trains.
func (ts *TrainState) Model() *Model { return ts.m }
