package cpu

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// colLimit bounds the im2col scratch (floats): 1 MiB keeps a chunk's columns and
// its output in L2 while the GEMM still gets thousands of rows.
const colLimit = 1 << 18

// grain is the number of elements below which a loop runs serially: about 10 us
// of work, more than it costs to wake a worker.
const grain = 1 << 14

// convCheck validates p and the buffers of a convolution whose weight holds wlen
// elements, returning out, in, weight, bias (bias may be nil).
func (d *Device) convCheck(op string, out, in, weight, bias gpu.Buf, p *gpu.ConvParams, wlen int) (o, x, w, b []float32) {
	if p.N < 1 || p.H < 1 || p.W < 1 || p.C < 1 || p.OC < 1 || p.KH < 1 || p.KW < 1 ||
		p.StrideH < 1 || p.StrideW < 1 || p.PadTop < 0 || p.PadLeft < 0 || p.OH < 1 || p.OW < 1 {
		panic(fmt.Sprintf("gpu/cpu: %s with invalid parameters %+v: sizes and strides must be >= 1, paddings >= 0", op, *p))
	}
	x = d.need(in, p.N*p.H*p.W*p.C, op+" in (N, H, W, C)")
	w = d.need(weight, wlen, op+" weight")
	if bias != nil {
		b = d.need(bias, p.OC, op+" bias (OC)")
	}
	o = d.need(out, p.N*p.OH*p.OW*p.OC, op+" out (N, OH, OW, OC)")
	return o, x, w, b
}

// Conv2D writes out = act(conv(in, weight) + bias): 1x1 stride-1 layers as one
// GEMM or the pointwise kernel, layers with few input channels directly, the
// rest as GEMMs over im2col columns; bias and act are fused in every path.
func (d *Device) Conv2D(out, in, weight, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	K := p.KH * p.KW * p.C
	o, x, w, b := d.convCheck("Conv2D", out, in, weight, bias, &p, p.OC*K)
	rows := p.N * p.OH * p.OW
	if p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 && p.PadTop == 0 && p.PadLeft == 0 && p.OH == p.H && p.OW == p.W {
		// out (N*H*W, OC) = in (N*H*W, C) * weight^T (C, OC)
		if rows < pointwiseMinRows || K > pointwiseMaxC || K*p.OC > pointwiseMaxWeights {
			d.gemm(false, true, rows, p.OC, K, 1, x, K, w, K, 0, o, p.OC, func(lo, hi int) {
				biasActRows(o[lo*p.OC:hi*p.OC], o[lo*p.OC:hi*p.OC], b, hi-lo, p.OC, act)
			})
			return
		}
		// Many rows: our register-blocked kernel on the weight transposed once per
		// call. Unlike sgemm it packs nothing, never zeroes C, and writes each
		// output once with bias and activation applied.
		wt := d.transposed(w, p.OC, K)
		if b == nil {
			b = d.zeroRow(p.OC)
		}
		d.parallel(rows, max(6, gemmGrain/(K*p.OC)), func(lo, hi int) {
			pwRows(o[lo*p.OC:hi*p.OC], x[lo*K:hi*K], wt, b, hi-lo, K, p.OC, act)
		})
		return
	}
	if p.C <= directMaxC {
		// Few input channels (the RGB image): im2col would copy runs of 3 floats
		// and feed the GEMM a k of 27, so convolve directly.
		wt := d.transposed(w, p.OC, K)
		d.imageRows(&p, K*p.OC, func(n, oh0, oh1 int) {
			convRows(o[n*p.OH*p.OW*p.OC:], x[n*p.H*p.W*p.C:], wt, b, &p, oh0, oh1, act)
		})
		return
	}
	chunk := max(1, colLimit/K)
	if len(d.col) < min(chunk, rows)*K {
		d.col = make([]float32, min(chunk, rows)*K)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		col := d.col[:n*K]
		d.parallel(n, max(1, grain/K), func(lo, hi int) { im2col(col, x, &p, r0, lo, hi) })
		// out rows [r0, r0+n) (n, OC) = col (n, K) * weight^T (K, OC)
		oc := o[r0*p.OC : (r0+n)*p.OC]
		d.gemm(false, true, n, p.OC, K, 1, col, K, w, K, 0, oc, p.OC, func(lo, hi int) {
			biasActRows(oc[lo*p.OC:hi*p.OC], oc[lo*p.OC:hi*p.OC], b, hi-lo, p.OC, act)
		})
	}
}

