package gputest

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// packedSizes cover every tile of the CPU's packed kernels: rows 1 to 6 and
// past one tile of 6, columns inside one block of 16, across blocks and
// 32-wide tiles with tails, k of every remainder by 2 and 4 (padded pairs
// and quads) and k = 1, a weight wide enough to be split over threads, one
// whose threads' shares the CPU computes in several calls each at 1 and 3
// threads in every precision (gpu/cpu's cgoPiece: 19.4 M multiply-adds, int8
// in 2 calls a thread at 3 threads, float32 in 7), and rows enough to be
// converted by several.
var packedSizes = []gemmSize{
	{1, 1, 1}, {2, 15, 7}, {3, 16, 2}, {4, 17, 33}, {5, 31, 32}, {6, 33, 9},
	{7, 50, 40}, {13, 64, 31}, {24, 1040, 64}, {48, 4200, 96}, {200, 20, 301},
}

// bf16 rounds x to bfloat16 (to nearest, ties to even), as a float32.
func bf16(x float32) float32 {
	u := math.Float32bits(x)
	u += 0x7fff + (u>>16)&1
	return math.Float32frombits(u &^ 0xffff)
}

// int8Weights is each of w's rows (k values at stride ld) as PackWeight
// quantizes them to int8: on a grid of step largest magnitude / 127, rounded
// to nearest, ties to even; the padding is left as it is.
func int8Weights(w []float32, rows, k, ld int) []float32 {
	out := slices.Clone(w)
	for i := 0; i < rows; i++ {
		row := out[i*ld : i*ld+k]
		var m float32
		for _, v := range row {
			m = max(m, float32(math.Abs(float64(v))))
		}
		if m == 0 {
			continue
		}
		inv, step := 127/m, m/127
		for j, v := range row {
			row[j] = float32(math.RoundToEven(float64(v*inv))) * step
		}
	}
	return out
}

// int8Activations is each of a's rows as MulT against an int8 weight
// quantizes them: 256 steps from the least of the row's values and 0 to the
// largest of them and 0, rounded to nearest, ties to even.
func int8Activations(a []float32, rows, k, ld int) []float32 {
	out := slices.Clone(a)
	for i := 0; i < rows; i++ {
		row := out[i*ld : i*ld+k]
		var lo, hi float32
		for _, v := range row {
			lo, hi = min(lo, v), max(hi, v)
		}
		if hi == lo {
			continue
		}
		inv, step := 255/(hi-lo), (hi-lo)/255
		for j, v := range row {
			row[j] = float32(math.RoundToEven(float64((v-lo)*inv)))*step + lo
		}
	}
	return out
}

// rounded is x, rows of k values at stride ld, as PackWeight rounds a weight
// (weight) or MulT its activations in precision p.
func rounded(p gpu.Precision, x []float32, rows, k, ld int, weight bool) []float32 {
	switch {
	case p == gpu.BFloat16:
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = bf16(v)
		}
		return out
	case p == gpu.Int8 && weight:
		return int8Weights(x, rows, k, ld)
	case p == gpu.Int8:
		return int8Activations(x, rows, k, ld)
	}
	return x
}

