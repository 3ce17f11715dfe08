//go:build cgo && !purecpu

package cpu

import (
	"runtime"
	"testing"
)

// BenchmarkOpenBLAS calls OpenBLAS directly through cgo at the Gemm shapes with
// OpenBLAS's own threading on GOMAXPROCS threads, for comparison with
// BenchmarkGemm, which runs OpenBLAS single-threaded on the device's threads.
func BenchmarkOpenBLAS(b *testing.B) {
	setBLASThreads(runtime.GOMAXPROCS(0))
	defer setBLASThreads(1)
	for _, s := range gemmShapes {
		b.Run(s.name, func(b *testing.B) {
			x, w, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
			for i := range x {
				x[i] = float32(i%13) * 0.1
			}
			for i := range w {
				w[i] = float32(i%7) * 0.1
			}
			ldb := s.n
			if s.transB {
				ldb = s.k
			}
			t := start(b)
			for range b.N {
				blasSgemm(false, s.transB, s.m, s.n, s.k, 1, x, s.k, w, ldb, 0, c, s.n)
			}
			t.report(b, 2*float64(s.m*s.n*s.k))
		})
	}
}
