// fakecublas.c builds a stand-in for libcublas.so.N with the routines the CUDA
// backend calls (package gpu/cuda/cublas): SGEMM and strided batched SGEMM,
// computed by definition on column-major matrices (device memory is host memory
// under fakecuda.c) with cuBLAS's argument checks, and the version,
// FAKE_CUBLAS_VERSION (set when built).
#include <cublas_v2.h>
#include <stdlib.h>
#include <string.h>

static int handle; // the one handle's identity
static cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;

// FAKECUBLAS_CREATE_FAILS=1 makes cublasCreate fail, as cuBLAS does on a driver
// older than itself.
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
	const char *fail = getenv("FAKECUBLAS_CREATE_FAILS");
	if (fail && strcmp(fail, "1") == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
	*h = (cublasHandle_t)&handle;
	math_mode = CUBLAS_DEFAULT_MATH; // a new handle's
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
	return h == (cublasHandle_t)&handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

// The math mode is kept and read back; SGEMM below computes in float32 whatever it is.
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
	if (h != (cublasHandle_t)&handle) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
	math_mode = mode;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode) {
	if (h != (cublasHandle_t)&handle) return CUBLAS_STATUS_NOT_INITIALIZED;
	*mode = math_mode;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t h, int *version) {
	if (h != (cublasHandle_t)&handle) return CUBLAS_STATUS_NOT_INITIALIZED;
	*version = FAKE_CUBLAS_VERSION;
	return CUBLAS_STATUS_SUCCESS;
}

static int max1(int a) { return a > 1 ? a : 1; }

// C (m, n) = alpha * op(A) (m, k) * op(B) (k, n) + beta * C, column-major: element
// (i, j) of a matrix with leading dimension ld is at [i + j*ld].
cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc) {
	if (h != (cublasHandle_t)&handle) return CUBLAS_STATUS_NOT_INITIALIZED;
	if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || m < 0 || n < 0 ||
	    k < 0 || lda < max1(ta == CUBLAS_OP_N ? m : k) || ldb < max1(tb == CUBLAS_OP_N ? k : n) || ldc < max1(m))
		return CUBLAS_STATUS_INVALID_VALUE;
	for (int j = 0; j < n; j++) {
		for (int i = 0; i < m; i++) {
			float s = 0.0f;
			for (int p = 0; p < k; p++) {
				float a = ta == CUBLAS_OP_N ? A[i + p * lda] : A[p + i * lda];
				float b = tb == CUBLAS_OP_N ? B[p + j * ldb] : B[j + p * ldb];
				s += a * b;
			}
			C[i + j * ldc] = *alpha * s + (*beta == 0.0f ? 0.0f : *beta * C[i + j * ldc]);
		}
	}
	return CUBLAS_STATUS_SUCCESS;
}

// Matrix q of A, B and C starts q times its stride after the first; the header
// this file includes checks the signature against cuBLAS's.
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long strideA,
                                         const float *B, int ldb, long long strideB, const float *beta, float *C,
                                         int ldc, long long strideC, int batch) {
	if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
	for (int q = 0; q < batch; q++) {
		cublasStatus_t s = cublasSgemm_v2(h, ta, tb, m, n, k, alpha, A + q * strideA, lda, B + q * strideB, ldb, beta,
		                                  C + q * strideC, ldc);
		if (s != CUBLAS_STATUS_SUCCESS) return s;
	}
	return CUBLAS_STATUS_SUCCESS;
}
