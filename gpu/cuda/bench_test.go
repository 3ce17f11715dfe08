//go:build cuda

package cuda

import (
	"fmt"
	"testing"
	"time"

	"github.com/captioner/captioner/gpu"
)

// Benchmarks report GFLOP/s (a multiply-add counts 2) on GPU 0 at the shapes
// MobileNetV2 and the decoder run, timed to a Sync after the loop. Run on a GPU
// machine with: go test -tags cuda -run '^$' -bench . -benchtime 200x ./gpu/cuda

func openBench(b *testing.B) gpu.Device {
	dev, err := Open(0, gpu.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	return dev
}

// filled returns a buffer of n small values.
func filled(dev gpu.Device, n int) gpu.Buf {
	h := make([]float32, n)
	for i := range h {
		h[i] = float32(i%17)*0.1 - 0.8
	}
	x := dev.Alloc(n)
	dev.Upload(x, h)
	return x
}

// timed runs fn b.N times and reports GFLOP/s for flops per run.
func timed(b *testing.B, dev gpu.Device, flops float64, fn func()) {
	fn() // JIT, cuBLAS heuristics, scratch growth
	if err := dev.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t := time.Now()
	for range b.N {
		fn()
	}
	if err := dev.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(flops*float64(b.N)/1e9/time.Since(t).Seconds(), "GFLOP/s")
}

func BenchmarkGemm(b *testing.B) {
	dev := openBench(b)
	for _, s := range []struct{ m, n, k int }{{1024, 1024, 1024}, {56 * 56, 24, 144}, {32, 2048, 512}} {
		b.Run(fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k), func(b *testing.B) {
			a, w, c := filled(dev, s.m*s.k), filled(dev, s.n*s.k), dev.Alloc(s.m*s.n)
			timed(b, dev, 2*float64(s.m*s.n*s.k), func() {
				dev.Gemm(false, true, s.m, s.n, s.k, 1, a, s.k, w, s.k, 0, c, s.n)
			})
		})
	}
}

func BenchmarkConv(b *testing.B) {
	dev := openBench(b)
	pw := gpu.ConvParams{N: 1, H: 56, W: 56, C: 144, OC: 24, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 56, OW: 56}
	b.Run("1x1_56x56x144to24", func(b *testing.B) {
		in, w, bias, out := filled(dev, 56*56*144), filled(dev, 24*144), filled(dev, 24), dev.Alloc(56*56*24)
		timed(b, dev, 2*56*56*24*144, func() { dev.Conv2D(out, in, w, bias, pw, gpu.ActNone) })
	})
	first := gpu.ConvParams{N: 1, H: 224, W: 224, C: 3, OC: 32, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 112, OW: 112}
	b.Run("3x3s2_224x224x3to32", func(b *testing.B) {
		in, w, bias, out := filled(dev, 224*224*3), filled(dev, 32*27), filled(dev, 32), dev.Alloc(112*112*32)
		timed(b, dev, 2*112*112*32*27, func() { dev.Conv2D(out, in, w, bias, first, gpu.ActReLU6) })
	})
	dw := gpu.ConvParams{N: 1, H: 112, W: 112, C: 96, OC: 96, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 56, OW: 56}
	b.Run("dw3x3s2_112x112x96", func(b *testing.B) {
		in, w, bias, out := filled(dev, 112*112*96), filled(dev, 9*96), filled(dev, 96), dev.Alloc(56*56*96)
		timed(b, dev, 2*56*56*96*9, func() { dev.DepthwiseConv2D(out, in, w, bias, dw, gpu.ActReLU6) })
	})
}

// BenchmarkLSTMStep is one decoder step: gates = x*Wx + h*Wh (two GEMMs), bias,
// then the cell, at hidden 512 and input 512.
func BenchmarkLSTMStep(b *testing.B) {
	dev := openBench(b)
	const in, hid = 512, 512
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("B%d", batch), func(b *testing.B) {
			x, h, c := filled(dev, batch*in), filled(dev, batch*hid), filled(dev, batch*hid)
			wx, wh, bias := filled(dev, in*4*hid), filled(dev, hid*4*hid), filled(dev, 4*hid)
			gates, act, h2, c2 := dev.Alloc(batch*4*hid), dev.Alloc(batch*4*hid), dev.Alloc(batch*hid), dev.Alloc(batch*hid)
			timed(b, dev, 2*float64(batch*4*hid*(in+hid)), func() {
				dev.Gemm(false, false, batch, 4*hid, in, 1, x, in, wx, 4*hid, 0, gates, 4*hid)
				dev.Gemm(false, false, batch, 4*hid, hid, 1, h, hid, wh, 4*hid, 1, gates, 4*hid)
				dev.BiasAct(gates, gates, bias, batch, 4*hid, gpu.ActNone)
				dev.LSTMCellForward(h2, c2, act, gates, c, batch, hid)
			})
		})
	}
}
