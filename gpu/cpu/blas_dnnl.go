//go:build cgo && !purecpu

package cpu

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

// sgemm_1 is oneDNN's row-major sgemm on the calling thread alone (an OpenMP
// team of one: this thread's own setting, which a chain run may have raised).
static int sgemm_1(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
		const float *b, int ldb, float beta, float *c, int ldc) {
	omp_set_num_threads(1);
	return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) != dnnl_success;
}
*/
import "C"

import "fmt"

// GEMM goes to oneDNN's sgemm, which picks its kernels from the CPU's own
// instruction sets: Debian's OpenBLAS 0.3.21 took an AVX-512 Xeon whose model
// it does not know for a Prescott (SSE3) and ran at 20-29 GFLOP/s per core where
// oneDNN runs at 110-150 (BenchmarkGemm, same run), and its sgemv at 6.5 against
// 11 GFLOP/s.
const blasName = "oneDNN"

// blasSgemm is one row-major sgemm on the calling thread (see gemm).
func blasSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if C.sgemm_1(C.int(btoi(transA)), C.int(btoi(transB)), C.int(m), C.int(n), C.int(k),
		C.float(alpha), ptr(a), C.int(lda), ptr(b), C.int(ldb),
		C.float(beta), ptr(c), C.int(ldc)) != 0 {
		panic(fmt.Sprintf("gpu/cpu: oneDNN sgemm rejected m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc))
	}
}
