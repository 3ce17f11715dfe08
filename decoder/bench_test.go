package decoder

import (
	"context"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/benchinput"
	"github.com/captioner/captioner/internal/benchstat"
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

func BenchmarkTrainStep(b *testing.B)          { benchTrain(b, DefaultConfig(benchVocab)) }
func BenchmarkAttentionTrainStep(b *testing.B) { benchTrain(b, DefaultAttentionConfig(benchVocab)) }

func benchTrain(b *testing.B, c Config) {
	dev, m := benchModel(b, c)
	const B, T = 64, benchTokens
	ts := m.NewTrainState(B, T)
	defer ts.Close()
	feats := benchinput.Features(dev, B, m.Cfg.InputDim())
	ids, targets := benchinput.Tokens(T*B, benchVocab)
	adam := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	step := func(i int) {
		if err := ts.Step(5, adam, func() error {
			_, _, err := ts.Forward(feats, ids, targets, B, T, true, uint64(i))
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	step(0)
	b.ResetTimer()
	cpu0 := benchstat.CPUTime()
	i := 0
	median, _ := benchstat.Calls(b, func() {
		i++
		step(i)
		if err := dev.Sync(); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(B*T)/median.Seconds(), "tokens/s-median")
	b.ReportMetric((benchstat.CPUTime()-cpu0).Seconds()*1e3/float64(B*T*b.N), "cpu-ms/token")
}

func benchDecode(b *testing.B, c Config, batch, beam int, p gpu.Precision) {
	dev, m := benchModel(b, c)
	if err := m.SetPrecision(p); err != nil {
		b.Skip(err)
	}
	feats := benchinput.Features(dev, batch, m.Cfg.InputDim())
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
	cpu0 := benchstat.CPUTime()
	median, _ := benchstat.Calls(b, gen)
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "captions/s")
	b.ReportMetric(float64(batch)/median.Seconds(), "captions/s-median")
	b.ReportMetric((benchstat.CPUTime()-cpu0).Seconds()*1e3/float64(batch*b.N), "cpu-ms/caption")
}

// Each decoding benchmark runs, as sub-benchmarks, float32 and the
// precisions SetPrecision packs on this CPU (skipped where it cannot):
// bfloat16, what precision auto decodes in beside a bfloat16 encoder without
// AVX512-VNNI, and int8, what it decodes in with AVX512-VNNI.
func BenchmarkGreedyB1(b *testing.B)  { benchDecodes(b, DefaultConfig(benchVocab), 1, 1) }
func BenchmarkGreedyB32(b *testing.B) { benchDecodes(b, DefaultConfig(benchVocab), 32, 1) }
func BenchmarkBeam3B1(b *testing.B)   { benchDecodes(b, DefaultConfig(benchVocab), 1, 3) }

func BenchmarkAttentionGreedyB1(b *testing.B) {
	benchDecodes(b, DefaultAttentionConfig(benchVocab), 1, 1)
}
func BenchmarkAttentionGreedyB32(b *testing.B) {
	benchDecodes(b, DefaultAttentionConfig(benchVocab), 32, 1)
}
func BenchmarkAttentionBeam3B1(b *testing.B) {
	benchDecodes(b, DefaultAttentionConfig(benchVocab), 1, 3)
}

func benchDecodes(b *testing.B, c Config, batch, beam int) {
	for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16, gpu.Int8} {
		b.Run("precision="+string(p), func(b *testing.B) { benchDecode(b, c, batch, beam, p) })
	}
}
