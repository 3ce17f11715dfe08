//go:build cgo

#include <math.h>
#include <stddef.h>
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

// tanh_row and sigmoid_row apply the activation in place through vexp (below):
// tanhf is scalar and costs ~20 ns, which made the attention MLP's tanh over
// (B, L, A) the largest single cost of an attention step.
INLINE void tanh_row(float *restrict y, long n);
INLINE void sigmoid_row(float *restrict y, long n);

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
		tanh_row(y, n);
		break;
	case ACT_SIGMOID:
		sigmoid_row(y, n);
		break;
	}
}

// clamp_range returns the bounds of the clamp that implements act (none, ReLU, ReLU6)
// or, for tanh and sigmoid, an identity clamp: those go through act_row after.
INLINE void clamp_range(int act, float *cmin, float *cmax) {
	*cmin = act == ACT_RELU || act == ACT_RELU6 ? 0 : -INFINITY;
	*cmax = act == ACT_RELU6 ? 6 : INFINITY;
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
typedef float vh __attribute__((vector_size(32), aligned(4))); // 8 floats
typedef int vhi __attribute__((vector_size(32), aligned(4)));
typedef float v4 __attribute__((vector_size(16), aligned(4))); // 4 floats: a row of a GEMM tile
#define VW 16
// vclamp returns min(max(x, lo), hi) without branches (vf or, with its int type, vh).
#define vclampT(x, lo, hi, I) ({ __typeof__(x) _cx = (x); I _cm = _cx < (lo); \
	_cx = (__typeof__(x))(((I)_cx & ~_cm) | ((I)(lo) & _cm)); _cm = _cx > (hi); \
	(__typeof__(x))(((I)_cx & ~_cm) | ((I)(hi) & _cm)); })
#define vclamp(x, lo, hi) vclampT(x, lo, hi, vi)

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
	float cmin, cmax;
	clamp_range(act, &cmin, &cmax);
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

// out_index returns the output position that reads input position i through
// tap k (i = o*stride - pad + k), or -1 when there is none.
INLINE int out_index(int i, int k, int pad, int stride, int out) {
	int t = i + pad - k;
	return t < 0 || t % stride != 0 || t / stride >= out ? -1 : t / stride;
}

CLONES void cap_dw_backward_input(float *dx, const float *dout, const float *w,
		int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
		int OH, int OW, long r0, long r1) {
	for (long r = r0; r < r1; r++) {
		long n = r / H;
		int ih = r % H;
		float *restrict row = dx + r * W * C;
		for (long i = 0; i < (long)W * C; i++) row[i] = 0;
		for (int kh = 0; kh < KH; kh++) {
			int oh = out_index(ih, kh, pt, sh, OH);
			if (oh < 0) continue;
			const float *grow = dout + (n * OH + oh) * OW * C;
			for (int iw = 0; iw < W; iw++) {
				float *restrict px = row + (long)iw * C;
				for (int kw = 0; kw < KW; kw++) {
					int ow = out_index(iw, kw, pl, sw, OW);
					if (ow < 0) continue;
					const float *restrict g = grow + (long)ow * C;
					const float *restrict wt = w + (long)(kh * KW + kw) * C;
					for (int c = 0; c < C; c++) px[c] += g[c] * wt[c];
				}
			}
		}
	}
}

CLONES void cap_dw_backward_weight(double *acc, const float *dout, const float *in,
		int N, int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
		int OH, int OW, int lo, int hi) {
	int nc = hi - lo;
	for (long i = 0; i < (long)KH * KW * nc; i++) acc[i] = 0;
	for (int n = 0; n < N; n++) {
		for (int oh = 0; oh < OH; oh++) {
			for (int ow = 0; ow < OW; ow++) {
				const float *restrict g = dout + (((long)n * OH + oh) * OW + ow) * C + lo;
				for (int kh = 0; kh < KH; kh++) {
					int ih = oh * sh - pt + kh;
					if (ih < 0 || ih >= H) continue;
					for (int kw = 0; kw < KW; kw++) {
						int iw = ow * sw - pl + kw;
						if (iw < 0 || iw >= W) continue;
						const float *restrict x = in + (((long)n * H + ih) * W + iw) * C + lo;
						double *restrict a = acc + (long)(kh * KW + kw) * nc;
						for (int c = 0; c < nc; c++) a[c] += (double)g[c] * x[c];
					}
				}
			}
		}
	}
}

