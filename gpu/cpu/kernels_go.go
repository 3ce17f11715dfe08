//go:build !cgo

package cpu

import (
	"math"

	"github.com/captioner/captioner/gpu"
)

// biasActRows writes out (rows, cols) = act(x + bias); bias may be nil, out may be x.
func biasActRows(out, x, bias []float32, rows, cols int, act gpu.Act) {
	for r := 0; r < rows; r++ {
		o := out[r*cols : (r+1)*cols]
		xr := x[r*cols : (r+1)*cols]
		if bias != nil {
			for j, v := range xr {
				o[j] = v + bias[j]
			}
		} else {
			copy(o, xr)
		}
		actRow(o, act)
	}
}

// dwRows computes output rows [oh0, oh1) of one image: in (H, W, C), out (OH, OW, C),
// one output pixel at a time with the channel loop innermost.
func dwRows(out, in, w, bias, _ []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	C := p.C
	for oh := oh0; oh < oh1; oh++ {
		orow := out[oh*p.OW*C : (oh+1)*p.OW*C]
		for ow := 0; ow < p.OW; ow++ {
			o := orow[ow*C : (ow+1)*C]
			if bias != nil {
				copy(o, bias)
			} else {
				clear(o)
			}
			for kh := 0; kh < p.KH; kh++ {
				ih := oh*p.StrideH - p.PadTop + kh
				if ih < 0 || ih >= p.H {
					continue
				}
				for kw := 0; kw < p.KW; kw++ {
					iw := ow*p.StrideW - p.PadLeft + kw
					if iw < 0 || iw >= p.W {
						continue
					}
					x := in[(ih*p.W+iw)*C : (ih*p.W+iw+1)*C]
					wk := w[(kh*p.KW+kw)*C : (kh*p.KW+kw+1)*C]
					for c := range o {
						o[c] += x[c] * wk[c]
					}
				}
			}
		}
		actRow(orow, act)
	}
}

// actRow applies act to y in place.
func actRow(y []float32, act gpu.Act) {
	switch act {
	case gpu.ActReLU:
		for i, v := range y {
			y[i] = max(v, 0)
		}
	case gpu.ActReLU6:
		for i, v := range y {
			y[i] = min(max(v, 0), 6)
		}
	case gpu.ActTanh:
		for i, v := range y {
			y[i] = float32(math.Tanh(float64(v)))
		}
	case gpu.ActSigmoid:
		for i, v := range y {
			y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	}
}

// convRows computes output rows [oh0, oh1) of one image of a direct convolution:
// in (H, W, C), wt (KH*KW*C, OC), out (OH, OW, OC), output channels innermost.
func convRows(out, in, wt, bias []float32, p *gpu.ConvParams, oh0, oh1 int, act gpu.Act) {
	OC := p.OC
	for oh := oh0; oh < oh1; oh++ {
		orow := out[oh*p.OW*OC : (oh+1)*p.OW*OC]
		for ow := 0; ow < p.OW; ow++ {
			o := orow[ow*OC : (ow+1)*OC]
			if bias != nil {
				copy(o, bias)
			} else {
				clear(o)
			}
			for kh := 0; kh < p.KH; kh++ {
				ih := oh*p.StrideH - p.PadTop + kh
				if ih < 0 || ih >= p.H {
					continue
				}
				for kw := 0; kw < p.KW; kw++ {
					iw := ow*p.StrideW - p.PadLeft + kw
					if iw < 0 || iw >= p.W {
						continue
					}
					for c, x := range in[(ih*p.W+iw)*p.C : (ih*p.W+iw+1)*p.C] {
						wk := wt[((kh*p.KW+kw)*p.C+c)*OC : ((kh*p.KW+kw)*p.C+c+1)*OC]
						for j, w := range wk {
							o[j] += x * w
						}
					}
				}
			}
		}
		actRow(orow, act)
	}
}
