package decoder

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
)

// This file holds an independent, naive float64 implementation of the merge
// model: caption by caption, step by step, plain loops over (out, in) weights,
// with none of the device code's time-major layout, fused Gemms or caches.

// tinyConfig is small enough for finite differences over every parameter, with
// every size distinct so a transposed or swapped dimension cannot go unnoticed.
func tinyConfig() Config {
	return Config{FeatDim: 6, Embed: 5, Hidden: 4, Mid: 3, Vocab: 9, Dropout: 0.5}
}

// tinyBatch is 3 captions over 5 steps, time-major; caption 1 ends after 3
// targets and caption 2 after 4, so padding (-1 targets) is exercised.
type batch struct {
	B, T         int
	feats        []float32 // (B, F)
	ids, targets []int32   // (T*B)
	// weights, when set, weigh each caption's share of the mean loss (the
	// objective of TrainState.ReweightCaptions); nil weighs all by 1.
	weights []float32
}

func tinyBatch(c Config, seed uint64) batch {
	rng := rand.New(rand.NewPCG(seed, 1))
	B, T := 3, 5
	lens := []int{5, 3, 4}
	bt := batch{B: B, T: T, feats: make([]float32, B*c.InputDim()), ids: make([]int32, T*B), targets: make([]int32, T*B)}
	for i := range bt.feats {
		bt.feats[i] = float32(rng.Float64()*2 - 0.5)
	}
	for b := 0; b < B; b++ {
		prev := int32(1) // <start>
		for t := 0; t < T; t++ {
			bt.ids[t*B+b] = prev
			if t < lens[b] {
				prev = int32(2 + rng.IntN(c.Vocab-2))
				bt.targets[t*B+b] = prev
			} else {
				bt.ids[t*B+b] = 0 // <pad>
				bt.targets[t*B+b] = -1
			}
		}
	}
	return bt
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// refCell is the LSTM cell on input preactivations g (4H, bias included) and
// recurrent ones gh (4H) from state s.
func refCell(g, gh []float64, s refState) refState {
	H := len(s.h)
	n := refState{h: make([]float64, H), c: make([]float64, H)}
	for j := 0; j < H; j++ {
		i, f := sigmoid(g[j]+gh[j]), sigmoid(g[H+j]+gh[H+j])
		gg, o := math.Tanh(g[2*H+j]+gh[2*H+j]), sigmoid(g[3*H+j]+gh[3*H+j])
		n.c[j] = f*s.c[j] + i*gg
		n.h[j] = o * math.Tanh(n.c[j])
	}
	return n
}

// compareFiniteDifferences checks every parameter's gradient grads against
// central differences of loss at flat (which it restores).
func compareFiniteDifferences(t *testing.T, c Config, grads []float32, flat []float64, loss func([]float64) float64) {
	t.Helper()
	const eps = 1e-5
	for _, tn := range c.Tensors() {
		maxDiff, maxG := 0.0, 0.0
		for i := tn.Off; i < tn.Off+tn.Len; i++ {
			orig := flat[i]
			flat[i] = orig + eps
			lp := loss(flat)
			flat[i] = orig - eps
			lm := loss(flat)
			flat[i] = orig
			fd := (lp - lm) / (2 * eps)
			d := math.Abs(fd - float64(grads[i]))
			if !(d <= 2e-5+1e-3*math.Abs(fd)) { // a NaN gradient fails too

				t.Errorf("%s[%d]: gradient %.7g, finite difference %.7g", tn.Name, i-tn.Off, grads[i], fd)
			}
			maxDiff, maxG = math.Max(maxDiff, d), math.Max(maxG, math.Abs(fd))
		}
		t.Logf("%-15s max |grad - fd| %.2e (max |fd| %.3g)", tn.Name, maxDiff, maxG)
		if maxG == 0 && tn.Name != "embed.weight" {
			t.Errorf("%s: every gradient is zero; the check is vacuous", tn.Name)
		}
	}
}

// refLoss is the mean cross-entropy of the batch under flat parameters (Tensors
// order), with the device's dropout masks when drop is set, and the logits
// (T*B, V) time-major.
func refLoss(c Config, flat []float64, bt batch, drop bool, seed uint64) (float64, []float64) {
	F, E, H, M, V, B, T := c.FeatDim, c.Embed, c.Hidden, c.Mid, c.Vocab, bt.B, bt.T
	p := map[string][]float64{}
	for _, t := range c.Tensors() {
		p[t.Name] = flat[t.Off : t.Off+t.Len]
	}
	keep := func(seed uint64, i int) float64 {
		if !drop {
			return 1
		}
		if gpu.DropoutUniform(seed, i) < c.Dropout {
			return 0
		}
		return float64(float32(1 / (1 - c.Dropout)))
	}
	// dense returns w (out, in) · x + b.
	dense := func(w, bias, x []float64, out int) []float64 {
		in := len(x)
		y := make([]float64, out)
		for o := 0; o < out; o++ {
			s := bias[o]
			for i := 0; i < in; i++ {
				s += w[o*in+i] * x[i]
			}
			y[o] = s
		}
		return y
	}
	relu := func(v []float64) []float64 {
		for i := range v {
			v[i] = math.Max(v[i], 0)
		}
		return v
	}
	zeroBias := func(n int) []float64 { return make([]float64, n) }

	logits := make([]float64, T*B*V)
	var total float64
	ntok := 0
	for b := 0; b < B; b++ {
		x := make([]float64, F)
		for f := range x {
			x[f] = float64(bt.feats[b*F+f]) * keep(seed, b*F+f)
		}
		img := relu(dense(p["img.weight"], p["img.bias"], x, H))
		h, cell := make([]float64, H), make([]float64, H)
		for t := 0; t < T; t++ {
			row := t*B + b
			id := int(bt.ids[row])
			e := make([]float64, E)
			for j := range e {
				e[j] = p["embed.weight"][id*E+j] * keep(seed^0xD1B54A32D192ED03, row*E+j)
			}
			g := dense(p["lstm.weight_ih"], p["lstm.bias"], e, 4*H)
			gh := dense(p["lstm.weight_hh"], zeroBias(4*H), h, 4*H)
			st := refCell(g, gh, refState{h: h, c: cell})
			h, cell = st.h, st.c
			merged := make([]float64, H)
			for j := range merged {
				merged[j] = h[j] + img[j]
			}
			mid := relu(dense(p["dec.weight"], p["dec.bias"], merged, M))
			lg := dense(p["out.weight"], p["out.bias"], mid, V)
			copy(logits[row*V:], lg)
			if tg := bt.targets[row]; tg >= 0 {
				mx := lg[0]
				for _, v := range lg {
					mx = math.Max(mx, v)
				}
				var z float64
				for _, v := range lg {
					z += math.Exp(v - mx)
				}
				wb := 1.0
				if bt.weights != nil {
					wb = float64(bt.weights[b])
				}
				total += -(lg[tg] - mx - math.Log(z)) * wb
				ntok++
			}
		}
	}
	return total / float64(ntok), logits
}

// randomModel is a model with N(0, scale²) weights drawn from seed: larger than
// the initialiser's, so every path carries signal. It returns the weights too.
func randomModel(t testing.TB, dev gpu.Device, c Config, seed uint64, scale float64) (*Model, []float32) {
	t.Helper()
	m, err := New(dev, c, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	rng := rand.New(rand.NewPCG(seed, seed))
	host := make([]float32, c.NumParams())
	for i := range host {
		host[i] = float32(rng.NormFloat64() * scale)
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	return m, host
}

func openCPU(t testing.TB) gpu.Device {
	t.Helper()
	dev := cpu.New(2)
	t.Cleanup(func() { dev.Close() })
	return dev
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// batchState is a training state for bt with zeroed gradients and bt's
// features on dev, both freed when the test ends.
func batchState(t *testing.T, dev gpu.Device, m *Model, bt batch) (*TrainState, gpu.Buf) {
	ts := m.NewTrainState(bt.B, bt.T)
	t.Cleanup(ts.Close)
	// Activations start as NaN, not the allocator's zeros: a pass that adds
	// into a buffer it should overwrite (a Gemm's beta 1 for 0) fails.
	for _, b := range []gpu.Buf{ts.actFlat, ts.attFlat} {
		if b != nil {
			nan := make([]float32, b.Len())
			for i := range nan {
				nan[i] = float32(math.NaN())
			}
			dev.Upload(b, nan)
		}
	}
	feats := dev.Alloc(len(bt.feats))
	t.Cleanup(func() { dev.Free(feats) })
	dev.Upload(feats, bt.feats)
	ts.ZeroGrad()
	return ts, feats
}

// runDevice runs Forward (and Backward when train) on the device and returns the
// loss, the logits (or their gradient after a train Forward) and the gradients.
func runDevice(t *testing.T, dev gpu.Device, m *Model, bt batch, train bool, seed uint64) (float64, []float32, []float32) {
	t.Helper()
	ts, feats := batchState(t, dev, m, bt)
	loss, _, err := ts.Forward(feats, bt.ids, bt.targets, bt.B, bt.T, train, seed)
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, bt.T*bt.B*m.Cfg.Vocab)
	if err := dev.Download(logits, ts.a.logits.Slice(0, len(logits))); err != nil {
		t.Fatal(err)
	}
	grads := make([]float32, m.Cfg.NumParams())
	if train {
		if bt.weights != nil {
			ts.ReweightCaptions(bt.weights)
		}
		ts.Backward()
		if err := dev.Download(grads, ts.Grads()); err != nil {
			t.Fatal(err)
		}
	}
	return loss, logits, grads
}

func TestForwardMatchesNaiveReference(t *testing.T) {
	dev := openCPU(t)
	c := tinyConfig()
	m, err := New(dev, c, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bt := tinyBatch(c, 3)
	flat, err := m.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	for _, train := range []bool{false, true} {
		// After a training Forward the logits buffer holds their gradient, so
		// logits are compared without dropout only.
		loss, logits, _ := runDevice(t, dev, m, bt, train, 11)
		want, wantLogits := refLoss(c, toF64(flat), bt, train, 11)
		t.Logf("dropout=%v: loss %.7f, reference %.7f", train, loss, want)
		if !(math.Abs(loss-want) <= 1e-5) { // NaN fails too
			t.Errorf("dropout=%v: loss %.7f, reference %.7f", train, loss, want)
		}
		if !train {
			maxDiff := 0.0
			for i := range logits {
				maxDiff = math.Max(maxDiff, math.Abs(float64(logits[i])-wantLogits[i]))
			}
			t.Logf("logits max |diff| %.2e", maxDiff)
			if maxDiff > 1e-5 {
				t.Errorf("logits differ from the reference by up to %.2e", maxDiff)
			}
		}
	}
}

// TestGradientsMatchFiniteDifferences checks every parameter's gradient against
// central differences of the float64 reference loss, with dropout on (the
// masks are reproducible from the seed) and padded captions in the batch.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	t.Run("mean loss", func(t *testing.T) { checkGradients(t, nil) })
	// Self-critical weights: negative, zero and larger than one.
	t.Run("reweighted captions", func(t *testing.T) { checkGradients(t, []float32{-1.5, 0, 2.25}) })
}

func checkGradients(t *testing.T, weights []float32) {
	dev := openCPU(t)
	c := tinyConfig()
	m, host := randomModel(t, dev, c, 9, 0.5)
	bt := tinyBatch(c, 4)
	bt.weights = weights
	const seed = 21
	_, _, grads := runDevice(t, dev, m, bt, true, seed)
	compareFiniteDifferences(t, c, grads, toF64(host), func(flat []float64) float64 {
		l, _ := refLoss(c, flat, bt, true, seed)
		return l
	})
}

// forwardKeepingInputGrad runs a Forward of bt on m that keeps the input
// gradient, with a TrainState and features freed when the test ends.
func forwardKeepingInputGrad(t *testing.T, dev gpu.Device, m *Model, bt batch, train bool, seed uint64) *TrainState {
	t.Helper()
	ts := m.NewTrainState(bt.B, bt.T)
	t.Cleanup(ts.Close)
	ts.KeepInputGrad()
	feats := dev.Alloc(len(bt.feats))
	t.Cleanup(func() { dev.Free(feats) })
	dev.Upload(feats, bt.feats)
	if _, _, err := ts.Forward(feats, bt.ids, bt.targets, bt.B, bt.T, train, seed); err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestInputGradientMatchesFiniteDifferences checks KeepInputGrad's gradient of
// the loss with respect to every feature value against central differences of
// the float64 reference loss, for both decoders, with dropout (merge drops
// features) and padded captions.
func TestInputGradientMatchesFiniteDifferences(t *testing.T) {
	bothArchs(t, func(t *testing.T, c Config) {
		dev := openCPU(t)
		m, host := randomModel(t, dev, c, 9, 0.5)
		bt := tinyBatch(c, 4)
		const seed = 21
		loss := func() float64 {
			if c.Arch == ArchAttention {
				return refAttentionLoss(c, toF64(host), bt, true, seed)
			}
			l, _ := refLoss(c, toF64(host), bt, true, seed)
			return l
		}
		ts := forwardKeepingInputGrad(t, dev, m, bt, true, seed)
		ts.Backward()
		got := make([]float32, len(bt.feats))
		if err := dev.Download(got, ts.InputGrad()); err != nil {
			t.Fatal(err)
		}
		compareInputGradient(t, got, bt, loss)
	})
}

// compareInputGradient checks got, the gradient of loss with respect to every
// value of bt.feats (which loss reads), against central differences of loss.
func compareInputGradient(t *testing.T, got []float32, bt batch, loss func() float64) {
	t.Helper()
	maxG := 0.0
	for i, v := range bt.feats {
		// Steps exact in float32, so the difference quotient divides by the real step.
		up, down := v+1.0/1024, v-1.0/1024
		bt.feats[i] = up
		lp := loss()
		bt.feats[i] = down
		lm := loss()
		bt.feats[i] = v
		fd := (lp - lm) / float64(up-down)
		if d := math.Abs(fd - float64(got[i])); d > 2e-5+2e-3*math.Abs(fd) {
			t.Errorf("feature %d: gradient %.7g, finite difference %.7g", i, got[i], fd)
		}
		maxG = math.Max(maxG, math.Abs(fd))
	}
	if maxG == 0 {
		t.Error("every feature gradient is zero; the check is vacuous")
	}
}

// TestBackwardAfterEvaluationForwardPanics checks the invariant Backward's
// dropout masks rely on: it runs only after a train Forward, the one that
// applies dropout and keeps the gradient of the logits.
func TestBackwardAfterEvaluationForwardPanics(t *testing.T) {
	bothArchs(t, func(t *testing.T, c Config) {
		dev := openCPU(t)
		m, _ := randomModel(t, dev, c, 9, 0.5)
		ts := forwardKeepingInputGrad(t, dev, m, tinyBatch(c, 4), false, 21)
		defer func() {
			if r := recover(); r != "decoder: Backward after an evaluation Forward (train=false)" {
				t.Errorf("Backward after an evaluation Forward: recovered %v", r)
			}
		}()
		ts.Backward()
	})
}

// ReweightCaptions refuses an attention decoder with the penalty on: the
// penalty's gradient would go unweighted, so a caption weighed 0 would still
// move the model.
func TestReweightCaptionsWithAttentionPenaltyPanics(t *testing.T) {
	c := tinyAttentionConfig() // AttPenalty 0.7
	dev := openCPU(t)
	m, _ := randomModel(t, dev, c, 9, 0.5)
	bt := tinyBatch(c, 4)
	ts := forwardKeepingInputGrad(t, dev, m, bt, true, 21)
	defer func() {
		want := "decoder: ReweightCaptions with the attention penalty on (0.7), whose gradient it would leave unweighted; set it to 0"
		if r := recover(); r != want {
			t.Errorf("recovered %v, want %q", r, want)
		}
	}()
	ts.ReweightCaptions(make([]float32, bt.B))
}
