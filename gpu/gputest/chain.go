package gputest

import (
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// testConvChainInt8 runs a small chain in the shape of MobileNetV2's (a strided
// 3x3 stem, depthwise 3x3, 1x1 expand and linear project, a residual add, a 1x1
// head) in int8 on a gpu.ConvPlanner, against refInt8Chain: the quantization
// rules of gpu.Int8 written as plain loops. Ranges are picked so that every rule
// shows: a ReLU6 layer whose range is wider than 6 (the clip, not the type's
// saturation, bounds it), linear layers of different ranges joined by the
// residual (its source is rescaled), and biases large enough that adding them
// in the wrong units moves the outputs by whole steps. A rounding that falls
// the other way in float32 moves an output by at most one input step times a
// weight of the last layer, so outputs may differ by two of those; a wrong
// rule moves them by far more.
func testConvChainInt8(t *testing.T, dev gpu.Device) {
	planner, ok := dev.(gpu.ConvPlanner)
	if !ok {
		t.Skipf("%s does not plan convolution chains", dev.Name())
	}
	h := newHarness(t, dev, 8)
	const s = 10 // input side
	layers := []gpu.ConvLayer{
		{P: gpu.ConvParams{H: s, W: s, C: 3, OC: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadTop: 0, PadLeft: 0, OH: 5, OW: 5}, Act: gpu.ActReLU6, InMax: 1, OutMax: 6},
		{Depthwise: true, P: gpu.ConvParams{H: 5, W: 5, C: 8, OC: 8, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 5, OW: 5}, Act: gpu.ActReLU6, OutMax: 6},
		{P: conv1x1(5, 8, 4), Act: gpu.ActNone, OutMax: 3},
		{P: conv1x1(5, 4, 12), Act: gpu.ActReLU6, OutMax: 8},
		{Depthwise: true, P: gpu.ConvParams{H: 5, W: 5, C: 12, OC: 12, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 5, OW: 5}, Act: gpu.ActReLU6, OutMax: 6},
		{P: conv1x1(5, 12, 4), Act: gpu.ActNone, Residual: 2, OutMax: 5},
		{P: conv1x1(5, 4, 16), Act: gpu.ActReLU6},
	}
	for i := range layers {
		l := &layers[i]
		if i != 5 {
			l.Residual = -1
		}
		n := l.P.OC * l.P.KH * l.P.KW * l.P.C
		if l.Depthwise {
			n = l.P.KH * l.P.KW * l.P.C
		}
		l.Weight = h.uniform(n, -1, 1)
		l.Bias = h.uniform(l.P.OC, -1, 1)
	}
	const images = 2
	in := h.uniform(images*s*s*3, -1, 1)
	chain, err := planner.PlanConvChain(layers, images, gpu.Int8)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	last := layers[len(layers)-1].P
	out := h.out(images * last.OH * last.OW * last.OC)
	if err := chain.Run(out, h.in(in), images); err != nil {
		t.Fatal(err)
	}
	want, flip := refInt8Chain(layers, in, images)
	near(t, "int8 chain", h.get(out), want, tolerance(want, 2*flip, 0))
	// One image alone: the CPU splits its rows between two threads.
	one := h.out(last.OH * last.OW * last.OC)
	if err := chain.Run(one, h.in(in[:s*s*3]), 1); err != nil {
		t.Fatal(err)
	}
	near(t, "int8 chain, one image", h.get(one), want[:len(want)/images], tolerance(want[:len(want)/images], 2*flip, 0))

	// One layer, so the float32 output is exact up to float32 rounding, with
	// weights on a grid of 0.01: channels 0 and 1 fit in ±127 of its steps and
	// keep it; channel 2 reaches 2.0 and is rounded to steps of 2.0/127.
	// Rounding the grid weights again would move outputs by about 1e-3.
	grid := gpu.ConvLayer{P: conv1x1(3, 5, 3), Act: gpu.ActNone, Residual: -1, InMax: 1.27, WeightStep: 0.01}
	for o := range 3 {
		for range 5 {
			k := h.rng.IntN(181) - 90
			if o == 2 {
				k *= 2
				if len(grid.Weight) == 10 {
					k = 200
				}
			}
			grid.Weight = append(grid.Weight, float32(k)*0.01)
		}
	}
	grid.Bias = h.uniform(3, -1, 1)
	in = h.uniform(2*3*3*5, -1.27, 1.27)
	chain, err = planner.PlanConvChain([]gpu.ConvLayer{grid}, 2, gpu.Int8)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	out = h.out(2 * 3 * 3 * 3)
	if err := chain.Run(out, h.in(in), 2); err != nil {
		t.Fatal(err)
	}
	want, _ = refInt8Chain([]gpu.ConvLayer{grid}, in, 2)
	near(t, "int8 layer on a weight grid", h.get(out), want, tolerance(want, 1e-5, 1e-6))
}

func conv1x1(side, c, oc int) gpu.ConvParams {
	return gpu.ConvParams{H: side, W: side, C: c, OC: oc, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: side, OW: side}
}

// refInt8Chain runs layers on n images as gpu.Int8 defines it: the input in s8
// steps of InMax/127; each layer's weights in s8 steps of (its output channel's
// largest magnitude)/127; each sum exact, plus the bias, times input step x
// weight step; the activation; the residual source's real value added; the
// result rounded to steps of OutMax/255 (u8, after a ReLU) or OutMax/127 (s8)
// and saturated, except the last layer's, which stays real. It returns the last
// layer's output and flip, one step of its input times its largest weight: the
// most one input rounded the other way moves an output.
func refInt8Chain(layers []gpu.ConvLayer, in []float32, n int) (out []float64, flip float64) {
	round := func(x float64) float64 { return math.Copysign(math.Floor(math.Abs(x)+0.5), x) }
	stepIn := float64(layers[0].InMax) / 127
	x := make([]float64, len(in)) // the current activation, real values
	for i, v := range in {
		x[i] = stepIn * math.Max(-128, math.Min(127, round(float64(v)/stepIn)))
	}
	outs := make([][]float64, len(layers))
	for li, l := range layers {
		p := l.P
		p.N = n
		// Quantize the weights per output channel (keeping WeightStep where
		// they fit in ±127 of its steps); refConv then sums exactly-representable
		// products.
		w := make([]float32, len(l.Weight))
		per := len(l.Weight) / p.OC
		for o := range p.OC {
			idx := func(k int) int { return o*per + k }
			if l.Depthwise {
				idx = func(k int) int { return k*p.C + o }
			}
			most := 0.0
			for k := range per {
				most = math.Max(most, math.Abs(float64(l.Weight[idx(k)])))
			}
			ws := most / 127
			if l.WeightStep > 0 && most <= 127*float64(l.WeightStep) {
				ws = float64(l.WeightStep)
			}
			for k := range per {
				w[idx(k)] = float32(ws * round(float64(l.Weight[idx(k)])/ws))
			}
			flip = math.Max(flip, stepIn*most)
		}
		xs := make([]float32, len(x))
		for i, v := range x {
			xs[i] = float32(v)
		}
		y, _ := refConv(p, xs, w, l.Bias, l.Act, l.Depthwise)
		if l.Residual >= 0 {
			for i := range y {
				y[i] += outs[l.Residual][i]
			}
		}
		if li == len(layers)-1 {
			return y, flip
		}
		lo, hi, step := -128.0, 127.0, float64(l.OutMax)/127
		if l.Act != gpu.ActNone {
			lo, hi, step = 0, 255, float64(l.OutMax)/255
		}
		for i, v := range y {
			y[i] = step * math.Max(lo, math.Min(hi, round(v/step)))
		}
		outs[li], x, stepIn = y, y, step
	}
	panic("unreachable")
}