CLONES void cap_conv_rows(float *out, const float *in, const float *wt, const float *bias,
		int H, int W, int C, int OC, int KH, int KW, int sh, int sw, int pt, int pl,
		int OW, int oh0, int oh1, int act) {
	float cmin, cmax;
	clamp_range(act, &cmin, &cmax);
	vf vlo = {0}, vhi = {0};
	vlo += cmin;
	vhi += cmax;
	for (int oh = oh0; oh < oh1; oh++) {
		int ih0 = oh * sh - pt;
		int kh0 = ih0 < 0 ? -ih0 : 0, kh1 = H - ih0 < KH ? H - ih0 : KH; // taps inside the image
		for (int ow = 0; ow < OW;) {
			int iw0 = ow * sw - pl;
			float *o = out + ((long)oh * OW + ow) * OC;
			long oc = 0;
			if (OC % VW == 0 && iw0 >= 0 && ow + 4 <= OW && iw0 + 3 * sw + KW <= W) {
				// Four pixels whose taps are all inside the row: four independent
				// accumulators hide the FMA latency and share each weight load.
				long px = (long)sw * C;
				for (; oc + VW <= OC; oc += VW) {
					vf a0 = {0};
					if (bias) a0 = *(vf *)(bias + oc);
					vf a1 = a0, a2 = a0, a3 = a0;
					for (int kh = kh0; kh < kh1; kh++) {
						for (int kw = 0; kw < KW; kw++) {
							const float *x = in + ((long)(ih0 + kh) * W + iw0 + kw) * C;
							const float *wk = wt + (long)((kh * KW + kw) * C) * OC + oc;
							for (int c = 0; c < C; c++) {
								vf wv = *(vf *)(wk + (long)c * OC);
								a0 += x[c] * wv;
								a1 += x[px + c] * wv;
								a2 += x[2 * px + c] * wv;
								a3 += x[3 * px + c] * wv;
							}
						}
					}
					*(vf *)(o + oc) = vclamp(a0, vlo, vhi);
					*(vf *)(o + OC + oc) = vclamp(a1, vlo, vhi);
					*(vf *)(o + 2 * OC + oc) = vclamp(a2, vlo, vhi);
					*(vf *)(o + 3 * OC + oc) = vclamp(a3, vlo, vhi);
				}
				ow += 4;
				continue;
			}
			int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
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
			ow++;
		}
		if (act == ACT_TANH || act == ACT_SIGMOID) act_row(out + (long)oh * OW * OC, (long)OW * OC, act);
	}
}

// pw_rows_R computes R (<= 6) rows of a pointwise convolution: for each block of 32,
// 16 or 8 output channels the R x block accumulators stay in registers for the
// whole K loop, each weight row is loaded once for the R rows, and the input is
// read in place (no packing). Bias and clamp are applied on the way out, so out is
// written exactly once.
INLINE void pw_rows_R(float *restrict o, const float *restrict x, const float *restrict wt,
		const float *restrict b, long K, long N, long n0, long n1, int R, float cmin, float cmax) {
	vf lo = {0}, hi = {0};
	lo += cmin;
	hi += cmax;
	vh hlo = {0}, hhi = {0};
	hlo += cmin;
	hhi += cmax;
	long n = n0;
	for (; n + 32 <= n1; n += 32) {
		vf a0[6], a1[6];
		for (int i = 0; i < R; i++) a0[i] = *(vf *)(b + n), a1[i] = *(vf *)(b + n + 16);
		for (long k = 0; k < K; k++) {
			vf w0 = *(vf *)(wt + k * N + n), w1 = *(vf *)(wt + k * N + n + 16);
			for (int i = 0; i < R; i++) {
				float xv = x[i * K + k];
				a0[i] += xv * w0;
				a1[i] += xv * w1;
			}
		}
		for (int i = 0; i < R; i++) {
			*(vf *)(o + i * N + n) = vclamp(a0[i], lo, hi);
			*(vf *)(o + i * N + n + 16) = vclamp(a1[i], lo, hi);
		}
	}
	for (; n + 16 <= n1; n += 16) {
		vf a0[6];
		for (int i = 0; i < R; i++) a0[i] = *(vf *)(b + n);
		for (long k = 0; k < K; k++) {
			vf w0 = *(vf *)(wt + k * N + n);
			for (int i = 0; i < R; i++) a0[i] += x[i * K + k] * w0;
		}
		for (int i = 0; i < R; i++) *(vf *)(o + i * N + n) = vclamp(a0[i], lo, hi);
	}
	for (; n + 8 <= n1; n += 8) {
		vh a0[6];
		for (int i = 0; i < R; i++) a0[i] = *(vh *)(b + n);
		for (long k = 0; k < K; k++) {
			vh w0 = *(vh *)(wt + k * N + n);
			for (int i = 0; i < R; i++) a0[i] += x[i * K + k] * w0;
		}
		for (int i = 0; i < R; i++) *(vh *)(o + i * N + n) = vclampT(a0[i], hlo, hhi, vhi);
	}
	for (; n < n1; n++) { // the last N % 8 channels
		for (int i = 0; i < R; i++) {
			float acc = b[n];
			for (long k = 0; k < K; k++) acc += x[i * K + k] * wt[k * N + n];
			acc = acc > cmin ? acc : cmin;
			o[i * N + n] = acc < cmax ? acc : cmax;
		}
	}
}

