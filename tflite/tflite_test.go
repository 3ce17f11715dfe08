package tflite

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
)

// modelPath returns a file of the shared assets folder, skipping when the tests
// run without one (CI sets CAPTIONER_ASSETS).
func modelPath(t *testing.T, name string) string {
	t.Helper()
	dir := testassets.Dir(t, "the test reads its TFLite files")
	return filepath.Join(dir, "models/mobilenet_v2", name)
}

func count(g *Subgraph) map[Op]int {
	n := map[Op]int{}
	for _, op := range g.Operators {
		n[op.Op]++
	}
	return n
}

func TestReadsUint8PerTensorModel(t *testing.T) {
	m, err := ReadFile(modelPath(t, "mobilenet_v2_1.0_224_quant.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	g := &m.Subgraphs[0]
	if len(g.Operators) != 66 || len(g.Tensors) != 174 {
		t.Fatalf("%d operators, %d tensors; want 66, 174", len(g.Operators), len(g.Tensors))
	}
	want := map[Op]int{OpConv2D: 36, OpDepthwiseConv2D: 17, OpAdd: 10, OpAveragePool2D: 1, OpReshape: 1, OpSoftmax: 1}
	for op, n := range want {
		if count(g)[op] != n {
			t.Errorf("%d %s operators, want %d", count(g)[op], op, n)
		}
	}
	in := &g.Tensors[g.Inputs[0]]
	if in.Type != Uint8 || in.Quant.Scale[0] != 0.0078125 || in.Quant.ZeroPoint[0] != 128 || in.Shape[1] != 224 {
		t.Errorf("input %v quant %+v", in, in.Quant)
	}
	if out := &g.Tensors[g.Outputs[0]]; out.Shape[1] != 1001 {
		t.Errorf("output %v", out)
	}
	op := g.Operators[0]
	o, ok := op.Options.(*Conv2DOptions)
	if op.Op != OpConv2D || !ok || *o != (Conv2DOptions{Same, 2, 2, ActRelu6, 1, 1}) {
		t.Fatalf("operator 0: %s %+v", op.Op, op.Options)
	}
	w := &g.Tensors[op.Inputs[1]]
	if w.Type != Uint8 || len(w.Shape) != 4 || w.Shape[0] != 32 || w.Shape[3] != 3 || len(w.Quant.Scale) != 1 {
		t.Fatalf("stem weight %v", w)
	}
	dw, ok := g.Operators[1].Options.(*DepthwiseConv2DOptions)
	if !ok || dw.DepthMultiplier != 1 || dw.StrideH != 1 || dw.Padding != Same {
		t.Errorf("operator 1 options %+v", g.Operators[1].Options)
	}
	pool, ok := g.Operators[62].Options.(*Pool2DOptions)
	if !ok || pool.FilterHeight != 7 || pool.FilterWidth != 7 || pool.Padding != Valid {
		t.Errorf("operator 62 options %+v", g.Operators[62].Options)
	}
	if sm, ok := g.Operators[65].Options.(*SoftmaxOptions); !ok || sm.Beta != 1 {
		t.Errorf("softmax options %+v", g.Operators[65].Options)
	}

	// Dequantized weights: real = scale * (q - zp) exactly, for the first element.
	f, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if want := w.Quant.Scale[0] * float32(int64(w.Data[0])-w.Quant.ZeroPoint[0]); f[0] != want {
		t.Errorf("weight[0] = %g, want %g", f[0], want)
	}
	b, err := Bias(&g.Tensors[op.Inputs[2]], in, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 32 || math.Abs(float64(b[0])) > 10 {
		t.Errorf("bias %v", b[:4])
	}
}

func TestReadsInt8PerChannelModel(t *testing.T) {
	m, err := ReadFile(modelPath(t, "tf2_mobilenet_v2_1.0_224_ptq.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	g := &m.Subgraphs[0]
	want := map[Op]int{OpQuantize: 2, OpConv2D: 36, OpDepthwiseConv2D: 17, OpAdd: 10, OpMean: 1, OpReshape: 1, OpSoftmax: 1}
	for op, n := range want {
		if count(g)[op] != n {
			t.Errorf("%d %s operators, want %d", count(g)[op], op, n)
		}
	}
	conv := g.Operators[1]
	w := &g.Tensors[conv.Inputs[1]]
	if w.Type != Int8 || len(w.Quant.Scale) != 32 || w.Quant.Dim != 0 {
		t.Fatalf("stem weight %v quant dim %d, %d scales", w, w.Quant.Dim, len(w.Quant.Scale))
	}
	dw := &g.Tensors[g.Operators[2].Inputs[1]]
	if dw.Quant.Dim != 3 || len(dw.Quant.Scale) != 32 {
		t.Fatalf("depthwise weight %v quant dim %d", dw, dw.Quant.Dim)
	}
	// Per-channel along the last axis: element (0, 1, 2, c) uses scale[c].
	f, err := dw.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 5, 31, 32 + 7, 8*32 + 31} {
		c := i % 32
		if want := dw.Quant.Scale[c] * float32(int8(dw.Data[i])); f[i] != want {
			t.Errorf("depthwise[%d] = %g, want %g", i, f[i], want)
		}
	}
	if mean, ok := g.Operators[63].Options.(*ReducerOptions); !ok || !mean.KeepDims {
		t.Errorf("MEAN options %+v", g.Operators[63].Options)
	}
	in := &g.Tensors[conv.Inputs[0]]
	b, err := Bias(&g.Tensors[conv.Inputs[2]], in, w)
	if err != nil {
		t.Fatal(err)
	}
	bt := &g.Tensors[conv.Inputs[2]]
	q := int32(uint32(bt.Data[4]) | uint32(bt.Data[5])<<8 | uint32(bt.Data[6])<<16 | uint32(bt.Data[7])<<24)
	if want := in.Quant.Scale[0] * w.Quant.Scale[1] * float32(q); math.Abs(float64(b[1]-want)) > 1e-6*math.Abs(float64(want)) {
		t.Errorf("bias[1] = %g, want %g", b[1], want)
	}
}

func TestDequantizePerChannelDim0(t *testing.T) {
	// (2, 1, 1, 3) int8 weights, one scale per output channel (dim 0).
	w := &Tensor{Name: "w", Shape: []int{2, 1, 1, 3}, Type: Int8,
		Data:  []byte{1, 2, 0xff, 4, 0x80, 6},
		Quant: &Quantization{Scale: []float32{0.5, 2}, ZeroPoint: []int64{0, 1}, Dim: 0}}
	got, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, 1, -0.5, 2 * 3, 2 * (-128 - 1), 2 * 5}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %g, want %g", i, got[i], want[i])
		}
	}
	w.Quant.Scale = []float32{1, 2, 3}
	w.Quant.ZeroPoint = []int64{0, 0, 0}
	if _, err := w.Float32s(); err == nil || !strings.Contains(err.Error(), "3 per-channel scales do not match dimension 0") {
		t.Errorf("mismatched scales: %v", err)
	}
}

func TestBiasRejectsMismatchedScale(t *testing.T) {
	in := &Tensor{Name: "in", Type: Uint8, Quant: &Quantization{Scale: []float32{0.5}, ZeroPoint: []int64{0}}}
	w := &Tensor{Name: "w", Type: Uint8, Quant: &Quantization{Scale: []float32{0.25}, ZeroPoint: []int64{0}}}
	b := &Tensor{Name: "b", Type: Int32, Shape: []int{1}, Data: []byte{8, 0, 0, 0},
		Quant: &Quantization{Scale: []float32{0.125}, ZeroPoint: []int64{0}}}
	if v, err := Bias(b, in, w); err != nil || v[0] != 1 {
		t.Fatalf("bias = %v, %v; want [1]", v, err)
	}
	b.Quant.Scale[0] = 0.2
	if _, err := Bias(b, in, w); err == nil || !strings.Contains(err.Error(), "recorded scale 0.2 differs") {
		t.Errorf("err = %v", err)
	}
}

func TestRejectsBadFiles(t *testing.T) {
	if _, err := Parse([]byte("GIF89a\x01\x00\x01\x00")); err == nil || !strings.Contains(err.Error(), "not a TFLite model") {
		t.Errorf("GIF: %v", err)
	}
	if _, err := Parse(nil); err == nil || !strings.Contains(err.Error(), "not a TFLite model") {
		t.Errorf("empty: %v", err)
	}
	data, err := os.ReadFile(modelPath(t, "mobilenet_v2_1.0_224_quant.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	// Truncated anywhere, the file must give an error, never a panic.
	for _, n := range []int{12, 100, len(data) / 3, len(data) / 2} {
		if _, err := Parse(data[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.tflite")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRange(t *testing.T) {
	for _, c := range []struct {
		tensor Tensor
		lo, hi float32
		ok     bool
	}{
		{Tensor{Type: Uint8, Quant: &Quantization{Scale: []float32{0.5}, ZeroPoint: []int64{128}}}, -64, 63.5, true},
		{Tensor{Type: Uint8, Quant: &Quantization{Scale: []float32{0.25}, ZeroPoint: []int64{0}}}, 0, 63.75, true},
		{Tensor{Type: Int8, Quant: &Quantization{Scale: []float32{0.5}, ZeroPoint: []int64{-128}}}, 0, 127.5, true},
		{Tensor{Type: Int8, Quant: &Quantization{Scale: []float32{1, 2}, ZeroPoint: []int64{0, 0}}}, 0, 0, false},
		{Tensor{Type: Float32}, 0, 0, false},
		{Tensor{Type: Uint8}, 0, 0, false},
	} {
		lo, hi, ok := c.tensor.Range()
		if lo != c.lo || hi != c.hi || ok != c.ok {
			t.Errorf("%s %+v: Range() = %g, %g, %v; want %g, %g, %v", c.tensor.Type, c.tensor.Quant, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}
