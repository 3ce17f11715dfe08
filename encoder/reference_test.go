package encoder

import (
	"fmt"
	"math"

	"github.com/captioner/captioner/tflite"
)

// refResult holds what the naive interpreter computed.
type refResult struct {
	grid, pooled, probs []float32
}

// refRun interprets the TFLite graph of m in float32 with plain loops, straight
// from the file's tensors and options (padding computed from TFLite's definition
// of SAME), independently of the importer's layer mapping and of any device. img
// is (S, S, 3) NHWC in [-1, 1]; batch 1.
func refRun(m *tflite.Model, img []float32) (refResult, error) {
	g := &m.Subgraphs[0]
	vals := map[int][]float32{g.Inputs[0]: img}
	var r refResult
	get := func(i int) ([]float32, error) {
		if v, ok := vals[i]; ok {
			return v, nil
		}
		return g.Tensors[i].Float32s()
	}
	for _, op := range g.Operators {
		x, err := get(op.Inputs[0])
		if err != nil {
			return r, err
		}
		in, out := &g.Tensors[op.Inputs[0]], &g.Tensors[op.Outputs[0]]
		var y []float32
		switch op.Op {
		case tflite.OpQuantize, tflite.OpDequantize, tflite.OpReshape, tflite.OpSqueeze:
			y = x
		case tflite.OpConv2D, tflite.OpDepthwiseConv2D:
			w, err := get(op.Inputs[1])
			if err != nil {
				return r, err
			}
			b, err := tflite.Bias(&g.Tensors[op.Inputs[2]], in, &g.Tensors[op.Inputs[1]])
			if err != nil {
				return r, err
			}
			y = refConv(x, w, b, in.Shape, g.Tensors[op.Inputs[1]].Shape, out.Shape, op.Op == tflite.OpDepthwiseConv2D, op.Options)
		case tflite.OpAdd:
			x2, err := get(op.Inputs[1])
			if err != nil {
				return r, err
			}
			y = make([]float32, len(x))
			for i := range y {
				y[i] = x[i] + x2[i]
			}
		case tflite.OpAveragePool2D, tflite.OpMean:
			// Global average over H and W of (1, H, W, C).
			c := in.Shape[3]
			hw := len(x) / c
			y = make([]float32, c)
			for i := 0; i < hw; i++ {
				for ch := 0; ch < c; ch++ {
					y[ch] += x[i*c+ch]
				}
			}
			for ch := range y {
				y[ch] /= float32(hw)
			}
			r.grid, r.pooled = x, y
		case tflite.OpSoftmax:
			mx := x[0]
			for _, v := range x {
				mx = max(mx, v)
			}
			var sum float64
			y = make([]float32, len(x))
			for i, v := range x {
				e := math.Exp(float64(v - mx))
				y[i] = float32(e)
				sum += e
			}
			for i := range y {
				y[i] = float32(float64(y[i]) / sum)
			}
			r.probs = y
		default:
			return r, fmt.Errorf("reference: operator %d: %s not interpreted", op.Index, op.Op)
		}
		vals[op.Outputs[0]] = y
	}
	return r, nil
}

// refConv is a direct convolution (or depthwise convolution, multiplier 1) with
// TFLite padding: SAME pads max((out-1)*stride + k - in, 0) in total, the smaller
// half before; VALID pads nothing.
func refConv(x, w, b []float32, inShape, wShape, outShape []int, depthwise bool, options any) []float32 {
	var pad tflite.Padding
	var stride int
	var act tflite.Activation
	switch o := options.(type) {
	case *tflite.Conv2DOptions:
		pad, stride, act = o.Padding, o.StrideH, o.Activation
	case *tflite.DepthwiseConv2DOptions:
		pad, stride, act = o.Padding, o.StrideH, o.Activation
	}
	H, W, C := inShape[1], inShape[2], inShape[3]
	KH, KW := wShape[1], wShape[2]
	OH, OW, OC := outShape[1], outShape[2], outShape[3]
	padTop, padLeft := 0, 0
	if pad == tflite.Same {
		padTop = max((OH-1)*stride+KH-H, 0) / 2
		padLeft = max((OW-1)*stride+KW-W, 0) / 2
	}
	y := make([]float32, OH*OW*OC)
	for oh := 0; oh < OH; oh++ {
		for ow := 0; ow < OW; ow++ {
			for oc := 0; oc < OC; oc++ {
				var s float64
				for kh := 0; kh < KH; kh++ {
					ih := oh*stride - padTop + kh
					if ih < 0 || ih >= H {
						continue
					}
					for kw := 0; kw < KW; kw++ {
						iw := ow*stride - padLeft + kw
						if iw < 0 || iw >= W {
							continue
						}
						if depthwise {
							// weight (1, KH, KW, C)
							s += float64(x[(ih*W+iw)*C+oc]) * float64(w[(kh*KW+kw)*C+oc])
							continue
						}
						// weight (OC, KH, KW, C)
						for c := 0; c < C; c++ {
							s += float64(x[(ih*W+iw)*C+c]) * float64(w[((oc*KH+kh)*KW+kw)*C+c])
						}
					}
				}
				v := float32(s) + b[oc]
				switch act {
				case tflite.ActRelu6:
					v = min(max(v, 0), 6)
				case tflite.ActNone:
				default:
					panic("reference: activation " + act.String())
				}
				y[(oh*OW+ow)*OC+oc] = v
			}
		}
	}
	return y
}
