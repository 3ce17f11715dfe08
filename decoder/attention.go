package decoder

import "github.com/captioner/captioner/gpu"

// Show, Attend and Tell's soft attention decoder (Xu et al. 2015), as the
// PyTorch peer AttentionDecoder in shared/bench/torch_captioner.py:
//
//	mean = mean over regions of feats (B, L, F)
//	h0 = tanh(mean·InitHWᵀ + InitHB);  c0 = tanh(mean·InitCWᵀ + InitCB)
//	pf = feats·AttFWᵀ + AttFB                                  (B, L, A), once
//	per step t, from h = h_{t-1}:
//	  alpha = softmax over L of AttV · tanh(pf + h·AttHWᵀ)       (B, L)
//	  gz = sigmoid(h·GateWᵀ + GateB) * Σ_l alpha_l feats_l       (B, F)
//	  h_t, c_t = LSTM([Embed y_{t-1}, gz], h, c)
//	  logits = OutW · dropout(Embed y_{t-1} + h_t·OutHWᵀ + OutHB + gz·OutZWᵀ) + OutB
//
// The loss adds the doubly stochastic penalty AttPenalty * mean over captions and
// regions of (1 - Σ_t alpha_t)^2, the sum over each caption's own steps.
//
// Every step is a composition of gpu.Device kernels, so the decoder runs
// forward and backward on each backend: the scoring MLP over regions is one
// kernel (AttentionScores: the broadcast of the state's term, tanh and the
// product with AttV in one pass over (B, L, A); decoding's AttentionScoresExp
// reads the regions' term as exp(2·pf), taken once per image, and needs no
// tanh), the context a batched Gemm of
// each image's rows' weights (K, L) with its regions (L, F), and the softmax
// over regions has its own backward kernel (SoftmaxBackward). Beams of one
// image (K rows) share its regions and their attention term: nothing is
// copied per beam.

// attActs are attention's activations, each sized for (maxT, maxB) and
// time-major like merge's; views into TrainState.attFlat.
type attActs struct {
	mean        gpu.Buf // (B, F) mean region
	h, c, dh    gpu.Buf // (T+1, B, H) states: block 0 is h0 (c0), block t+1 step t's output; dh their gradients
	dc          gpu.Buf // (B, H) cell gradient carried back in time
	pf, dpf     gpu.Buf // (B, L, A) the regions' attention term and its gradient
	e           gpu.Buf // (T, B, L, A) tanh(pf + the state's term)
	hproj       gpu.Buf // (B, A) one step's state term h·AttHWᵀ; its gradient in backward
	alpha       gpu.Buf // (T, B, L) attention weights
	dalpha      gpu.Buf // (T, B, L) their gradient, starting from the penalty's
	ascratch    gpu.Buf // (B, L) one step's gradient of the scores
	z, beta, gz gpu.Buf // (T, B, F) context, gate, gated context
	dgz         gpu.Buf // (T, B, F) gradient of gz
	dz, dbeta   gpu.Buf // (B, F) one step's gradients of z and beta
	deep, ddeep gpu.Buf // (T, B, E) deep output's input (after dropout) and its gradient
	deepMask    gpu.Buf // (T, B, E)
	low, dlow   gpu.Buf // (T, B, r) gz·CtxVᵀ of a factorized context weight (Config.CtxRank r), its gradient

	feats gpu.Buf // (B, L, F) the last Forward's features
}

// wxCols is the row length of Wx: the LSTM input is the embedding, and for
// attention also the gated context, unless its weight is factorized (CtxRank).
func (c Config) wxCols() int {
	if c.Arch == ArchAttention && c.CtxRank == 0 {
		return c.Embed + c.FeatDim
	}
	return c.Embed
}

