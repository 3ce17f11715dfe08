//go:build !cgo

package cpu

import (
	"math"

	"github.com/captioner/captioner/gpu"
)

// biasActRows writes out (rows, cols) = act(x + bias); bias may be nil, out may be x.
func biasActRows(out, x, bias []float32, rows, cols int, act gpu.Act) {
	for r := 0; r < rows; r++ {
		o := out[r*cols : (r+1)*cols]
		xr := x[r*cols : (r+1)*cols]
		if bias != nil {
			for j, v := range xr {
				o[j] = v + bias[j]
			}
		} else {
			copy(o, xr)
		}
		actRow(o, act)
	}
}

// dwRows computes output rows [oh0, oh1) of one image: in (H, W, C), out (OH, OW, C),
// one output pixel at a time with the channel loop innermost.
func dwRows(out, in, w, bias, _ []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	C := p.C
	convPixels(out, in, bias, p, p.C, oh0, oh1, act, func(o, x []float32, tap int) {
		for c, wv := range w[tap*C : (tap+1)*C] {
			o[c] += x[c] * wv
		}
	})
}

// dwBackwardInput writes the input gradient rows [lo, hi) (flattened over N, H)
// of a depthwise convolution: dx[n, ih, iw, c] is the sum over the taps (kh, kw)
// that read it of dout[n, oh, ow, c] * w[kh, kw, c], with ih = oh*StrideH -
// PadTop + kh (the same for columns).
func dwBackwardInput(dx, dout, w []float32, p *gpu.ConvParams, lo, hi int) {
	C := p.C
	for r := lo; r < hi; r++ {
		n, ih := r/p.H, r%p.H
		row := dx[r*p.W*C : (r+1)*p.W*C]
		clear(row)
		for kh := 0; kh < p.KH; kh++ {
			oh, ok := outIndex(ih, kh, p.PadTop, p.StrideH, p.OH)
			if !ok {
				continue
			}
			for iw := 0; iw < p.W; iw++ {
				px := row[iw*C : (iw+1)*C]
				for kw := 0; kw < p.KW; kw++ {
					ow, ok := outIndex(iw, kw, p.PadLeft, p.StrideW, p.OW)
					if !ok {
						continue
					}
					g := dout[((n*p.OH+oh)*p.OW+ow)*C : ((n*p.OH+oh)*p.OW+ow+1)*C]
					wt := w[(kh*p.KW+kw)*C : (kh*p.KW+kw+1)*C]
					for c, gv := range g {
						px[c] += gv * wt[c]
					}
				}
			}
		}
	}
}

// outIndex returns the output position o that reads input position i through
// tap k (i = o*stride - pad + k), and whether there is one.
func outIndex(i, k, pad, stride, outSize int) (int, bool) {
	t := i + pad - k
	if t < 0 || t%stride != 0 || t/stride >= outSize {
		return 0, false
	}
	return t / stride, true
}

// eachTap calls fn(kh*KW+kw, ih, iw) for every tap of output pixel (oh, ow)
// whose input pixel (ih, iw) is inside the image.
func eachTap(p *gpu.ConvParams, oh, ow int, fn func(tap, ih, iw int)) {
	for kh := 0; kh < p.KH; kh++ {
		ih := oh*p.StrideH - p.PadTop + kh
		if ih < 0 || ih >= p.H {
			continue
		}
		for kw := 0; kw < p.KW; kw++ {
			iw := ow*p.StrideW - p.PadLeft + kw
			if iw < 0 || iw >= p.W {
				continue
			}
			fn(kh*p.KW+kw, ih, iw)
		}
	}
}

// dwBackwardWeight adds into dw (KH, KW, C), channels [lo, hi), the sum over
// every output pixel of dout[n, oh, ow, c] * in[n, ih, iw, c] for each tap,
// accumulating in float64.
func dwBackwardWeight(dw, dout, in []float32, p *gpu.ConvParams, lo, hi int) {
	C, nc := p.C, hi-lo
	acc := make([]float64, p.KH*p.KW*nc)
	for n := 0; n < p.N; n++ {
		for oh := 0; oh < p.OH; oh++ {
			for ow := 0; ow < p.OW; ow++ {
				g := dout[((n*p.OH+oh)*p.OW+ow)*C+lo : ((n*p.OH+oh)*p.OW+ow)*C+hi]
				eachTap(p, oh, ow, func(tap, ih, iw int) {
					x := in[((n*p.H+ih)*p.W+iw)*C+lo : ((n*p.H+ih)*p.W+iw)*C+hi]
					a := acc[tap*nc : (tap+1)*nc]
					for c, gv := range g {
						a[c] += float64(gv) * float64(x[c])
					}
				})
			}
		}
	}
	addTapSums(dw, acc, p.KH*p.KW, C, lo, hi)
}