CLONES void cap_pw_rows(float *out, const float *x, const float *wt, const float *bias, long rows, long K, long N, int act) {
	float cmin, cmax;
	clamp_range(act, &cmin, &cmax);
	// Columns in blocks whose (K, nb) slice of wt (at most 256 KiB) stays in L2 while
	// all rows pass over it; a multiple of 32 so only the last block has tails.
	// (Conv2D sends weights of at most 64K elements here, so this is one block, but
	// the kernel stays right for any size.)
	long nb = 65536 / K / 32 * 32;
	if (nb < 32) nb = 32;
	for (long n0 = 0; n0 < N; n0 += nb) {
		long n1 = n0 + nb < N ? n0 + nb : N, r = 0;
		for (; r + 6 <= rows; r += 6) pw_rows_R(out + r * N, x + r * K, wt, bias, K, N, n0, n1, 6, cmin, cmax);
		for (; r < rows; r++) pw_rows_R(out + r * N, x + r * K, wt, bias, K, N, n0, n1, 1, cmin, cmax);
	}
	if (act == ACT_TANH || act == ACT_SIGMOID) act_row(out, rows * N, act);
}

CLONES void cap_mean_rows(float *out, const float *x, long n, long hw, long c) {
	float scale = 1.0f / (float)hw;
	for (long i = 0; i < n; i++) {
		float *restrict o = out + i * c;
		const float *restrict xi = x + i * hw * c;
		for (long j = 0; j < c; j++) o[j] = 0;
		for (long p = 0; p < hw; p++)
			for (long j = 0; j < c; j++) o[j] += xi[p * c + j];
		for (long j = 0; j < c; j++) o[j] *= scale;
	}
}

void cap_transpose(float *dst, const float *src, long rows, long cols) {
	enum { T = 16 }; // tiles, so both sides are read and written in cache lines
	for (long r0 = 0; r0 < rows; r0 += T) {
		for (long c0 = 0; c0 < cols; c0 += T) {
			long r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
			for (long r = r0; r < r1; r++)
				for (long c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
		}
	}
}

typedef int vi16 __attribute__((vector_size(64)));

// vexp is exp of 16 floats, Cephes's expf: x = n*ln2 + r, a degree-6 polynomial
// in r, 2^n built in the exponent bits; relative error about 2e-7. A macro, since
// vector-typed parameters draw ABI notes from GCC. Inputs below -87
// give exp(-87) ~ 1.6e-38 instead of 0 and above 88 saturate.
#define vexp(xin) ({ \
	vf _ex = (xin), _elo = {0}, _ehi = {0}; \
	_elo += -87.0f; \
	_ehi += 88.0f; \
	_ex = vclamp(_ex, _elo, _ehi); \
	vf _efx = _ex * 1.44269504088896341f + 0.5f; \
	vi16 _n = __builtin_convertvector(_efx, vi16); /* truncates toward zero */ \
	vf _fn = __builtin_convertvector(_n, vf); \
	_n -= (vi16)(_fn > _efx) & 1; /* floor */ \
	_fn = __builtin_convertvector(_n, vf); \
	_ex = _ex - _fn * 0.693359375f - _fn * -2.12194440e-4f; \
	vf _p = 1.9875691500e-4f + 0 * _ex; \
	_p = _p * _ex + 1.3981999507e-3f; \
	_p = _p * _ex + 8.3334519073e-3f; \
	_p = _p * _ex + 4.1665795894e-2f; \
	_p = _p * _ex + 1.6666665459e-1f; \
	_p = _p * _ex + 5.0000001201e-1f; \
	_p = _p * _ex * _ex + _ex + 1.0f; \
	_p * (vf)((_n + 127) << 23); })

// row_max is the largest element of x (n >= 1).
INLINE float row_max(const float *x, long n) {
	float m = x[0];
	long j = 0;
	if (n >= VW) {
		vf vm = *(vf *)x;
		for (j = VW; j + VW <= n; j += VW) {
			vf v = *(vf *)(x + j);
			vi g = v > vm;
			vm = (vf)(((vi)vm & ~g) | ((vi)v & g));
		}
		for (int i = 0; i < VW; i++) m = vm[i] > m ? vm[i] : m;
	}
	for (; j < n; j++) m = x[j] > m ? x[j] : m;
	return m;
}