// allocAttention allocates attention's activations and the shared ones it
// uses (embeddings, gates, logits, loss) for (maxT, maxB).
func (ts *TrainState) allocAttention() {
	c, dev := ts.m.Cfg, ts.m.dev
	B, N, F, E, H, L, A, V, r := ts.maxB, ts.maxB*ts.maxT, c.FeatDim, c.Embed, c.Hidden, c.Regions, c.Att, c.Vocab, c.CtxRank
	S := N + B // states: T+1 blocks
	a, x := &ts.a, &ts.att
	ts.actFlat = carve(dev, []view{
		{&a.emb, N * E}, {&a.demb, N * E}, {&a.gates, N * 4 * H}, {&a.act, N * 4 * H},
		{&a.logits, N * V}, {&a.loss, N},
	})
	ts.attFlat = carve(dev, []view{
		{&x.mean, B * F}, {&x.h, S * H}, {&x.c, S * H}, {&x.dh, S * H}, {&x.dc, B * H},
		{&x.pf, B * L * A}, {&x.dpf, B * L * A}, {&x.e, N * L * A},
		{&x.hproj, B * A}, {&x.alpha, N * L}, {&x.dalpha, N * L}, {&x.ascratch, B * L},
		{&x.z, N * F}, {&x.beta, N * F}, {&x.gz, N * F}, {&x.dgz, N * F}, {&x.dz, B * F}, {&x.dbeta, B * F},
		{&x.deep, N * E}, {&x.ddeep, N * E}, {&x.deepMask, N * E}, {&x.low, N * r}, {&x.dlow, N * r},
	})
}

// addContext adds the gated context's term to the LSTM gates of R rows:
// gates += gz·Wzᵀ with the context's columns Wz of Wx or, for a factorized
// weight (Config.CtxRank r), gates += (gz·CtxVᵀ)·CtxUᵀ, r(4H+F) multiply-adds
// a row instead of 4H·F, leaving gz·CtxVᵀ in low (R, r).
func addContext(w *weights, c Config, gates, gz, low gpu.Buf, R int) {
	F, H := c.FeatDim, c.Hidden
	if r := c.CtxRank; r > 0 {
		w.ctxV.MulT(R, gz, F, 0, low, r)
		w.ctxU.MulT(R, low, r, 1, gates, 4*H)
		return
	}
	w.ctx.MulT(R, gz, F, 1, gates, 4*H)
}

// contextColumns is the view of a full (4H, E+F) LSTM input weight, or of its
// gradient, that starts at its context columns: (4H, F) at row stride E+F.
func contextColumns(wx gpu.Buf, c Config) gpu.Buf { return wx.Slice(c.Embed, wx.Len()-c.Embed) }

// repeatRows returns, for n rows each repeated k times, the source row of
// each of the n*k rows: a gather with it broadcasts (n, .) to (n*k, .), such
// as images to their beams.
func repeatRows(n, k int) []int32 {
	ids := make([]int32, n*k)
	for i := range ids {
		ids[i] = int32(i / k)
	}
	return ids
}

// attendStep runs one step's attention for R rows, K consecutive rows per
// image: from hPrev (R, H) it writes alpha (R, L) and the gated context gz
// (R, F), keeping z and beta (R, F). score writes the scores (R, L) from the
// state's term hproj (R, A) and the regions' (training keeps the tanh for
// the backward pass; decoding reads the regions' term in AttentionExp's form).
// feats is (R/K, L, F): one per image. The products run against w.
func attendStep(dev gpu.Device, w *weights, p *Params, c Config, score func(alpha, hproj gpu.Buf), alpha, z, beta, gz, hproj, hPrev, feats gpu.Buf, R, K int) {
	F, H, L, A := c.FeatDim, c.Hidden, c.Regions, c.Att
	// alpha (R, L) = softmax(tanh(pf + hproj broadcast over regions) · AttV),
	// hproj (R, A) = hPrev·AttHWᵀ.
	w.attH.MulT(R, hPrev, H, 0, hproj, A)
	score(alpha, hproj)
	dev.Softmax(alpha, alpha, R, L)
	// z rows of image b (K, F) = its rows' alpha (K, L) · feats_b (L, F).
	dev.GemmStridedBatched(false, false, K, F, L, 1, alpha, L, K*L, feats, F, L*F, 0, z, F, K*F, R/K)
	// beta (R, F) = sigmoid(hPrev·GateWᵀ + GateB); gz = beta * z.
	dense(dev, beta, hPrev, w.gate, p.GateB, R, H, F, gpu.ActSigmoid)
	dev.Mul(gz, beta, z)
}