// convPixels computes output rows [oh0, oh1) of one image (OH, OW, oc): it sets
// each output pixel o (oc) to bias (or 0), calls tap(o, x, kh*KW+kw) for each tap
// whose input pixel x (C) is inside the image, then applies act.
func convPixels(out, in, bias []float32, p *gpu.ConvParams, oc, oh0, oh1 int, act gpu.Act, tap func(o, x []float32, tap int)) {
	for oh := oh0; oh < oh1; oh++ {
		orow := out[oh*p.OW*oc : (oh+1)*p.OW*oc]
		for ow := 0; ow < p.OW; ow++ {
			o := orow[ow*oc : (ow+1)*oc]
			if bias != nil {
				copy(o, bias)
			} else {
				clear(o)
			}
			eachTap(p, oh, ow, func(t, ih, iw int) { tap(o, in[(ih*p.W+iw)*p.C:(ih*p.W+iw+1)*p.C], t) })
		}
		actRow(orow, act)
	}
}

// actRow applies act to y in place.
func actRow(y []float32, act gpu.Act) {
	switch act {
	case gpu.ActReLU:
		for i, v := range y {
			y[i] = max(v, 0)
		}
	case gpu.ActReLU6:
		for i, v := range y {
			y[i] = min(max(v, 0), 6)
		}
	case gpu.ActTanh:
		for i, v := range y {
			y[i] = float32(math.Tanh(float64(v)))
		}
	case gpu.ActSigmoid:
		for i, v := range y {
			y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	}
}

// convRows computes output rows [oh0, oh1) of one image of a direct convolution:
// in (H, W, C), wt (KH*KW*C, OC), out (OH, OW, OC), output channels innermost.
func convRows(out, in, wt, bias []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	OC := p.OC
	convPixels(out, in, bias, p, OC, oh0, oh1, act, func(o, x []float32, tap int) {
		for c, xv := range x {
			for j, wv := range wt[(tap*p.C+c)*OC : (tap*p.C+c+1)*OC] {
				o[j] += xv * wv
			}
		}
	})
}

// pwRows writes out (rows, N) = act(x (rows, K) * wt (K, N) + bias (N)); bias is
// not nil.
func pwRows(out, x, wt, bias []float32, rows, K, N int, act gpu.Act) {
	blasSgemm(false, false, rows, N, K, 1, x, K, wt, N, 0, out, N)
	biasActRows(out, out, bias, rows, N, act)
}

// meanRows writes out (n, c) = the mean of the hw rows of each block of x
// (n, hw, c), summed in order of the rows.
func meanRows(out, x []float32, n, hw, c int) {
	scale := 1 / float32(hw)
	for i := 0; i < n; i++ {
		or := out[i*c : (i+1)*c]
		clear(or)
		for p := 0; p < hw; p++ {
			for j, v := range x[(i*hw+p)*c : (i*hw+p+1)*c] {
				or[j] += v
			}
		}
		for j := range or {
			or[j] *= scale
		}
	}
}

// addColSumsRange adds the sums of columns [lo, hi) of x (rows, cols) into
// sum, summing each in float64 in acc[lo:hi], row after row.
func addColSumsRange(sum []float32, acc []float64, x []float32, rows, cols, lo, hi int) {
	a := acc[lo:hi]
	clear(a)
	for r := 0; r < rows; r++ {
		for j, v := range x[r*cols+lo : r*cols+hi] {
			a[j] += float64(v)
		}
	}
	for j, v := range a {
		sum[lo+j] += float32(v)
	}
}

// sumSquares is the sum of x's squares in float64.
func sumSquares(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// dropoutRange writes elements [lo, hi) of Dropout (Device.Dropout): mask[i]
// = 0 if gpu.DropoutUniform(seed, i) < p else keep, out[i] = x[i] * mask[i].
func dropoutRange(out, mask, x []float32, lo, hi int, p, keep float32, seed uint64) {
	for i := lo; i < hi; i++ {
		m := keep
		if gpu.DropoutUniform(seed, i) < p {
			m = 0
		}
		mask[i] = m
		out[i] = x[i] * m
	}
}

// adamw is AdamW's update of p from g with moments m and v (Device.AdamW),
// bc1 and bc2 the step's bias corrections.
func adamw(p, g, m, v []float32, lr, beta1, beta2, eps, weightDecay, bc1, bc2 float32) {
	for i := range p {
		gi := g[i]
		mi := beta1*m[i] + (1-beta1)*gi
		vi := beta2*v[i] + (1-beta2)*gi*gi
		m[i], v[i] = mi, vi
		mhat, vhat := mi/bc1, vi/bc2
		p[i] -= lr * (mhat/(float32(math.Sqrt(float64(vhat)))+eps) + weightDecay*p[i])
	}
}

// transpose writes dst (cols, rows) = src (rows, cols)^T.
func transpose(dst, src []float32, rows, cols int) {
	for r := 0; r < rows; r++ {
		for c, v := range src[r*cols : (r+1)*cols] {
			dst[c*rows+r] = v
		}
	}
}

// rowMax is the largest element of x (at least one element).
func rowMax(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// logSumExp is log(sum(exp(x - m))) + m for m = max(x), summed in float64 so a
// large vocabulary stays accurate.
func logSumExp(x []float32) float64 {
	m := float64(rowMax(x))
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// topKRows writes the k largest elements of each row of x (rows, cols), descending,
// ties to the lowest index, NaN last, into idx and val (rows, k): insertion into
// the sorted top-k list, O(cols) per row for the small k of beam search.
func topKRows(idx []int32, val, x []float32, rows, cols, k int) {
	for r := 0; r < rows; r++ {
		ir, vr := idx[r*k:(r+1)*k], val[r*k:(r+1)*k]
		n := 0 // entries filled so far
		for j, v := range x[r*cols : (r+1)*cols] {
			if n == k && !ranksBefore(v, vr[k-1]) {
				continue
			}
			// Insert after every element that does not rank after v, so that
			// equal values keep index order.
			p := min(n, k-1)
			for p > 0 && ranksBefore(v, vr[p-1]) {
				ir[p], vr[p] = ir[p-1], vr[p-1]
				p--
			}
			ir[p], vr[p] = int32(j), v
			if n < k {
				n++
			}
		}
	}
}

// ranksBefore says whether a comes before b in top-k order: larger first, NaN
// after every number (-inf included).
func ranksBefore(a, b float32) bool { return a > b || (b != b && a == a) }

// softmaxRows writes out (rows, cols) = softmax, or with log log-softmax, of each
// row of x; out may be x.
func softmaxRows(out, x []float32, rows, cols int, log bool) {
	for r := 0; r < rows; r++ {
		xr, or := x[r*cols:(r+1)*cols], out[r*cols:(r+1)*cols]
		lse := logSumExp(xr)
		for j, v := range xr {
			if log {
				or[j] = float32(float64(v) - lse)
			} else {
				or[j] = float32(math.Exp(float64(v) - lse))
			}
		}
	}
}

// crossEntropyRows writes loss[r] = -log softmax(x[r])[t[r]] and, when dl is not
// nil, dl[r] = (softmax(x[r]) - onehot(t[r])) * scale; rows with t[r] < 0 get
// zeros. dl may be x.
func crossEntropyRows(loss, dl, x []float32, t []int32, rows, cols int, scale float32) {
	for r := 0; r < rows; r++ {
		xr := x[r*cols : (r+1)*cols]
		if t[r] < 0 {
			loss[r] = 0
			if dl != nil {
				clear(dl[r*cols : (r+1)*cols])
			}
			continue
		}
		lse := logSumExp(xr)
		loss[r] = float32(lse - float64(xr[t[r]]))
		if dl == nil {
			continue
		}
		dr := dl[r*cols : (r+1)*cols]
		for j, v := range xr {
			dr[j] = float32(math.Exp(float64(v)-lse)) * scale
		}
		dr[t[r]] -= scale
	}
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
func tanh(x float32) float32    { return float32(math.Tanh(float64(x))) }

// lstmForward is one LSTM cell step for batch rows: act = sigmoid(i), sigmoid(f),
// tanh(g), sigmoid(o) of gates (B, 4H); c = f*cPrev + i*g; h = o*tanh(c).
func lstmForward(hs, cs, a, g, cp []float32, batch, H int) {
	for b := 0; b < batch; b++ {
		gr, ar := g[b*4*H:(b+1)*4*H], a[b*4*H:(b+1)*4*H]
		for j := 0; j < H; j++ {
			i, f, gg, o := sigmoid(gr[j]), sigmoid(gr[H+j]), tanh(gr[2*H+j]), sigmoid(gr[3*H+j])
			ar[j], ar[H+j], ar[2*H+j], ar[3*H+j] = i, f, gg, o
			cv := f*cp[b*H+j] + i*gg
			cs[b*H+j] = cv
			hs[b*H+j] = o * tanh(cv)
		}
	}
}

// lstmBackward writes dgates (B, 4H) and dcPrev (B, H) of one step; dcPrev may be dc.
func lstmBackward(dg, dcp, dhs, dcs, a, cs, cp []float32, batch, H int) {
	for b := 0; b < batch; b++ {
		ar, dr := a[b*4*H:(b+1)*4*H], dg[b*4*H:(b+1)*4*H]
		for j := 0; j < H; j++ {
			k := b*H + j
			i, f, g, o := ar[j], ar[H+j], ar[2*H+j], ar[3*H+j]
			tc := tanh(cs[k])
			// Total gradient into c: from the next step and through h = o*tanh(c).
			dct := dcs[k] + dhs[k]*o*(1-tc*tc)
			dr[j] = dct * g * i * (1 - i)
			dr[H+j] = dct * cp[k] * f * (1 - f)
			dr[2*H+j] = dct * i * (1 - g*g)
			dr[3*H+j] = dhs[k] * tc * o * (1 - o)
			dcp[k] = dct * f
		}
	}
}

// gemmNT computes c (m, n) = alpha * a b^T + beta * c, a (m, k) and b (n, k)
// row-major. Without cgo there is no packing cost to avoid: gonum's Sgemm does it.
func gemmNT(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	blasSgemm(false, true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// attentionScores computes the scores of (row, region) pairs [lo, hi), pair
// i = r*L + l: e = tanh(pf[r/K, l] + q[r]), scores[i] = e · v; e (rows, L, A)
// is written when not nil.
func attentionScores(scores, e, pf, q, v []float32, lo, hi, K, L, A int) {
	for i := lo; i < hi; i++ {
		r, l := i/L, i%L
		p, qr := pf[((r/K)*L+l)*A:][:A], q[r*A:][:A]
		var s float32
		for a := range A {
			t := tanh(p[a] + qr[a])
			if e != nil {
				e[i*A+a] = t
			}
			s += t * v[a]
		}
		scores[i] = s
	}
}

// addInto writes o = x + y; o may be x or y.
func addInto(o, x, y []float32) {
	for i := range o {
		o[i] = x[i] + y[i]
	}
}

// mulInto writes o = x * y; o may be x or y.
func mulInto(o, x, y []float32) {
	for i := range o {
		o[i] = x[i] * y[i]
	}
}

// attentionExp writes ep = exp(2·clamp(x, ±c)); the clamp keeps a NaN.
func attentionExp(ep, x []float32, c float32) {
	for i, v := range x {
		if v < -c {
			v = -c
		} else if v > c {
			v = c
		}
		ep[i] = float32(math.Exp(2 * float64(v)))
	}
}

// attentionScoresExp computes the scores of pairs [lo, hi), pair i = r*L + l,
// from ep = exp(2·pf) and eq = exp(2·q): with P = ep·eq, tanh(pf + q) =
// 1 - 2/(P + 1), so scores[i] = sv - 2·Σ v/(P + 1), sv = Σv.
func attentionScoresExp(scores, ep, eq, v []float32, sv float32, lo, hi, K, L, A int) {
	for i := lo; i < hi; i++ {
		r, l := i/L, i%L
		p, qr := ep[((r/K)*L+l)*A:][:A], eq[r*A:][:A]
		var s float32
		for a := range A {
			s += v[a] / (p[a]*qr[a] + 1)
		}
		scores[i] = sv - 2*s
	}
}

// attentionScoresBackward adds, for images [lo, hi) and their K rows r each,
// de = dscores[r, l] * v * (1 - e[r, l]^2) into dpf[b, l] and dq[r], every l.
func attentionScoresBackward(dpf, dq, dscores, e, v []float32, lo, hi, K, L, A int) {
	for b := lo; b < hi; b++ {
		for r := b * K; r < (b+1)*K; r++ {
			dqr := dq[r*A:][:A]
			for l := range L {
				ds, er, dp := dscores[r*L+l], e[(r*L+l)*A:][:A], dpf[(b*L+l)*A:][:A]
				for a := range A {
					de := ds * v[a] * (1 - er[a]*er[a])
					dp[a] += de
					dqr[a] += de
				}
			}
		}
	}
}
