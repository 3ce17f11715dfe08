package cpu

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// Gemm computes C = alpha * op(A) * op(B) + beta * C (row-major; see gpu.Device).
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a gpu.Buf, lda int, b gpu.Buf, ldb int, beta float32, c gpu.Buf, ldc int) {
	d.GemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
}

// GemmStridedBatched runs batch Gemms at strides strideA, strideB, strideC: in
// parallel over the batch when it can keep every thread busy, else one after the
// other, each parallel inside.
func (d *Device) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a gpu.Buf, lda, strideA int, b gpu.Buf, ldb, strideB int, beta float32, c gpu.Buf, ldc, strideC int, batch int) {
	la, lb, lc := gpu.GemmSpans(transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch)
	as, bs, cs := operand(d.f(a), la, "A"), operand(d.f(b), lb, "B"), operand(d.f(c), lc, "C")
	if m == 0 || n == 0 || batch == 0 {
		return
	}
	one := func(i int, serial bool) {
		ai, bi, ci := as[i*strideA:], bs[i*strideB:], cs[i*strideC:]
		switch {
		case k == 0: // no products: C = beta*C, which BLAS leaves to conventions
			for r := 0; r < m; r++ {
				row := ci[r*ldc : r*ldc+n]
				for j := range row {
					if beta == 0 {
						row[j] = 0
					} else {
						row[j] *= beta
					}
				}
			}
		case serial:
			blasSgemm(transA, transB, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc)
		default:
			d.gemm(transA, transB, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc, nil)
		}
	}
	if batch >= d.threads && d.threads > 1 {
		d.parallel(batch, max(1, gemmGrain/(m*n*max(k, 1))), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(i, true)
			}
		})
		return
	}
	for i := 0; i < batch; i++ {
		one(i, false)
	}
}

// A B^T with 1 to smallRows rows of A goes to our gemmNT kernel rather than
// BLAS: there BLAS's copy of the whole of B into its packed layout costs more
// than the product (decoder steps: beam x batch rows times a 1024- or 2600-row
// weight). Measured on 2 threads (BenchmarkGemm/step_*, AMD EPYC Zen 4,
// 2026-12-05): 32 rows 168-200 GFLOP/s, 48 rows (beam 3 at batch 16) 157
// against oneDNN's sgemm's 123; at 96 rows both do 152-156. One row (greedy
// decoding at batch 1) went to oneDNN's sgemv until 2026-12-06: gemmNT's
// one-row tiles made float32 attention greedy decoding at batch 1 64-73 ->
// 92-112 captions/s and the merge model's 949-1,021 -> 1,073-1,125
// (BenchmarkAttentionGreedyB1, BenchmarkGreedyB1, alternating).
const smallRows = 64

// gemmGrain is the smallest GEMM piece (multiply-adds) worth a thread: about 10 us.
const gemmGrain = 1 << 18

// gemm computes C = alpha * op(A) * op(B) + beta * C on the device's threads,
// giving each a block of rows of C (or of columns, when C has too few rows), and
// calls epilogue(lo, hi) on rows [lo, hi) of C once they are final, so that
// Conv2D applies bias and activation while the rows are still in cache. Sizes
// are checked by the caller and non-zero.
//
// The BLAS itself runs single-threaded: one pool of threads for every kernel
// means no BLAS threads spinning while our loops run, and small GEMMs (a decoder
// step) stay on one thread instead of paying for a wake-up.
func (d *Device) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epilogue func(lo, hi int)) {
	// Splitting rows makes every thread read all of B (k, n), splitting columns all
	// of A (m, k): split the side that does not duplicate the larger one.
	rowGrain := max(1, gemmGrain/(n*k))
	if m >= n && m >= 2*rowGrain || n < 32 {
		d.parallel(m, rowGrain, func(lo, hi int) {
			ao := lo * lda // rows lo.. of op(A)
			if transA {
				ao = lo
			}
			blasSgemm(transA, transB, hi-lo, n, k, alpha, a[ao:], lda, b, ldb, beta, c[lo*ldc:], ldc)
			if epilogue != nil {
				epilogue(lo, hi)
			}
		})
		return
	}
	d.parallel(n, max(16, gemmGrain/(m*k)), func(lo, hi int) {
		bo := lo // columns lo.. of op(B)
		if transB {
			bo = lo * ldb
		}
		if !transA && transB && m <= smallRows {
			inPieces(lo, hi, 4, m*k, func(lo, hi int) { // 4: the kernel's column tile
				gemmNT(m, hi-lo, k, alpha, a, lda, b[lo*ldb:], ldb, beta, c[lo:], ldc)
			})
			return
		}
		blasSgemm(transA, transB, m, hi-lo, k, alpha, a, lda, b[bo:], ldb, beta, c[lo:], ldc)
	})
	if epilogue != nil {
		epilogue(0, m)
	}
}

// operand checks that s holds the need elements a Gemm's operand spans
// (gpu.GemmSpans) and returns s.
func operand(s []float32, need int, what string) []float32 {
	if len(s) < need {
		panic(fmt.Sprintf("gpu/cpu: Gemm's %s has %d elements, the shape needs %d", what, len(s), need))
	}
	return s
}

// matrix checks that s holds a (rows, cols) matrix with row stride ld and
// returns s.
func matrix(s []float32, rows, cols, ld int, what string) []float32 {
	return operand(s, gpu.MatrixSpan(rows, cols, ld, 0, 1, false, what), what)
}
