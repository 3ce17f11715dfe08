//go:build cgo && !purecpu

// See gemm_i8.h. The kernel is gemm_bf16.c's with quads of bytes for pairs of
// bfloat16: vpdpbusd multiplies the four unsigned bytes of each 32-bit lane of
// one operand by the four signed bytes of the other and adds the four products
// to the int32 lane. The packed weight holds, for each quad of k and each of
// 16 columns, (w[j][4p], ..., w[j][4p+3]); a row of A broadcasts its own quad.
// A's bytes are its values on a grid from the row's least value (its zero),
// so the epilogue adds that zero times the column's sum of weights.
#include <math.h>
#include <string.h>
#include "gemm_i8.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>

int cap_i8_gemm_available(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")
#define INLINE static inline __attribute__((always_inline))

INLINE long min_l(long a, long b) { return a < b ? a : b; }

// row_range sets *lo and *hi to the least and the largest of x (k values)
// and 0; it returns 0 where x holds a NaN or an infinity.
INLINE int row_range(const float *x, long k, float *lo, float *hi) {
	const __m512 big = _mm512_set1_ps(3.4028235e38f);
	__m512 lov = _mm512_setzero_ps(), hiv = _mm512_setzero_ps();
	__mmask16 bad = 0;
	for (long q = 0; q < k; q += 16) {
		__mmask16 mk = k - q >= 16 ? 0xffff : (__mmask16)((1u << (k - q)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(mk, x + q); // the padding reads as 0, in the range already
		bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(v), big, _CMP_NLE_UQ); // not <= the largest float: NaN or infinity
		lov = _mm512_min_ps(lov, v), hiv = _mm512_max_ps(hiv, v);
	}
	*lo = _mm512_reduce_min_ps(lov), *hi = _mm512_reduce_max_ps(hiv);
	return !bad;
}

void cap_i8_pack_nt(signed char *dst, float *scale, int *colsum, const float *w, long n, long k, long ldw) {
	long kq = (k + 3) / 4, np = (n + 15) / 16;
	memset(dst, 0, (size_t)(np * 16 * kq * 4));
	for (long j = 0; j < np * 16; j++) {
		scale[j] = 0, colsum[j] = 0;
		if (j >= n) continue;
		const float *wj = w + j * ldw;
		float lo, hi;
		if (!row_range(wj, k, &lo, &hi)) {
			scale[j] = NAN;
			continue;
		}
		float m = hi > -lo ? hi : -lo; // symmetric: the weight's zero is an exact 0
		float inv = m > 1e-30f ? 127.0f / m : 0; // a row under 1e-30 (127/m might overflow) is zeros
		scale[j] = m / 127.0f;
		signed char *o = dst + (j / 16) * kq * 64 + (j % 16) * 4;
		for (long q = 0; q < k; q++) {
			int v = (int)nearbyintf(wj[q] * inv);
			o[(q / 4) * 64 + q % 4] = (signed char)v;
			colsum[j] += v;
		}
	}
}

void cap_i8_rows(unsigned char *dst, float *scale, float *zero, const float *a, long m, long k, long lda) {
	long kk = 4 * ((k + 3) / 4);
	for (long i = 0; i < m; i++) {
		const float *ai = a + i * lda;
		unsigned char *o = dst + i * kk;
		float lo, hi;
		// A row with a NaN or an infinity, or so spread that its range
		// overflows, gets NaN products, as float32 would get NaN or infinities.
		if (!row_range(ai, k, &lo, &hi) || !(hi - lo <= 3.4028235e38f)) {
			zero[i] = scale[i] = NAN;
			memset(o, 0, (size_t)kk);
			continue;
		}
		zero[i] = lo, scale[i] = (hi - lo) / 255.0f;
		// Asymmetric: all 256 steps over [lo, hi], where a symmetric grid
		// would leave half unused by a row of one sign (a gated context). A
		// range under 1e-30 (255/range might overflow) is its zero alone.
		float inv = hi - lo > 1e-30f ? 255.0f / (hi - lo) : 0;
		__m512 vinv = _mm512_set1_ps(inv), vlo = _mm512_set1_ps(lo);
		long q = 0;
		for (; q + 16 <= k; q += 16) { // the default rounding: to nearest, ties to even
			__m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(ai + q), vlo), vinv));
			_mm_storeu_si128((__m128i *)(o + q), _mm512_cvtepi32_epi8(v));
		}
		for (; q < kk; q++) o[q] = q < k ? (unsigned char)nearbyintf((ai[q] - lo) * inv) : 0;
	}
}

