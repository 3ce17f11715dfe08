package gputest

import (
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
)

func testMemory(t *testing.T, dev gpu.Device) {
	a := dev.Alloc(11)
	defer dev.Free(a)
	got := make([]float32, 11)
	if err := dev.Download(got, a); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 0 {
			t.Fatalf("Alloc: element %d is %v, want 0", i, v)
		}
	}
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	dev.Upload(a, src)
	// A view of a view writes through to the parent.
	v := a.Slice(2, 7).Slice(1, 3) // elements 3..5
	if v.Len() != 3 {
		t.Fatalf("Slice(2, 7).Slice(1, 3).Len() = %d, want 3", v.Len())
	}
	dev.Upload(v, []float32{-1, -2, -3})
	b := dev.Alloc(11)
	defer dev.Free(b)
	dev.Copy(b, a)
	dev.Zero(a.Slice(9, 2))
	want := [][]float32{
		{1, 2, 3, -1, -2, -3, 7, 8, 9, 0, 0},
		{1, 2, 3, -1, -2, -3, 7, 8, 9, 10, 11},
	}
	for i, buf := range []gpu.Buf{a, b} {
		if err := dev.Download(got, buf); err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if got[j] != want[i][j] {
				t.Fatalf("buffer %d = %v, want %v", i, got, want[i])
			}
		}
	}
	if err := dev.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// testPanics checks that size mismatches are caught instead of corrupting memory.
func testPanics(t *testing.T, dev gpu.Device) {
	a, b := dev.Alloc(6), dev.Alloc(7)
	defer dev.Free(a)
	defer dev.Free(b)
	mustPanic(t, "Upload of 7 into 6", func() { dev.Upload(a, make([]float32, 7)) })
	mustPanic(t, "Copy of 7 into 6", func() { dev.Copy(a, b) })
	mustPanic(t, "Add of 6 and 7", func() { dev.Add(a, a, b) })
	mustPanic(t, "Slice past the end", func() { a.Slice(4, 3) })
	mustPanic(t, "Gemm with lda < k", func() { dev.Gemm(false, false, 2, 2, 3, 1, a, 2, a, 2, 0, a, 2) })
	mustPanic(t, "Gemm with too small A", func() { dev.Gemm(false, false, 3, 1, 3, 1, a, 3, b, 1, 0, b, 1) })
	mustPanic(t, "GemmStridedBatched with overlapping outputs", func() {
		dev.GemmStridedBatched(false, false, 2, 1, 1, 1, a, 1, 2, a, 1, 0, 0, b, 1, 1, 2)
	})
	mustPanic(t, "BiasAct with a short bias", func() { dev.BiasAct(a, a, b.Slice(0, 2), 2, 3, gpu.ActNone) })
	mustPanic(t, "DepthwiseConv2DBackward with a short din", func() {
		dev.DepthwiseConv2DBackward(b, nil, nil, a, a, a.Slice(0, 2), gpu.ConvParams{N: 1, H: 1, W: 3, C: 2, OC: 2, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 1, OW: 3})
	})
	mustPanic(t, "Conv2D with a short weight", func() {
		dev.Conv2D(a, a, b.Slice(0, 1), a.Slice(0, 2), gpu.ConvParams{N: 1, H: 1, W: 3, C: 2, OC: 2, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 1, OW: 3}, gpu.ActNone)
	})
	mustPanic(t, "EmbeddingForward with an id past the vocabulary", func() { dev.EmbeddingForward(a.Slice(0, 2), a, []int32{3}, 2) })
	mustPanic(t, "CrossEntropy with a target past the classes", func() { dev.CrossEntropy(a.Slice(0, 2), nil, a, []int32{0, 3}, 2, 3, 1) })
	idx, val := make([]int32, 8), make([]float32, 8)
	mustPanicWith(t, "TopK of 4 of 3 columns", "k=4", func() { dev.TopK(idx, val, a, 2, 3, 4) })
	mustPanicWith(t, "TopK of 0", "k=0", func() { dev.TopK(make([]int32, 0), make([]float32, 0), a, 2, 3, 0) })
	mustPanic(t, "Dropout with p 1", func() { dev.Dropout(a, a, a, 1, 7) })
	mustPanic(t, "Dropout with p -0.1", func() { dev.Dropout(a, a, a, -0.1, 7) })
	mustPanic(t, "AdamW at step 0", func() { dev.AdamW(a, a, a, a, 0.1, 0.9, 0.999, 1e-8, 0, 0) })
}

type gemmSize struct{ m, n, k int }

