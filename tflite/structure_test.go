package tflite

import (
	"slices"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/captioner/captioner/internal/tflitebuild"
)

// tinyModel is a valid one-operator model: a 1x1 CONV_2D of a (1, 2, 2, 1)
// image (tensor 0) with weight 1, bias 0.5 into tensor 3.
func tinyModel() tflitebuild.Model {
	return tflitebuild.Model{
		Version: 3,
		Codes:   []tflitebuild.Code{{Deprecated: 3, Builtin: 3}},
		Buffers: []tflitebuild.Buffer{{}, {Data: tflitebuild.Float32s(1)}, {Data: tflitebuild.Float32s(0.5)}},
		Tensors: []tflitebuild.Tensor{
			{Shape: []int32{1, 2, 2, 1}, Type: int8(Float32), Name: "in"},
			{Shape: []int32{1, 1, 1, 1}, Type: int8(Float32), Buffer: 1, Name: "w"},
			{Shape: []int32{1}, Type: int8(Float32), Buffer: 2, Name: "b"},
			{Shape: []int32{1, 2, 2, 1}, Type: int8(Float32), Name: "out"},
		},
		Inputs: []int32{0}, Outputs: []int32{3},
		Ops: []tflitebuild.Op{{Code: 0, In: []int32{0, 1, 2}, Out: []int32{3}}},
	}
}

// TestReadsBuiltModel reads every options table this package knows, with
// values that tell each field from its neighbours (non-square strides and
// filters, non-default flags), and old- and new-style operator codes.
func TestReadsBuiltModel(t *testing.T) {
	m := tinyModel()
	table := func(fields int, set func(b *flatbuffers.Builder)) func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
		return func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
			b.StartObject(fields)
			set(b)
			return b.EndObject()
		}
	}
	m.Codes = []tflitebuild.Code{
		{Deprecated: 3, Builtin: 3},     // CONV_2D, both fields
		{Deprecated: 4, Builtin: -1},    // DEPTHWISE_CONV_2D in the deprecated byte only (an old file)
		{Deprecated: 1, Builtin: 1},     // AVERAGE_POOL_2D
		{Deprecated: 9, Builtin: 9},     // FULLY_CONNECTED
		{Deprecated: 40, Builtin: 40},   // MEAN
		{Deprecated: 25, Builtin: 25},   // SOFTMAX
		{Deprecated: 127, Builtin: 150}, // a code above 127: the byte holds the placeholder 127
		{Deprecated: 22, Builtin: 22},   // RESHAPE
	}
	in, out := []int32{0, 1, 2}, []int32{3}
	m.Ops = []tflitebuild.Op{
		{Code: 0, In: in, Out: out, OptType: optConv2D, Opts: table(6, func(b *flatbuffers.Builder) {
			b.PrependInt8Slot(0, int8(Valid), 0)
			b.PrependInt32Slot(1, 1, 0)
			b.PrependInt32Slot(2, 2, 0)
			b.PrependInt8Slot(3, int8(ActRelu6), 0)
		})},
		{Code: 1, In: in, Out: out, OptType: optDepthwiseConv2D, Opts: table(7, func(b *flatbuffers.Builder) {
			b.PrependInt32Slot(1, 2, 0)
			b.PrependInt32Slot(2, 1, 0)
			b.PrependInt32Slot(3, 1, 0)
			b.PrependInt8Slot(4, int8(ActRelu), 0)
			b.PrependInt32Slot(5, 3, 1)
		})},
		{Code: 2, In: in, Out: out, OptType: optPool2D, Opts: table(6, func(b *flatbuffers.Builder) {
			b.PrependInt8Slot(0, int8(Valid), 0)
			b.PrependInt32Slot(3, 3, 0)
			b.PrependInt32Slot(4, 2, 0)
		})},
		{Code: 3, In: in, Out: out, OptType: optFullyConnected, Opts: table(3, func(b *flatbuffers.Builder) { b.PrependBoolSlot(2, true, false) })},
		{Code: 4, In: in, Out: out, OptType: optReducer, Opts: table(1, func(b *flatbuffers.Builder) { b.PrependBoolSlot(0, false, true) })},
		{Code: 5, In: in, Out: out, OptType: optSoftmax, Opts: table(1, func(b *flatbuffers.Builder) { b.PrependFloat32Slot(0, 0.5, 0) })},
		{Code: 6, In: in, Out: out},
		{Code: 7, In: in, Out: out, OptType: optReshape, Opts: func(b *flatbuffers.Builder) flatbuffers.UOffsetT {
			v := tflitebuild.Int32s(b, []int32{1, 4}) // made before its table starts
			b.StartObject(1)
			b.PrependUOffsetTSlot(0, v, 0)
			return b.EndObject()
		}},
	}
	model, err := Parse(tflitebuild.Build(m))
	if err != nil {
		t.Fatal(err)
	}
	g := &model.Subgraphs[0]
	var ops []Op
	for _, op := range g.Operators {
		ops = append(ops, op.Op)
	}
	if want := []Op{OpConv2D, OpDepthwiseConv2D, OpAveragePool2D, OpFullyConnected, OpMean, OpSoftmax, 150, OpReshape}; !slices.Equal(ops, want) {
		t.Errorf("operators %v, want %v", ops, want)
	}
	if o, ok := g.Operators[0].Options.(*Conv2DOptions); !ok || *o != (Conv2DOptions{Valid, 1, 2, ActRelu6, 1, 1}) {
		t.Errorf("conv options %+v, want stride 1x2 (W, H), RELU6, dilation 1x1 by default", g.Operators[0].Options)
	}
	if o, ok := g.Operators[1].Options.(*DepthwiseConv2DOptions); !ok || *o != (DepthwiseConv2DOptions{Same, 2, 1, 1, ActRelu, 3, 1}) {
		t.Errorf("depthwise options %+v, want stride 2x1 (W, H), dilation 3x1", g.Operators[1].Options)
	}
	if o, ok := g.Operators[2].Options.(*Pool2DOptions); !ok || *o != (Pool2DOptions{Padding: Valid, FilterWidth: 3, FilterHeight: 2}) {
		t.Errorf("pool options %+v, want a 3 wide, 2 high filter", g.Operators[2].Options)
	}
	if o, ok := g.Operators[3].Options.(*FullyConnectedOptions); !ok || *o != (FullyConnectedOptions{KeepNumDims: true}) {
		t.Errorf("fully connected options %+v, want plain weights, keep_num_dims", g.Operators[3].Options)
	}
	if o, ok := g.Operators[4].Options.(*ReducerOptions); !ok || o.KeepDims {
		t.Errorf("mean options %+v, want keep_dims false", g.Operators[4].Options)
	}
	if o, ok := g.Operators[5].Options.(*SoftmaxOptions); !ok || o.Beta != 0.5 {
		t.Errorf("softmax options %+v, want beta 0.5", g.Operators[5].Options)
	}
	if o, ok := g.Operators[7].Options.(*ReshapeOptions); !ok || !slices.Equal(o.NewShape, []int{1, 4}) {
		t.Errorf("reshape options %+v, want new shape [1 4]", g.Operators[7].Options)
	}
	if g.Operators[6].Options != nil {
		t.Errorf("operator without options: %+v", g.Operators[6].Options)
	}
}

