package gpu

import "fmt"

// GemmSpans checks the sizes of a Gemm (batch 1, strides unused) or a
// GemmStridedBatched and returns how many elements of A, B and C it touches, from
// each operand's first element: every backend checks its buffers against these.
// It panics on negative sizes, a row stride shorter than a row, or C matrices
// that overlap (see MatrixSpan).
func GemmSpans(transA, transB bool, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch int) (la, lb, lc int) {
	if m < 0 || n < 0 || k < 0 || batch < 0 {
		panic(fmt.Sprintf("gpu: Gemm with negative size m=%d n=%d k=%d batch=%d", m, n, k, batch))
	}
	ar, ac := m, k // A as stored
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	return MatrixSpan(ar, ac, lda, strideA, batch, false, "A"),
		MatrixSpan(br, bc, ldb, strideB, batch, false, "B"),
		MatrixSpan(m, n, ldc, strideC, batch, true, "C")
}

// MatrixSpan returns how many elements batch (rows, cols) matrices with row
// stride ld, stride apart, span. The matrices a Gemm writes (written) must not
// overlap, since a backend may compute a batch's products at once (cuBLAS does,
// and the CPU backend spreads them over its threads); the ones it reads may,
// down to stride 0 for one matrix used by the whole batch.
func MatrixSpan(rows, cols, ld, stride, batch int, written bool, what string) int {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("gpu: Gemm's %s has row stride %d, less than its %d columns as stored", what, ld, cols))
	}
	if stride < 0 {
		panic(fmt.Sprintf("gpu: Gemm's %s has a negative batch stride %d", what, stride))
	}
	if rows == 0 || cols == 0 || batch == 0 {
		return 0
	}
	one := (rows-1)*ld + cols
	if batch > 1 && written && stride < one {
		panic(fmt.Sprintf("gpu: Gemm's %s: batch stride %d is less than the %d elements one matrix spans, so the batch's outputs would overlap", what, stride, one))
	}
	return (batch-1)*stride + one
}
