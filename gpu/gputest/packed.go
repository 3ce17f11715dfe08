package gputest

import (
	"math"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// packedSizes cover every tile of the CPU's bfloat16 kernel: rows 1 to 6 and
// past one tile of 6, columns inside one block of 16, across blocks and
// 32-wide tiles with tails, odd k (a padded pair) and k = 1, and a weight
// wide enough to be split over threads.
var packedSizes = []gemmSize{
	{1, 1, 1}, {2, 15, 7}, {3, 16, 2}, {4, 17, 33}, {5, 31, 32}, {6, 33, 9},
	{7, 50, 40}, {13, 64, 31}, {24, 1040, 64},
}

// bf16 rounds x to bfloat16 (to nearest, ties to even), as a float32.
func bf16(x float32) float32 {
	u := math.Float32bits(x)
	u += 0x7fff + (u>>16)&1
	return math.Float32frombits(u &^ 0xffff)
}

func testPackWeight(t *testing.T, dev gpu.Device) {
	for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16} {
		for i, s := range packedSizes {
			for _, beta := range []float32{0, 0.75} {
				pad := 3 * (i % 2)
				t.Run(name("%s_m%d_n%d_k%d_beta%v_pad%d", p, s.m, s.n, s.k, beta, pad), func(t *testing.T) {
					checkPackWeight(t, dev, p, s, beta, pad)
				})
			}
		}
	}
	t.Run("int8_refused", func(t *testing.T) {
		h := newHarness(t, dev, 7)
		if _, err := gpu.PackWeight(dev, h.in(h.uniform(12, -1, 1)), 3, 4, 4, gpu.Int8); err == nil || !strings.Contains(err.Error(), "int8") {
			t.Errorf("PackWeight(int8) error = %v, want one that names int8", err)
		}
	})
}

// checkPackWeight runs MulT of a weight packed in precision p against refGemm
// of the operands rounded as p rounds them, then changes the weight and checks
// that a float32 weight follows it at once and a packed one after Update.
// A device that cannot pack in p must say so and is skipped.
func checkPackWeight(t *testing.T, dev gpu.Device, p gpu.Precision, s gemmSize, beta float32, pad int) {
	h := newHarness(t, dev, uint64(s.m*7919+s.n*31+s.k))
	lda, ldw, ldc := s.k+pad, s.k+pad, s.n+pad
	a, w := h.uniform(s.m*lda, -1, 1), h.uniform(s.n*ldw, -1, 1)
	wb := h.buf(w)
	pw, err := gpu.PackWeight(dev, wb, s.n, s.k, ldw, p)
	if err != nil {
		if p == gpu.Float32 || !strings.Contains(err.Error(), string(p)) {
			t.Fatalf("PackWeight(%s): %v", p, err)
		}
		t.Skipf("%s cannot pack in %s: %v", dev.Name(), p, err)
	}
	defer pw.Free()
	round := func(x []float32) []float32 {
		if p == gpu.Float32 {
			return x
		}
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = bf16(v)
		}
		return out
	}
	check := func(what string, w []float32) {
		c := h.uniform(s.m*ldc, -1, 1)
		if beta == 0 {
			poison(c, s.m, s.n, ldc)
		}
		want, mag := refGemm(false, true, s.m, s.n, s.k, 1, round(a), lda, round(w), ldw, float64(beta), c, ldc)
		cb := h.buf(c)
		pw.MulT(s.m, h.in(a), lda, beta, cb, ldc)
		near(t, what, h.get(cb), want, tolerance(mag, 0, 1e-6*math.Sqrt(float64(s.k))+2e-7))
	}
	check("C", w)
	w2 := h.uniform(len(w), -2, 2)
	dev.Upload(wb, w2)
	if p == gpu.Float32 {
		check("C after W changed", w2)
		return
	}
	pw.Update()
	check("C after W changed and Update", w2)
}
