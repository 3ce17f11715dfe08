//go:build cgo && !purecpu

// An inverted residual block computed a row at a time (see fusedblock.h). Why:
// in a float32 chain one image's early blocks write expanded activations of
// 1.2-4.8 MB (MobileNetV2's block 2: 112x112x96), which the depthwise layer
// then reads back; between images the 14 MB of weights and the other
// activations push them out of the cache, so the three primitives of block 2
// took 1.2-1.4 ms where they take 0.7 with warm caches. Here each input row is
// expanded once into a ring of three rows, the depthwise layer reads the ring,
// and each output row is projected as soon as it is made: the expanded
// activations never leave the L1/L2 cache (gpu/README.md, "Fused inverted
// residual blocks").
//
// Every output element is computed the same way whatever rows a call covers,
// so a split run's halves give the whole run's output to the bit.
#include "fusedblock.h"

#include <stddef.h>

size_t cap_fused_block_scratch(const cap_fused_block *b) { return (size_t)(3 * b->w + b->ow) * b->ce; }

// The kernels are AVX-512F intrinsics, compiled by GCC 10 or later on x86-64
// (as gemm_i8.c's); elsewhere no block is fused and the chain runs them on
// oneDNN (make c-fallback-check compiles this branch).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define TILE static inline __attribute__((always_inline, target("avx512f")))

int cap_fused_block_usable(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}

TILE __m512 relu6(__m512 v) { return _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(6.f)); }

// expand_tile writes channels [n0, n0 + 16 nb) of np pixels of e from the
// pixels of x: bias + x We, then ReLU6.
TILE void expand_tile(const cap_fused_block *b, const float *x, float *e, int n0, const int np, const int nb) {
	__m512 acc[4][6];
	for (int n = 0; n < nb; n++) {
		__m512 bias = _mm512_loadu_ps(b->be + n0 + 16 * n);
		for (int i = 0; i < np; i++) acc[i][n] = bias;
	}
	for (int k = 0; k < b->ci; k++) {
		const float *wk = b->we + (size_t)k * b->ce + n0;
		for (int i = 0; i < np; i++) {
			__m512 xv = _mm512_set1_ps(x[i * b->ci + k]);
			for (int n = 0; n < nb; n++) acc[i][n] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(wk + 16 * n), acc[i][n]);
		}
	}
	for (int i = 0; i < np; i++)
		for (int n = 0; n < nb; n++) _mm512_storeu_ps(e + (size_t)i * b->ce + n0 + 16 * n, relu6(acc[i][n]));
}

#define EXPAND_TILES(np)                                                  \
	switch (nb) {                                                         \
	case 1: expand_tile(b, x, e, n0, np, 1); break;                       \
	case 2: expand_tile(b, x, e, n0, np, 2); break;                       \
	case 3: expand_tile(b, x, e, n0, np, 3); break;                       \
	case 4: expand_tile(b, x, e, n0, np, 4); break;                       \
	case 5: expand_tile(b, x, e, n0, np, 5); break;                       \
	default: expand_tile(b, x, e, n0, np, 6); break;                      \
	}

// expand_row expands one input row x (w pixels of ci) into e (w pixels of ce):
// tiles of 4 pixels by up to 96 channels, 24 accumulators.
AVX512 static void expand_row(const cap_fused_block *b, const float *x, float *e) {
	int p = 0;
	for (; p + 4 <= b->w; p += 4, x += 4 * b->ci, e += 4 * b->ce)
		for (int n0 = 0; n0 < b->ce; n0 += 96) {
			int nb = (b->ce - n0) / 16 < 6 ? (b->ce - n0) / 16 : 6;
			EXPAND_TILES(4)
		}
	for (; p < b->w; p++, x += b->ci, e += b->ce)
		for (int n0 = 0; n0 < b->ce; n0 += 96) {
			int nb = (b->ce - n0) / 16 < 6 ? (b->ce - n0) / 16 : 6;
			EXPAND_TILES(1)
		}
}

// depthwise_row computes one output row d (ow pixels of ce) from the three
// expanded input rows r (NULL where the row is padding). A block of 16
// channels keeps its nine weights in registers across the row, so that each
// multiply-add loads one vector, not two.
AVX512 static void depthwise_row(const cap_fused_block *b, const float *const r[3], float *d) {
	for (int n = 0; n < b->ce; n += 16) {
		__m512 wt[9];
		for (int k = 0; k < 9; k++) wt[k] = _mm512_loadu_ps(b->wd + (size_t)k * b->ce + n);
		__m512 bias = _mm512_loadu_ps(b->bd + n);
		for (int q = 0; q < b->ow; q++) {
			__m512 acc = bias;
			for (int i = 0; i < 3; i++) {
				if (!r[i]) continue;
				for (int j = 0; j < 3; j++) {
					int c = q * b->stride - b->pad_left + j;
					if (c < 0 || c >= b->w) continue;
					acc = _mm512_fmadd_ps(_mm512_loadu_ps(r[i] + (size_t)c * b->ce + n), wt[3 * i + j], acc);
				}
			}
			_mm512_storeu_ps(d + (size_t)q * b->ce + n, relu6(acc));
		}
	}
}

