//go:build cgo

package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11
#cgo LDFLAGS: -lm
#include "kernels.h"
*/
import "C"

import "github.com/captioner/captioner/gpu"

// ptr is the address of s[0], or NULL for an empty slice.
func ptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(&s[0])
}

// biasActRows writes out (rows, cols) = act(x + bias); bias may be nil, out may be x.
func biasActRows(out, x, bias []float32, rows, cols int, act gpu.Act) {
	C.cap_bias_act(ptr(out), ptr(x), ptr(bias), C.long(rows), C.long(cols), C.int(act))
}

// dwRows computes output rows [oh0, oh1) of one image: in (H, W, C), out (OH, OW, C).
// zeros holds at least W*C zeros.
func dwRows(out, in, w, bias, zeros []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	C.cap_dw_rows(ptr(out), ptr(in), ptr(w), ptr(bias), ptr(zeros),
		C.int(p.H), C.int(p.W), C.int(p.C), C.int(p.KH), C.int(p.KW), C.int(p.StrideH), C.int(p.StrideW),
		C.int(p.PadTop), C.int(p.PadLeft), C.int(p.OW), C.int(oh0), C.int(oh1), C.int(act))
}

// convRows computes output rows [oh0, oh1) of one image of a direct convolution:
// in (H, W, C), wt (KH*KW*C, OC), out (OH, OW, OC).
func convRows(out, in, wt, bias []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	C.cap_conv_rows(ptr(out), ptr(in), ptr(wt), ptr(bias),
		C.int(p.H), C.int(p.W), C.int(p.C), C.int(p.OC), C.int(p.KH), C.int(p.KW), C.int(p.StrideH), C.int(p.StrideW),
		C.int(p.PadTop), C.int(p.PadLeft), C.int(p.OW), C.int(oh0), C.int(oh1), C.int(act))
}
