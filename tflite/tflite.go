// Package tflite reads TensorFlow Lite model files (the "TFL3" flatbuffer of
// tensorflow/lite/schema/schema.fbs): tensors, buffers, quantization parameters,
// operators and the builtin options of the operators a convolutional classifier
// uses, and dequantizes uint8/int8/int32 tensors into float32.
//
// It is a reader, not an interpreter: package encoder maps the operator graph onto
// its own network.
package tflite

import (
	"bytes"
	"fmt"
	"os"

	flatbuffers "github.com/google/flatbuffers/go"
)

// TensorType is the element type of a tensor (schema enum TensorType).
type TensorType int8

const (
	Float32 TensorType = 0
	Float16 TensorType = 1
	Int32   TensorType = 2
	Uint8   TensorType = 3
	Int64   TensorType = 4
	Int8    TensorType = 9
)

var typeNames = map[TensorType]string{
	Float32: "FLOAT32", Float16: "FLOAT16", Int32: "INT32", Uint8: "UINT8", Int64: "INT64",
	5: "STRING", 6: "BOOL", 7: "INT16", 8: "COMPLEX64", Int8: "INT8",
}

func (t TensorType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("TensorType(%d)", int8(t))
}

// size is the element size in bytes, 0 for types this package cannot read.
func (t TensorType) size() int {
	switch t {
	case Float32, Int32:
		return 4
	case Uint8, Int8:
		return 1
	case Int64:
		return 8
	}
	return 0
}

// Op is a builtin operator code (schema enum BuiltinOperator).
type Op int32

const (
	OpAdd             Op = 0
	OpAveragePool2D   Op = 1
	OpConv2D          Op = 3
	OpDepthwiseConv2D Op = 4
	OpDequantize      Op = 6
	OpFullyConnected  Op = 9
	OpRelu6           Op = 21
	OpReshape         Op = 22
	OpSoftmax         Op = 25
	OpPad             Op = 34
	OpMean            Op = 40
	OpSqueeze         Op = 43
	OpQuantize        Op = 114
	OpCustom          Op = 32
)

var opNames = map[Op]string{
	OpAdd: "ADD", OpAveragePool2D: "AVERAGE_POOL_2D", 2: "CONCATENATION", OpConv2D: "CONV_2D",
	OpDepthwiseConv2D: "DEPTHWISE_CONV_2D", OpDequantize: "DEQUANTIZE", OpFullyConnected: "FULLY_CONNECTED",
	14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", OpRelu6: "RELU6", OpReshape: "RESHAPE",
	23: "RESIZE_BILINEAR", OpSoftmax: "SOFTMAX", 28: "TANH", OpCustom: "CUSTOM", OpPad: "PAD",
	39: "TRANSPOSE", OpMean: "MEAN", 41: "SUB", OpSqueeze: "SQUEEZE", 60: "PADV2", 65: "SLICE",
	97: "HARD_SWISH", OpQuantize: "QUANTIZE",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("builtin op %d", int32(o))
}

// Padding is a convolution or pooling padding scheme (schema enum Padding).
type Padding int8

const (
	Same  Padding = 0
	Valid Padding = 1
)

func (p Padding) String() string {
	switch p {
	case Same:
		return "SAME"
	case Valid:
		return "VALID"
	}
	return fmt.Sprintf("Padding(%d)", int8(p))
}

// Activation is a fused activation function (schema enum ActivationFunctionType).
type Activation int8

const (
	ActNone  Activation = 0
	ActRelu  Activation = 1
	ActRelu6 Activation = 3
)

func (a Activation) String() string {
	switch a {
	case ActNone:
		return "NONE"
	case ActRelu:
		return "RELU"
	case 2:
		return "RELU_N1_TO_1"
	case ActRelu6:
		return "RELU6"
	case 4:
		return "TANH"
	}
	return fmt.Sprintf("Activation(%d)", int8(a))
}

// Model is a parsed TFLite file. Tensor data aliases the file's bytes.
type Model struct {
	Version     uint32
	Description string
	Subgraphs   []Subgraph
}

// Subgraph is one graph of a model; Subgraphs[0] is the main one.
type Subgraph struct {
	Name      string
	Tensors   []Tensor
	Inputs    []int // tensor indices
	Outputs   []int // tensor indices
	Operators []Operator
}

// Tensor is one tensor of a subgraph.
type Tensor struct {
	Index int // position in Subgraph.Tensors
	Name  string
	Shape []int
	Type  TensorType
	// Data holds the constant value (little-endian, row-major), nil for activations.
	Data []byte
	// Quant is nil when the tensor is not quantized.
	Quant *Quantization
}

// Quantization maps stored integers q to reals: real = Scale[c] * (q - ZeroPoint[c]),
// with one (Scale, ZeroPoint) pair per tensor (len 1) or per index c along Dim.
type Quantization struct {
	Scale     []float32
	ZeroPoint []int64
	Dim       int
}

