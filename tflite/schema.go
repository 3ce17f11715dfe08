package tflite

import (
	flatbuffers "github.com/google/flatbuffers/go"
)

// The accessors below read the subset of TensorFlow's tensorflow/lite/schema/schema.fbs
// (file_identifier "TFL3", schema version 3) that a convolutional classifier needs.
// They are written by hand against the schema's field order, which the format
// freezes (new members are only ever appended). Field i of a table lives at vtable
// slot 4+2*i; a union takes two fields (its _type byte, then the table).
//
//	table Model          { version:uint; operator_codes:[OperatorCode]; subgraphs:[SubGraph];
//	                       description:string; buffers:[Buffer]; ... }
//	table OperatorCode   { deprecated_builtin_code:byte; custom_code:string; version:int = 1;
//	                       builtin_code:BuiltinOperator (int32) }
//	table SubGraph       { tensors:[Tensor]; inputs:[int]; outputs:[int]; operators:[Operator];
//	                       name:string }
//	table Buffer         { data:[ubyte]; offset:ulong; size:ulong }
//	table Tensor         { shape:[int]; type:TensorType (byte); buffer:uint; name:string;
//	                       quantization:QuantizationParameters; ... }
//	table QuantizationParameters { min:[float]; max:[float]; scale:[float]; zero_point:[long];
//	                       details:QuantizationDetails (union, 2 fields); quantized_dimension:int }
//	table Operator       { opcode_index:uint; inputs:[int]; outputs:[int];
//	                       builtin_options:BuiltinOptions (union, 2 fields); ... }
//	table Conv2DOptions  { padding:Padding; stride_w:int; stride_h:int;
//	                       fused_activation_function:byte; dilation_w_factor:int = 1;
//	                       dilation_h_factor:int = 1 }
//	table Pool2DOptions  { padding; stride_w; stride_h; filter_width:int; filter_height:int;
//	                       fused_activation_function }
//	table DepthwiseConv2DOptions { padding; stride_w; stride_h; depth_multiplier:int;
//	                       fused_activation_function; dilation_w_factor = 1; dilation_h_factor = 1 }
//	table FullyConnectedOptions { fused_activation_function; weights_format:byte; keep_num_dims:bool }
//	table SoftmaxOptions { beta:float }
//	table AddOptions     { fused_activation_function }
//	table ReshapeOptions { new_shape:[int] }
//	table ReducerOptions { keep_dims:bool }

// table is one flatbuffers table with accessors by field number.
type table struct{ flatbuffers.Table }

func slot(field int) flatbuffers.VOffsetT { return flatbuffers.VOffsetT(4 + 2*field) }

// field returns the absolute position of field's value, or 0 when it is absent.
func (t table) field(field int) flatbuffers.UOffsetT {
	o := t.Offset(slot(field))
	if o == 0 {
		return 0
	}
	return t.Pos + flatbuffers.UOffsetT(o)
}

func (t table) int8(field int, def int8) int8       { return t.GetInt8Slot(slot(field), def) }
func (t table) uint8(field int, def uint8) uint8    { return t.GetUint8Slot(slot(field), def) }
func (t table) int32(field int, def int32) int32    { return t.GetInt32Slot(slot(field), def) }
func (t table) uint32(field int, def uint32) uint32 { return t.GetUint32Slot(slot(field), def) }
func (t table) uint64(field int, def uint64) uint64 { return t.GetUint64Slot(slot(field), def) }
func (t table) bool(field int, def bool) bool       { return t.GetBoolSlot(slot(field), def) }
func (t table) float32(field int, def float32) float32 {
	return t.GetFloat32Slot(slot(field), def)
}

func (t table) string(field int) string {
	p := t.field(field)
	if p == 0 {
		return ""
	}
	return t.String(p)
}

// sub returns the table stored in field, and false when the field is absent.
func (t table) sub(field int) (table, bool) {
	p := t.field(field)
	if p == 0 {
		return table{}, false
	}
	return table{flatbuffers.Table{Bytes: t.Bytes, Pos: t.Indirect(p)}}, true
}

// union returns the table of a union whose value is field (its type is field-1).
func (t table) union(field int) (table, bool) {
	p := t.field(field)
	if p == 0 {
		return table{}, false
	}
	var u flatbuffers.Table
	t.Union(&u, p-t.Pos) // Union, Vector and VectorLen take offsets relative to Pos
	return table{u}, true
}

// vector returns the start and length of the vector in field (0, 0 when absent).
func (t table) vector(field int) (start flatbuffers.UOffsetT, n int) {
	p := t.field(field)
	if p == 0 {
		return 0, 0
	}
	return t.Vector(p - t.Pos), t.VectorLen(p - t.Pos)
}

func (t table) tables(field int) []table {
	start, n := t.vector(field)
	out := make([]table, n)
	for i := range out {
		elem := start + flatbuffers.UOffsetT(4*i)
		out[i] = table{flatbuffers.Table{Bytes: t.Bytes, Pos: t.Indirect(elem)}}
	}
	return out
}

// scalars reads the vector of size-byte scalars in field with get.
func scalars[T any](t table, field, size int, get func(flatbuffers.UOffsetT) T) []T {
	start, n := t.vector(field)
	out := make([]T, n)
	for i := range out {
		out[i] = get(start + flatbuffers.UOffsetT(size*i))
	}
	return out
}

func (t table) int32s(field int) []int32     { return scalars(t, field, 4, t.GetInt32) }
func (t table) int64s(field int) []int64     { return scalars(t, field, 8, t.GetInt64) }
func (t table) float32s(field int) []float32 { return scalars(t, field, 4, t.GetFloat32) }

// bytes returns the byte vector in field without copying.
func (t table) bytes(field int) []byte {
	start, n := t.vector(field)
	if n == 0 {
		return nil
	}
	return t.Bytes[start : int(start)+n]
}
