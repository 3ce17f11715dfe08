package train

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu/cpu"
)

// tinyEncoder is a MobileNetV2-shaped encoder whose last two blocks (one of
// them residual) and head are fine-tuned on the synthetic task: its cut is the
// (2, 2, 8) input of block 1, its grid (2, 2, 12).
var tinyEncoder = encoder.Config{Input: 8, Stem: 4, Head: 12, Classes: 3, Blocks: []encoder.Block{
	{In: 4, Hidden: 8, Out: 8, Stride: 2, Expand: true},
	{In: 8, Hidden: 8, Out: 6, Stride: 1, Expand: true},
	{In: 6, Hidden: 12, Out: 6, Stride: 1, Expand: true, Residual: true},
}}

// randomEncoder returns tinyEncoder with random weights.
func randomEncoder(seed uint64) *encoder.Weights {
	rng := rand.New(rand.NewPCG(seed, 7))
	w := &encoder.Weights{Config: tinyEncoder, Tensors: map[string][]float32{}}
	w.Config.SourceSHA = "0123456789abcdef0123456789abcdef"
	for _, p := range tinyEncoder.Params() {
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64()*0.5 + 0.05)
		}
		w.Tensors[p.Name] = v
	}
	return w
}

// cutSplit is synthSplit with each image's activations at tinyEncoder's cut
// (2x2 pixels of 8 channels) in place of its features: a noisy code of its
// class in the channels of every pixel.
func cutSplit(images int, seed uint64, v synthVocab) *Split {
	s := synthSplit(images, seed, v)
	const pixels, channels = 4, 8
	rng := rand.New(rand.NewPCG(seed, 5))
	s.Feats = make([]float32, images*pixels*channels)
	for i := range images {
		for p := range pixels {
			px := s.Feats[(i*pixels+p)*channels : (i*pixels+p+1)*channels]
			for c := range px {
				px[c] = float32(rng.NormFloat64() * 0.3)
			}
			px[i%6] += 2
		}
	}
	return s
}

func tunedOptions(out string, epochs int, w *encoder.Weights) Options {
	o := synthOptions(out, epochs)
	o.FinetuneBlocks, o.FinetuneLR, o.Encoder = 2, 0.03, w
	return o
}

// TestFineTuningTrainsTheEncoderTop: a run with train.finetune_blocks learns
// the task through the encoder's top, better than the same run whose top
// barely moves (its rate 1e-9), and saves the tuned layers in the model
// folder, where encoder.WithTuned finds them changed; the weights passed in
// stay untouched.
func TestFineTuningTrainsTheEncoderTop(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	w := randomEncoder(3)
	orig := slices.Clone(w.Tensors["head.weight"])
	run := func(lr float64) (string, *Result) {
		out := t.TempDir()
		o := tunedOptions(out, 16, w)
		o.FinetuneLR = lr
		var log bytes.Buffer
		o.Log = &log
		v := o.Vocab.(synthVocab)
		res, err := Run(context.Background(), dev, o, cutSplit(120, 1, v), cutSplit(30, 2, v))
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		return out, res
	}
	out, tuned := run(0.03)
	_, frozen := run(1e-9)
	// The encoder layers' rate decays each epoch as the decoder's does.
	for i, e := range tuned.History {
		if want := 0.03 * math.Pow(tunedOptions("", 16, w).LRDecay, float64(i)); math.Abs(e.EncoderLR-want) > 1e-12*want || e.LR <= 0 {
			t.Errorf("epoch %d: encoder learning rate %g, want %g", e.Epoch, e.EncoderLR, want)
		}
	}
	tb, fb := tuned.Best, frozen.Best
	t.Logf("best dev loss %.3f, exact match %.2f; with the top frozen %.3f, %.2f", tb.DevLoss, tb.BLEU[3], fb.DevLoss, fb.BLEU[3])
	if tb.DevLoss > 0.85*fb.DevLoss || tb.BLEU[3] < fb.BLEU[3]+0.2 {
		t.Errorf("fine-tuning the top did not help: dev loss %.3f vs %.3f, exact match %.2f vs %.2f", tb.DevLoss, fb.DevLoss, tb.BLEU[3], fb.BLEU[3])
	}
	tw, firstBlock, err := encoder.WithTuned(w, filepath.Join(out, "model", encoder.TunedFile))
	if err != nil {
		t.Fatal(err)
	}
	if firstBlock != 1 || tw.Config.Tuned == "" || tw.Config.ID() == w.Config.ID() {
		t.Errorf("tuned from block %d, config %+v", firstBlock, tw.Config)
	}
	if slices.Equal(tw.Tensors["head.weight"], orig) || !slices.Equal(tw.Tensors["blocks.0.dw.weight"], w.Tensors["blocks.0.dw.weight"]) {
		t.Error("the saved encoder should differ in the tuned head and keep block 0")
	}
	if !slices.Equal(w.Tensors["head.weight"], orig) {
		t.Error("training modified the weights it started from")
	}
	if _, err := os.Stat(filepath.Join(out, "model", decoder.WeightsFile)); err != nil {
		t.Error(err)
	}
}