// TestRejectsBadStructure edits the tiny model in ways a damaged or foreign
// file could, one at a time, and checks each is reported by what is wrong
// (not as a recovered out-of-range panic, nor accepted).
func TestRejectsBadStructure(t *testing.T) {
	if _, err := Parse(tflitebuild.Build(tinyModel())); err != nil {
		t.Fatalf("the unedited model: %v", err)
	}
	cases := []struct {
		name string
		edit func(m *tflitebuild.Model)
		want string
	}{
		{"version 4", func(m *tflitebuild.Model) { m.Version = 4 }, "tflite: schema version 4, this reader knows version 3"},
		{"graph output one past the end", func(m *tflitebuild.Model) { m.Outputs = []int32{4} }, "tflite: subgraph 0: graph input/output tensor 4 out of range [0, 4)"},
		{"graph input below 0", func(m *tflitebuild.Model) { m.Inputs = []int32{-1} }, "tflite: subgraph 0: graph input/output tensor -1 out of range [0, 4)"},
		{"buffer one past the end", func(m *tflitebuild.Model) { m.Tensors[3].Buffer = 3 }, `tflite: subgraph 0: tensor 3 "out": buffer 3 out of range [0, 3)`},
		{"buffer larger than its tensor", func(m *tflitebuild.Model) { m.Buffers[1].Data = tflitebuild.Float32s(1, 2) }, `tflite: subgraph 0: tensor 1 "w": FLOAT32 shape [1 1 1 1] needs 4 bytes, its buffer 1 holds 8`},
		{"scales without zero points", func(m *tflitebuild.Model) {
			m.Tensors[1].Quant = &tflitebuild.Quant{Scale: []float32{0.5, 0.25}, Zero: []int64{0}}
		}, `tflite: subgraph 0: tensor 1 "w": 2 quantization scales but 1 zero points`},
		{"zero points without scales", func(m *tflitebuild.Model) {
			m.Tensors[1].Quant = &tflitebuild.Quant{Scale: []float32{0.5}, Zero: []int64{0, 0}}
		}, `tflite: subgraph 0: tensor 1 "w": 1 quantization scales but 2 zero points`},
		{"opcode one past the end", func(m *tflitebuild.Model) { m.Ops[0].Code = 1 }, "tflite: subgraph 0: operator 0: opcode index 1 out of range [0, 1)"},
		{"operator tensor one past the end", func(m *tflitebuild.Model) { m.Ops[0].Out = []int32{4} }, "tflite: subgraph 0: operator 0 (CONV_2D): tensor index 4 out of range [0, 4)"},
		// -1 is an optional input left out; -2 is no tensor.
		{"operator tensor -2", func(m *tflitebuild.Model) { m.Ops[0].In[0] = -2 }, "tflite: subgraph 0: operator 0 (CONV_2D): tensor index -2 out of range [0, 4)"},
		{"external buffer beyond the file", func(m *tflitebuild.Model) { m.Buffers[1] = tflitebuild.Buffer{Offset: 16, Size: 1 << 20} }, "tflite: buffer 1: [16, 1048592) lies beyond the"},
	}
	for _, c := range cases {
		m := tinyModel()
		c.edit(&m)
		if _, err := Parse(tflitebuild.Build(m)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", c.name, err, c.want)
		}
	}
}