// gemmSizes covers 1, odd sizes, non-multiples of 8 and 16, and sizes large
// enough for blocked and parallel paths.
var gemmSizes = []gemmSize{
	{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 1}, {3, 5, 7}, {17, 33, 9}, {16, 16, 16},
	{64, 64, 64}, {65, 31, 129}, {130, 67, 257}, {1, 300, 200}, {200, 150, 100}, {24, 600, 80},
	// a few rows against a wide B: the CPU backend's gemmNT (decoder steps and
	// beams, one row for greedy decoding at batch 1), every remainder of its
	// 4-row tiles, k a multiple of its 16-wide vectors or not, up to its 64 rows
	{6, 530, 83}, {13, 67, 40}, {3, 530, 83}, {7, 67, 40}, {3, 600, 64}, {6, 67, 256}, {47, 600, 32},
	{1, 530, 83}, {1, 600, 256},
}

// testGemmNoInner: with k = 0, C = beta C, whatever beta: 0 (C not read:
// NaN in it does not spread), 1, or another.
func testGemmNoInner(t *testing.T, dev gpu.Device) {
	for _, beta := range []float32{0, 1, 0.75, 2} {
		h := newHarness(t, dev, 5)
		c := h.uniform(15, -1, 1)
		want := make([]float64, len(c))
		for i, v := range c {
			want[i] = float64(beta) * float64(v)
		}
		if beta == 0 {
			c = nans(len(c))
		}
		cb := h.buf(c)
		dev.Gemm(false, false, 3, 5, 0, 1, h.in([]float32{0}), 1, h.in([]float32{0}), 5, beta, cb, 5)
		near(t, name("C, beta %v", beta), h.get(cb), want, tolerance(want, 0, 1e-7))
	}
}

func testGemm(t *testing.T, dev gpu.Device) {
	for i, s := range gemmSizes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, ab := range [][2]float32{{1, 0}, {-0.5, 0.75}, {2, 0}} {
					pad := 3 * (i % 2) // row strides larger than the matrix on every other size
					t.Run(name("m%d_n%d_k%d_tA%v_tB%v_alpha%v_beta%v_pad%d", s.m, s.n, s.k, ta, tb, ab[0], ab[1], pad), func(t *testing.T) {
						checkGemm(t, dev, ta, tb, s, ab[0], ab[1], pad, 1, apart, apart)
					})
				}
			}
		}
	}
}

func testGemmStridedBatched(t *testing.T, dev gpu.Device) {
	for _, s := range []gemmSize{{1, 1, 1}, {3, 5, 7}, {17, 9, 33}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, l := range [][2]layout{{apart, apart}, {shared, apart}, {apart, shared}, {interleaved, interleaved}} {
					t.Run(name("m%d_n%d_k%d_tA%v_tB%v_A%s_B%s", s.m, s.n, s.k, ta, tb, l[0], l[1]), func(t *testing.T) {
						checkGemm(t, dev, ta, tb, s, 1.5, 0.5, 2, 3, l[0], l[1])
					})
				}
			}
		}
	}
}

// layout is how a strided batched Gemm's input matrices lie in their buffer.
type layout int

const (
	apart       layout = iota // one after the other, 5 elements between them
	shared                    // one matrix for the whole batch: stride 0
	interleaved               // matrix i's rows are columns i*cols.. of one wide matrix (the attention backward's time-major rows)
)

func (l layout) String() string { return [...]string{"apart", "shared", "interleaved"}[l] }

// operand returns the row stride and batch stride of batch (rows, cols)
// matrices laid out as l, with pad more elements a row (apart and shared),
// and the elements their buffer needs.
func (l layout) operand(rows, cols, pad, batch int) (ld, stride, n int) {
	switch l {
	case shared:
		ld = cols + pad
		return ld, 0, rows * ld
	case interleaved:
		ld = batch*cols + pad
		return ld, cols, rows * ld
	}
	ld = cols + pad
	return ld, rows*ld + 5, batch * (rows*ld + 5)
}

