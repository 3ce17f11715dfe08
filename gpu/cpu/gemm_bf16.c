//go:build cgo && !purecpu

// See gemm_bf16.h. The kernel is llm.c's shape of a matmul microkernel: a
// block of rows of A against a block of columns of the weight, the
// accumulators in registers for the whole of k, each weight vector loaded once
// per block of rows. vdpbf16ps multiplies the pairs of bfloat16 in each 32-bit
// lane and adds both products to the float32 lane: the packed weight holds, for
// each pair of k and each of 16 columns, the pair (w[j][2p], w[j][2p+1]); a
// row of A broadcasts its own pair (a[2p], a[2p+1]) to every lane.
#include <string.h>
#include "gemm_bf16.h"

// GCC 10 or later: the AVX512-BF16 intrinsics, and #pragma GCC target, which
// clang ignores (it would reject the intrinsics), hence no clang.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#include <immintrin.h>

int cap_bf16_gemm_available(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512bf16") != 0;
}

// Everything below runs only where cap_bf16_gemm_available holds: compiled
// for AVX512-BF16, helpers included.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512bf16")
#define INLINE static inline __attribute__((always_inline))

INLINE long min_l(long a, long b) { return a < b ? a : b; }

// bf16_round is x in bfloat16 as vcvtneps2bf16 rounds it: to nearest, ties to
// even; denormals flushed to a signed zero (vdpbf16ps would read them as zero
// anyway); NaN stays NaN, its quiet bit forced.
static unsigned short bf16_round(float x) {
	unsigned int u;
	memcpy(&u, &x, 4);
	if ((u & 0x7fffffff) > 0x7f800000) return (unsigned short)((u >> 16) | 0x40);
	if ((u & 0x7f800000) == 0) return (unsigned short)((u >> 16) & 0x8000);
	u += 0x7fff + ((u >> 16) & 1);
	return (unsigned short)(u >> 16);
}

void cap_bf16_pack_nt(unsigned short *dst, const float *w, long n, long k, long ldw) {
	long kp = (k + 1) / 2, np = (n + 15) / 16;
	for (long b = 0; b < np; b++) {
		for (long p = 0; p < kp; p++) {
			unsigned short *o = dst + (b * kp + p) * 32;
			for (long jj = 0; jj < 16; jj++) {
				long j = b * 16 + jj;
				for (long h = 0; h < 2; h++) {
					long q = 2 * p + h;
					o[2 * jj + h] = j < n && q < k ? bf16_round(w[j * ldw + q]) : 0;
				}
			}
		}
	}
}

void cap_bf16_rows(unsigned short *dst, const float *a, long m, long k, long lda) {
	long kk = 2 * ((k + 1) / 2);
	for (long i = 0; i < m; i++) {
		const float *ai = a + i * lda;
		unsigned short *o = dst + i * kk;
		long q = 0;
		for (; q + 16 <= k; q += 16) {
			__m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(ai + q));
			_mm256_storeu_si256((__m256i *)(o + q), (__m256i)v);
		}
		for (; q < kk; q++) o[q] = q < k ? bf16_round(ai[q]) : 0;
	}
}

// tile computes C rows [0, MR) x NP*16 columns from kp pairs: a (MR rows of
// 2*kp bfloat16), w the NP consecutive packed blocks of 16 columns.
INLINE void tile(int MR, int NP, long kp, const unsigned short *a, const unsigned short *w,
		float beta, float *c, long ldc, long ncols) {
	__m512 acc[6][2]; // MR <= 6, NP <= 2
	for (int i = 0; i < MR; i++)
		for (int b = 0; b < NP; b++) acc[i][b] = _mm512_setzero_ps();
	for (long p = 0; p < kp; p++) {
		__m512bh wv[2];
		for (int b = 0; b < NP; b++) wv[b] = (__m512bh)_mm512_loadu_si512(w + (b * kp + p) * 32);
		for (int i = 0; i < MR; i++) {
			int pair; // a row's (a[2p], a[2p+1]) as one 32-bit lane
			memcpy(&pair, a + (i * kp + p) * 2, sizeof pair);
			__m512bh av = (__m512bh)_mm512_set1_epi32(pair);
			for (int b = 0; b < NP; b++) acc[i][b] = _mm512_dpbf16_ps(acc[i][b], av, wv[b]);
		}
	}
	for (int i = 0; i < MR; i++) {
		for (int b = 0; b < NP; b++) {
			long left = ncols - b * 16;
			if (left <= 0) break;
			__mmask16 mk = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
			float *o = c + i * ldc + b * 16;
			__m512 v = acc[i][b];
			if (beta != 0) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mk, o), v);
			_mm512_mask_storeu_ps(o, mk, v);
		}
	}
}

// rows runs every row of A, in tiles of MR, against NP blocks of columns.
INLINE void rows(int NP, long m, long kp, const unsigned short *a, const unsigned short *w,
		float beta, float *c, long ldc, long ncols) {
	long i = 0;
	enum { MR = 6 };
	for (; i + MR <= m; i += MR) tile(MR, NP, kp, a + i * 2 * kp, w, beta, c + i * ldc, ldc, ncols);
	switch (m - i) {
	case 5: tile(5, NP, kp, a + i * 2 * kp, w, beta, c + i * ldc, ldc, ncols); break;
	case 4: tile(4, NP, kp, a + i * 2 * kp, w, beta, c + i * ldc, ldc, ncols); break;
	case 3: tile(3, NP, kp, a + i * 2 * kp, w, beta, c + i * ldc, ldc, ncols); break;
	case 2: tile(2, NP, kp, a + i * 2 * kp, w, beta, c + i * ldc, ldc, ncols); break;
	case 1: tile(1, NP, kp, a + i * 2 * kp, w, beta, c + i * ldc, ldc, ncols); break;
	}
}

void cap_bf16_gemm_nt(long m, long j0, long j1, long n, long k, const unsigned short *a,
		const unsigned short *w, float beta, float *c, long ldc) {
	long kp = (k + 1) / 2;
	// Two blocks (32 columns) a tile: 12 accumulators for 6 rows, enough
	// independent dot products to cover the instruction's latency.
	long j = j0;
	for (; j + 32 <= j1; j += 32) rows(2, m, kp, a, w + (j / 16) * kp * 32, beta, c + j, ldc, min_l(32, n - j));
	for (; j < j1; j += 16) rows(1, m, kp, a, w + (j / 16) * kp * 32, beta, c + j, ldc, min_l(16, n - j));
}

#pragma GCC pop_options
#else
void cap_bf16_pack_nt(unsigned short *dst, const float *w, long n, long k, long ldw) {}
void cap_bf16_rows(unsigned short *dst, const float *a, long m, long k, long lda) {}
void cap_bf16_gemm_nt(long m, long j0, long j1, long n, long k, const unsigned short *a,
		const unsigned short *w, float beta, float *c, long ldc) {}
int cap_bf16_gemm_available(void) { return 0; }
#endif