// attentionStart writes the initial state h0, c0 (B, H) from the mean region
// (mean (B, F)) and the regions' attention term pf (B, L, A) of feats (B, L, F),
// the products against w.
func attentionStart(dev gpu.Device, w *weights, p *Params, c Config, h0, c0, mean, pf, feats gpu.Buf, B int) {
	F, H, L, A := c.FeatDim, c.Hidden, c.Regions, c.Att
	dev.GlobalAvgPool(mean, feats, B, L, F)
	dense(dev, h0, mean, w.initH, p.InitHB, B, F, H, gpu.ActTanh)
	dense(dev, c0, mean, w.initC, p.InitCB, B, F, H, gpu.ActTanh)
	dense(dev, pf, feats, w.attF, p.AttFB, B*L, F, A, gpu.ActNone)
}

// forwardAttention is Forward for the attention decoder: it leaves the logits
// (T, B, V) in ts.a.logits and returns the attention penalty. feats is (B, L, F).
func (ts *TrainState) forwardAttention(feats gpu.Buf, targets []int32, seed uint64, outB gpu.Buf) (float64, error) {
	m, dev, c, a, x := ts.m, ts.m.dev, ts.m.Cfg, &ts.a, &ts.att
	B, T := ts.B, ts.T
	N, F, E, H, L, A, V := T*B, c.FeatDim, c.Embed, c.Hidden, c.Regions, c.Att, c.Vocab
	x.feats = feats
	hs, cs := x.h.Slice(0, (T+1)*B*H), x.c.Slice(0, (T+1)*B*H)
	pf := x.pf.Slice(0, B*L*A)
	attentionStart(dev, &m.exact, &m.P, c, hs.Slice(0, B*H), cs.Slice(0, B*H), x.mean.Slice(0, B*F), pf, feats, B)

	// Words: emb (T, B, E) = Embed[ids]; gates (T, B, 4H) = emb·Wx[:, :E]ᵀ + LB for every step at once.
	emb, gates := a.emb.Slice(0, N*E), a.gates.Slice(0, N*4*H)
	dev.EmbeddingForward(emb, m.P.Embed, ts.ids, E)
	m.wordGates(gates, emb, N)

	for t := 0; t < T; t++ {
		hPrev, cPrev := hs.Slice(t*B*H, B*H), cs.Slice(t*B*H, B*H)
		gz := x.gz.Slice(t*B*F, B*F)
		e := x.e.Slice(t*B*L*A, B*L*A)
		score := func(alpha, hproj gpu.Buf) { dev.AttentionScores(alpha, e, pf, hproj, m.P.AttV, B, 1, L, A) }
		attendStep(dev, &m.exact, &m.P, c, score, x.alpha.Slice(t*B*L, B*L), x.z.Slice(t*B*F, B*F),
			x.beta.Slice(t*B*F, B*F), gz, x.hproj.Slice(0, B*A), hPrev, feats, B, 1)
		// gates_t += the context's term + hPrev·Whᵀ, then the cell.
		g := gates.Slice(t*B*4*H, B*4*H)
		addContext(&m.exact, c, g, gz, x.low.Slice(t*B*c.CtxRank, B*c.CtxRank), B)
		m.exact.wh.MulT(B, hPrev, H, 1, g, 4*H)
		dev.LSTMCellForward(hs.Slice((t+1)*B*H, B*H), cs.Slice((t+1)*B*H, B*H), a.act.Slice(t*B*4*H, B*4*H), g, cPrev, B, H)
	}

	// Deep output: deep (T, B, E) = dropout(emb + h·OutHWᵀ + OutHB + gz·OutZWᵀ); logits (T, B, V).
	deep := x.deep.Slice(0, N*E)
	dense(dev, deep, hs.Slice(B*H, N*H), m.exact.outH, m.P.OutHB, N, H, E, gpu.ActNone)
	m.exact.outZ.MulT(N, x.gz.Slice(0, N*F), F, 1, deep, E)
	dev.Add(deep, deep, emb)
	if ts.train && c.Dropout > 0 {
		dev.Dropout(deep, x.deepMask.Slice(0, N*E), deep, c.Dropout, seed)
	}
	dense(dev, a.logits.Slice(0, N*V), deep, m.exact.out, outB, N, E, V, gpu.ActNone)
	return ts.attentionPenalty(targets)
}

