//go:build cgo

package imgproc

/*
#cgo CFLAGS: -O3 -std=c11
#include "resize.h"
*/
import "C"

import (
	"image"
	"unsafe"
)

// resize.c reads filterWeights' []int as intptr_t: this fails to compile where
// they differ in size.
var _ [unsafe.Sizeof(int(0)) - unsafe.Sizeof(C.intptr_t(0))]byte

// rgbaFast is scratch.rgba done by resize.c: the same float32 operations in the
// same order, so the same tensor, about 5x faster (4 ms -> 0.85 ms for a
// 500x375 photo) because C vectorises the four bytes of a pixel and Go does not.
func (s *scratch) rgbaFast(dst []float32, m *image.RGBA, size int) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	xstart, xw, taps := s.xw.get(w, size, 0, 0).fixed(w)
	yw := s.yw.get(h, size, 0, 0)
	tmp := grow(&s.tmp[0], (h+1)*4*size)
	dst = dst[:size*size*3]
	// cgo pointer rules: none of these holds a Go pointer, and C keeps none of
	// them after the call.
	C.cap_resize_rgba((*C.float)(&dst[0]), (*C.uint8_t)(&m.Pix[m.PixOffset(b.Min.X, b.Min.Y)]),
		C.intptr_t(m.Stride), C.intptr_t(h),
		(*C.intptr_t)(unsafe.Pointer(&xstart[0])), (*C.float)(&xw[0]), C.intptr_t(taps),
		(*C.intptr_t)(unsafe.Pointer(&yw.start[0])), (*C.intptr_t)(unsafe.Pointer(&yw.off[0])), (*C.float)(&yw.w[0]),
		C.intptr_t(size), (*C.float)(&tmp[0]))
}
