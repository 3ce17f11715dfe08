//go:build cgo && !purecpu

package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11
#cgo LDFLAGS: -lm
#include "gemm_i8.h"
*/
import "C"

import (
	"sync"

	"github.com/captioner/captioner/gpu"
)

// hasVNNI reports whether this CPU has AVX512-VNNI's byte dot product, which
// the packed int8 weights need.
var hasVNNI = sync.OnceValue(func() bool { return C.cap_i8_gemm_available() != 0 })

func packInt8(d *Device, w gpu.Buf, n, k, ldw int) gpu.PackedWeight {
	np := (n + 15) / 16 * 16
	pw := &i8Weight{packedWeight: packedWeight{d, w, n, k, ldw},
		vals: make([]int8, np*quadK(k)), scale: make([]float32, np), colsum: make([]int32, np)}
	pw.Update()
	return pw
}

// quadK is k rounded up to whole quads: the byte dot product takes four.
func quadK(k int) int { return 4 * ((k + 3) / 4) }

// i8Weight is a weight in the int8 kernel's layout: quantized values, a scale
// and a sum of the values per row.
type i8Weight struct {
	packedWeight
	vals   []int8
	scale  []float32
	colsum []int32
	rows   sync.Pool // *i8Rows: A quantized
}

type i8Rows struct {
	q           []uint8
	scale, zero []float32
}

// MulT computes C (m, n) = A (m, k)·Wᵀ + beta·C: A quantized once, each row
// over its own range, then the threads each take a range of C's columns.
func (w *i8Weight) MulT(m int, a gpu.Buf, lda int, beta float32, c gpu.Buf, ldc int) {
	as, cs := w.operands(m, a, lda, c, ldc)
	if m == 0 {
		return
	}
	kk := quadK(w.k)
	r, _ := w.rows.Get().(*i8Rows)
	if r == nil || cap(r.q) < m*kk || cap(r.scale) < m {
		r = &i8Rows{q: make([]uint8, m*kk), scale: make([]float32, m), zero: make([]float32, m)}
	}
	q, s, z := r.q[:m*kk], r.scale[:m], r.zero[:m]
	w.d.rowsOver(m, kk, func(lo, hi int) {
		C.cap_i8_rows((*C.uchar)(&q[lo*kk]), ptr(s[lo:]), ptr(z[lo:]), ptr(as[lo*lda:]), C.long(hi-lo), C.long(w.k), C.long(lda))
	})
	w.d.overTiles(w.n, m*kk, 4, func(j0, j1 int) { // four times float32's multiply-adds a cycle
		C.cap_i8_gemm_nt(C.long(m), C.long(j0), C.long(j1), C.long(w.n), C.long(w.k),
			(*C.uchar)(&q[0]), ptr(s), ptr(z), (*C.schar)(&w.vals[0]), ptr(w.scale), (*C.int)(&w.colsum[0]),
			C.float(beta), ptr(cs), C.long(ldc))
	})
	w.rows.Put(r)
}

func (w *i8Weight) Update() {
	C.cap_i8_pack_nt((*C.schar)(&w.vals[0]), ptr(w.scale), (*C.int)(&w.colsum[0]), ptr(w.d.f(w.w)),
		C.long(w.n), C.long(w.k), C.long(w.ldw))
}

func (w *i8Weight) Free() { w.vals, w.scale, w.colsum = nil, nil, nil }