// tile computes C rows [0, MR) x NP*16 columns from kq quads: a (MR rows of
// 4*kq bytes) with their steps as and zeros az, w the NP consecutive packed
// blocks of 16 columns, ws and cs their columns' steps and sums.
INLINE void tile(int MR, int NP, long kq, const unsigned char *a, const float *as, const float *az, const signed char *w,
		const float *ws, const int *cs, float beta, float *c, long ldc, long ncols) {
	__m512i acc[6][2]; // MR <= 6, NP <= 2
	for (int i = 0; i < MR; i++)
		for (int b = 0; b < NP; b++) acc[i][b] = _mm512_setzero_si512();
	for (long p = 0; p < kq; p++) {
		__m512i wv[2];
		for (int b = 0; b < NP; b++) wv[b] = _mm512_loadu_si512(w + (b * kq + p) * 64);
		for (int i = 0; i < MR; i++) {
			int quad;
			memcpy(&quad, a + (i * kq + p) * 4, sizeof quad);
			__m512i av = _mm512_set1_epi32(quad);
			for (int b = 0; b < NP; b++) acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], av, wv[b]);
		}
	}
	for (int b = 0; b < NP; b++) {
		long left = ncols - b * 16;
		if (left <= 0) break;
		__mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
		// a = as*u + az and w = ws*q: the sum over k of a*w is
		// ws * (as * (the sum of u*q) + az * (the sum of q)).
		__m512 csv = _mm512_cvtepi32_ps(_mm512_loadu_si512(cs + b * 16)), wsv = _mm512_loadu_ps(ws + b * 16);
		for (int i = 0; i < MR; i++) {
			float *o = c + i * ldc + b * 16;
			__m512 v = _mm512_mul_ps(wsv, _mm512_fmadd_ps(_mm512_set1_ps(as[i]), _mm512_cvtepi32_ps(acc[i][b]), _mm512_mul_ps(_mm512_set1_ps(az[i]), csv)));
			if (beta != 0) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mk, o), v);
			_mm512_mask_storeu_ps(o, mk, v);
		}
	}
}

// rows runs every row of A, in tiles of MR, against NP blocks of columns.
INLINE void rows(int NP, long m, long kq, const unsigned char *a, const float *as, const float *az, const signed char *w,
		const float *ws, const int *cs, float beta, float *c, long ldc, long ncols) {
	long i = 0;
	enum { MR = 6 };
	for (; i + MR <= m; i += MR) tile(MR, NP, kq, a + i * 4 * kq, as + i, az + i, w, ws, cs, beta, c + i * ldc, ldc, ncols);
	switch (m - i) {
	case 5: tile(5, NP, kq, a + i * 4 * kq, as + i, az + i, w, ws, cs, beta, c + i * ldc, ldc, ncols); break;
	case 4: tile(4, NP, kq, a + i * 4 * kq, as + i, az + i, w, ws, cs, beta, c + i * ldc, ldc, ncols); break;
	case 3: tile(3, NP, kq, a + i * 4 * kq, as + i, az + i, w, ws, cs, beta, c + i * ldc, ldc, ncols); break;
	case 2: tile(2, NP, kq, a + i * 4 * kq, as + i, az + i, w, ws, cs, beta, c + i * ldc, ldc, ncols); break;
	case 1: tile(1, NP, kq, a + i * 4 * kq, as + i, az + i, w, ws, cs, beta, c + i * ldc, ldc, ncols); break;
	}
}

void cap_i8_gemm_nt(long m, long j0, long j1, long n, long k, const unsigned char *a, const float *ascale,
		const float *azero, const signed char *w, const float *wscale, const int *colsum, float beta, float *c, long ldc) {
	long kq = (k + 3) / 4;
	long j = j0;
	for (; j + 32 <= j1; j += 32)
		rows(2, m, kq, a, ascale, azero, w + (j / 16) * kq * 64, wscale + j, colsum + j, beta, c + j, ldc, min_l(32, n - j));
	for (; j < j1; j += 16)
		rows(1, m, kq, a, ascale, azero, w + (j / 16) * kq * 64, wscale + j, colsum + j, beta, c + j, ldc, min_l(16, n - j));
}

#pragma GCC pop_options
#else
void cap_i8_pack_nt(signed char *dst, float *scale, int *colsum, const float *w, long n, long k, long ldw) {}
void cap_i8_rows(unsigned char *dst, float *scale, float *zero, const float *a, long m, long k, long lda) {}
void cap_i8_gemm_nt(long m, long j0, long j1, long n, long k, const unsigned char *a, const float *ascale,
		const float *azero, const signed char *w, const float *wscale, const int *colsum, float beta, float *c, long ldc) {}
int cap_i8_gemm_available(void) { return 0; }
#endif