// sum_exp returns the sum of exp(x[j] - m), in double across four vector
// accumulators, and stores the exps into e when e is not NULL (e may be x).
INLINE double sum_exp(float *e, const float *x, long n, float m) {
	vf s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	long j = 0;
	for (; j + 4 * VW <= n; j += 4 * VW) {
		vf e0 = vexp(*(vf *)(x + j) - m), e1 = vexp(*(vf *)(x + j + VW) - m);
		vf e2 = vexp(*(vf *)(x + j + 2 * VW) - m), e3 = vexp(*(vf *)(x + j + 3 * VW) - m);
		s0 += e0, s1 += e1, s2 += e2, s3 += e3;
		if (e) {
			*(vf *)(e + j) = e0, *(vf *)(e + j + VW) = e1;
			*(vf *)(e + j + 2 * VW) = e2, *(vf *)(e + j + 3 * VW) = e3;
		}
	}
	for (; j + VW <= n; j += VW) {
		vf e0 = vexp(*(vf *)(x + j) - m);
		s0 += e0;
		if (e) *(vf *)(e + j) = e0;
	}
	double s = 0;
	for (int i = 0; i < VW; i++) s += (double)s0[i] + (double)s1[i] + (double)s2[i] + (double)s3[i];
	for (; j < n; j++) {
		float v = expf(x[j] - m);
		s += v;
		if (e) e[j] = v;
	}
	return s;
}

CLONES void cap_softmax_rows(float *out, const float *x, long rows, long cols, int logp) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * cols;
		float *o = out + r * cols;
		float m = row_max(xr, cols);
		if (logp) {
			float lse = m + (float)log(sum_exp(NULL, xr, cols, m));
			for (long j = 0; j < cols; j++) o[j] = xr[j] - lse;
		} else {
			float inv = (float)(1 / sum_exp(o, xr, cols, m));
			for (long j = 0; j < cols; j++) o[j] *= inv;
		}
	}
}

// ranks_before says whether a value comes before b in top-k order: larger first,
// NaN after every number (-inf included). Equal ranks keep index order: an
// element goes in after every element that does not rank after it.
INLINE int ranks_before(float a, float b) { return a > b || (b != b && a == a); }

// cap_topk_rows writes the k largest elements of each row of x (rows, cols) in
// descending order into idx and val (rows, k); ties go to the lowest index and
// NaN comes last, as in the CUDA kernel. Once k are held, a block of 16 with
// none above the k-th is passed over with one vector compare: a vocabulary row
// of 2,600 is mostly such blocks.
CLONES void cap_topk_rows(int *idx, float *val, const float *x, long rows, long cols, long k) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * cols;
		int *ir = idx + r * k;
		float *vr = val + r * k;
		long n = 0; // entries filled so far
		for (long j0 = 0; j0 < cols; j0 += VW) {
			long j1 = j0 + VW < cols ? j0 + VW : cols;
			if (n == k && j1 - j0 == VW && vr[k - 1] == vr[k - 1]) { // a NaN k-th: every number beats it
				vi above = *(const vf *)(xr + j0) > vr[k - 1];
				int any = 0;
				for (int l = 0; l < VW; l++) any |= above[l];
				if (!any) continue;
			}
			for (long j = j0; j < j1; j++) {
				float v = xr[j];
				if (n == k && !ranks_before(v, vr[k - 1])) continue;
				long p = n < k - 1 ? n : k - 1;
				for (; p > 0 && ranks_before(v, vr[p - 1]); p--) ir[p] = ir[p - 1], vr[p] = vr[p - 1];
				ir[p] = (int)j, vr[p] = v;
				if (n < k) n++;
			}
		}
	}
}

CLONES void cap_cross_entropy_rows(float *loss, float *dl, const float *x, const int *t, long rows, long cols, float scale) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * cols;
		float *d = dl ? dl + r * cols : NULL;
		if (t[r] < 0) {
			loss[r] = 0;
			if (d)
				for (long j = 0; j < cols; j++) d[j] = 0;
			continue;
		}
		float m = row_max(xr, cols), xt = xr[t[r]];
		double s = sum_exp(d, xr, cols, m); // d may be xr: xt was read first
		loss[r] = (float)(log(s) + m - xt);
		if (d) {
			float k = (float)(scale / s);
			for (long j = 0; j < cols; j++) d[j] *= k;
			d[t[r]] -= scale;
		}
	}
}