// checkGemm runs a Gemm (batch 1) or a strided batched Gemm against refGemm:
// A and B laid out as la and lb, the C matrices apart, every row padded by pad.
func checkGemm(t *testing.T, dev gpu.Device, ta, tb bool, s gemmSize, alpha, beta float32, pad, batch int, la, lb layout) {
	h := newHarness(t, dev, uint64(s.m*10007+s.n*101+s.k))
	ar, ac := s.m, s.k
	if ta {
		ar, ac = ac, ar
	}
	br, bc := s.k, s.n
	if tb {
		br, bc = bc, br
	}
	lda, sa, na := la.operand(ar, ac, pad, batch)
	ldb, sb, nb := lb.operand(br, bc, pad, batch)
	ldc, sc, nc := apart.operand(s.m, s.n, pad, batch)
	a := h.uniform(na, -1, 1)
	b := h.uniform(nb, -1, 1)
	c := h.uniform(nc, -1, 1)
	if beta == 0 { // C must not be read: NaN in it would spread.
		for i := 0; i < batch; i++ {
			poison(c[i*sc:], s.m, s.n, ldc)
		}
	}
	var want, mag []float64
	for i := 0; i < batch; i++ {
		w, m := refGemm(ta, tb, s.m, s.n, s.k, float64(alpha), a[i*sa:], lda, b[i*sb:], ldb, float64(beta), c[i*sc:(i+1)*sc], ldc)
		want, mag = append(want, w...), append(mag, m...)
	}
	cb := h.buf(c)
	if batch == 1 {
		dev.Gemm(ta, tb, s.m, s.n, s.k, alpha, h.in(a), lda, h.in(b), ldb, beta, cb, ldc)
	} else {
		dev.GemmStridedBatched(ta, tb, s.m, s.n, s.k, alpha, h.in(a), lda, sa, h.in(b), ldb, sb, beta, cb, ldc, sc, batch)
	}
	near(t, "C", h.get(cb), want, tolerance(mag, 0, 1e-6*math.Sqrt(float64(s.k))+2e-7))
}

// poison fills the (rows, cols) matrix at c, row stride ldc, with NaN, leaving
// the padding between rows as it was: a kernel told beta 0 must not read C.
func poison(c []float32, rows, cols, ldc int) {
	for r := 0; r < rows; r++ {
		for j := 0; j < cols; j++ {
			c[r*ldc+j] = float32(math.NaN())
		}
	}
}

// convCases cover 1x1 (the single-GEMM path) and general kernels, TFLite SAME
// padding at stride 2 with PadTop 0 (even input) and 1 (odd input), PyTorch-style
// symmetric padding, VALID, rectangular kernels and strides, few and many input
// channels, and outputs of over 9,000 pixels (more than a 1 MiB im2col buffer).
var convCases = []gpu.ConvParams{
	{N: 2, H: 5, W: 7, C: 3, OC: 4, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 5, OW: 7},
	{N: 1, H: 9, W: 9, C: 17, OC: 33, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 9, OW: 9},
	{N: 1, H: 23, W: 25, C: 17, OC: 61, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 23, OW: 25},
	{N: 3, H: 14, W: 14, C: 40, OC: 24, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 14, OW: 14},
	{N: 2, H: 20, W: 20, C: 96, OC: 32, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 20, OW: 20},
	{N: 2, H: 16, W: 16, C: 300, OC: 260, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 16, OW: 16},
	{N: 1, H: 24, W: 24, C: 160, OC: 400, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 24, OW: 24},
	{N: 1, H: 1, W: 1, C: 1, OC: 1, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 1, OW: 1},
	{N: 1, H: 7, W: 7, C: 5, OC: 3, KH: 1, KW: 1, StrideH: 2, StrideW: 2, OH: 4, OW: 4},
	{N: 2, H: 6, W: 5, C: 3, OC: 5, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 6, OW: 5},
	{N: 1, H: 8, W: 8, C: 3, OC: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 4, OW: 4},
	{N: 2, H: 9, W: 9, C: 4, OC: 7, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, OH: 5, OW: 5},
	{N: 1, H: 5, W: 6, C: 2, OC: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, OH: 3, OW: 4},
	{N: 1, H: 7, W: 9, C: 5, OC: 6, KH: 5, KW: 3, StrideH: 1, StrideW: 2, PadTop: 2, PadLeft: 1, OH: 7, OW: 5},
	{N: 1, H: 12, W: 11, C: 3, OC: 20, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 12, OW: 11},
	{N: 1, H: 32, W: 32, C: 3, OC: 32, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 16, OW: 16},
	{N: 2, H: 70, W: 70, C: 3, OC: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 70, OW: 70},
	{N: 1, H: 64, W: 64, C: 8, OC: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 64, OW: 64},
}

func testConv2D(t *testing.T, dev gpu.Device) {
	for i, p := range convCases {
		act := allActs[i%len(allActs)]
		t.Run(name("%dx%dx%dx%d_oc%d_k%dx%d_s%dx%d_pad%d,%d_%s", p.N, p.H, p.W, p.C, p.OC, p.KH, p.KW, p.StrideH, p.StrideW, p.PadTop, p.PadLeft, actName(act)), func(t *testing.T) {
			checkConv(t, dev, p, act, false)
		})
	}
}