// attentionPenalty returns lambda * mean over captions b and regions l of
// (1 - Σ_t alpha[t,b,l])^2, t over caption b's target steps, and when training
// writes its gradient into dalpha (zero on padded steps).
func (ts *TrainState) attentionPenalty(targets []int32) (float64, error) {
	c, x, B, T := ts.m.Cfg, &ts.att, ts.B, ts.T
	L, N := c.Regions, ts.T*ts.B
	alpha := make([]float32, N*L)
	if err := ts.m.dev.Download(alpha, x.alpha.Slice(0, N*L)); err != nil {
		return 0, err
	}
	scale := float64(c.AttPenalty) / float64(B*L)
	sum := make([]float64, B*L)
	for t := 0; t < T; t++ {
		for b := 0; b < B; b++ {
			if targets[t*B+b] < 0 {
				continue
			}
			for l := 0; l < L; l++ {
				sum[b*L+l] += float64(alpha[(t*B+b)*L+l])
			}
		}
	}
	var pen float64
	for _, s := range sum {
		pen += (1 - s) * (1 - s)
	}
	if ts.train {
		grad := make([]float32, N*L)
		for t := 0; t < T; t++ {
			for b := 0; b < B; b++ {
				if targets[t*B+b] < 0 {
					continue
				}
				for l := 0; l < L; l++ {
					grad[(t*B+b)*L+l] = float32(2 * scale * (sum[b*L+l] - 1))
				}
			}
		}
		ts.m.dev.Upload(x.dalpha.Slice(0, N*L), grad)
	}
	return scale * pen, nil
}