// vsigmoid of 16 floats through vexp.
#define vsigmoid(x) (1.0f / (1.0f + vexp(-(x))))
// vtanh of 16 floats: Eigen's rational approximation x*P(x^2)/Q(x^2), x
// clamped to +-7.9053 (where tanh is 1 in float32), within 3e-7 absolute of
// tanh (4e-7 without FMA). No exponential: 1.5x faster than 2*sigmoid(2x) - 1 through vexp, which
// made the attention MLP's scores (a tanh per region and unit) a sixth of a
// bfloat16 decoding step.
#define vtanh(xin) ({ \
	vf _tx = (xin), _tlo = {0}, _thi = {0}; \
	_tlo += -7.90531110763549805f; \
	_thi += 7.90531110763549805f; \
	_tx = vclamp(_tx, _tlo, _thi); \
	vf _t2 = _tx * _tx; \
	vf _tp = -2.76076847742355e-16f + 0 * _t2; \
	_tp = _tp * _t2 + 2.00018790482477e-13f; \
	_tp = _tp * _t2 + -8.60467152213735e-11f; \
	_tp = _tp * _t2 + 5.12229709037114e-08f; \
	_tp = _tp * _t2 + 1.48572235717979e-05f; \
	_tp = _tp * _t2 + 6.37261928875436e-04f; \
	_tp = _tp * _t2 + 4.89352455891786e-03f; \
	vf _tq = 1.19825839466702e-06f + 0 * _t2; \
	_tq = _tq * _t2 + 1.18534705686654e-04f; \
	_tq = _tq * _t2 + 2.26843463243900e-03f; \
	_tq = _tq * _t2 + 4.89352518554385e-03f; \
	_tx * _tp / _tq; })

static inline float sigmoidf(float x) { return 1 / (1 + expf(-x)); }

INLINE void tanh_row(float *restrict y, long n) {
	long i = 0;
	for (; i + VW <= n; i += VW) *(vf *)(y + i) = vtanh(*(vf *)(y + i));
	for (; i < n; i++) y[i] = tanhf(y[i]);
}

INLINE void sigmoid_row(float *restrict y, long n) {
	long i = 0;
	for (; i + VW <= n; i += VW) *(vf *)(y + i) = vsigmoid(*(vf *)(y + i));
	for (; i < n; i++) y[i] = sigmoidf(y[i]);
}

CLONES void cap_lstm_forward(float *h, float *c, float *act, const float *gates, const float *cPrev, long B, long H) {
	for (long b = 0; b < B; b++) {
		const float *g = gates + b * 4 * H, *cp = cPrev + b * H;
		float *a = act + b * 4 * H, *cb = c + b * H, *hb = h + b * H;
		long j = 0;
		for (; j + VW <= H; j += VW) {
			vf i = vsigmoid(*(vf *)(g + j)), f = vsigmoid(*(vf *)(g + H + j));
			vf gg = vtanh(*(vf *)(g + 2 * H + j)), o = vsigmoid(*(vf *)(g + 3 * H + j));
			*(vf *)(a + j) = i, *(vf *)(a + H + j) = f, *(vf *)(a + 2 * H + j) = gg, *(vf *)(a + 3 * H + j) = o;
			vf cv = f * *(vf *)(cp + j) + i * gg;
			*(vf *)(cb + j) = cv;
			*(vf *)(hb + j) = o * vtanh(cv);
		}
		for (; j < H; j++) {
			float i = sigmoidf(g[j]), f = sigmoidf(g[H + j]), gg = tanhf(g[2 * H + j]), o = sigmoidf(g[3 * H + j]);
			a[j] = i, a[H + j] = f, a[2 * H + j] = gg, a[3 * H + j] = o;
			float cv = f * cp[j] + i * gg;
			cb[j] = cv;
			hb[j] = o * tanhf(cv);
		}
	}
}

CLONES void cap_lstm_backward(float *dgates, float *dcPrev, const float *dh, const float *dc, const float *act,
		const float *c, const float *cPrev, long B, long H) {
	for (long b = 0; b < B; b++) {
		const float *a = act + b * 4 * H, *cb = c + b * H, *cp = cPrev + b * H, *dhb = dh + b * H, *dcb = dc + b * H;
		float *dg = dgates + b * 4 * H, *dcp = dcPrev + b * H;
		long j = 0;
		for (; j + VW <= H; j += VW) {
			vf i = *(vf *)(a + j), f = *(vf *)(a + H + j), g = *(vf *)(a + 2 * H + j), o = *(vf *)(a + 3 * H + j);
			vf tc = vtanh(*(vf *)(cb + j)), dhv = *(vf *)(dhb + j);
			// total gradient into c: from the next step and through h = o*tanh(c)
			vf dct = *(vf *)(dcb + j) + dhv * o * (1.0f - tc * tc);
			*(vf *)(dg + j) = dct * g * i * (1.0f - i);
			*(vf *)(dg + H + j) = dct * *(vf *)(cp + j) * f * (1.0f - f);
			*(vf *)(dg + 2 * H + j) = dct * i * (1.0f - g * g);
			*(vf *)(dg + 3 * H + j) = dhv * tc * o * (1.0f - o);
			*(vf *)(dcp + j) = dct * f;
		}
		for (; j < H; j++) {
			float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
			float tc = tanhf(cb[j]);
			float dct = dcb[j] + dhb[j] * o * (1 - tc * tc);
			dg[j] = dct * g * i * (1 - i);
			dg[H + j] = dct * cp[j] * f * (1 - f);
			dg[2 * H + j] = dct * i * (1 - g * g);
			dg[3 * H + j] = dhb[j] * tc * o * (1 - o);
			dcp[j] = dct * f;
		}
	}
}

