// Products against a weight kept in int8 (gemm_i8.c): dynamic quantization,
// as PyTorch's quantize_dynamic does a Linear layer, but with a range per row
// of activations rather than per tensor. The weight is quantized once,
// symmetric, a step per row (per output); each row of activations is
// quantized when it is multiplied, over its own range. AVX512-VNNI's vpdpbusd
// does four multiply-adds per 32-bit lane, twice bfloat16's vdpbf16ps. The
// int32 sums hold k up to 66,312 (255 * 127 per product); PackWeight refuses
// more.

// cap_i8_pack_nt quantizes the weight w (n, k), row stride ldw, into dst in
// the kernel's layout: blocks of 16 rows (columns of the product), in each the
// quads of k interleaved; scale[j] is row j's step (its largest magnitude /
// 127) and colsum[j] the sum of its quantized values. dst holds
// ceil(n/16)*16 * 4*ceil(k/4) values, scale and colsum ceil(n/16)*16; the
// padding is zero.
void cap_i8_pack_nt(signed char *dst, float *scale, int *colsum, const float *w, long n, long k, long ldw);

// cap_i8_rows quantizes the m rows of a (row stride lda) into dst, 4*ceil(k/4)
// bytes a row: round((a - zero[i]) * (255 / range)), to nearest, ties to even,
// where zero[i] is the least of the row's values and 0, the range the largest
// of them and 0 less zero[i], and scale[i] = range / 255 (a range under 1e-30
// quantizes to zero[i] alone). Both are NaN where the row holds a NaN or an
// infinity or its range overflows: its products are then NaN.
void cap_i8_rows(unsigned char *dst, float *scale, float *zero, const float *a, long m, long k, long lda);

// cap_i8_gemm_nt computes columns [j0, j1) of C (m, n) = A Wᵀ + beta C from
// A as cap_i8_rows left it and W as cap_i8_pack_nt packed it; j0 is a
// multiple of 16 and j1 one too or n. With beta 0, C is only written.
void cap_i8_gemm_nt(long m, long j0, long j1, long n, long k, const unsigned char *a, const float *ascale,
	const float *azero, const signed char *w, const float *wscale, const int *colsum, float beta, float *c, long ldc);

// cap_i8_gemm_available reports whether this CPU has AVX512-VNNI.
int cap_i8_gemm_available(void);