// project_tile writes channels [m0, m0 + 32) (masked to co) of np pixels of y:
// bias + d Wp, plus those pixels of x where x is not NULL (the residual).
TILE void project_tile(const cap_fused_block *b, const float *d, const float *x, float *y, int m0, const int np) {
	int left = b->co - m0;
	__mmask16 k0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
	__mmask16 k1 = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
	__m512 acc0[8], acc1[8];
	__m512 b0 = _mm512_maskz_loadu_ps(k0, b->bp + m0), b1 = _mm512_maskz_loadu_ps(k1, b->bp + m0 + 16);
	for (int i = 0; i < np; i++) acc0[i] = b0, acc1[i] = b1;
	if (x)
		for (int i = 0; i < np; i++) {
			acc0[i] = _mm512_add_ps(acc0[i], _mm512_maskz_loadu_ps(k0, x + (size_t)i * b->co + m0));
			acc1[i] = _mm512_add_ps(acc1[i], _mm512_maskz_loadu_ps(k1, x + (size_t)i * b->co + m0 + 16));
		}
	for (int k = 0; k < b->ce; k++) {
		const float *wk = b->wp + (size_t)k * b->co + m0;
		__m512 w0 = _mm512_maskz_loadu_ps(k0, wk), w1 = _mm512_maskz_loadu_ps(k1, wk + 16);
		for (int i = 0; i < np; i++) {
			__m512 dv = _mm512_set1_ps(d[(size_t)i * b->ce + k]);
			acc0[i] = _mm512_fmadd_ps(dv, w0, acc0[i]);
			acc1[i] = _mm512_fmadd_ps(dv, w1, acc1[i]);
		}
	}
	for (int i = 0; i < np; i++) {
		_mm512_mask_storeu_ps(y + (size_t)i * b->co + m0, k0, acc0[i]);
		_mm512_mask_storeu_ps(y + (size_t)i * b->co + m0 + 16, k1, acc1[i]);
	}
}

// project_row projects one depthwise row d (ow pixels of ce) into y (ow
// pixels of co), adding the input row x unless it is NULL: tiles of 8 pixels by
// 32 channels, 16 accumulators.
AVX512 static void project_row(const cap_fused_block *b, const float *d, const float *x, float *y) {
	int q = 0;
	for (; q + 8 <= b->ow; q += 8, d += 8 * b->ce, y += 8 * b->co, x = x ? x + 8 * b->co : NULL)
		for (int m0 = 0; m0 < b->co; m0 += 32) project_tile(b, d, x, y, m0, 8);
	for (; q < b->ow; q++, d += b->ce, y += b->co, x = x ? x + b->co : NULL)
		for (int m0 = 0; m0 < b->co; m0 += 32) project_tile(b, d, x, y, m0, 1);
}

AVX512 void cap_fused_block_run(const cap_fused_block *b, const float *in, float *out, int r0, int r1, float *scratch) {
	size_t row = (size_t)b->w * b->ce;
	float *d = scratch + 3 * row;
	int held[3] = {-1, -1, -1}; // the input row each slot of the ring holds
	for (int o = r0; o < r1; o++) {
		const float *r[3];
		for (int i = 0; i < 3; i++) {
			int y = o * b->stride - b->pad_top + i;
			r[i] = NULL;
			if (y < 0 || y >= b->h) continue;
			float *slot = scratch + (size_t)(y % 3) * row;
			if (held[y % 3] != y) { // rows are needed in order: a slot is reused once its row is done
				expand_row(b, in + (size_t)y * b->w * b->ci, slot);
				held[y % 3] = y;
			}
			r[i] = slot;
		}
		depthwise_row(b, r, d);
		project_row(b, d, b->residual ? in + (size_t)o * b->w * b->ci : NULL, out + (size_t)o * b->ow * b->co);
	}
}
#else
int cap_fused_block_usable(void) { return 0; }
void cap_fused_block_run(const cap_fused_block *b, const float *in, float *out, int r0, int r1, float *scratch) {}
#endif