// depthwiseCases: C of 1, odd, and multiples of 8 and 16, stride 1 and 2 with
// TFLite SAME padding (PadTop 0 for even input), images narrower than the
// kernel, and sizes large enough for parallel rows.
var depthwiseCases = []gpu.ConvParams{
	{N: 1, H: 5, W: 5, C: 1, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 5, OW: 5},
	{N: 2, H: 6, W: 7, C: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 6, OW: 7},
	{N: 1, H: 8, W: 8, C: 16, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 4, OW: 4},
	{N: 1, H: 9, W: 11, C: 17, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, OH: 5, OW: 6},
	{N: 1, H: 8, W: 8, C: 33, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, OH: 4, OW: 4},
	{N: 1, H: 1, W: 1, C: 24, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 1, OW: 1},
	{N: 1, H: 2, W: 1, C: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 1, OW: 1},
	{N: 1, H: 5, W: 6, C: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, OH: 3, OW: 4},
	{N: 2, H: 7, W: 7, C: 9, KH: 5, KW: 5, StrideH: 1, StrideW: 1, PadTop: 2, PadLeft: 2, OH: 7, OW: 7},
	{N: 1, H: 6, W: 9, C: 5, KH: 1, KW: 3, StrideH: 1, StrideW: 2, PadTop: 0, PadLeft: 1, OH: 6, OW: 5},
	{N: 3, H: 28, W: 28, C: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 28, OW: 28},
	{N: 1, H: 30, W: 30, C: 96, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 15, OW: 15},
	{N: 2, H: 29, W: 29, C: 24, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, OH: 15, OW: 15},
}

func testDepthwiseConv2D(t *testing.T, dev gpu.Device) {
	for i, p := range depthwiseCases {
		p.OC = p.C
		act := allActs[i%len(allActs)]
		t.Run(name("%dx%dx%dx%d_k%dx%d_s%dx%d_pad%d,%d_%s", p.N, p.H, p.W, p.C, p.KH, p.KW, p.StrideH, p.StrideW, p.PadTop, p.PadLeft, actName(act)), func(t *testing.T) {
			checkConv(t, dev, p, act, true)
		})
	}
}

func checkConv(t *testing.T, dev gpu.Device, p gpu.ConvParams, act gpu.Act, depthwise bool) {
	h := newHarness(t, dev, uint64(p.H*1000+p.C*10+p.KH))
	in := h.uniform(p.N*p.H*p.W*p.C, -2, 2)
	wlen := p.OC * p.KH * p.KW * p.C
	if depthwise {
		wlen = p.KH * p.KW * p.C
	}
	w := h.uniform(wlen, -1, 1)
	bias := h.uniform(p.OC, -1, 1)
	want, mag := refConv(p, in, w, bias, act, depthwise)
	out := h.out(len(want))
	if depthwise {
		dev.DepthwiseConv2D(out, h.in(in), h.in(w), h.in(bias), p, act)
	} else {
		dev.Conv2D(out, h.in(in), h.in(w), h.in(bias), p, act)
	}
	k := float64(p.KH * p.KW * p.C)
	near(t, "out", h.get(out), want, tolerance(mag, 1e-6, 1e-6*math.Sqrt(k)+2e-7))
}

// depthwiseBackwardCases are depthwiseCases small enough for finite differences
// of every gradient element on the emulated grid, plus MobileNetV2's 7x7 shapes.
var depthwiseBackwardCases = []gpu.ConvParams{
	depthwiseCases[0], depthwiseCases[1], depthwiseCases[3], depthwiseCases[5], depthwiseCases[6],
	depthwiseCases[7], depthwiseCases[9],
	{N: 2, H: 7, W: 7, C: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 7, OW: 7},
	{N: 1, H: 14, W: 14, C: 24, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 7, OW: 7},
}