// backwardAttention is Backward for the attention decoder, in the reverse
// order of forwardAttention.
func (ts *TrainState) backwardAttention() {
	m, dev, c, a, x, G := ts.m, ts.m.dev, ts.m.Cfg, &ts.a, &ts.att, &ts.G
	B, T := ts.B, ts.T
	N, F, E, H, L, A, V := T*B, c.FeatDim, c.Embed, c.Hidden, c.Regions, c.Att, c.Vocab
	hs, cs, dhs := x.h.Slice(0, (T+1)*B*H), x.c.Slice(0, (T+1)*B*H), x.dh.Slice(0, (T+1)*B*H)
	feats := x.feats
	emb, demb := a.emb.Slice(0, N*E), a.demb.Slice(0, N*E)
	deep, ddeep := x.deep.Slice(0, N*E), x.ddeep.Slice(0, N*E)
	gzAll, dgzAll := x.gz.Slice(0, N*F), x.dgz.Slice(0, N*F)
	logits := a.logits.Slice(0, N*V) // holds dlogits

	// Deep output: ddeep (T, B, E); emb gets it whole, h and gz through their weights.
	linearBackward(dev, ddeep, G.OutW, G.OutB, logits, logits, deep, m.P.OutW, N, E, V, gpu.ActNone)
	if c.Dropout > 0 {
		dev.Mul(ddeep, ddeep, x.deepMask.Slice(0, N*E))
	}
	dev.Copy(demb, ddeep)
	dev.Gemm(true, false, E, F, N, 1, ddeep, E, gzAll, F, 1, G.OutZW, F)
	dev.Gemm(false, false, N, F, E, 1, ddeep, E, m.P.OutZW, F, 0, dgzAll, F)
	dev.Zero(dhs.Slice(0, B*H))
	linearBackward(dev, dhs.Slice(B*H, N*H), G.OutHW, G.OutHB, ddeep, deep, hs.Slice(B*H, N*H), m.P.OutHW, N, H, E, gpu.ActNone)

	// Back through time. dhs[t+1] holds the gradient into step t's output once
	// step t+1 has added its share; each step adds its own into dhs[t] (hPrev).
	dgates := a.gates.Slice(0, N*4*H)
	r := c.CtxRank
	dc := x.dc.Slice(0, B*H)
	dev.Zero(dc)
	dpf, dhproj := x.dpf.Slice(0, B*L*A), x.hproj.Slice(0, B*A)
	dev.Zero(dpf)
	dbeta := x.dbeta.Slice(0, B*F)
	ascr := x.ascratch.Slice(0, B*L)
	for t := T - 1; t >= 0; t-- {
		hPrev, dhPrev := hs.Slice(t*B*H, B*H), dhs.Slice(t*B*H, B*H)
		dg := dgates.Slice(t*B*4*H, B*4*H)
		dev.LSTMCellBackward(dg, dc, dhs.Slice((t+1)*B*H, B*H), dc, a.act.Slice(t*B*4*H, B*4*H), cs.Slice((t+1)*B*H, B*H), cs.Slice(t*B*H, B*H), B, H)
		// gates_t = ... + gz·Wzᵀ (or (gz·CtxVᵀ)·CtxUᵀ) + hPrev·Whᵀ.
		dev.Gemm(false, false, B, H, 4*H, 1, dg, 4*H, m.P.Wh, H, 1, dhPrev, H)
		dgz := dgzAll.Slice(t*B*F, B*F)
		if r > 0 {
			dlow := x.dlow.Slice(t*B*r, B*r)
			dev.Gemm(false, false, B, r, 4*H, 1, dg, 4*H, m.P.CtxU, r, 0, dlow, r)
			dev.Gemm(false, false, B, F, r, 1, dlow, r, m.P.CtxV, F, 1, dgz, F)
		} else {
			dev.Gemm(false, false, B, F, 4*H, 1, dg, 4*H, contextColumns(m.P.Wx, c), E+F, 1, dgz, F)
		}

		// gz = beta * z; beta = sigmoid(hPrev·GateWᵀ + GateB).
		// dz replaces dgz in place: the features' gradient reads every step's
		// after the loop.
		z, beta := x.z.Slice(t*B*F, B*F), x.beta.Slice(t*B*F, B*F)
		dev.Mul(dbeta, dgz, z)
		dz := dgz
		dev.Mul(dz, dgz, beta)
		dev.BiasActBackward(dbeta, G.GateB, dbeta, beta, B, F, gpu.ActSigmoid)
		dev.Gemm(true, false, F, H, B, 1, dbeta, F, hPrev, H, 1, G.GateW, H)
		dev.Gemm(false, false, B, H, F, 1, dbeta, F, m.P.GateW, H, 1, dhPrev, H)

		// z_b = alpha_b · feats_b: dalpha_b (1, L) += dz_b (1, F) · feats_bᵀ.
		alpha, dalpha := x.alpha.Slice(t*B*L, B*L), x.dalpha.Slice(t*B*L, B*L)
		dev.GemmStridedBatched(false, true, 1, L, F, 1, dz, F, F, feats, F, L*F, 1, dalpha, L, L, B)
		dev.SoftmaxBackward(ascr, dalpha, alpha, B, L) // dscores (B, L)

		// scores = e · AttV; e = tanh(pf + hproj broadcast over regions).
		e := x.e.Slice(t*B*L*A, B*L*A)
		dev.Gemm(true, false, 1, A, B*L, 1, ascr, 1, e, A, 1, G.AttV, A)
		dev.Zero(dhproj)
		dev.AttentionScoresBackward(dpf, dhproj, ascr, e, m.P.AttV, B, 1, L, A)
		dev.Gemm(true, false, A, H, B, 1, dhproj, A, hPrev, H, 1, G.AttHW, H)
		dev.Gemm(false, false, B, H, A, 1, dhproj, A, m.P.AttHW, H, 1, dhPrev, H)
	}
	// Weights shared by every step, as one Gemm each over the T steps.
	dev.Gemm(true, false, 4*H, H, N, 1, dgates, 4*H, hs.Slice(0, N*H), H, 1, G.Wh, H)
	wx := c.wxCols()
	if r > 0 {
		dev.Gemm(true, false, 4*H, r, N, 1, dgates, 4*H, x.low.Slice(0, N*r), r, 1, G.CtxU, r)
		dev.Gemm(true, false, r, F, N, 1, x.dlow.Slice(0, N*r), r, gzAll, F, 1, G.CtxV, F)
	} else {
		dev.Gemm(true, false, 4*H, F, N, 1, dgates, 4*H, gzAll, F, 1, contextColumns(G.Wx, c), E+F)
	}
	dev.Gemm(true, false, 4*H, E, N, 1, dgates, 4*H, emb, E, 1, G.Wx, wx)
	dev.BiasActBackward(dgates, G.LB, dgates, dgates, N, 4*H, gpu.ActNone)
	dev.Gemm(false, false, N, E, 4*H, 1, dgates, 4*H, m.P.Wx, wx, 1, demb, E)
	dev.EmbeddingBackward(G.Embed, demb, ts.ids, E)

	// Start: pf = feats·AttFWᵀ + AttFB; h0, c0 = tanh(mean·Wᵀ + b).
	linearBackward(dev, nil, G.AttFW, G.AttFB, dpf, x.pf.Slice(0, B*L*A), feats, m.P.AttFW, B*L, F, A, gpu.ActNone)
	mean := x.mean.Slice(0, B*F)
	linearBackward(dev, nil, G.InitHW, G.InitHB, dhs.Slice(0, B*H), hs.Slice(0, B*H), mean, m.P.InitHW, B, F, H, gpu.ActTanh)
	linearBackward(dev, nil, G.InitCW, G.InitCB, dc, cs.Slice(0, B*H), mean, m.P.InitCW, B, F, H, gpu.ActTanh)
	if ts.dfeat == nil {
		return
	}
	// The features' gradient (KeepInputGrad), dfeats (B, L, F), from the
	// context: z_{t,b} = alpha_{t,b} · feats_b over every step t at once,
	// dfeats_b (L, F) = alpha_bᵀ (L, T) · dz_b (T, F), both time-major (rows
	// B*L and B*F apart); from the regions' attention term: += dpf · AttFW;
	// from the initial state: dmean (B, F) = dh0 · InitHW + dc0 · InitCW (the
	// preactivations' gradients, which linearBackward left in place), spread
	// evenly over the regions: dfeats_b (L, F) += ones (L, 1) · dmean_b / L.
	dfeats := ts.InputGrad()
	// Image b's alpha (T, L) and dgz (T, F) are its rows of every step's (B, L)
	// and (B, F): strides L and F inside row strides B*L and B*F.
	dev.GemmStridedBatched(true, false, L, F, T, 1, x.alpha, B*L, L, dgzAll, B*F, F, 0, dfeats, F, L*F, B)
	dev.Gemm(false, false, B*L, F, A, 1, dpf, A, m.P.AttFW, F, 1, dfeats, F)
	dmean := x.dz.Slice(0, B*F)
	dev.Gemm(false, false, B, F, H, 1, dhs.Slice(0, B*H), H, m.P.InitHW, F, 0, dmean, F)
	dev.Gemm(false, false, B, F, H, 1, dc, H, m.P.InitCW, F, 1, dmean, F)
	dev.GemmStridedBatched(false, false, L, F, 1, 1/float32(L), ts.regionOnes, 1, 0, dmean, F, F, 1, dfeats, F, L*F, B)
}