// directMaxC is the largest input channel count Conv2D convolves directly.
const directMaxC = 4

// A 1x1 Conv2D takes the pointwise kernel for at least pointwiseMinRows output
// pixels (below, as for the 7x7 and 14x14 layers at batch 1, transposing the
// weight costs more than OpenBLAS's packing), at most pointwiseMaxC input
// channels and a weight of at most pointwiseMaxWeights elements: there the kernel
// beat OpenBLAS (e.g. 784x192->32 90 vs 60 GFLOP/s, 12544x32->16 53 vs 34, one
// core); for long reductions and large weights OpenBLAS's blocking wins
// (1568x320->1280 78 vs 48).
const (
	pointwiseMinRows    = 512
	pointwiseMaxC       = 192
	pointwiseMaxWeights = 1 << 16
)

// transposed returns the (OC, K) weight w as (K, OC), in scratch.
func (d *Device) transposed(w []float32, oc, k int) []float32 {
	if len(d.wt) < oc*k {
		d.wt = make([]float32, oc*k)
	}
	wt := d.wt[:oc*k]
	transpose(wt, w, oc, k)
	return wt
}

// zeroRow returns n zeros, in scratch.
func (d *Device) zeroRow(n int) []float32 {
	if len(d.zeros) < n {
		d.zeros = make([]float32, n)
	}
	return d.zeros[:n]
}

// imageRows runs fn(n, oh0, oh1) over every output row of every image, in
// parallel over rows that cost work multiply-adds per output pixel each; the
// flat range of a thread is split at image boundaries.
func (d *Device) imageRows(p *gpu.ConvParams, work int, fn func(n, oh0, oh1 int)) {
	d.parallel(p.N*p.OH, max(1, grain/(p.OW*work)), func(lo, hi int) {
		for r := lo; r < hi; {
			n, oh := r/p.OH, r%p.OH
			end := min(hi-n*p.OH, p.OH)
			fn(n, oh, end)
			r = n*p.OH + end
		}
	})
}

// im2col fills rows [lo, hi) of col (rows, KH*KW*C) for output positions r0+lo..
// r0+hi (flattened over N, OH, OW): row r holds the receptive field of its output
// pixel in (kh, kw, c) order, matching the OHWI weight, zeros where it overhangs.
func im2col(col, in []float32, p *gpu.ConvParams, r0, lo, hi int) {
	K := p.KH * p.KW * p.C
	for r := lo; r < hi; r++ {
		g := r0 + r
		n, rem := g/(p.OH*p.OW), g%(p.OH*p.OW)
		oh, ow := rem/p.OW, rem%p.OW
		dst := col[r*K : (r+1)*K]
		img := in[n*p.H*p.W*p.C : (n+1)*p.H*p.W*p.C]
		for kh := 0; kh < p.KH; kh++ {
			ih := oh*p.StrideH - p.PadTop + kh
			seg := dst[kh*p.KW*p.C : (kh+1)*p.KW*p.C]
			if ih < 0 || ih >= p.H {
				clear(seg)
				continue
			}
			for kw := 0; kw < p.KW; kw++ {
				iw := ow*p.StrideW - p.PadLeft + kw
				px := seg[kw*p.C : (kw+1)*p.C]
				if iw < 0 || iw >= p.W {
					clear(px)
					continue
				}
				copy(px, img[(ih*p.W+iw)*p.C:(ih*p.W+iw+1)*p.C])
			}
		}
	}
}