// TestBufferOffsetOneIsEmpty: an external buffer offset of 0 or 1 is the
// converter's "no data" placeholder, not a region of the file.
func TestBufferOffsetOneIsEmpty(t *testing.T) {
	m := tinyModel()
	m.Tensors[3].Buffer = 3
	m.Buffers = append(m.Buffers, tflitebuild.Buffer{Offset: 1, Size: 4})
	model, err := Parse(tflitebuild.Build(m))
	if err != nil {
		t.Fatal(err)
	}
	if d := model.Subgraphs[0].Tensors[3].Data; d != nil {
		t.Errorf("tensor with a buffer at offset 1 has data %v, want none", d)
	}
}

// TestBiasChecks: Bias returns a FLOAT32 bias as stored and checks an INT32
// one's scales: one input scale, one weight scale per output channel (or one),
// and a recorded scale within 0.1% of input scale x weight scale, per channel.
func TestBiasChecks(t *testing.T) {
	q := func(scale ...float32) *Quantization {
		return &Quantization{Scale: scale, ZeroPoint: make([]int64, len(scale))}
	}
	fb := &Tensor{Name: "fb", Type: Float32, Shape: []int{2}, Data: tflitebuild.Float32s(1.5, -2)}
	if v, err := Bias(fb, &Tensor{Name: "in", Type: Float32}, &Tensor{Name: "w", Type: Float32}); err != nil || !slices.Equal(v, []float32{1.5, -2}) {
		t.Errorf("float bias = %v, %v; want [1.5 -2]", v, err)
	}
	in := &Tensor{Name: "in", Type: Uint8, Quant: q(0.5)}
	w := &Tensor{Name: "w", Type: Int8, Shape: []int{2, 1, 1, 1}, Quant: q(0.25, 0.5)}
	b := &Tensor{Name: "b", Type: Int32, Shape: []int{2}, Data: []byte{8, 0, 0, 0, 8, 0, 0, 0}, Quant: q(0.125, 0.25)}
	if v, err := Bias(b, in, w); err != nil || !slices.Equal(v, []float32{1, 2}) {
		t.Fatalf("per-channel bias = %v, %v; want [1 2]", v, err)
	}
	for _, c := range []struct {
		name      string
		in, w, b  *Tensor
		want      string
		wantValue bool
	}{
		{"recorded scale off at channel 1", in, w, &Tensor{Name: "b", Type: Int32, Shape: []int{2}, Data: b.Data, Quant: q(0.125, 0.3)},
			"recorded scale 0.3 differs from input scale x weight scale = 0.25 at channel 1", false},
		{"recorded scale 1% off", in, &Tensor{Name: "w", Type: Int8, Quant: q(0.25)}, &Tensor{Name: "b", Type: Int32, Shape: []int{1}, Data: b.Data[:4], Quant: q(0.12625)},
			"recorded scale 0.12625 differs", false},
		{"recorded scale 0.01% off", in, &Tensor{Name: "w", Type: Int8, Quant: q(0.25)}, &Tensor{Name: "b", Type: Int32, Shape: []int{1}, Data: b.Data[:4], Quant: q(0.1250125)},
			"", true},
		{"input quantized per channel", &Tensor{Name: "in", Type: Uint8, Quant: q(0.5, 0.5)}, w, b,
			`input tensor 0 "in" (UINT8 []) needs one quantization scale`, false},
		{"weight scales for another channel count", in, &Tensor{Name: "w", Type: Int8, Shape: []int{2, 1, 1, 1}, Quant: q(0.25, 0.5)},
			&Tensor{Name: "b", Type: Int32, Shape: []int{4}, Data: make([]byte, 16)},
			`has 2 scales, want 1 or 4 (one per output channel)`, false},
	} {
		v, err := Bias(c.b, c.in, c.w)
		if c.wantValue {
			if err != nil || len(v) != 1 || v[0] != 1 {
				t.Errorf("%s: %v, %v; want [1]", c.name, v, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, %v; want an error containing %q", c.name, v, err, c.want)
		}
	}
}