// attWorkspace holds attention's decoding buffers for up to images images
// and rows rows. The per-image ones are sized by images: a beam's rows share
// their image's (its regions' attention term alone is L*A floats, 100 KB).
type attWorkspace struct {
	images, rows int
	flat         gpu.Buf
	mean         gpu.Buf // (B, F)
	pf           gpu.Buf // (B, L, A) the images' regions' attention term, in AttentionExp's form
	feats        gpu.Buf // (B, L, F) the regions of the images still decoding once some have finished (always carved: 245 KB an image)
	alpha        gpu.Buf // (R, L)
	z, beta, gz  gpu.Buf // (R, F)
	hproj        gpu.Buf // (R, A)
	gates, act   gpu.Buf // (R, 4H)
	h, c, h2, c2 gpu.Buf // (R, H)
	emb, deep    gpu.Buf // (R, E)
	logp         gpu.Buf // (R, V)
	ctxLow       gpu.Buf // (R, r) the context through V of a factorized weight (Config.CtxRank r)
}

func (w *attWorkspace) free(dev gpu.Device) {
	if w != nil {
		dev.Free(w.flat)
	}
}

// attWorkspaceFor returns buffers for B images over R rows, growing them when
// needed.
func (m *Model) attWorkspaceFor(B, R int) *attWorkspace {
	if m.aws != nil && m.aws.images >= B && m.aws.rows >= R {
		return m.aws
	}
	if m.aws != nil { // grow to cover both the old and the new shape
		B, R = max(B, m.aws.images), max(R, m.aws.rows)
	}
	m.aws.free(m.dev)
	c := m.Cfg
	F, E, H, L, A, V := c.FeatDim, c.Embed, c.Hidden, c.Regions, c.Att, c.Vocab
	w := &attWorkspace{images: B, rows: R}
	w.flat = carve(m.dev, []view{{&w.mean, B * F}, {&w.pf, B * L * A}, {&w.feats, B * L * F}, {&w.alpha, R * L},
		{&w.z, R * F}, {&w.beta, R * F}, {&w.gz, R * F}, {&w.hproj, R * A}, {&w.gates, R * 4 * H}, {&w.act, R * 4 * H},
		{&w.h, R * H}, {&w.c, R * H}, {&w.h2, R * H}, {&w.c2, R * H}, {&w.emb, R * E}, {&w.deep, R * E}, {&w.logp, R * V}, {&w.ctxLow, R * c.CtxRank}})
	m.aws = w
	return w
}

