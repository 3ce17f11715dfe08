package decoder

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// The benchmarks match /work/shared/bench/torch_captioner.py decoder --hidden 256
// --vocab 2600 --tokens 12 (merge) and decoder --arch attention --hidden 512
// (attention, the Attention* benchmarks): the same sizes, 12 tokens decoded per
// caption with no early stop, training at batch 64 with T=12, Adam and
// clipping at 5.
const (
	benchVocab  = 2600
	benchTokens = 12
)

func benchModel(b *testing.B, c Config) (gpu.Device, *Model) {
	dev := openCPU(b)
	m, err := New(dev, c, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return dev, m
}

func randomFeats(dev gpu.Device, n, f int) gpu.Buf {
	rng := rand.New(rand.NewPCG(1, 2))
	host := make([]float32, n*f)
	for i := range host {
		host[i] = float32(rng.NormFloat64())
	}
	buf := dev.Alloc(n * f)
	dev.Upload(buf, host)
	return buf
}

func BenchmarkTrainStep(b *testing.B)          { benchTrain(b, DefaultConfig(benchVocab)) }
func BenchmarkAttentionTrainStep(b *testing.B) { benchTrain(b, DefaultAttentionConfig(benchVocab)) }

func benchTrain(b *testing.B, c Config) {
	dev, m := benchModel(b, c)
	const B, T = 64, benchTokens
	ts := m.NewTrainState(B, T)
	defer ts.Close()
	feats := randomFeats(dev, B, m.Cfg.InputDim())
	rng := rand.New(rand.NewPCG(3, 4))
	ids, targets := make([]int32, T*B), make([]int32, T*B)
	for i := range ids {
		ids[i], targets[i] = int32(3+rng.IntN(benchVocab-3)), int32(3+rng.IntN(benchVocab-3))
	}
	adam := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	step := func(i int) {
		ts.ZeroGrad()
		if _, _, err := ts.Forward(feats, ids, targets, B, T, true, uint64(i)); err != nil {
			b.Fatal(err)
		}
		ts.Backward()
		if _, err := ts.ClipGradNorm(5); err != nil {
			b.Fatal(err)
		}
		ts.Update(adam)
	}
	step(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step(i)
	}
	if err := dev.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

func benchDecode(b *testing.B, c Config, batch, beam int) {
	dev, m := benchModel(b, c)
	feats := randomFeats(dev, batch, m.Cfg.InputDim())
	o := DecodeOptions{Start: 1, End: 2, MaxLen: benchTokens, Beam: beam, NoEarlyStop: true}
	gen := func() {
		hyps, err := m.Generate(context.Background(), feats, batch, o)
		if err != nil {
			b.Fatal(err)
		}
		if len(hyps[0][0].Tokens) != benchTokens {
			b.Fatalf("decoded %d tokens, want %d", len(hyps[0][0].Tokens), benchTokens)
		}
	}
	gen()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		gen()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "captions/s")
}

func BenchmarkGreedyB1(b *testing.B)  { benchDecode(b, DefaultConfig(benchVocab), 1, 1) }
func BenchmarkGreedyB32(b *testing.B) { benchDecode(b, DefaultConfig(benchVocab), 32, 1) }
func BenchmarkBeam3B1(b *testing.B)   { benchDecode(b, DefaultConfig(benchVocab), 1, 3) }

func BenchmarkAttentionGreedyB1(b *testing.B) {
	benchDecode(b, DefaultAttentionConfig(benchVocab), 1, 1)
}
func BenchmarkAttentionGreedyB32(b *testing.B) {
	benchDecode(b, DefaultAttentionConfig(benchVocab), 32, 1)
}
func BenchmarkAttentionBeam3B1(b *testing.B) {
	benchDecode(b, DefaultAttentionConfig(benchVocab), 1, 3)
}