// TestFineTuningResumes: a resumed fine-tuning run has the top's parameters,
// moments, steps and weight average of the run that stopped, trains the same next epoch, and
// only the last epoch's encoder checkpoint is kept.
func TestFineTuningResumes(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := tunedOptions(t.TempDir(), 3, randomEncoder(4))
	v := o.Vocab.(synthVocab)
	newTuned := func(o Options) *run {
		o.Log = &bytes.Buffer{}
		r, err := newRun(dev, o, cutSplit(48, 1, v), cutSplit(12, 2, v))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.close)
		if err := r.resume(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := newTuned(o)
	trainEpoch(t, a)
	// A run killed between a checkpoint and the removal of the epoch
	// before's encoder checkpoint had left that one for good.
	orphan := encoderCheckpoint(o.Out, 0)
	if err := os.WriteFile(orphan, []byte("a killed run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	trainEpoch(t, a)
	for _, epoch := range []int{0, 1} {
		if _, err := os.Stat(encoderCheckpoint(o.Out, epoch)); !os.IsNotExist(err) {
			t.Errorf("epoch %d's encoder checkpoint is still there (%v)", epoch, err)
		}
	}
	o.Resume = true
	b := newTuned(o)
	af, am, av, as, _ := a.tuned.top.State()
	bf, bm, bv, bs, _ := b.tuned.top.State()
	if !slices.Equal(af, bf) || !slices.Equal(am, bm) || !slices.Equal(av, bv) || as != bs || as == 0 {
		t.Errorf("the top after resume differs (steps %d, saved %d)", bs, as)
	}
	aa, _ := a.tuned.avg.host()
	ba, _ := b.tuned.avg.host()
	if !slices.Equal(aa, ba) || slices.Equal(aa, af) {
		t.Error("the top's weight average differs after resume (or equals the parameters)")
	}
	if sa, sb := trainEpoch(t, a), trainEpoch(t, b); sa.TrainLoss != sb.TrainLoss || sa.DevLoss != sb.DevLoss {
		t.Errorf("epoch 3: original train loss %v dev %v, resumed %v %v", sa.TrainLoss, sa.DevLoss, sb.TrainLoss, sb.DevLoss)
	}
	// A checkpoint without its encoder state cannot resume.
	if err := os.Remove(encoderCheckpoint(o.Out, 3)); err != nil {
		t.Fatal(err)
	}
	o.Log = &bytes.Buffer{}
	c, err := newRun(dev, o, cutSplit(48, 1, v), cutSplit(12, 2, v))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.resume(); err == nil || err.Error() != "train: the checkpoint of epoch 3 fine-tunes the encoder, but "+encoderCheckpoint(o.Out, 3)+" is missing; start over in another --out" {
		t.Errorf("resume without the encoder checkpoint: %v", err)
	}
}

// TestFineTuningAttention fine-tunes the top under an attention decoder, which
// reads the top's whole grid (2x2 regions of 12) rather than its mean.
func TestFineTuningAttention(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	out := t.TempDir()
	o := tunedOptions(out, 6, randomEncoder(3))
	o.Arch, o.Regions, o.Att, o.AttPenalty = decoder.ArchAttention, 4, 8, 0.5
	o.Log = &bytes.Buffer{}
	v := o.Vocab.(synthVocab)
	res, err := Run(context.Background(), dev, o, cutSplit(120, 1, v), cutSplit(30, 2, v))
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.History[0], res.History[len(res.History)-1]
	t.Logf("dev loss %.3f -> %.3f, exact match %.2f -> %.2f", first.DevLoss, last.DevLoss, first.BLEU[3], last.BLEU[3])
	if last.DevLoss > 0.7*first.DevLoss {
		t.Errorf("dev loss %.3f -> %.3f: the attention run did not learn", first.DevLoss, last.DevLoss)
	}
	cfg, err := decoder.ReadConfig(filepath.Join(out, "model", decoder.ConfigFile))
	if err != nil || cfg.Regions != 4 || cfg.FeatDim != 12 {
		t.Errorf("saved decoder config %+v (%v), want 4 regions of 12 features", cfg, err)
	}
	if _, _, err := encoder.WithTuned(o.Encoder, filepath.Join(out, "model", encoder.TunedFile)); err != nil {
		t.Error(err)
	}
}

// TestTunedEncoderGradients checks the gradient the fine-tuned top gets
// through a batch's features (an image repeated across captions; the pooled
// features for merge, the grid for attention) against central differences of
// those features, for the loss Σ r · features with random r.
func TestTunedEncoderGradients(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	for _, pooled := range []bool{true, false} {
		t.Run(map[bool]string{true: "pooled", false: "grid"}[pooled], func(t *testing.T) {
			checkTunedEncoderGradients(t, dev, pooled)
		})
	}
}

func checkTunedEncoderGradients(t *testing.T, dev *cpu.Device, pooled bool) {
	v := synthVocab{n: 14}
	images := []int32{3, 0, 3, 5, 3} // image 3 collects three captions' gradients
	te, err := newTunedEncoder(dev, randomEncoder(4), 1, len(images), pooled, cutSplit(6, 1, v), cutSplit(2, 2, v))
	if err != nil {
		t.Fatal(err)
	}
	defer te.close()
	out := dev.Alloc(len(images) * te.inDim)
	defer dev.Free(out)
	rng := rand.New(rand.NewPCG(8, 1))
	r := make([]float32, out.Len())
	for i := range r {
		r[i] = rng.Float32()*2 - 1
	}
	loss := func() float64 {
		feats := make([]float32, out.Len())
		if err := dev.Download(feats, te.features(images, out)); err != nil {
			t.Fatal(err)
		}
		var s float64
		for i, f := range feats {
			s += float64(f) * float64(r[i])
		}
		return s
	}

	loss()
	dr := dev.Alloc(len(r))
	defer dev.Free(dr)
	dev.Upload(dr, r)
	te.top.ZeroGrad()
	te.backward(dr)
	flat := te.top.Flat()
	params := make([]float32, flat.Len())
	if err := dev.Download(params, flat); err != nil {
		t.Fatal(err)
	}
	// Adam with beta1 = beta2 = 0 steps lr·g/(|g|+eps); with eps = lr far
	// above |g| that is g itself, so the step reveals the top's gradient.
	const big = 1e4
	te.top.Update(big, 0, 0, big, 0)
	stepped := make([]float32, flat.Len())
	if err := dev.Download(stepped, flat); err != nil {
		t.Fatal(err)
	}
	dev.Upload(flat, params)

	const h = 1e-3
	for k := range 24 {
		i := k * (len(params) - 1) / 23
		g := float64(params[i]) - float64(stepped[i])
		old := params[i]
		params[i] = old + h
		dev.Upload(flat, params)
		lp := loss()
		params[i] = old - h
		dev.Upload(flat, params)
		lm := loss()
		params[i] = old
		dev.Upload(flat, params)
		fd := (lp - lm) / (2 * h)
		if math.Abs(g-fd) > 2e-3+2e-2*math.Abs(fd) {
			t.Errorf("parameter %d of %d: gradient %.6g, finite differences %.6g", i, len(params), g, fd)
		}
	}
}