// attentionSteps is attention's stepper.
type attentionSteps struct {
	m         *Model
	w         *attWorkspace
	R, K      int     // rows, rows per image
	feats, pf gpu.Buf // (B, L, F), (B, L, A) in AttentionExp's form: one per image, shared by its K rows
	ownFeats  bool    // feats is the workspace's copy, not the caller's
	lstmRows
}

// attentionStepper starts B images (feats (B, L, F)) once, on one row each
// with room for K; the rows of an image attend over its one copy of the
// regions and their attention term.
func (m *Model) attentionStepper(feats gpu.Buf, B, K int) *attentionSteps {
	c, dev := m.Cfg, m.dev
	F, H, L, A := c.FeatDim, c.Hidden, c.Regions, c.Att
	w := m.attWorkspaceFor(B, B*K)
	pf := w.pf.Slice(0, B*L*A)
	s := &attentionSteps{m: m, w: w, R: B, K: 1, feats: feats, pf: pf, lstmRows: newLSTMRows(w.h, w.c, w.h2, w.c2, B, H)}
	attentionStart(dev, &m.dw, &m.P, c, s.h, s.c, w.mean.Slice(0, B*F), pf, feats, B)
	dev.AttentionExp(pf, pf, B*L*A) // what every step's AttentionScoresExp reads
	return s
}

