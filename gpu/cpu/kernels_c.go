//go:build cgo

package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11 -fopenmp-simd
#cgo LDFLAGS: -lm
#include "kernels.h"
*/
import "C"

import (
	"unsafe"

	"github.com/captioner/captioner/gpu"
)

// ptr is the address of s[0], or NULL for an empty slice.
func ptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(&s[0])
}

// biasActRows writes out (rows, cols) = act(x + bias); bias may be nil, out may be x.
func biasActRows(out, x, bias []float32, rows, cols int, act gpu.Act) {
	C.cap_bias_act(ptr(out), ptr(x), ptr(bias), C.long(rows), C.long(cols), C.int(act))
}

// dwRows computes output rows [oh0, oh1) of one image: in (H, W, C), out (OH, OW, C).
// zeros holds at least W*C zeros.
func dwRows(out, in, w, bias, zeros []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	C.cap_dw_rows(ptr(out), ptr(in), ptr(w), ptr(bias), ptr(zeros),
		C.int(p.H), C.int(p.W), C.int(p.C), C.int(p.KH), C.int(p.KW), C.int(p.StrideH), C.int(p.StrideW),
		C.int(p.PadTop), C.int(p.PadLeft), C.int(p.OW), C.int(oh0), C.int(oh1), C.int(act))
}

// dwBackwardInput writes the input gradient rows [lo, hi) (flattened over N,
// H) of a depthwise convolution (see cap_dw_backward_input).
func dwBackwardInput(dx, dout, w []float32, p *gpu.ConvParams, lo, hi int) {
	C.cap_dw_backward_input(ptr(dx), ptr(dout), ptr(w), C.int(p.H), C.int(p.W), C.int(p.C), C.int(p.KH), C.int(p.KW),
		C.int(p.StrideH), C.int(p.StrideW), C.int(p.PadTop), C.int(p.PadLeft), C.int(p.OH), C.int(p.OW), C.long(lo), C.long(hi))
}

// dwBackwardWeight adds into dw (KH, KW, C), channels [lo, hi), the weight
// gradient of a depthwise convolution (see cap_dw_backward_weight).
func dwBackwardWeight(dw, dout, in []float32, p *gpu.ConvParams, lo, hi int) {
	nc := hi - lo
	acc := make([]float64, p.KH*p.KW*nc)
	C.cap_dw_backward_weight((*C.double)(&acc[0]), ptr(dout), ptr(in), C.int(p.N), C.int(p.H), C.int(p.W), C.int(p.C), C.int(p.KH), C.int(p.KW),
		C.int(p.StrideH), C.int(p.StrideW), C.int(p.PadTop), C.int(p.PadLeft), C.int(p.OH), C.int(p.OW), C.int(lo), C.int(hi))
	addTapSums(dw, acc, p.KH*p.KW, p.C, lo, hi)
}

// convRows computes output rows [oh0, oh1) of one image of a direct convolution:
// in (H, W, C), wt (KH*KW*C, OC), out (OH, OW, OC).
func convRows(out, in, wt, bias []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	C.cap_conv_rows(ptr(out), ptr(in), ptr(wt), ptr(bias),
		C.int(p.H), C.int(p.W), C.int(p.C), C.int(p.OC), C.int(p.KH), C.int(p.KW), C.int(p.StrideH), C.int(p.StrideW),
		C.int(p.PadTop), C.int(p.PadLeft), C.int(p.OW), C.int(oh0), C.int(oh1), C.int(act))
}

// pwRows writes out (rows, N) = act(x (rows, K) * wt (K, N) + bias (N)); bias is
// not nil.
func pwRows(out, x, wt, bias []float32, rows, K, N int, act gpu.Act) {
	C.cap_pw_rows(ptr(out), ptr(x), ptr(wt), ptr(bias), C.long(rows), C.long(K), C.long(N), C.int(act))
}

// meanRows writes out (n, c) = the mean of the hw rows of each block of x
// (n, hw, c), summed in order of the rows.
func meanRows(out, x []float32, n, hw, c int) {
	C.cap_mean_rows(ptr(out), ptr(x), C.long(n), C.long(hw), C.long(c))
}

// addColSumsRange adds the sums of columns [lo, hi) of x (rows, cols) into
// sum, summing each in float64 in acc[lo:hi], row after row.
func addColSumsRange(sum []float32, acc []float64, x []float32, rows, cols, lo, hi int) {
	C.cap_add_col_sums(ptr(sum), (*C.double)(&acc[0]), ptr(x), C.long(rows), C.long(cols), C.long(lo), C.long(hi))
}

// sumSquares is the sum of x's squares in float64.
func sumSquares(x []float32) float64 {
	return float64(C.cap_sum_squares(ptr(x), C.long(len(x))))
}

// dropoutRange writes elements [lo, hi) of Dropout (Device.Dropout): mask[i]
// = 0 if gpu.DropoutUniform(seed, i) < p else keep, out[i] = x[i] * mask[i].
func dropoutRange(out, mask, x []float32, lo, hi int, p, keep float32, seed uint64) {
	C.cap_dropout(ptr(out), ptr(mask), ptr(x), C.long(lo), C.long(hi), C.float(p), C.float(keep), C.uint64_t(seed))
}

// adamw is AdamW's update of p from g with moments m and v (Device.AdamW),
// bc1 and bc2 the step's bias corrections.
func adamw(p, g, m, v []float32, lr, beta1, beta2, eps, weightDecay, bc1, bc2 float32) {
	adamwISA(vecISA, p, g, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2)
}

