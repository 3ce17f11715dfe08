package cpu

import (
	"strings"
	"testing"
	"time"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/benchstat"
)

// Benchmarks report GFLOP/s (a multiply-add counts 2) at the shapes MobileNetV2
// and the decoder run. Run with: go test -run '^$' -bench . -benchtime 20x ./gpu/cpu

// The machine is shared, so besides wall-clock GFLOP/s the benchmarks report
// GFLOP/s per busy core: flops over the CPU time the process used (all threads,
// including BLAS threads spinning), which other processes barely disturb.

// timer marks the start of the timed loop.
type timer struct {
	wall time.Time
	cpu  time.Duration
}

func start(b *testing.B) timer {
	b.ResetTimer()
	return timer{time.Now(), benchstat.CPUTime()}
}

func (t timer) report(b *testing.B, flops float64) {
	total := flops * float64(b.N) / 1e9
	b.ReportMetric(total/time.Since(t.wall).Seconds(), "GFLOP/s")
	b.ReportMetric(total/(benchstat.CPUTime()-t.cpu).Seconds(), "GFLOP/s/core")
}

func filled(d *Device, n int) gpu.Buf {
	x := d.Alloc(n)
	s := d.f(x)
	for i := range s {
		s[i] = float32(i%17)*0.1 - 0.75 // no zeros: gonum skips them
	}
	return x
}

// gemmShapes are square sizes, then the 1x1 convolutions of MobileNetV2 at batch 1
// as (m, n, k) = (H*W, OC, C) with B transposed, then the LSTM input GEMM, then
// decoder steps as the decoder runs them, A B^T against a weight: the recurrent
// GEMM (H 512 -> 4H) and the vocabulary projection (512 -> 2600) at beam x batch
// rows (gemmNT from 2 to smallRows rows, BLAS otherwise).
var gemmShapes = []struct {
	name    string
	m, n, k int
	transB  bool
}{
	{"256", 256, 256, 256, false},
	{"512", 512, 512, 512, false},
	{"1024", 1024, 1024, 1024, false},
	{"56x56x144to24", 56 * 56, 24, 144, true},
	{"28x28x192to32", 28 * 28, 32, 192, true},
	{"7x7x960to320", 7 * 7, 320, 960, true},
	{"lstm_b1_512to2048", 1, 2048, 512, false},
	{"lstm_b32_512to2048", 32, 2048, 512, false},
	{"step_r1_512to2048", 1, 2048, 512, true},
	{"step_r3_512to2048", 3, 2048, 512, true},
	{"step_r3_1280to2048", 3, 2048, 1280, true},
	{"step_r8_512to2600", 8, 2600, 512, true},
	{"step_r16_512to2600", 16, 2600, 512, true},
	{"step_r24_512to2600", 24, 2600, 512, true},
	{"step_r32_512to2600", 32, 2600, 512, true},
	{"step_r32_256to2600", 32, 2600, 256, true},
	{"step_r32_256to1024", 32, 1024, 256, true},
	{"step_r48_512to2600", 48, 2600, 512, true},
	{"step_r96_256to2600", 96, 2600, 256, true},
	{"train_r768_256to2600", 768, 2600, 256, true},
	{"train_r768_256to1024", 768, 1024, 256, true},
}

func BenchmarkGemm(b *testing.B) {
	d := New(0)
	defer d.Close()
	for _, s := range gemmShapes {
		b.Run(s.name, func(b *testing.B) {
			x, w, c := filled(d, s.m*s.k), filled(d, s.k*s.n), d.Alloc(s.m*s.n)
			ldb := s.n
			if s.transB {
				ldb = s.k
			}
			t := start(b)
			for range b.N {
				d.Gemm(false, s.transB, s.m, s.n, s.k, 1, x, s.k, w, ldb, 0, c, s.n)
			}
			t.report(b, 2*float64(s.m*s.n*s.k))
		})
	}
}

// BenchmarkMulT runs the decoder-step shapes of BenchmarkGemm (a few rows
// times a weight, transposed) through weights packed in each precision this
// CPU packs (gpu.PackWeight), float32's being Gemm itself.
func BenchmarkMulT(b *testing.B) {
	d := New(0)
	defer d.Close()
	for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16, gpu.Int8} {
		for _, s := range gemmShapes {
			if !strings.HasPrefix(s.name, "step_") {
				continue
			}
			b.Run(string(p)+"/"+s.name, func(b *testing.B) {
				x, c := filled(d, s.m*s.k), d.Alloc(s.m*s.n)
				pw, err := gpu.PackWeight(d, filled(d, s.k*s.n), s.n, s.k, s.k, p)
				if err != nil {
					b.Skip(err)
				}
				defer pw.Free()
				t := start(b)
				for range b.N {
					pw.MulT(s.m, x, s.k, 0, c, s.n)
				}
				t.report(b, 2*float64(s.m*s.n*s.k))
			})
		}
	}
}

// convShape is a named convolution benchmark.
type convShape struct {
	name string
	p    gpu.ConvParams
}

