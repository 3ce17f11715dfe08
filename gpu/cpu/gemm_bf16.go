//go:build cgo && !purecpu

package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11
#include "gemm_bf16.h"
*/
import "C"

import (
	"fmt"
	"sync"

	"github.com/captioner/captioner/gpu"
)

// hasBF16Dot reports whether this CPU has AVX512-BF16's dot product, which
// the packed bfloat16 weights need.
var hasBF16Dot = sync.OnceValue(func() bool { return C.cap_bf16_gemm_available() != 0 })

// PackWeight packs w (n, k), row stride ldw, in bfloat16 (see
// gpu.PackWeight, which keeps float32 weights itself). It needs AVX512-BF16;
// gpu.FastBFloat16 says whether it pays.
func (d *Device) PackWeight(w gpu.Buf, n, k, ldw int, p gpu.Precision) (gpu.PackedWeight, error) {
	matrices(d.f(w), n, k, ldw, 0, 1, "W")
	switch {
	case p != gpu.BFloat16:
		return nil, fmt.Errorf("gpu/cpu: weights cannot be packed in precision %q; use float32 or bfloat16", p)
	case !hasBF16Dot():
		return nil, fmt.Errorf("gpu/cpu: bfloat16 weights need AVX512-BF16, which this CPU lacks; use precision float32")
	case n == 0 || k == 0:
		return nil, fmt.Errorf("gpu/cpu: cannot pack an empty (%d, %d) weight", n, k)
	}
	pw := &bf16Weight{d: d, w: w, n: n, k: k, ldw: ldw, packed: make([]uint16, (n+15)/16*16*evenK(k))}
	pw.Update()
	return pw, nil
}

// evenK is k rounded up to whole pairs: the bfloat16 dot product takes two.
func evenK(k int) int { return 2 * ((k + 1) / 2) }

// bf16Weight is a weight in the bfloat16 kernel's layout.
type bf16Weight struct {
	d         *Device
	w         gpu.Buf // the float32 weight packed
	n, k, ldw int
	packed    []uint16
	rows      sync.Pool // *[]uint16: A rounded to bfloat16
}

// MulT computes C (m, n) = A (m, k)·Wᵀ + beta·C: A rounded to bfloat16 once,
// then the threads each take a range of C's columns (the weight's rows).
func (w *bf16Weight) MulT(m int, a gpu.Buf, lda int, beta float32, c gpu.Buf, ldc int) {
	as := matrices(w.d.f(a), m, w.k, lda, 0, 1, "A")
	cs := matrices(w.d.f(c), m, w.n, ldc, 0, 1, "C")
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
	C.cap_bf16_rows((*C.ushort)(&ab[0]), ptr(as), C.long(m), C.long(w.k), C.long(lda))
	// The threads take whole 32-column tiles (the kernel's widest), about
	// gemmGrain multiply-adds each at least.
	tiles := (w.n + 31) / 32
	grain := max(1, gemmGrain/(m*kk*32))
	w.d.parallel(tiles, grain, func(lo, hi int) {
		j0, j1 := lo*32, min(hi*32, w.n)
		C.cap_bf16_gemm_nt(C.long(m), C.long(j0), C.long(j1), C.long(w.n), C.long(w.k),
			(*C.ushort)(&ab[0]), (*C.ushort)(&w.packed[0]), C.float(beta), ptr(cs), C.long(ldc))
	})
	w.rows.Put(bufp)
}

func (w *bf16Weight) Update() {
	C.cap_bf16_pack_nt((*C.ushort)(&w.packed[0]), ptr(w.d.f(w.w)), C.long(w.n), C.long(w.k), C.long(w.ldw))
}

func (w *bf16Weight) Free() { w.packed = nil }