// vecISA is the widest instruction set of the hand-vectorized C loops this
// CPU runs: 2 AVX-512, 1 AVX2 with FMA, 0 none.
var vecISA = int(C.cap_vec_isa())

// adamwISA is adamw in the C loops of instruction set isa (at most vecISA),
// so that a test runs each of them here.
func adamwISA(isa int, p, g, m, v []float32, lr, beta1, beta2, eps, weightDecay, bc1, bc2 float32) {
	C.cap_adamw(C.int(isa), ptr(p), ptr(g), ptr(m), ptr(v), C.long(len(p)), C.float(lr), C.float(beta1), C.float(beta2),
		C.float(eps), C.float(weightDecay), C.float(bc1), C.float(bc2))
}

// transpose writes dst (cols, rows) = src (rows, cols)^T.
func transpose(dst, src []float32, rows, cols int) {
	C.cap_transpose(ptr(dst), ptr(src), C.long(rows), C.long(cols))
}

// softmaxRows writes out (rows, cols) = softmax, or with log log-softmax, of each
// row of x; out may be x.
func softmaxRows(out, x []float32, rows, cols int, log bool) {
	logp := 0
	if log {
		logp = 1
	}
	C.cap_softmax_rows(ptr(out), ptr(x), C.long(rows), C.long(cols), C.int(logp))
}

// topKRows writes the k largest elements of each row of x (rows, cols), descending,
// ties to the lowest index, NaN last, into idx and val (rows, k).
func topKRows(idx []int32, val, x []float32, rows, cols, k int) {
	if rows == 0 {
		return
	}
	C.cap_topk_rows((*C.int)(unsafe.Pointer(&idx[0])), ptr(val), ptr(x), C.long(rows), C.long(cols), C.long(k))
}

// crossEntropyRows writes loss[r] = -log softmax(x[r])[t[r]] and, when dl is not
// nil, dl[r] = (softmax(x[r]) - onehot(t[r])) * scale; rows with t[r] < 0 get
// zeros. dl may be x.
func crossEntropyRows(loss, dl, x []float32, t []int32, rows, cols int, scale float32) {
	C.cap_cross_entropy_rows(ptr(loss), ptr(dl), ptr(x), (*C.int)(unsafe.Pointer(&t[0])), C.long(rows), C.long(cols), C.float(scale))
}

// lstmForward is one LSTM cell step for batch rows (see cap_lstm_forward).
func lstmForward(hs, cs, a, g, cp []float32, batch, H int) {
	C.cap_lstm_forward(ptr(hs), ptr(cs), ptr(a), ptr(g), ptr(cp), C.long(batch), C.long(H))
}

// lstmBackward writes dgates and dcPrev of one step (see cap_lstm_backward).
func lstmBackward(dg, dcp, dhs, dcs, a, cs, cp []float32, batch, H int) {
	C.cap_lstm_backward(ptr(dg), ptr(dcp), ptr(dhs), ptr(dcs), ptr(a), ptr(cs), ptr(cp), C.long(batch), C.long(H))
}

// gemmNT computes c (m, n) = alpha * a b^T + beta * c, a (m, k) and b (n, k) row-major.
func gemmNT(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.cap_gemm_nt(C.long(m), C.long(n), C.long(k), C.float(alpha), ptr(a), C.long(lda), ptr(b), C.long(ldb), C.float(beta), ptr(c), C.long(ldc))
}

// attentionScores computes the scores of (row, region) pairs [lo, hi) (see
// cap_att_scores); e may be nil.
func attentionScores(scores, e, pf, q, v []float32, lo, hi, K, L, A int) {
	C.cap_att_scores(ptr(scores), ptr(e), ptr(pf), ptr(q), ptr(v), C.long(lo), C.long(hi), C.long(K), C.long(L), C.long(A))
}

// addInto writes o = x + y and mulInto o = x * y (see cap_add, cap_mul).
func addInto(o, x, y []float32) { C.cap_add(ptr(o), ptr(x), ptr(y), C.long(len(o))) }
func mulInto(o, x, y []float32) { C.cap_mul(ptr(o), ptr(x), ptr(y), C.long(len(o))) }

// attentionExp writes ep = exp(2·clamp(x, ±c)) (see cap_att_exp).
func attentionExp(ep, x []float32, c float32) {
	C.cap_att_exp(ptr(ep), ptr(x), C.long(len(x)), C.float(c))
}

// attentionScoresExp computes the scores of pairs [lo, hi) from ep and eq,
// the exponential forms of pf and q, and sv = Σv (see cap_att_scores_exp).
func attentionScoresExp(scores, ep, eq, v []float32, sv float32, lo, hi, K, L, A int) {
	C.cap_att_scores_exp(ptr(scores), ptr(ep), ptr(eq), ptr(v), C.float(sv), C.long(lo), C.long(hi), C.long(K), C.long(L), C.long(A))
}

// attentionScoresBackward adds the gradients of images [lo, hi)'s pf and rows'
// q (see cap_att_scores_backward).
func attentionScoresBackward(dpf, dq, dscores, e, v []float32, lo, hi, K, L, A int) {
	C.cap_att_scores_backward(ptr(dpf), ptr(dq), ptr(dscores), ptr(e), ptr(v), C.long(lo), C.long(hi), C.long(K), C.long(L), C.long(A))
}