// Operator is one node of a subgraph, in execution order.
type Operator struct {
	Index   int // position in Subgraph.Operators
	Op      Op
	Custom  string // custom_code when Op is OpCustom
	Version int32
	Inputs  []int // tensor indices; -1 marks an omitted optional input
	Outputs []int
	// Options is one of the *...Options types below, or nil when the operator has
	// none or has options this package does not read.
	Options any
}

// Conv2DOptions configures CONV_2D.
type Conv2DOptions struct {
	Padding              Padding
	StrideW, StrideH     int
	Activation           Activation
	DilationW, DilationH int
}

// DepthwiseConv2DOptions configures DEPTHWISE_CONV_2D.
type DepthwiseConv2DOptions struct {
	Padding              Padding
	StrideW, StrideH     int
	DepthMultiplier      int
	Activation           Activation
	DilationW, DilationH int
}

// Pool2DOptions configures AVERAGE_POOL_2D and MAX_POOL_2D.
type Pool2DOptions struct {
	Padding                   Padding
	StrideW, StrideH          int
	FilterWidth, FilterHeight int
	Activation                Activation
}

// FullyConnectedOptions configures FULLY_CONNECTED.
type FullyConnectedOptions struct {
	Activation    Activation
	WeightsFormat int8 // 0 is the plain (out, in) matrix
	KeepNumDims   bool
}

// SoftmaxOptions configures SOFTMAX.
type SoftmaxOptions struct{ Beta float32 }

// AddOptions configures ADD.
type AddOptions struct{ Activation Activation }

// ReshapeOptions configures RESHAPE (NewShape may be empty: the shape is then an input).
type ReshapeOptions struct{ NewShape []int }

// ReducerOptions configures MEAN and the other reductions.
type ReducerOptions struct{ KeepDims bool }

// BuiltinOptions union type codes (position in schema union BuiltinOptions).
const (
	optConv2D          = 1
	optDepthwiseConv2D = 2
	optPool2D          = 5
	optFullyConnected  = 8
	optSoftmax         = 9
	optAdd             = 11
	optReshape         = 17
	optReducer         = 27
)

// ReadFile reads and parses a TFLite file.
func ReadFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tflite: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return m, nil
}

// Parse parses a TFLite flatbuffer. The model's tensor data aliases data.
func Parse(data []byte) (m *Model, err error) {
	if len(data) < 8 || !bytes.Equal(data[4:8], []byte("TFL3")) {
		return nil, fmt.Errorf("tflite: not a TFLite model (no \"TFL3\" file identifier in bytes 4-8); expected a .tflite flatbuffer")
	}
	// The flatbuffers runtime has no verifier and indexes the byte slice directly, so
	// a corrupt or truncated file surfaces as an out-of-range panic while reading;
	// turn that into an error rather than crash the caller.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("tflite: corrupt or truncated model file (%v)", r)
		}
	}()
	root := table{}
	root.Bytes = data
	root.Pos = flatbuffers.GetUOffsetT(data)
	if int(root.Pos) >= len(data) {
		return nil, fmt.Errorf("tflite: corrupt model file: root offset %d beyond %d bytes", root.Pos, len(data))
	}
	m = &Model{Version: root.uint32(0, 0), Description: root.string(3)}
	if m.Version != 3 {
		return nil, fmt.Errorf("tflite: schema version %d, this reader knows version 3", m.Version)
	}
	buffers, err := readBuffers(root, data)
	if err != nil {
		return nil, err
	}
	codes := root.tables(1)
	for si, st := range root.tables(2) {
		g, err := readSubgraph(st, codes, buffers)
		if err != nil {
			return nil, fmt.Errorf("tflite: subgraph %d: %w", si, err)
		}
		m.Subgraphs = append(m.Subgraphs, g)
	}
	if len(m.Subgraphs) == 0 {
		return nil, fmt.Errorf("tflite: model has no subgraphs")
	}
	return m, nil
}

// readBuffers returns each buffer's bytes: inline data, or (files over 2 GB) a
// region of the file named by offset and size.
func readBuffers(root table, file []byte) ([][]byte, error) {
	bt := root.tables(4)
	out := make([][]byte, len(bt))
	for i, b := range bt {
		out[i] = b.bytes(0)
		off, size := b.uint64(1, 0), b.uint64(2, 0)
		if len(out[i]) == 0 && off > 1 {
			if off+size > uint64(len(file)) {
				return nil, fmt.Errorf("tflite: buffer %d: [%d, %d) lies beyond the %d-byte file", i, off, off+size, len(file))
			}
			out[i] = file[off : off+size]
		}
	}
	return out, nil
}

func readSubgraph(st table, codes []table, buffers [][]byte) (Subgraph, error) {
	g := Subgraph{Name: st.string(4), Inputs: ints(st.int32s(1)), Outputs: ints(st.int32s(2))}
	for i, tt := range st.tables(0) {
		t, err := readTensor(i, tt, buffers)
		if err != nil {
			return g, err
		}
		g.Tensors = append(g.Tensors, t)
	}
	for _, idx := range append(append([]int(nil), g.Inputs...), g.Outputs...) {
		if idx < 0 || idx >= len(g.Tensors) {
			return g, fmt.Errorf("graph input/output tensor %d out of range [0, %d)", idx, len(g.Tensors))
		}
	}
	for i, ot := range st.tables(3) {
		op, err := readOperator(i, ot, codes, len(g.Tensors))
		if err != nil {
			return g, err
		}
		g.Operators = append(g.Operators, op)
	}
	return g, nil
}

