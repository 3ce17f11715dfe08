// Products against a weight kept in bfloat16 (gemm_bf16.c): a decoder step's
// GEMMs, a few rows of activations times a weight of up to millions of
// values, where AVX512-BF16's dot product does two multiply-adds per float32
// lane and the weight is half the bytes to stream from memory.

// cap_bf16_pack_nt writes the weight w (n, k), row stride ldw, into dst in the
// kernel's layout: blocks of 16 rows (columns of the product), in each the
// pairs of k interleaved. dst holds ceil(n/16)*16 * 2*ceil(k/2) values; the
// padding is zero.
void cap_bf16_pack_nt(unsigned short *dst, const float *w, long n, long k, long ldw);

// cap_bf16_rows rounds the m rows of a (row stride lda) to bfloat16 into dst,
// each padded with a zero to an even length 2*ceil(k/2).
void cap_bf16_rows(unsigned short *dst, const float *a, long m, long k, long lda);

// cap_bf16_gemm_nt computes columns [j0, j1) of C (m, n) = A Wᵀ + beta C from
// A as cap_bf16_rows left it and W as cap_bf16_pack_nt packed it; j0 is a
// multiple of 16 and j1 one too or n. With beta 0, C is only written.
void cap_bf16_gemm_nt(long m, long j0, long j1, long n, long k, const unsigned short *a,
	const unsigned short *w, float beta, float *c, long ldc);

// cap_bf16_gemm_available reports whether this CPU has AVX512-BF16.
int cap_bf16_gemm_available(void);
