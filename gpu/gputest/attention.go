package gputest

import (
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// attSize is one AttentionScores problem: rows in groups of perImage sharing
// an image's regions (beams), each of dim.
type attSize struct{ rows, perImage, regions, dim int }

// attSizes covers one of everything, beams sharing an image, the 7x7 grid,
// dims off and on the vector width and past a CUDA block (256), and the
// decoder's real attention size (512).
var attSizes = []attSize{{1, 1, 1, 1}, {3, 3, 5, 17}, {6, 2, 49, 40}, {5, 1, 7, 300}, {2, 1, 49, 512}}

// refAttentionScores is the float64 reference: e[r, l, :] = tanh(pf[r/K, l, :] +
// q[r, :]) and scores[r, l] = e[r, l, :] · v.
func refAttentionScores(s attSize, pf, q, v []float32) (scores, e []float64) {
	L, A := s.regions, s.dim
	scores, e = make([]float64, s.rows*L), make([]float64, s.rows*L*A)
	for r := 0; r < s.rows; r++ {
		for l := 0; l < L; l++ {
			for a := 0; a < A; a++ {
				t := math.Tanh(float64(pf[((r/s.perImage)*L+l)*A+a]) + float64(q[r*A+a]))
				e[(r*L+l)*A+a] = t
				scores[r*L+l] += t * float64(v[a])
			}
		}
	}
	return scores, e
}

func testAttentionScores(t *testing.T, dev gpu.Device) {
	for _, s := range attSizes {
		for _, keepE := range []bool{false, true} {
			t.Run(name("r%d_k%d_l%d_a%d_e%v", s.rows, s.perImage, s.regions, s.dim, keepE), func(t *testing.T) {
				h := newHarness(t, dev, uint64(s.rows*s.regions*s.dim))
				B := s.rows / s.perImage
				pf := h.uniform(B*s.regions*s.dim, -1.5, 1.5)
				q := h.uniform(s.rows*s.dim, -1.5, 1.5)
				v := h.uniform(s.dim, -1, 1)
				wantScores, wantE := refAttentionScores(s, pf, q, v)
				scores := h.out(s.rows * s.regions)
				var e gpu.Buf
				if keepE {
					e = h.out(s.rows * s.regions * s.dim)
				}
				dev.AttentionScores(scores, e, h.in(pf), h.in(q), h.in(v), s.rows, s.perImage, s.regions, s.dim)
				// Each of dim terms may carry a tanh's float32 rounding.
				near(t, "scores", h.get(scores), wantScores, tolerance(wantScores, 1e-6+2e-7*float64(s.dim), 1e-5))
				if keepE {
					near(t, "e", h.get(e), wantE, tolerance(wantE, 1e-6, 0))
				}
			})
		}
	}
	a := dev.Alloc(64)
	defer dev.Free(a)
	mustPanic(t, "AttentionScores of 3 rows in images of 2", func() {
		dev.AttentionScores(a.Slice(0, 6), nil, a.Slice(0, 4), a.Slice(0, 6), a.Slice(0, 2), 3, 2, 2, 2)
	})
	mustPanic(t, "AttentionScores with a short pf", func() {
		dev.AttentionScores(a.Slice(0, 4), nil, a.Slice(0, 3), a.Slice(0, 4), a.Slice(0, 2), 2, 1, 2, 2)
	})
}

// clampExp is AttentionExp's float64 reference: exp(2·clamp(x, ±AttentionExpClamp)).
func clampExp(x float32) float64 {
	return math.Exp(2 * math.Max(-gpu.AttentionExpClamp, math.Min(gpu.AttentionExpClamp, float64(x))))
}

// testAttentionExp checks AttentionExp against exp(2·clamp(x)) across and
// past the clamp, in place too, and that a NaN stays NaN.
func testAttentionExp(t *testing.T, dev gpu.Device) {
	for _, n := range []int{1, 17, 1000} {
		for _, inPlace := range []bool{false, true} {
			t.Run(name("n%d_inplace%v", n, inPlace), func(t *testing.T) {
				h := newHarness(t, dev, uint64(n)+7)
				x := h.uniform(n, -50, 50)
				x[0] = float32(math.NaN())
				if n > 2 {
					x[1], x[2] = gpu.AttentionExpClamp, -gpu.AttentionExpClamp
				}
				want := make([]float64, n)
				for i, v := range x {
					want[i] = clampExp(v)
				}
				var ep gpu.Buf
				if inPlace {
					ep = h.buf(x)
					dev.AttentionExp(ep, ep, n)
				} else {
					ep = h.out(n)
					dev.AttentionExp(ep, h.in(x), n)
				}
				got := h.get(ep)
				if !math.IsNaN(float64(got[0])) {
					t.Errorf("AttentionExp of NaN = %v, want NaN", got[0])
				}
				near(t, "ep", got, want, tolerance(want, 0, 1e-6))
			})
		}
	}
}

// testAttentionScoresExp checks AttentionScoresExp, given exp(2·clamp(pf))
// (AttentionExp's form, computed here) and leaving it as it was, against
// tanh's float64 scores: over the sizes of
// AttentionScores, with preactivations up to ±12 where tanh saturates and
// past the clamp where it is ±1 either way, and with a NaN in one row's q,
// which must reach that row's scores and no other's.
func testAttentionScoresExp(t *testing.T, dev gpu.Device) {
	for _, s := range attSizes {
		for _, spread := range []float64{1.5, 12} {
			t.Run(name("r%d_k%d_l%d_a%d_spread%g", s.rows, s.perImage, s.regions, s.dim, spread), func(t *testing.T) {
				h := newHarness(t, dev, uint64(s.rows*s.regions*s.dim)+11)
				B := s.rows / s.perImage
				pf := h.uniform(B*s.regions*s.dim, -spread, spread)
				q := h.uniform(s.rows*s.dim, -spread, spread)
				v := h.uniform(s.dim, -1, 1)
				if s.dim > 1 { // one term past the clamp: tanh(60 - 3) and tanh(2 - 45)
					pf[0], q[0] = 60, -3
					pf[1], q[1] = 2, -45
				}
				want, _ := refAttentionScores(s, pf, q, v)
				ep := make([]float32, len(pf)) // AttentionExp's form, from the reference
				for i, x := range pf {
					ep[i] = float32(clampExp(x))
				}
				scores := h.out(s.rows * s.regions)
				dev.AttentionScoresExp(scores, h.in(ep), h.in(q), h.in(v), s.rows, s.perImage, s.regions, s.dim)
				// Each of dim terms carries two exponentials' and a division's roundings.
				near(t, "scores", h.get(scores), want, tolerance(want, 1e-6+4e-7*float64(s.dim), 1e-5))
			})
		}
	}
	t.Run("nan", func(t *testing.T) {
		s := attSize{4, 2, 3, 20}
		h := newHarness(t, dev, 99)
		pf, q, v := h.uniform(2*s.regions*s.dim, -1, 1), h.uniform(s.rows*s.dim, -1, 1), h.uniform(s.dim, -1, 1)
		q[2*s.dim+5] = float32(math.NaN()) // row 2
		ep := h.buf(pf)
		dev.AttentionExp(ep, ep, len(pf))
		scores := h.out(s.rows * s.regions)
		dev.AttentionScoresExp(scores, ep, h.in(q), h.in(v), s.rows, s.perImage, s.regions, s.dim)
		for i, x := range h.get(scores) {
			if isNaN := math.IsNaN(float64(x)); isNaN != (i/s.regions == 2) {
				t.Errorf("score [%d] (row %d) = %v: want NaN in row 2 alone", i, i/s.regions, x)
			}
		}
	})
	a := dev.Alloc(64)
	defer dev.Free(a)
	mustPanic(t, "AttentionScoresExp of 3 rows in images of 2", func() {
		dev.AttentionScoresExp(a.Slice(0, 6), a.Slice(0, 4), a.Slice(0, 6), a.Slice(0, 2), 3, 2, 2, 2)
	})
	mustPanic(t, "AttentionScoresExp with a short ep", func() {
		dev.AttentionScoresExp(a.Slice(0, 4), a.Slice(0, 3), a.Slice(0, 4), a.Slice(0, 2), 2, 1, 2, 2)
	})
	mustPanic(t, "AttentionExp with a short pf", func() { dev.AttentionExp(a.Slice(0, 4), a.Slice(0, 3), 4) })
}

// testAttentionScoresBackward checks dpf and dq against central differences
// of the device's AttentionScores (loss Σ dscores ⊙ scores) and, more tightly,
// against the closed form, both added to what the gradients held before.
func testAttentionScoresBackward(t *testing.T, dev gpu.Device) {
	// Finite differences run the forward twice per input element: small sizes.
	for _, s := range []attSize{{1, 1, 1, 1}, {3, 3, 5, 17}, {4, 2, 3, 20}, {2, 1, 4, 33}} {
		t.Run(name("r%d_k%d_l%d_a%d", s.rows, s.perImage, s.regions, s.dim), func(t *testing.T) {
			h := newHarness(t, dev, uint64(s.rows*s.regions*s.dim)+3)
			B, L, A := s.rows/s.perImage, s.regions, s.dim
			pf := h.uniform(B*L*A, -1.5, 1.5)
			q := h.uniform(s.rows*A, -1.5, 1.5)
			v := h.uniform(A, -1, 1)
			ds := h.uniform(s.rows*L, -1, 1)
			dpf0, dq0 := h.uniform(len(pf), -1, 1), h.uniform(len(q), -1, 1)
			vb, scores, pfb, qb := h.in(v), h.out(s.rows*L), h.buf(pf), h.buf(q)
			loss := func() float64 {
				dev.Upload(pfb, pf)
				dev.Upload(qb, q)
				dev.AttentionScores(scores, nil, pfb, qb, vb, s.rows, s.perImage, L, A)
				var l float64
				for i, x := range h.get(scores) {
					l += float64(ds[i]) * float64(x)
				}
				return l
			}
			fdPf, fdQ := centralDiff(pf, loss), centralDiff(q, loss)
			_, e64 := refAttentionScores(s, pf, q, v)
			refPf, refQ := to64(dpf0), to64(dq0)
			for r := 0; r < s.rows; r++ {
				for l := 0; l < L; l++ {
					for a := 0; a < A; a++ {
						ea := e64[(r*L+l)*A+a]
						de := float64(ds[r*L+l]) * float64(v[a]) * (1 - ea*ea)
						refPf[((r/s.perImage)*L+l)*A+a] += de
						refQ[r*A+a] += de
					}
				}
			}
			for i := range fdPf {
				fdPf[i] += float64(dpf0[i])
			}
			for i := range fdQ {
				fdQ[i] += float64(dq0[i])
			}
			e := h.out(s.rows * L * A)
			dev.AttentionScores(h.out(s.rows*L), e, h.in(pf), h.in(q), vb, s.rows, s.perImage, L, A)
			dpf, dq := h.buf(dpf0), h.buf(dq0)
			dev.AttentionScoresBackward(dpf, dq, h.in(ds), h.in(h.get(e)), vb, s.rows, s.perImage, L, A)
			gotPf, gotQ := h.get(dpf), h.get(dq)
			near(t, "dpf vs finite differences", gotPf, fdPf, tolerance(fdPf, 1e-3, 1e-3))
			near(t, "dq vs finite differences", gotQ, fdQ, tolerance(fdQ, 1e-3, 1e-3))
			near(t, "dpf", gotPf, refPf, tolerance(refPf, 1e-5, 1e-5))
			near(t, "dq", gotQ, refQ, tolerance(refQ, 1e-5*float64(L), 1e-5))
		})
	}
}