// step is one step of forwardAttention for R rows, with the embedding's LSTM
// term gathered from proj, and log-probabilities out.
func (s *attentionSteps) step(toks []int32) gpu.Buf {
	m, w, R := s.m, s.w, s.R
	dev, c := m.dev, m.Cfg
	F, E, H, V := c.FeatDim, c.Embed, c.Hidden, c.Vocab
	gz := w.gz.Slice(0, R*F)
	score := func(alpha, hproj gpu.Buf) {
		dev.AttentionScoresExp(alpha, s.pf, hproj, m.P.AttV, R, s.K, c.Regions, c.Att)
	}
	attendStep(dev, &m.dw, &m.P, c, score, w.alpha.Slice(0, R*c.Regions), w.z.Slice(0, R*F),
		w.beta.Slice(0, R*F), gz, w.hproj.Slice(0, R*c.Att), s.h, s.feats, R, s.K)
	gates := w.gates.Slice(0, R*4*H)
	dev.EmbeddingForward(gates, m.proj, toks, 4*H)
	addContext(&m.dw, c, gates, gz, w.ctxLow.Slice(0, R*c.CtxRank), R)
	m.dw.wh.MulT(R, s.h, H, 1, gates, 4*H)
	dev.LSTMCellForward(s.h2, s.c2, w.act.Slice(0, R*4*H), gates, s.c, R, H)
	deep := w.deep.Slice(0, R*E)
	dense(dev, deep, s.h2, m.dw.outH, m.P.OutHB, R, H, E, gpu.ActNone)
	m.dw.outZ.MulT(R, gz, F, 1, deep, E)
	emb := w.emb.Slice(0, R*E)
	dev.EmbeddingForward(emb, m.P.Embed, toks, E)
	dev.Add(deep, deep, emb)
	logp := w.logp.Slice(0, R*V)
	dense(dev, logp, deep, m.dw.out, m.outB, R, E, V, gpu.ActNone)
	dev.LogSoftmax(logp, logp, R, V)
	return logp
}

func (s *attentionSteps) attention(dst []float32) error {
	return s.m.dev.Download(dst, s.w.alpha.Slice(0, s.R*s.m.Cfg.Regions))
}

func (s *attentionSteps) keep(images []int32) {
	c, dev := s.m.Cfg, s.m.dev
	H, LF := c.Hidden, c.Regions*c.FeatDim
	if s.ownFeats {
		keepBlocks(dev, images, LF, &s.feats)
	} else { // the kept images' regions go to the workspace: the caller's are left as they were
		own := s.w.feats.Slice(0, len(images)*LF)
		for i, j := range images {
			dev.Copy(own.Slice(i*LF, LF), s.feats.Slice(int(j)*LF, LF))
		}
		s.feats, s.ownFeats = own, true
	}
	keepBlocks(dev, images, c.Regions*c.Att, &s.pf)
	s.lstmRows.keep(dev, images, s.K, H)
	s.R = len(images) * s.K
}

func (s *attentionSteps) advance(src []int32) {
	s.lstmRows.advance(s.m.dev, src, s.m.Cfg.Hidden)
}

func (s *attentionSteps) spread(k int) {
	rows := repeatRows(s.R, k)
	s.lstmRows.spread(s.m.dev, rows, s.m.Cfg.Hidden)
	s.R, s.K = len(rows), k
}
