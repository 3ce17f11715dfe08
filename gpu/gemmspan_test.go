package gpu

import "testing"

// TestGemmSpans checks the spans every backend checks its buffers against, and
// the sizes refused before they reach a BLAS (cuBLAS refuses a leading
// dimension of 0 or a negative size or stride with an error that sticks).
func TestGemmSpans(t *testing.T) {
	for _, c := range []struct {
		what                                                     string
		transA, transB                                           bool
		m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch int
		la, lb, lc                                               int
	}{
		{"A (2, 3) B (3, 4)", false, false, 2, 4, 3, 3, 0, 4, 0, 4, 0, 1, 6, 12, 8},
		{"Aᵀ (3, 2) Bᵀ (4, 3), padded rows", true, true, 2, 4, 3, 5, 0, 6, 0, 7, 0, 1, 12, 21, 11},
		{"a batch of 3, A shared", false, false, 2, 4, 3, 3, 0, 4, 12, 4, 8, 3, 6, 36, 24},
		{"k 0: A and B empty", false, false, 2, 4, 0, 1, 0, 4, 0, 4, 0, 1, 0, 0, 8},
	} {
		la, lb, lc := GemmSpans(c.transA, c.transB, c.m, c.n, c.k, c.lda, c.strideA, c.ldb, c.strideB, c.ldc, c.strideC, c.batch)
		if la != c.la || lb != c.lb || lc != c.lc {
			t.Errorf("%s: spans %d %d %d, want %d %d %d", c.what, la, lb, lc, c.la, c.lb, c.lc)
		}
	}
	for _, c := range []struct {
		what string
		fn   func()
		want string
	}{
		{"negative k", func() { GemmSpans(false, false, 2, 2, -1, 2, 0, 2, 0, 2, 0, 1) },
			"gpu: Gemm with negative size m=2 n=2 k=-1 batch=1"},
		{"negative batch", func() { GemmSpans(false, false, 2, 2, 2, 2, 0, 2, 0, 2, 0, -1) },
			"gpu: Gemm with negative size m=2 n=2 k=2 batch=-1"},
		{"row stride 0 of an empty matrix", func() { MatrixSpan(2, 0, 0, 0, 1, false, "A") },
			"gpu: Gemm's A has row stride 0, less than its 0 columns as stored"},
		{"negative batch stride", func() { MatrixSpan(2, 2, 2, -1, 2, false, "B") },
			"gpu: Gemm's B has a negative batch stride -1"},
		{"outputs one element apart too few", func() { MatrixSpan(2, 3, 4, 6, 2, true, "C") },
			"gpu: Gemm's C: batch stride 6 is less than the 7 elements one matrix spans, so the batch's outputs would overlap"},
	} {
		func() {
			defer func() {
				if r := recover(); r != c.want {
					t.Errorf("%s: panic %v, want %q", c.what, r, c.want)
				}
			}()
			c.fn()
		}()
	}
}