// testDepthwiseConv2DBackward checks din, dweight and dbias against a float64
// reference and against central differences of the device's DepthwiseConv2D
// (of the loss Σ dout · out, which is linear in every input, so the differences
// are exact up to rounding) at up to fdSamples elements of each gradient.
func testDepthwiseConv2DBackward(t *testing.T, dev gpu.Device) {
	for _, p := range depthwiseBackwardCases {
		p.OC = p.C
		t.Run(name("%dx%dx%dx%d_k%dx%d_s%dx%d_pad%d,%d", p.N, p.H, p.W, p.C, p.KH, p.KW, p.StrideH, p.StrideW, p.PadTop, p.PadLeft), func(t *testing.T) {
			h := newHarness(t, dev, uint64(p.H*1000+p.C*10+p.KH+7))
			taps := p.KH * p.KW
			in := h.uniform(p.N*p.H*p.W*p.C, -2, 2)
			w := h.uniform(taps*p.C, -1, 1)
			bias := h.uniform(p.C, -1, 1)
			dout := h.uniform(p.N*p.OH*p.OW*p.C, -1, 1)
			dw0, db0 := h.uniform(len(w), -1, 1), h.uniform(p.C, -1, 1)

			// Reference: din = Σ over taps of dout * w, dw += Σ over pixels of dout * in.
			wantDin, wantDw, wantDb := make([]float64, len(in)), to64(dw0), to64(db0)
			for n := 0; n < p.N; n++ {
				for oh := 0; oh < p.OH; oh++ {
					for ow := 0; ow < p.OW; ow++ {
						for c := 0; c < p.C; c++ {
							g := float64(dout[((n*p.OH+oh)*p.OW+ow)*p.C+c])
							wantDb[c] += g
							for kh := 0; kh < p.KH; kh++ {
								for kw := 0; kw < p.KW; kw++ {
									ih, iw := oh*p.StrideH-p.PadTop+kh, ow*p.StrideW-p.PadLeft+kw
									if ih < 0 || ih >= p.H || iw < 0 || iw >= p.W {
										continue
									}
									xi, wi := ((n*p.H+ih)*p.W+iw)*p.C+c, (kh*p.KW+kw)*p.C+c
									wantDin[xi] += g * float64(w[wi])
									wantDw[wi] += g * float64(in[xi])
								}
							}
						}
					}
				}
			}
			din, dweight, dbias := h.out(len(in)), h.buf(dw0), h.buf(db0)
			bin, bw, bg := h.in(in), h.in(w), h.in(dout)
			dev.DepthwiseConv2DBackward(din, dweight, dbias, bg, bin, bw, p)
			pixels := float64(p.N * p.OH * p.OW)
			gotDin, gotDw, gotDb := h.get(din), h.get(dweight), h.get(dbias)
			near(t, "din", gotDin, wantDin, tolerance(wantDin, 1e-5, 1e-5))
			near(t, "dweight", gotDw, wantDw, tolerance(wantDw, 1e-6*pixels, 1e-5))
			near(t, "dbias", gotDb, wantDb, tolerance(wantDb, 1e-6*pixels, 1e-5))

			// Each gradient alone, the others nil: din is written, the others add.
			din2, dw2 := h.out(len(in)), h.buf(dw0)
			dev.DepthwiseConv2DBackward(din2, nil, nil, bg, bin, bw, p)
			dev.DepthwiseConv2DBackward(nil, dw2, nil, bg, bin, bw, p)
			near(t, "din alone", h.get(din2), wantDin, tolerance(wantDin, 1e-5, 1e-5))
			near(t, "dweight alone", h.get(dw2), wantDw, tolerance(wantDw, 1e-6*pixels, 1e-5))

			// Finite differences of the device's forward pass.
			out := h.out(len(dout))
			loss := func(x, wt, b []float32) float64 {
				dev.DepthwiseConv2D(out, h.in(x), h.in(wt), h.in(b), p, gpu.ActNone)
				var s float64
				for i, v := range h.get(out) {
					s += float64(v) * float64(dout[i])
				}
				return s
			}
			checkFD := func(what string, x []float32, got []float32, base []float32) {
				t.Helper()
				idx := fdIndices(len(x))
				want := centralDiffAt(x, idx, func() float64 { return loss(in, w, bias) })
				tol, have := make([]float64, len(idx)), make([]float32, len(idx))
				for k, i := range idx {
					have[k] = got[i]
					if base != nil {
						have[k] -= base[i]
					}
					tol[k] = 2e-3 + 1e-3*math.Abs(want[k])
				}
				near(t, what+" vs finite differences", have, want, tol)
			}
			checkFD("din", in, gotDin, nil)
			checkFD("dweight", w, gotDw, dw0)
			checkFD("dbias", bias, gotDb, db0)
		})
	}
}

// fdSamples bounds the elements of a gradient checked by finite differences.
const fdSamples = 24

// fdIndices returns up to fdSamples indices spread over [0, n), first and last included.
func fdIndices(n int) []int {
	if n <= fdSamples {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, fdSamples)
	for k := range idx {
		idx[k] = k * (n - 1) / (fdSamples - 1)
	}
	return idx
}