// DepthwiseConv2D writes out = act(depthwise(in, weight) + bias), parallel over
// output rows of all images.
func (d *Device) DepthwiseConv2D(out, in, weight, bias gpu.Buf, p gpu.ConvParams, act gpu.Act) {
	if p.OC != p.C {
		panic(fmt.Sprintf("gpu/cpu: DepthwiseConv2D with OC=%d != C=%d (only channel multiplier 1 is supported)", p.OC, p.C))
	}
	o, x, w, b := d.convCheck("DepthwiseConv2D", out, in, weight, bias, &p, p.KH*p.KW*p.C)
	zeros := d.zeroRow(p.W * p.C)
	inImg, outImg := p.H*p.W*p.C, p.OH*p.OW*p.C
	d.imageRows(&p, p.C*p.KH*p.KW, func(n, oh0, oh1 int) {
		dwRows(o[n*outImg:(n+1)*outImg], x[n*inImg:(n+1)*inImg], w, b, zeros, &p, oh0, oh1, act)
	})
}

// GlobalAvgPool writes out (n, c) = mean over hw of in (n, hw, c).
func (d *Device) GlobalAvgPool(out, in gpu.Buf, n, hw, c int) {
	if hw < 1 {
		panic(fmt.Sprintf("gpu/cpu: GlobalAvgPool over hw=%d positions; it needs at least 1", hw))
	}
	x := d.need(in, n*hw*c, "GlobalAvgPool in (n, hw, c)")
	o := d.need(out, n*c, "GlobalAvgPool out (n, c)")
	d.parallel(n, max(1, grain/(hw*c)), func(lo, hi int) {
		meanRows(o[lo*c:hi*c], x[lo*hw*c:hi*hw*c], hi-lo, hw, c)
	})
}

// DepthwiseConv2DBackward writes din and adds into dweight and dbias (each may be
// nil) from dout, the gradient of the depthwise convolution plus bias.
func (d *Device) DepthwiseConv2DBackward(din, dweight, dbias, dout, in, weight gpu.Buf, p gpu.ConvParams) {
	if p.OC != p.C {
		panic(fmt.Sprintf("gpu/cpu: DepthwiseConv2DBackward with OC=%d != C=%d (only channel multiplier 1 is supported)", p.OC, p.C))
	}
	taps := p.KH * p.KW
	g, x, w, _ := d.convCheck("DepthwiseConv2DBackward", dout, in, weight, nil, &p, taps*p.C)
	if din != nil {
		dx := d.need(din, len(x), "DepthwiseConv2DBackward din (N, H, W, C)")
		d.parallel(p.N*p.H, max(1, grain/(p.W*p.C*taps)), func(lo, hi int) { dwBackwardInput(dx, g, w, &p, lo, hi) })
	}
	if dweight != nil {
		dw := d.need(dweight, taps*p.C, "DepthwiseConv2DBackward dweight (KH, KW, C)")
		// Parallel over channel ranges, so no two workers share a weight.
		work := p.N * p.OH * p.OW * taps
		d.parallel(p.C, max(1, grain/work), func(lo, hi int) { dwBackwardWeight(dw, g, x, &p, lo, hi) })
	}
	if dbias != nil {
		d.addColSums(d.need(dbias, p.C, "DepthwiseConv2DBackward dbias (C)"), g, p.N*p.OH*p.OW, p.C)
	}
}

// addTapSums adds acc (taps, hi-lo), a depthwise weight gradient of channels
// [lo, hi) summed in float64, into dw (taps, C).
func addTapSums(dw []float32, acc []float64, taps, C, lo, hi int) {
	nc := hi - lo
	for t := 0; t < taps; t++ {
		for c, v := range acc[t*nc : (t+1)*nc] {
			dw[t*C+lo+c] += float32(v)
		}
	}
}
