package encoder

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/tflitebuild"
	"github.com/captioner/captioner/tflite"
)

// smallConfig is a MobileNetV2-shaped network small enough for an emulated
// GPU, with odd spatial sizes (29 -> 15 -> 8 -> 4) so that SAME padding with
// stride 2 pads on both sides, which the 224x224 model never does.
var smallConfig = Config{Input: 29, Stem: 8, Head: 24, Classes: 10, Blocks: []Block{
	{In: 8, Hidden: 8, Out: 4, Stride: 1},
	{In: 4, Hidden: 12, Out: 6, Stride: 2, Expand: true},
	{In: 6, Hidden: 18, Out: 6, Stride: 1, Expand: true, Residual: true},
	{In: 6, Hidden: 18, Out: 10, Stride: 2, Expand: true},
}}

// tfliteWriter collects a float32 TFLite model (schema version 3) for
// tflitebuild, giving each operator code one entry.
type tfliteWriter struct {
	m     tflitebuild.Model
	codes []tflite.Op
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// tensor adds a tensor (with constant data when data is not nil) and returns its index.
func (w *tfliteWriter) tensor(name string, typ tflite.TensorType, shape []int, data []byte) int {
	buf := 0
	if data != nil {
		w.m.Buffers = append(w.m.Buffers, tflitebuild.Buffer{Data: data})
		buf = len(w.m.Buffers) - 1
	}
	w.m.Tensors = append(w.m.Tensors, tflitebuild.Tensor{Shape: int32s(shape), Type: int8(typ), Buffer: uint32(buf), Name: name})
	return len(w.m.Tensors) - 1
}

func (w *tfliteWriter) floats(name string, shape []int, v []float32) int {
	return w.tensor(name, tflite.Float32, shape, tflitebuild.Float32s(v...))
}

// op adds an operator; options builds its options table (type code optType) or is nil.
func (w *tfliteWriter) op(code tflite.Op, in, out []int, optType byte, options func(b *flatbuffers.Builder) flatbuffers.UOffsetT) {
	ci := slices.Index(w.codes, code)
	if ci < 0 {
		w.codes = append(w.codes, code)
		w.m.Codes = append(w.m.Codes, tflitebuild.Code{Deprecated: int8(code), Builtin: int32(code)})
		ci = len(w.codes) - 1
	}
	w.m.Ops = append(w.m.Ops, tflitebuild.Op{Code: uint32(ci), In: int32s(in), Out: int32s(out), OptType: optType, Opts: options})
}

// convOptions writes Conv2DOptions (depthwise false) or DepthwiseConv2DOptions.
func convOptions(depthwise bool, stride int, act tflite.Activation) func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
	return func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
		if depthwise {
			b.StartObject(7)
			b.PrependInt32Slot(3, 1, 0) // depth_multiplier
			b.PrependInt8Slot(4, int8(act), 0)
		} else {
			b.StartObject(6)
			b.PrependInt8Slot(3, int8(act), 0)
		}
		b.PrependInt8Slot(0, int8(tflite.Same), 0)
		b.PrependInt32Slot(1, int32(stride), 0)
		b.PrependInt32Slot(2, int32(stride), 0)
		return b.EndObject()
	}
}