func ints(v []int32) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func readTensor(i int, tt table, buffers [][]byte) (Tensor, error) {
	t := Tensor{Index: i, Shape: ints(tt.int32s(0)), Type: TensorType(tt.int8(1, 0)), Name: tt.string(3)}
	b := int(tt.uint32(2, 0))
	if b >= len(buffers) {
		return t, fmt.Errorf("tensor %d %q: buffer %d out of range [0, %d)", i, t.Name, b, len(buffers))
	}
	if len(buffers[b]) > 0 {
		t.Data = buffers[b]
		if n := t.Type.size() * t.NumElements(); t.Type.size() != 0 && n != len(t.Data) {
			return t, fmt.Errorf("tensor %d %q: %s shape %v needs %d bytes, its buffer %d holds %d",
				i, t.Name, t.Type, t.Shape, n, b, len(t.Data))
		}
	}
	if qt, ok := tt.sub(4); ok {
		q := &Quantization{Scale: qt.float32s(2), ZeroPoint: qt.int64s(3), Dim: int(qt.int32(6, 0))}
		if len(q.Scale) > 0 {
			if len(q.ZeroPoint) != len(q.Scale) {
				return t, fmt.Errorf("tensor %d %q: %d quantization scales but %d zero points", i, t.Name, len(q.Scale), len(q.ZeroPoint))
			}
			t.Quant = q
		}
	}
	return t, nil
}

func readOperator(i int, ot table, codes []table, ntensors int) (Operator, error) {
	op := Operator{Index: i, Inputs: ints(ot.int32s(1)), Outputs: ints(ot.int32s(2))}
	ci := int(ot.uint32(0, 0))
	if ci >= len(codes) {
		return op, fmt.Errorf("operator %d: opcode index %d out of range [0, %d)", i, ci, len(codes))
	}
	c := codes[ci]
	// Files from before the int32 builtin_code field hold the code only in the
	// deprecated byte; newer files hold it in both (or, for codes above 127, only
	// in the int32), so the larger of the two is the code (as TFLite's own
	// GetBuiltinCode does).
	op.Op = Op(max(int32(c.int8(0, 0)), c.int32(3, 0)))
	op.Custom = c.string(1)
	op.Version = c.int32(2, 1)
	for _, idx := range append(append([]int(nil), op.Inputs...), op.Outputs...) {
		if idx < -1 || idx >= ntensors {
			return op, fmt.Errorf("operator %d (%s): tensor index %d out of range [0, %d)", i, op.Op, idx, ntensors)
		}
	}
	ut, ok := ot.union(4)
	if !ok {
		return op, nil
	}
	switch ot.uint8(3, 0) {
	case optConv2D:
		op.Options = &Conv2DOptions{Padding: Padding(ut.int8(0, 0)), StrideW: int(ut.int32(1, 0)), StrideH: int(ut.int32(2, 0)),
			Activation: Activation(ut.int8(3, 0)), DilationW: int(ut.int32(4, 1)), DilationH: int(ut.int32(5, 1))}
	case optDepthwiseConv2D:
		op.Options = &DepthwiseConv2DOptions{Padding: Padding(ut.int8(0, 0)), StrideW: int(ut.int32(1, 0)), StrideH: int(ut.int32(2, 0)),
			DepthMultiplier: int(ut.int32(3, 0)), Activation: Activation(ut.int8(4, 0)),
			DilationW: int(ut.int32(5, 1)), DilationH: int(ut.int32(6, 1))}
	case optPool2D:
		op.Options = &Pool2DOptions{Padding: Padding(ut.int8(0, 0)), StrideW: int(ut.int32(1, 0)), StrideH: int(ut.int32(2, 0)),
			FilterWidth: int(ut.int32(3, 0)), FilterHeight: int(ut.int32(4, 0)), Activation: Activation(ut.int8(5, 0))}
	case optFullyConnected:
		op.Options = &FullyConnectedOptions{Activation: Activation(ut.int8(0, 0)), WeightsFormat: ut.int8(1, 0), KeepNumDims: ut.bool(2, false)}
	case optSoftmax:
		op.Options = &SoftmaxOptions{Beta: ut.float32(0, 0)}
	case optAdd:
		op.Options = &AddOptions{Activation: Activation(ut.int8(0, 0))}
	case optReshape:
		op.Options = &ReshapeOptions{NewShape: ints(ut.int32s(0))}
	case optReducer:
		op.Options = &ReducerOptions{KeepDims: ut.bool(0, false)}
	}
	return op, nil
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

func (t *Tensor) String() string {
	return fmt.Sprintf("tensor %d %q (%s %v)", t.Index, t.Name, t.Type, t.Shape)
}
