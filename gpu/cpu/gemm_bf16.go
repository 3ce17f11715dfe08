//go:build cgo && !purecpu

package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11
#include "gemm_bf16.h"
*/
import "C"

import (
	"sync"

	"github.com/captioner/captioner/gpu"
)

// hasBF16Dot reports whether this CPU has AVX512-BF16's dot product, which
// the packed bfloat16 weights need.
var hasBF16Dot = sync.OnceValue(func() bool { return C.cap_bf16_gemm_available() != 0 })

func packBF16(d *Device, w gpu.Buf, n, k, ldw int) gpu.PackedWeight {
	pw := &bf16Weight{packedWeight: packedWeight{d, w, n, k, ldw}, vals: make([]uint16, (n+15)/16*16*evenK(k))}
	pw.Update()
	return pw
}

// evenK is k rounded up to whole pairs: the bfloat16 dot product takes two.
func evenK(k int) int { return 2 * ((k + 1) / 2) }

// bf16Weight is a weight in the bfloat16 kernel's layout.
type bf16Weight struct {
	packedWeight
	vals []uint16
	rows sync.Pool // *[]uint16: A rounded to bfloat16
}

// MulT computes C (m, n) = A (m, k)·Wᵀ + beta·C: A rounded to bfloat16 once,
// then the threads each take a range of C's columns (the weight's rows).
func (w *bf16Weight) MulT(m int, a gpu.Buf, lda int, beta float32, c gpu.Buf, ldc int) {
	as, cs := w.operands(m, a, lda, c, ldc)
	if m == 0 {
		return
	}
	kk := evenK(w.k)
	bufp, _ := w.rows.Get().(*[]uint16)
	if bufp == nil || cap(*bufp) < m*kk {
		buf := make([]uint16, m*kk)
		bufp = &buf
	}
	ab := (*bufp)[:m*kk]
	w.d.rowsOver(m, kk, func(lo, hi int) {
		C.cap_bf16_rows((*C.ushort)(&ab[lo*kk]), ptr(as[lo*lda:]), C.long(hi-lo), C.long(w.k), C.long(lda))
	})
	w.d.overTiles(w.n, m*kk, 2, func(j0, j1 int) { // twice float32's multiply-adds a cycle
		C.cap_bf16_gemm_nt(C.long(m), C.long(j0), C.long(j1), C.long(w.n), C.long(w.k),
			(*C.ushort)(&ab[0]), (*C.ushort)(&w.vals[0]), C.float(beta), ptr(cs), C.long(ldc))
	})
	w.rows.Put(bufp)
}

func (w *bf16Weight) Update() {
	C.cap_bf16_pack_nt((*C.ushort)(&w.vals[0]), ptr(w.d.f(w.w)), C.long(w.n), C.long(w.k), C.long(w.ldw))
}

func (w *bf16Weight) Free() { w.vals = nil }
