//go:build cgo

#include <math.h>
#include "kernels.h"

// One clone per x86-64 level, picked at load time (ifunc), so the library runs on
// any x86-64 yet uses AVX-512 (v4) or AVX2+FMA (v3) where the CPU has them. The
// resolver of arch=<cpu name> clones tests for that exact CPU model (a Sapphire
// Rapids is not a "skylake-avx512"), hence the levels.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

enum { ACT_NONE, ACT_RELU, ACT_RELU6, ACT_TANH, ACT_SIGMOID };

#define INLINE static inline __attribute__((always_inline))

INLINE void act_row(float *restrict y, long n, int act) {
	switch (act) {
	case ACT_RELU:
		for (long i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
		break;
	case ACT_RELU6:
		for (long i = 0; i < n; i++) {
			float v = y[i] > 0 ? y[i] : 0;
			y[i] = v < 6 ? v : 6;
		}
		break;
	case ACT_TANH:
		for (long i = 0; i < n; i++) y[i] = tanhf(y[i]);
		break;
	case ACT_SIGMOID:
		for (long i = 0; i < n; i++) y[i] = 1 / (1 + expf(-y[i]));
		break;
	}
}

CLONES void cap_bias_act(float *out, const float *x, const float *bias, long rows, long cols, int act) {
	for (long r = 0; r < rows; r++) {
		float *o = out + r * cols;
		const float *xr = x + r * cols;
		if (bias) {
			for (long j = 0; j < cols; j++) o[j] = xr[j] + bias[j];
		} else if (o != xr) {
			for (long j = 0; j < cols; j++) o[j] = xr[j];
		}
		act_row(o, cols, act);
	}
}

// dw_col computes one output pixel o (C) with bounds checks on every tap: the
// general kernel size, and the border columns of the 3x3 fast path.
INLINE void dw_col(float *restrict o, const float *in, const float *w, const float *bias,
		int H, int W, int C, int KH, int KW, int ih0, int iw0) {
	for (int c = 0; c < C; c++) o[c] = bias ? bias[c] : 0;
	for (int kh = 0; kh < KH; kh++) {
		int ih = ih0 + kh;
		if (ih < 0 || ih >= H) continue;
		for (int kw = 0; kw < KW; kw++) {
			int iw = iw0 + kw;
			if (iw < 0 || iw >= W) continue;
			const float *restrict x = in + ((long)ih * W + iw) * C;
			const float *restrict wk = w + (long)(kh * KW + kw) * C;
			for (long c = 0; c < C; c++) o[c] += x[c] * wk[c];
		}
	}
}

// vf is 16 floats: one AVX-512 register, two AVX2 registers. aligned(4) makes
// dereferencing a vf* an unaligned load.
typedef float vf __attribute__((vector_size(64), aligned(4)));
typedef int vi __attribute__((vector_size(64), aligned(4)));
#define VW 16
// vclamp returns min(max(x, lo), hi) without branches.
#define vclamp(x, lo, hi) ({ vf _x = (x); vi _m = _x < (lo); _x = (vf)(((vi)_x & ~_m) | ((vi)(lo) & _m)); \
	_m = _x > (hi); (vf)(((vi)_x & ~_m) | ((vi)(hi) & _m)); })

// dw3x3_row computes n interior output pixels of a 3x3 depthwise convolution,
// clamped to [lo, hi]: pixel i (C) of o reads columns i*step.. of the input rows
// a, m, z. For each block of 16 channels the 9 weights and the bias stay in
// registers while the loop walks the pixels, so a pixel costs 9 loads and FMAs.
CLONES __attribute__((noinline)) static void dw3x3_row(float *restrict o, const float *restrict a,
		const float *restrict m, const float *restrict z, const float *restrict w,
		const float *restrict b, long C, long n, long step, float lo, float hi) {
	vf vlo = {0}, vhi = {0};
	vlo += lo;
	vhi += hi;
	long c = 0;
	for (; c + VW <= C; c += VW) {
		const float *wc = w + c;
		vf w0 = *(vf *)wc, w1 = *(vf *)(wc + C), w2 = *(vf *)(wc + 2 * C), w3 = *(vf *)(wc + 3 * C),
			w4 = *(vf *)(wc + 4 * C), w5 = *(vf *)(wc + 5 * C), w6 = *(vf *)(wc + 6 * C),
			w7 = *(vf *)(wc + 7 * C), w8 = *(vf *)(wc + 8 * C), bb = *(vf *)(b + c);
		const float *pa = a + c, *pm = m + c, *pz = z + c;
		float *po = o + c;
		for (long i = 0; i < n; i++, pa += step, pm += step, pz += step, po += C) {
			vf acc = bb + *(vf *)pa * w0 + *(vf *)(pa + C) * w1 + *(vf *)(pa + 2 * C) * w2
				+ *(vf *)pm * w3 + *(vf *)(pm + C) * w4 + *(vf *)(pm + 2 * C) * w5
				+ *(vf *)pz * w6 + *(vf *)(pz + C) * w7 + *(vf *)(pz + 2 * C) * w8;
			*(vf *)po = vclamp(acc, vlo, vhi);
		}
	}
	for (; c < C; c++) { // the last C % 16 channels
		const float *pa = a + c, *pm = m + c, *pz = z + c;
		for (long i = 0; i < n; i++, pa += step, pm += step, pz += step) {
			float acc = b[c] + pa[0] * w[c] + pa[C] * w[C + c] + pa[2 * C] * w[2 * C + c]
				+ pm[0] * w[3 * C + c] + pm[C] * w[4 * C + c] + pm[2 * C] * w[5 * C + c]
				+ pz[0] * w[6 * C + c] + pz[C] * w[7 * C + c] + pz[2 * C] * w[8 * C + c];
			acc = acc > lo ? acc : lo;
			o[i * C + c] = acc < hi ? acc : hi;
		}
	}
}

