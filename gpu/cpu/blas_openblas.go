//go:build cgo && !purecpu

package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
// Declared here too because Debian's cblas.h alternative may be the reference
// BLAS header, which lacks OpenBLAS's extensions.
void openblas_set_num_threads(int num_threads);

// sgemm_rm is a row-major cblas_sgemm taking plain ints, which convert to either
// header's integer type. With one row it is a matrix-vector product, for which
// OpenBLAS's sgemv is several times faster than its sgemm.
static void sgemm_rm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
		const float *b, int ldb, float beta, float *c, int ldc) {
	if (m == 1) {
		// c (1, n) = op(b)^T (n, k) a (k): row-major op(b) is (k, n).
		cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? n : k, tb ? k : n,
			alpha, b, ldb, a, ta ? lda : 1, beta, c, 1);
		return;
	}
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
		m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
*/
import "C"

const blasName = "OpenBLAS"

// OpenBLAS runs single-threaded; the device parallelises around it (see gemm).
func init() { setBLASThreads(1) }

// setBLASThreads sets OpenBLAS's own thread count (process-wide).
func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

func cbool(t bool) C.int {
	if t {
		return 1
	}
	return 0
}

// blasSgemm is one row-major OpenBLAS sgemm (sgemv for one row), on the calling
// thread.
func blasSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.sgemm_rm(cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), (*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb),
		C.float(beta), (*C.float)(&c[0]), C.int(ldc))
}