var convShapes = []convShape{
	{"1x1_56x56x144to24", gpu.ConvParams{N: 1, H: 56, W: 56, C: 144, OC: 24, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 56, OW: 56}},
	{"1x1_28x28x192to32", gpu.ConvParams{N: 1, H: 28, W: 28, C: 192, OC: 32, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 28, OW: 28}},
	{"1x1_7x7x960to320", gpu.ConvParams{N: 1, H: 7, W: 7, C: 960, OC: 320, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 7, OW: 7}},
	{"3x3s2_224x224x3to32", gpu.ConvParams{N: 1, H: 224, W: 224, C: 3, OC: 32, KH: 3, KW: 3, StrideH: 2, StrideW: 2, OH: 112, OW: 112}},
	{"3x3s2_224x224x3to32_batch8", gpu.ConvParams{N: 8, H: 224, W: 224, C: 3, OC: 32, KH: 3, KW: 3, StrideH: 2, StrideW: 2, OH: 112, OW: 112}},
}

func BenchmarkConv2D(b *testing.B) { benchConv(b, convShapes, false) }

var depthwiseShapes = []convShape{
	{"112x112x32s1", gpu.ConvParams{N: 1, H: 112, W: 112, C: 32, OC: 32, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 112, OW: 112}},
	{"112x112x96s2", gpu.ConvParams{N: 1, H: 112, W: 112, C: 96, OC: 96, KH: 3, KW: 3, StrideH: 2, StrideW: 2, OH: 56, OW: 56}},
	{"56x56x144s1", gpu.ConvParams{N: 1, H: 56, W: 56, C: 144, OC: 144, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 56, OW: 56}},
	{"14x14x576s1", gpu.ConvParams{N: 1, H: 14, W: 14, C: 576, OC: 576, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 14, OW: 14}},
}

func BenchmarkDepthwiseConv2D(b *testing.B) { benchConv(b, depthwiseShapes, true) }

func benchConv(b *testing.B, shapes []convShape, depthwise bool) {
	d := New(0)
	defer d.Close()
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			p := s.p
			wlen, macs := p.OC*p.KH*p.KW*p.C, p.N*p.OH*p.OW*p.OC*p.KH*p.KW*p.C
			if depthwise {
				wlen, macs = p.KH*p.KW*p.C, p.N*p.OH*p.OW*p.C*p.KH*p.KW
			}
			in, w, bias := filled(d, p.N*p.H*p.W*p.C), filled(d, wlen), filled(d, p.OC)
			out := d.Alloc(p.N * p.OH * p.OW * p.OC)
			t := start(b)
			for range b.N {
				if depthwise {
					d.DepthwiseConv2D(out, in, w, bias, p, gpu.ActReLU6)
				} else {
					d.Conv2D(out, in, w, bias, p, gpu.ActReLU6)
				}
			}
			t.report(b, 2*float64(macs))
		})
	}
}

// BenchmarkLSTMStep is one decoder time step: gates = x*Wx + h*Wh + bias, then
// the cell, for input and hidden 512.
func BenchmarkLSTMStep(b *testing.B) {
	d := New(0)
	defer d.Close()
	const I, H = 512, 512
	for _, B := range []int{1, 32} {
		b.Run(name(B), func(b *testing.B) {
			x, h, wx, wh, bias := filled(d, B*I), filled(d, B*H), filled(d, I*4*H), filled(d, H*4*H), filled(d, 4*H)
			gates, act, c, cPrev, hOut := d.Alloc(B*4*H), d.Alloc(B*4*H), d.Alloc(B*H), filled(d, B*H), d.Alloc(B*H)
			t := start(b)
			for range b.N {
				d.Gemm(false, false, B, 4*H, I, 1, x, I, wx, 4*H, 0, gates, 4*H)
				d.Gemm(false, false, B, 4*H, H, 1, h, H, wh, 4*H, 1, gates, 4*H)
				d.BiasAct(gates, gates, bias, B, 4*H, gpu.ActNone)
				d.LSTMCellForward(hOut, c, act, gates, cPrev, B, H)
			}
			t.report(b, 2*float64(B*(I+H)*4*H))
		})
	}
}

func name(batch int) string {
	if batch == 1 {
		return "batch1"
	}
	return "batch32"
}

// BenchmarkCrossEntropy is the decoder's loss over a batch of 32 captions of 20
// words and a vocabulary of 2,600 (forward and gradient), in logits per second.
func BenchmarkCrossEntropy(b *testing.B) {
	d := New(0)
	defer d.Close()
	const rows, cols = 32 * 20, 2600
	logits, loss, dl := filled(d, rows*cols), d.Alloc(rows), d.Alloc(rows*cols)
	targets := make([]int32, rows)
	for i := range targets {
		targets[i] = int32(i * 7 % cols)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		d.CrossEntropy(loss, dl, logits, targets, rows, cols, 1)
	}
	b.ReportMetric(float64(rows*cols*b.N)/time.Since(start).Seconds()/1e6, "Mlogits/s")
}
