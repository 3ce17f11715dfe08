package tflite

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float32s returns the constant value of t as float32: FLOAT32 data as stored, and
// UINT8, INT8 and INT32 data dequantized with t's own parameters,
// real = scale[c] * (q - zero_point[c]), per tensor or per channel c along Quant.Dim.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Data == nil {
		return nil, fmt.Errorf("tflite: %s has no constant data (it is an activation)", t)
	}
	n := t.NumElements()
	if t.Type == Float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return out, nil
	}
	if t.Quant == nil {
		return nil, fmt.Errorf("tflite: %s is %s without quantization parameters; cannot convert it to float32", t, t.Type)
	}
	return t.dequantize(t.Quant.Scale, t.Quant.ZeroPoint)
}

// Int32s returns the constant value of an INT32 tensor (axes, shapes), as stored.
func (t *Tensor) Int32s() ([]int32, error) {
	if t.Type != Int32 || t.Data == nil {
		return nil, fmt.Errorf("tflite: %s is not a constant INT32 tensor", t)
	}
	out := make([]int32, t.NumElements())
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// Bias returns the INT32 bias of a quantized convolution or fully connected layer
// as float32. TFLite defines its scale as input_scale * weight_scale[c] whatever the
// bias tensor itself records, so that is the scale used here; the recorded one is
// only checked against it. A FLOAT32 bias is returned as stored.
func Bias(bias, input, weight *Tensor) ([]float32, error) {
	if bias.Type == Float32 {
		return bias.Float32s()
	}
	if bias.Type != Int32 {
		return nil, fmt.Errorf("tflite: bias %s: want INT32 or FLOAT32", bias)
	}
	if input.Quant == nil || len(input.Quant.Scale) != 1 {
		return nil, fmt.Errorf("tflite: bias %s: input %s needs one quantization scale", bias, input)
	}
	if weight.Quant == nil {
		return nil, fmt.Errorf("tflite: bias %s: weight %s is not quantized", bias, weight)
	}
	if bias.Data == nil {
		return nil, fmt.Errorf("tflite: bias %s has no constant data", bias)
	}
	ws := weight.Quant.Scale
	n := bias.NumElements()
	if len(ws) != 1 && len(ws) != n {
		return nil, fmt.Errorf("tflite: bias %s: weight %s has %d scales, want 1 or %d (one per output channel)", bias, weight, len(ws), n)
	}
	scale := make([]float32, len(ws))
	for c, s := range ws {
		scale[c] = input.Quant.Scale[0] * s
		// The converter writes the same product; a different recorded scale means
		// the tensors were not wired the way this reader assumes.
		if bias.Quant != nil && len(bias.Quant.Scale) == len(ws) {
			if rec := bias.Quant.Scale[c]; math.Abs(float64(rec-scale[c])) > 1e-3*math.Abs(float64(scale[c])) {
				return nil, fmt.Errorf("tflite: bias %s: recorded scale %g differs from input scale x weight scale = %g at channel %d",
					bias, rec, scale[c], c)
			}
		}
	}
	zero := make([]int64, len(ws)) // bias zero points are 0 by definition
	return bias.dequantize(scale, zero)
}

// dequantize converts integer data with scale and zero point per tensor (len 1) or
// per index along t.Quant.Dim (len == Shape[Dim]).
func (t *Tensor) dequantize(scale []float32, zero []int64) ([]float32, error) {
	n := t.NumElements()
	// inner is the number of consecutive elements sharing one channel index.
	inner, channels := n, 1
	if len(scale) != 1 {
		d := 0
		if t.Quant != nil {
			d = t.Quant.Dim
		}
		if d < 0 || d >= len(t.Shape) || t.Shape[d] != len(scale) {
			return nil, fmt.Errorf("tflite: %s: %d per-channel scales do not match dimension %d", t, len(scale), d)
		}
		channels = len(scale)
		inner = 1
		for _, s := range t.Shape[d+1:] {
			inner *= s
		}
	}
	out := make([]float32, n)
	for i := range out {
		c := (i / inner) % channels
		var q int64
		switch t.Type {
		case Uint8:
			q = int64(t.Data[i])
		case Int8:
			q = int64(int8(t.Data[i]))
		case Int32:
			q = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		default:
			return nil, fmt.Errorf("tflite: %s: cannot dequantize %s data", t, t.Type)
		}
		out[i] = scale[c] * float32(q-zero[c])
	}
	return out, nil
}

// Range returns the real values a UINT8 or INT8 tensor quantized per tensor can
// hold, scale * (q - zero_point) for q from the type's least to its greatest:
// for an activation, the range its quantized model was calibrated or trained
// to. ok is false for any other tensor (float, or quantized per channel).
func (t *Tensor) Range() (lo, hi float32, ok bool) {
	var qmin, qmax int64
	switch t.Type {
	case Uint8:
		qmin, qmax = 0, 255
	case Int8:
		qmin, qmax = -128, 127
	default:
		return 0, 0, false
	}
	if t.Quant == nil || len(t.Quant.Scale) != 1 || len(t.Quant.ZeroPoint) != 1 {
		return 0, 0, false
	}
	s, z := t.Quant.Scale[0], t.Quant.ZeroPoint[0]
	return s * float32(qmin-z), s * float32(qmax-z), true
}
