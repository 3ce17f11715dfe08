package gputest

import (
	"math"
	"sort"

	"github.com/captioner/captioner/gpu"
)

// The reference implementations: the definitions written as plain loops in
// float64, slow and obviously correct.

func act64(a gpu.Act, x float64) float64 {
	switch a {
	case gpu.ActReLU:
		return math.Max(x, 0)
	case gpu.ActReLU6:
		return math.Min(math.Max(x, 0), 6)
	case gpu.ActTanh:
		return math.Tanh(x)
	case gpu.ActSigmoid:
		return 1 / (1 + math.Exp(-x))
	}
	return x
}

// refGemm returns the whole C buffer after C = alpha*op(A)*op(B) + beta*C, and per
// element the sum of the magnitudes of its terms (the scale of its rounding error).
// Elements outside the (m, n) matrix keep their value. beta == 0 ignores C.
func refGemm(ta, tb bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) (out, mag []float64) {
	out, mag = to64(c), make([]float64, len(c))
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sm float64
			for p := 0; p < k; p++ {
				ai, bi := i*lda+p, p*ldb+j
				if ta {
					ai = p*lda + i
				}
				if tb {
					bi = j*ldb + p
				}
				av, bv := float64(a[ai]), float64(b[bi])
				s += av * bv
				sm += math.Abs(av * bv)
			}
			r := alpha * s
			mag[i*ldc+j] = math.Abs(alpha) * sm
			if beta != 0 {
				r += beta * float64(c[i*ldc+j])
				mag[i*ldc+j] += math.Abs(beta * float64(c[i*ldc+j]))
			}
			out[i*ldc+j] = r
		}
	}
	return out, mag
}

// refConv returns act(conv + bias) (N, OH, OW, OC) and the magnitude of the terms
// before the activation. depthwise selects the (KH, KW, C) weight layout.
func refConv(p gpu.ConvParams, in, w, bias []float32, act gpu.Act, depthwise bool) (out, mag []float64) {
	out = make([]float64, p.N*p.OH*p.OW*p.OC)
	mag = make([]float64, len(out))
	for n := 0; n < p.N; n++ {
		for oh := 0; oh < p.OH; oh++ {
			for ow := 0; ow < p.OW; ow++ {
				for oc := 0; oc < p.OC; oc++ {
					s, sm := float64(bias[oc]), math.Abs(float64(bias[oc]))
					for kh := 0; kh < p.KH; kh++ {
						for kw := 0; kw < p.KW; kw++ {
							ih, iw := oh*p.StrideH-p.PadTop+kh, ow*p.StrideW-p.PadLeft+kw
							if ih < 0 || ih >= p.H || iw < 0 || iw >= p.W {
								continue
							}
							for c := 0; c < p.C; c++ {
								if depthwise && c != oc {
									continue
								}
								wi := ((oc*p.KH+kh)*p.KW+kw)*p.C + c
								if depthwise {
									wi = (kh*p.KW+kw)*p.C + c
								}
								wv := float64(w[wi])
								t := float64(in[((n*p.H+ih)*p.W+iw)*p.C+c]) * wv
								s += t
								sm += math.Abs(t)
							}
						}
					}
					i := ((n*p.OH+oh)*p.OW+ow)*p.OC + oc
					out[i], mag[i] = act64(act, s), sm
				}
			}
		}
	}
	return out, mag
}

// refLSTM returns h, c, act of one LSTM cell step.
func refLSTM(gates, cPrev []float32, B, H int) (h, c, act []float64) {
	h, c, act = make([]float64, B*H), make([]float64, B*H), make([]float64, B*4*H)
	sig := func(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) }
	for b := 0; b < B; b++ {
		for j := 0; j < H; j++ {
			g := gates[b*4*H:]
			i, f, gg, o := sig(g[j]), sig(g[H+j]), math.Tanh(float64(g[2*H+j])), sig(g[3*H+j])
			a := act[b*4*H:]
			a[j], a[H+j], a[2*H+j], a[3*H+j] = i, f, gg, o
			c[b*H+j] = f*float64(cPrev[b*H+j]) + i*gg
			h[b*H+j] = o * math.Tanh(c[b*H+j])
		}
	}
	return h, c, act
}

// refLogSoftmax returns the log-softmax of each row of x (rows, cols).
func refLogSoftmax(x []float32, rows, cols int) []float64 {
	out := make([]float64, rows*cols)
	for r := 0; r < rows; r++ {
		row := to64(x[r*cols : (r+1)*cols])
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - m)
		}
		for j, v := range row {
			out[r*cols+j] = v - m - math.Log(s)
		}
	}
	return out
}

// refTopK returns the indices of the k largest elements of row, descending, ties
// to the lowest index, NaN after every number.
func refTopK(row []float32, k int) []int {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	isNaN := func(i int) bool { return math.IsNaN(float64(row[idx[i]])) }
	sort.SliceStable(idx, func(a, b int) bool {
		if isNaN(a) || isNaN(b) {
			return !isNaN(a)
		}
		return row[idx[a]] > row[idx[b]]
	})
	return idx[:k]
}