// syntheticTFLite writes c with random float32 weights as a TFLite model shaped
// like the converter's MobileNetV2 output (AVERAGE_POOL_2D, a 1x1 CONV_2D classifier,
// RESHAPE, SOFTMAX).
func syntheticTFLite(c Config, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	randn := func(n, fanIn int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * math.Sqrt(2/float64(fanIn)))
		}
		return v
	}
	// Buffer 0 is the empty sentinel that activations point to.
	w := &tfliteWriter{m: tflitebuild.Model{Version: 3, Buffers: []tflitebuild.Buffer{{}}}}

	s := c.Input
	x := w.tensor("input", tflite.Float32, []int{1, s, s, 3}, nil)
	conv := func(name string, in, cin, cout, k, stride int, depthwise bool, act tflite.Activation) int {
		o := ceilDiv(s, stride)
		wshape := []int{cout, k, k, cin}
		code := tflite.OpConv2D
		var optType byte = 1
		if depthwise {
			wshape, code, optType = []int{1, k, k, cin}, tflite.OpDepthwiseConv2D, 2
		}
		wt := w.floats(name+"/weights", wshape, randn(numel(wshape), k*k*max(1, cin*btoi(!depthwise))))
		bt := w.floats(name+"/bias", []int{cout}, randn(cout, 8))
		out := w.tensor(name, tflite.Float32, []int{1, o, o, cout}, nil)
		w.op(code, []int{in, wt, bt}, []int{out}, optType, convOptions(depthwise, stride, act))
		s = o
		return out
	}
	x = conv("stem", x, 3, c.Stem, 3, 2, false, tflite.ActRelu6)
	for _, b := range c.Blocks {
		in := x
		if b.Expand {
			x = conv("expand", x, b.In, b.Hidden, 1, 1, false, tflite.ActRelu6)
		}
		x = conv("dw", x, b.Hidden, b.Hidden, 3, b.Stride, true, tflite.ActRelu6)
		x = conv("project", x, b.Hidden, b.Out, 1, 1, false, tflite.ActNone)
		if b.Residual {
			sum := w.tensor("add", tflite.Float32, []int{1, s, s, b.Out}, nil)
			w.op(tflite.OpAdd, []int{in, x}, []int{sum}, 0, nil)
			x = sum
		}
	}
	x = conv("head", x, c.Blocks[len(c.Blocks)-1].Out, c.Head, 1, 1, false, tflite.ActRelu6)
	pooled := w.tensor("pool", tflite.Float32, []int{1, 1, 1, c.Head}, nil)
	grid := int32(s) // Build writes the options after s has moved on
	w.op(tflite.OpAveragePool2D, []int{x}, []int{pooled}, 5, func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
		b.StartObject(6)
		b.PrependInt8Slot(0, int8(tflite.Valid), 0)
		b.PrependInt32Slot(1, 1, 0)
		b.PrependInt32Slot(2, 1, 0)
		b.PrependInt32Slot(3, grid, 0)
		b.PrependInt32Slot(4, grid, 0)
		return b.EndObject()
	})
	s = 1
	logits := conv("classifier", pooled, c.Head, c.Classes, 1, 1, false, tflite.ActNone)
	shape := w.tensor("shape", tflite.Int32, []int{2}, []byte{1, 0, 0, 0, byte(c.Classes), 0, 0, 0})
	flat := w.tensor("logits", tflite.Float32, []int{1, c.Classes}, nil)
	w.op(tflite.OpReshape, []int{logits, shape}, []int{flat}, 0, nil)
	probs := w.tensor("probs", tflite.Float32, []int{1, c.Classes}, nil)
	w.op(tflite.OpSoftmax, []int{flat}, []int{probs}, 9, func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
		b.StartObject(1)
		b.PrependFloat32Slot(0, 1, 0)
		return b.EndObject()
	})
	w.m.Inputs, w.m.Outputs = []int32{0}, []int32{int32(probs)}
	return tflitebuild.Build(w.m)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encodeAll runs e on images (n of them) and returns the grid, pooled features
// and probabilities.
func encodeAll(t *testing.T, e *Encoder, images []float32, n int) (grid, pooled, probs []float32) {
	t.Helper()
	if err := e.Encode(images, n); err != nil {
		t.Fatal(err)
	}
	p := e.Classify()
	grid = make([]float32, n*e.GridLen())
	pooled = make([]float32, n*e.FeatureDim())
	probs = make([]float32, n*e.Config().Classes)
	for _, c := range []struct {
		dst []float32
		src gpu.Buf
	}{{grid, e.Grid()}, {pooled, e.Pooled()}, {probs, p}} {
		if err := e.dev.Download(c.dst, c.src); err != nil {
			t.Fatal(err)
		}
	}
	return grid, pooled, probs
}