// sum16 writes to sum[q] the sum of the 16 lanes of acc[q]: a
// tree of shuffles and adds (30 shuffles, 15 adds) instead of 240 scalar adds,
// which cost more than the dot products themselves at k = 512.
INLINE void sum16(float *sum, vf acc[16]) {
	const vi lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
	const vi hi8 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
	const vi lo4 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
	const vi hi4 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
	const vi lo2 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
	const vi hi2 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
	const vi ev = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
	const vi od = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
	vf u[8], v[4], w[2];
	// u[k]: 8 partial sums of acc[2k], then 8 of acc[2k+1]; v[m]: 4 each of
	// acc[4m..4m+3]; w[n]: 2 each of acc[8n..8n+7]; then one each, in order.
	for (int k = 0; k < 8; k++)
		u[k] = __builtin_shuffle(acc[2 * k], acc[2 * k + 1], lo8) + __builtin_shuffle(acc[2 * k], acc[2 * k + 1], hi8);
	for (int m = 0; m < 4; m++)
		v[m] = __builtin_shuffle(u[2 * m], u[2 * m + 1], lo4) + __builtin_shuffle(u[2 * m], u[2 * m + 1], hi4);
	for (int n = 0; n < 2; n++)
		w[n] = __builtin_shuffle(v[2 * n], v[2 * n + 1], lo2) + __builtin_shuffle(v[2 * n], v[2 * n + 1], hi2);
	*(vf *)sum = __builtin_shuffle(w[0], w[1], ev) + __builtin_shuffle(w[0], w[1], od);
}

// tile_nt computes the MR x NR block of C = alpha * A B^T + beta * C whose top-left
// element is c, for A rows a (lda apart) and B rows b (ldb apart), k long. MR and
// NR are constants at every call, so the 16 accumulators stay in registers: per 16
// values of k, MR + NR loads feed MR * NR fused multiply-adds.
INLINE void tile_nt(int MR, int NR, long k, float alpha, const float *a, long lda,
		const float *b, long ldb, float beta, float *c, long ldc) {
	vf acc[16] = {{0}}; // acc[ii*4 + jj]
	long p = 0;
	for (; p + VW <= k; p += VW) {
		vf bv[4];
		for (int jj = 0; jj < NR; jj++) bv[jj] = *(vf *)(b + jj * ldb + p);
		for (int ii = 0; ii < MR; ii++) {
			vf av = *(vf *)(a + ii * lda + p);
			for (int jj = 0; jj < NR; jj++) acc[ii * 4 + jj] += av * bv[jj];
		}
	}
	// The tree sums all 16 accumulators, the unused ones zero, in fewer
	// operations than lane-by-lane sums of the used ones (MR * NR * 16 adds).
	float sum[16];
	sum16(sum, acc);
	if (NR == 4 && p == k) { // each row's 4 sums as one vector: scalar stores cost a fifth of a tile at k = 256
		for (int ii = 0; ii < MR; ii++) {
			v4 s;
			__builtin_memcpy(&s, sum + ii * 4, sizeof s);
			v4 *o = (v4 *)(c + ii * ldc);
			*o = beta == 0 ? alpha * s : alpha * s + beta * *o;
		}
		return;
	}
	for (int ii = 0; ii < MR; ii++) {
		for (int jj = 0; jj < NR; jj++) {
			float s = sum[ii * 4 + jj];
			for (long q = p; q < k; q++) s += a[ii * lda + q] * b[jj * ldb + q];
			float *o = c + ii * ldc + jj;
			*o = beta == 0 ? alpha * s : alpha * s + beta * *o; // beta 0: C is not read
		}
	}
}