func testPackWeight(t *testing.T, dev gpu.Device) {
	for _, p := range []gpu.Precision{gpu.Float32, gpu.BFloat16, gpu.Int8} {
		for i, s := range packedSizes {
			for _, beta := range []float32{0, 0.75} {
				pad := 3 * (i % 2)
				t.Run(name("%s_m%d_n%d_k%d_beta%v_pad%d", p, s.m, s.n, s.k, beta, pad), func(t *testing.T) {
					checkPackWeight(t, dev, p, s, beta, pad)
				})
			}
		}
	}
	t.Run("float16_refused", func(t *testing.T) {
		h := newHarness(t, dev, 7)
		if _, err := gpu.PackWeight(dev, h.in(h.uniform(12, -1, 1)), 3, 4, 4, "float16"); err == nil || !strings.Contains(err.Error(), "float16") {
			t.Errorf("PackWeight(float16) error = %v, want one that names float16", err)
		}
	})
	t.Run("int8_nonfinite_rows", func(t *testing.T) { checkInt8NonFinite(t, dev) })
	t.Run("int8_tiny_rows", func(t *testing.T) { checkInt8TinyRows(t, dev) })
	t.Run("int8_k_refused", func(t *testing.T) {
		// Past 65,536 inputs the int32 sums of 255*127 terms could overflow.
		const k = 65537
		h := newHarness(t, dev, 13)
		_, err := gpu.PackWeight(dev, h.in(h.uniform(k, -1, 1)), 1, k, k, gpu.Int8)
		if err == nil || gpu.Packs(dev, gpu.Int8) && !strings.Contains(err.Error(), "at most 65536 inputs") {
			t.Errorf("PackWeight(int8) of a (1, %d) weight: error %v, want one that gives the limit", k, err)
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
	check := func(what string, w []float32) {
		c := h.uniform(s.m*ldc, -1, 1)
		if beta == 0 {
			poison(c, s.m, s.n, ldc)
		}
		want, mag := refGemm(false, true, s.m, s.n, s.k, 1, rounded(p, a, s.m, s.k, lda, false), lda, rounded(p, w, s.n, s.k, ldw, true), ldw, float64(beta), c, ldc)
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

// checkInt8TinyRows checks that a weight row of magnitude 1e-20 and an
// activation row spanning 2e-4 are quantized on their own scales, as any
// row, not taken for zero rows.
func checkInt8TinyRows(t *testing.T, dev gpu.Device) {
	const m, n, k = 2, 16, 32
	h := newHarness(t, dev, 17)
	w := h.uniform(n*k, -1, 1)
	for j := range k {
		w[j] *= 1e-20
	}
	pw, err := gpu.PackWeight(dev, h.buf(w), n, k, k, gpu.Int8)
	if err != nil {
		t.Skipf("%s cannot pack in int8: %v", dev.Name(), err)
	}
	defer pw.Free()
	a := h.uniform(m*k, -1, 1)
	for j := range k {
		a[k+j] *= 1e-4
	}
	cb := h.buf(make([]float32, m*n))
	pw.MulT(m, h.in(a), k, 0, cb, n)
	want, mag := refGemm(false, true, m, n, k, 1, int8Activations(a, m, k, k), k, int8Weights(w, n, k, k), k, 0, make([]float32, m*n), n)
	near(t, "C", h.get(cb), want, tolerance(mag, 0, 1e-5))
}

// checkInt8NonFinite checks that a NaN or an infinity in a row of A makes that
// row's products NaN, as in float32, where a quantization step computed from
// it would otherwise turn the row into finite numbers, and leaves the other
// rows as they were.
func checkInt8NonFinite(t *testing.T, dev gpu.Device) {
	const m, n, k = 3, 20, 37
	h := newHarness(t, dev, 11)
	w := h.uniform(n*k, -1, 1)
	pw, err := gpu.PackWeight(dev, h.buf(w), n, k, k, gpu.Int8)
	if err != nil {
		t.Skipf("%s cannot pack in int8: %v", dev.Name(), err)
	}
	defer pw.Free()
	a := h.uniform(m*k, -1, 1)
	a[k+5], a[2*k+36] = float32(math.NaN()), float32(math.Inf(-1))
	cb := h.buf(make([]float32, m*n))
	pw.MulT(m, h.in(a), k, 0, cb, n)
	c := h.get(cb)
	want, mag := refGemm(false, true, 1, n, k, 1, int8Activations(a[:k], 1, k, k), k, int8Weights(w, n, k, k), k, 0, make([]float32, n), n)
	near(t, "C row 0", c[:n], want, tolerance(mag, 0, 1e-5))
	for i := 1; i < m; i++ {
		for j, v := range c[i*n : (i+1)*n] {
			if !math.IsNaN(float64(v)) {
				t.Fatalf("C[%d][%d] = %v from a row of A with a NaN or an infinity, want NaN", i, j, v)
			}
		}
	}
}