// importSynthetic writes the synthetic float32 TFLite model of config c
// (weights from seed), parses it and imports its weights.
func importSynthetic(t *testing.T, c Config, seed uint64) (*tflite.Model, *Weights) {
	t.Helper()
	m, err := tflite.Parse(syntheticTFLite(c, seed))
	if err != nil {
		t.Fatal(err)
	}
	w, err := Import(m)
	if err != nil {
		t.Fatal(err)
	}
	return m, w
}

// TestSyntheticFloatModel writes a small float32 TFLite model, imports it (the
// architecture must come back exactly) and compares the encoder on the CPU, as a
// oneDNN chain and on the per-layer kernels, with the naive interpreter, on a
// batch larger than one chunk.
func TestSyntheticFloatModel(t *testing.T) {
	m, w := importSynthetic(t, smallConfig, 7)
	if !slices.Equal(w.Config.Blocks, smallConfig.Blocks) || w.Config.Head != 24 || w.Config.Classes != 10 || w.Config.GridSize() != 4 {
		t.Fatalf("imported config %+v", w.Config)
	}
	for _, dev := range []gpu.Device{cpu.New(2), perLayer{cpu.New(2)}} {
		e, err := New(dev, w, 5, "float32")
		if err != nil {
			t.Fatal(err)
		}
		n := 5
		rng := rand.New(rand.NewPCG(5, 5))
		images := make([]float32, n*e.ImageLen())
		for i := range images {
			images[i] = rng.Float32()*2 - 1
		}
		grid, pooled, probs := encodeAll(t, e, images, n)
		for i := 0; i < n; i++ {
			ref, err := refRun(m, images[i*e.ImageLen():(i+1)*e.ImageLen()])
			if err != nil {
				t.Fatal(err)
			}
			gd := maxDiff(grid[i*e.GridLen():(i+1)*e.GridLen()], ref.grid)
			pd := maxDiff(pooled[i*24:(i+1)*24], ref.pooled)
			qd := maxDiff(probs[i*10:(i+1)*10], ref.probs)
			if gd > 1e-5 || pd > 1e-5 || qd > 1e-6 {
				t.Errorf("%s: image %d: max diff grid %.2g, pooled %.2g, probs %.2g", e.Describe(), i, gd, pd, qd)
			}
		}
		e.Close()
		dev.Close()
	}
}

// The classifier on its own, on pooled features uploaded to another device,
// gives the naive interpreter's probabilities: what the pipeline computes on
// the decoder's device.
func TestClassifierOnUploadedFeatures(t *testing.T) {
	m, w := importSynthetic(t, smallConfig, 7)
	dev := cpu.New(1)
	defer dev.Close()
	cl, err := NewClassifier(dev, w)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(6, 6))
	const n = 3
	image := make([]float32, w.Config.Input*w.Config.Input*3)
	var pooled, want []float32
	for range n {
		for i := range image {
			image[i] = rng.Float32()*2 - 1
		}
		ref, err := refRun(m, image)
		if err != nil {
			t.Fatal(err)
		}
		pooled = append(pooled, ref.pooled...)
		want = append(want, ref.probs...)
	}
	in, out := dev.Alloc(len(pooled)), dev.Alloc(n*cl.Classes())
	dev.Upload(in, pooled)
	cl.Probs(out, in, n)
	got := make([]float32, n*cl.Classes())
	if err := dev.Download(got, out); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, want); d > 1e-6 {
		t.Errorf("max diff %.2g from the interpreter's probabilities", d)
	}
	delete(w.Tensors, "classifier.bias")
	if _, err := NewClassifier(dev, w); err == nil || err.Error() != "encoder: classifier weights have 240 and 0 values, want 10x24 and 10" {
		t.Errorf("without a bias: %v", err)
	}
}