CLONES void cap_dw_rows(float *out, const float *in, const float *w, const float *bias, const float *zeros,
		int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
		int OW, int oh0, int oh1, int act) {
	// Interior columns [lo, hi) read all 3 taps of a row inside [0, W).
	int lo = 0, hi = 0;
	if (KH == 3 && KW == 3) {
		lo = (pl + sw - 1) / sw;
		hi = W - 3 + pl >= 0 ? (W - 3 + pl) / sw + 1 : 0;
		if (hi > OW) hi = OW;
		if (lo > hi) lo = hi;
	}
	const float *b = bias ? bias : zeros;
	// ReLU and ReLU6 are a clamp fused into the interior; other activations and
	// the border columns go through act_row, to which a clamped value is a fixed point.
	float cmin = -INFINITY, cmax = INFINITY;
	if (act == ACT_RELU || act == ACT_RELU6) cmin = 0;
	if (act == ACT_RELU6) cmax = 6;
	for (int oh = oh0; oh < oh1; oh++) {
		float *orow = out + (long)oh * OW * C;
		int ih0 = oh * sh - pt;
		for (int ow = 0; ow < lo; ow++) dw_col(orow + (long)ow * C, in, w, bias, H, W, C, KH, KW, ih0, ow * sw - pl);
		if (lo < hi) {
			// Rows outside the image read from zeros, so the 9-tap sum needs no checks.
			const float *r0 = ih0 >= 0 && ih0 < H ? in + (long)ih0 * W * C : zeros;
			const float *r1 = ih0 + 1 >= 0 && ih0 + 1 < H ? in + (long)(ih0 + 1) * W * C : zeros;
			const float *r2 = ih0 + 2 >= 0 && ih0 + 2 < H ? in + (long)(ih0 + 2) * W * C : zeros;
			dw3x3_row(orow + (long)lo * C, r0 + (long)(lo * sw - pl) * C, r1 + (long)(lo * sw - pl) * C,
				r2 + (long)(lo * sw - pl) * C, w, b, C, hi - lo, (long)sw * C, cmin, cmax);
		}
		for (int ow = hi > lo ? hi : lo; ow < OW; ow++) dw_col(orow + (long)ow * C, in, w, bias, H, W, C, KH, KW, ih0, ow * sw - pl);
		if (act == ACT_RELU || act == ACT_RELU6) { // the interior is clamped already
			act_row(orow, (long)lo * C, act);
			act_row(orow + (long)hi * C, (long)(OW - hi) * C, act);
		} else {
			act_row(orow, (long)OW * C, act);
		}
	}
}

CLONES void cap_conv_rows(float *out, const float *in, const float *wt, const float *bias,
		int H, int W, int C, int OC, int KH, int KW, int sh, int sw, int pt, int pl,
		int OW, int oh0, int oh1, int act) {
	float cmin = -INFINITY, cmax = INFINITY;
	if (act == ACT_RELU || act == ACT_RELU6) cmin = 0;
	if (act == ACT_RELU6) cmax = 6;
	vf vlo = {0}, vhi = {0};
	vlo += cmin;
	vhi += cmax;
	for (int oh = oh0; oh < oh1; oh++) {
		int ih0 = oh * sh - pt;
		int kh0 = ih0 < 0 ? -ih0 : 0, kh1 = H - ih0 < KH ? H - ih0 : KH; // taps inside the image
		for (int ow = 0; ow < OW; ow++) {
			int iw0 = ow * sw - pl;
			int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
			float *o = out + ((long)oh * OW + ow) * OC;
			long oc = 0;
			// 16 output channels at a time in one register; each input value is
			// broadcast against a row of the transposed weight.
			for (; oc + VW <= OC; oc += VW) {
				vf acc = {0};
				if (bias) acc = *(vf *)(bias + oc);
				for (int kh = kh0; kh < kh1; kh++) {
					for (int kw = kw0; kw < kw1; kw++) {
						const float *x = in + ((long)(ih0 + kh) * W + iw0 + kw) * C;
						const float *wk = wt + (long)((kh * KW + kw) * C) * OC + oc;
						for (int c = 0; c < C; c++) acc += x[c] * *(vf *)(wk + (long)c * OC);
					}
				}
				*(vf *)(o + oc) = vclamp(acc, vlo, vhi);
			}
			for (; oc < OC; oc++) { // the last OC % 16 channels
				float acc = bias ? bias[oc] : 0;
				for (int kh = kh0; kh < kh1; kh++) {
					for (int kw = kw0; kw < kw1; kw++) {
						const float *x = in + ((long)(ih0 + kh) * W + iw0 + kw) * C;
						const float *wk = wt + (long)((kh * KW + kw) * C) * OC + oc;
						for (int c = 0; c < C; c++) acc += x[c] * wk[(long)c * OC];
					}
				}
				acc = acc > cmin ? acc : cmin;
				o[oc] = acc < cmax ? acc : cmax;
			}
		}
		if (act == ACT_TANH || act == ACT_SIGMOID) act_row(out + (long)oh * OW * OC, (long)OW * OC, act);
	}
}