CLONES void cap_gemm_nt(long m, long n, long k, float alpha, const float *a, long lda,
		const float *b, long ldb, float beta, float *c, long ldc) {
	// Four rows of B (a weight: the large operand) at a time, read from memory once
	// and kept in L1 while every row of the small A passes over them.
	long j = 0;
	for (; j + 4 <= n; j += 4) {
		long i = 0;
		for (; i + 4 <= m; i += 4)
			tile_nt(4, 4, k, alpha, a + i * lda, lda, b + j * ldb, ldb, beta, c + i * ldc + j, ldc);
		// The last 1-3 rows as one tile: a beam's 3 rows read each weight
		// vector once for all of them, not once per row.
		const float *ai = a + i * lda, *bj = b + j * ldb;
		float *cij = c + i * ldc + j;
		switch (m - i) {
		case 3: tile_nt(3, 4, k, alpha, ai, lda, bj, ldb, beta, cij, ldc); break;
		case 2: tile_nt(2, 4, k, alpha, ai, lda, bj, ldb, beta, cij, ldc); break;
		case 1: tile_nt(1, 4, k, alpha, ai, lda, bj, ldb, beta, cij, ldc); break;
		}
	}
	for (; j < n; j++) {
		long i = 0;
		for (; i + 4 <= m; i += 4)
			tile_nt(4, 1, k, alpha, a + i * lda, lda, b + j * ldb, ldb, beta, c + i * ldc + j, ldc);
		for (; i < m; i++) tile_nt(1, 1, k, alpha, a + i * lda, lda, b + j * ldb, ldb, beta, c + i * ldc + j, ldc);
	}
}

// hsum is the sum of the 16 lanes of *x (a pointer: vector parameters draw ABI
// notes from GCC).
INLINE float hsum(const vf *x) {
	float s = 0;
	for (int l = 0; l < VW; l++) s += (*x)[l];
	return s;
}

// The attention step's MLP in one pass over the regions: the broadcast of the
// state's term, the tanh and the dot with v, where separate kernels each read
// and wrote all of (rows, L, A) (a fifth of a greedy step at batch 32).
CLONES void cap_att_scores(float *scores, float *e, const float *pf, const float *q, const float *v,
		long i0, long i1, long K, long L, long A) {
	for (long i = i0; i < i1; i++) {
		long r = i / L, l = i % L;
		const float *p = pf + ((r / K) * L + l) * A, *qr = q + r * A;
		float *er = e ? e + i * A : NULL;
		vf acc = {0};
		long a = 0;
		for (; a + VW <= A; a += VW) {
			vf t = vtanh(*(vf *)(p + a) + *(vf *)(qr + a));
			if (er) *(vf *)(er + a) = t;
			acc += t * *(vf *)(v + a);
		}
		float s = hsum(&acc);
		for (; a < A; a++) {
			float t = tanhf(p[a] + qr[a]);
			if (er) er[a] = t;
			s += t * v[a];
		}
		scores[i] = s;
	}
}

CLONES void cap_att_scores_backward(float *dpf, float *dq, const float *dscores, const float *e, const float *v,
		long b0, long b1, long K, long L, long A) {
	for (long b = b0; b < b1; b++) {
		for (long k = 0; k < K; k++) {
			long r = b * K + k;
			float *dqr = dq + r * A;
			for (long l = 0; l < L; l++) {
				float ds = dscores[r * L + l];
				const float *er = e + (r * L + l) * A;
				float *dp = dpf + (b * L + l) * A;
				long a = 0;
				for (; a + VW <= A; a += VW) {
					vf ev = *(vf *)(er + a);
					vf de = ds * *(vf *)(v + a) * (1.0f - ev * ev);
					*(vf *)(dp + a) += de;
					*(vf *)(dqr + a) += de;
				}
				for (; a < A; a++) {
					float de = ds * v[a] * (1 - er[a] * er[a]);
					dp[a] += de;
					dqr[a] += de;
				}
			}
		}
	}
}

// cap_add writes out = a + b and cap_mul out = a * b (n), 16 lanes at a time;
// out may be a or b (each vector is loaded before it is stored).
CLONES void cap_add(float *out, const float *a, const float *b, long n) {
	long i = 0;
	for (; i + VW <= n; i += VW) *(vf *)(out + i) = *(const vf *)(a + i) + *(const vf *)(b + i);
	for (; i < n; i++) out[i] = a[i] + b[i];
}

CLONES void cap_mul(float *out, const float *a, const float *b, long n) {
	long i = 0;
	for (; i + VW <= n; i += VW) *(vf *)(out + i) = *(const vf *)(a + i) * *(const vf *)(b + i);
	for (; i < n; i++) out[i] = a[i] * b[i];
}

// cap_att_exp writes ep = exp(2·clamp(x, ±c)) (n). The clamp keeps a NaN.
CLONES void cap_att_exp(float *ep, const float *x, long n, float c) {
	vf lo = {0}, hi = {0};
	lo += -c, hi += c;
	long i = 0;
	for (; i + VW <= n; i += VW) *(vf *)(ep + i) = vexp(2.0f * vclamp(*(vf *)(x + i), lo, hi));
	for (; i < n; i++) ep[i] = expf(2.0f * (x[i] < -c ? -c : x[i] > c ? c : x[i]));
}

// cap_att_scores_exp is cap_att_scores' scores from ep = exp(2·pf) and eq =
// exp(2·q) (cap_att_exp): with P = ep·eq, tanh = 1 - 2/(P + 1), so
// scores[i] = Σv - 2·Σ v/(P + 1), a multiply, an add and a division an
// element. sv is Σv.
CLONES void cap_att_scores_exp(float *scores, const float *ep, const float *eq, const float *v, float sv,
		long i0, long i1, long K, long L, long A) {
	for (long i = i0; i < i1; i++) {
		long r = i / L, l = i % L;
		const float *p = ep + ((r / K) * L + l) * A, *qr = eq + r * A;
		vf acc = {0};
		long a = 0;
		for (; a + VW <= A; a += VW) acc += *(vf *)(v + a) / (*(vf *)(p + a) * *(vf *)(qr + a) + 1.0f);
		float s = hsum(&acc);
		for (; a < A; a++) s += v[a] / (p[a] * qr[a] + 1.0f);
		scores[i] = sv - 2.0f * s;
	}
}

CLONES void cap_add_col_sums(float *restrict sum, double *restrict acc, const float *restrict x, long rows, long cols,
	long lo, long hi) {
	double *restrict a = acc + lo;
	long w = hi - lo;
	for (long j = 0; j < w; j++) a[j] = 0;
	for (long r = 0; r < rows; r++) {
		const float *restrict xr = x + r * cols + lo;
		for (long j = 0; j < w; j++) a[j] += xr[j];
	}
	for (long j = 0; j < w; j++) sum[lo + j] += (float)a[j];
}

CLONES double cap_sum_squares(const float *restrict x, long n) {
	double s = 0;
	// Summed in any order (simd): a gradient norm for clipping, in double.
#pragma omp simd reduction(+ : s)
	for (long i = 0; i < n; i++) s += (double)x[i] * x[i];
	return s;
}

// dropout_uniform is gpu.DropoutUniform: splitmix64 of the seed and the index,
// its top 24 bits as a float in [0, 1).
INLINE float dropout_uniform(uint64_t seed, long i) {
	uint64_t z = seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (float)(z >> 40) * (1.0f / (1 << 24));
}

CLONES void cap_dropout(float *out, float *restrict mask, const float *x, long lo, long hi, float p, float keep,
	uint64_t seed) {
	for (long i = lo; i < hi; i++) {
		float m = dropout_uniform(seed, i) < p ? 0 : keep;
		mask[i] = m;
		out[i] = x[i] * m;
	}
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
// GCC does not vectorize a loop that calls sqrtf, which may set errno (cgo
// refuses -fno-math-errno), so AdamW's AVX-512 and AVX2 loops are written out,
// the square root an intrinsic, the rest GCC's vector arithmetic. Each returns
// how many of the n elements it updated, a multiple of its width W.
#define ADAMW_VEC(name, isa, V, W, load, store, vsqrt)                                              \
	__attribute__((target(isa))) static long name(float *restrict p, const float *restrict g,        \
		float *restrict m, float *restrict v, long n, float lr, float beta1, float beta2, float eps, \
		float weight_decay, float bc1, float bc2) {                                                  \
		long i = 0;                                                                                  \
		for (; i + W <= n; i += W) {                                                                 \
			V gi = load(g + i), pi = load(p + i);                                                    \
			V mi = beta1 * load(m + i) + (1 - beta1) * gi;                                           \
			V vi = beta2 * load(v + i) + (1 - beta2) * gi * gi;                                      \
			store(m + i, mi), store(v + i, vi);                                                      \
			store(p + i, pi - lr * ((mi / bc1) / (vsqrt(vi / bc2) + eps) + weight_decay * pi));     \
		}                                                                                            \
		return i;                                                                                    \
	}
ADAMW_VEC(adamw_avx512, "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_sqrt_ps)
ADAMW_VEC(adamw_avx2, "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_sqrt_ps)
#endif

int cap_vec_isa(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
	if (__builtin_cpu_supports("avx512f")) return 2;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
	return 0;
}

void cap_adamw(int isa, float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n,
	float lr, float beta1, float beta2, float eps, float weight_decay, float bc1, float bc2) {
	long i = 0;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
	if (isa == 2) i = adamw_avx512(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2);
	if (isa == 1) i = adamw_avx2(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2);
#endif
	for (; i < n; i++) {
		float gi = g[i];
		float mi = beta1 * m[i] + (1 - beta1) * gi;
		float vi = beta2 * v[i] + (1 - beta2) * gi * gi;
		m[i] = mi, v[i] = vi;
		p[i] -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * p[i]);
	}
}
