// Package tflitebuild writes TFLite flatbuffers from a description, field for
// field as TensorFlow Lite's schema.fbs lays them out, for tests: the encoder's
// synthetic MobileNetV2 and the files tflite must refuse, which no converter
// writes (a newer version, indices one past the end, buffers of the wrong
// size, old-style operator codes). It uses plain integers for the schema's
// enums, so that package tflite's own tests can use it.
package tflitebuild

import (
	"encoding/binary"
	"math"

	flatbuffers "github.com/google/flatbuffers/go"
)

// Model is a file with one subgraph.
type Model struct {
	Version         uint32
	Codes           []Code
	Buffers         []Buffer
	Tensors         []Tensor
	Inputs, Outputs []int32
	Ops             []Op
}

// Buffer holds Data inline, or (Data nil) points Offset and Size into the
// file past the flatbuffer; all zero is the empty buffer.
type Buffer struct {
	Data         []byte
	Offset, Size uint64
}

// Tensor is a tensor; Type is the schema's TensorType, Quant nil leaves its
// quantization out.
type Tensor struct {
	Shape  []int32
	Type   int8
	Buffer uint32
	Name   string
	Quant  *Quant
}

// Quant is a tensor's quantization: scales and zero points, per channel of
// dimension Dim when there are several.
type Quant struct {
	Scale []float32
	Zero  []int64
	Dim   int32
}

// Code is an OperatorCode: the int8 deprecated_builtin_code and the int32
// builtin_code; Builtin < 0 leaves the latter out (a file from before it
// existed).
type Code struct {
	Deprecated int8
	Builtin    int32
}

// Op is an operator: the index of its Code, its tensors, and its options
// table (of union type OptType) written by Opts, or none when Opts is nil.
type Op struct {
	Code    uint32
	In, Out []int32
	OptType byte
	Opts    func(b *flatbuffers.Builder) flatbuffers.UOffsetT
}

// Build writes m as a "TFL3" flatbuffer.
func Build(m Model) []byte {
	b := flatbuffers.NewBuilder(1 << 16)
	var bufs, tensors, ops, codes []flatbuffers.UOffsetT
	for _, x := range m.Buffers {
		var d flatbuffers.UOffsetT
		if x.Data != nil {
			d = b.CreateByteVector(x.Data)
		}
		b.StartObject(3)
		if x.Data != nil {
			b.PrependUOffsetTSlot(0, d, 0)
		}
		b.PrependUint64Slot(1, x.Offset, 0)
		b.PrependUint64Slot(2, x.Size, 0)
		bufs = append(bufs, b.EndObject())
	}
	for _, t := range m.Tensors {
		var q flatbuffers.UOffsetT
		if t.Quant != nil {
			b.StartVector(4, len(t.Quant.Scale), 4)
			for i := len(t.Quant.Scale) - 1; i >= 0; i-- {
				b.PrependFloat32(t.Quant.Scale[i])
			}
			sv := b.EndVector(len(t.Quant.Scale))
			b.StartVector(8, len(t.Quant.Zero), 8)
			for i := len(t.Quant.Zero) - 1; i >= 0; i-- {
				b.PrependInt64(t.Quant.Zero[i])
			}
			zv := b.EndVector(len(t.Quant.Zero))
			b.StartObject(7)
			b.PrependUOffsetTSlot(2, sv, 0)
			b.PrependUOffsetTSlot(3, zv, 0)
			b.PrependInt32Slot(6, t.Quant.Dim, 0)
			q = b.EndObject()
		}
		name, shape := b.CreateString(t.Name), Int32s(b, t.Shape)
		b.StartObject(5)
		b.PrependUOffsetTSlot(0, shape, 0)
		b.PrependInt8Slot(1, t.Type, 0)
		b.PrependUint32Slot(2, t.Buffer, 0)
		b.PrependUOffsetTSlot(3, name, 0)
		if t.Quant != nil {
			b.PrependUOffsetTSlot(4, q, 0)
		}
		tensors = append(tensors, b.EndObject())
	}
	for _, o := range m.Ops {
		var opt flatbuffers.UOffsetT
		if o.Opts != nil {
			opt = o.Opts(b)
		}
		in, out := Int32s(b, o.In), Int32s(b, o.Out)
		b.StartObject(5)
		b.PrependUint32Slot(0, o.Code, 0)
		b.PrependUOffsetTSlot(1, in, 0)
		b.PrependUOffsetTSlot(2, out, 0)
		if o.Opts != nil {
			b.PrependByteSlot(3, o.OptType, 0)
			b.PrependUOffsetTSlot(4, opt, 0)
		}
		ops = append(ops, b.EndObject())
	}
	for _, c := range m.Codes {
		b.StartObject(4)
		b.PrependInt8Slot(0, c.Deprecated, 0)
		if c.Builtin >= 0 {
			b.PrependInt32Slot(3, c.Builtin, -1)
		}
		codes = append(codes, b.EndObject())
	}
	tv, ov := offsets(b, tensors), offsets(b, ops)
	iv, outv := Int32s(b, m.Inputs), Int32s(b, m.Outputs)
	b.StartObject(5)
	b.PrependUOffsetTSlot(0, tv, 0)
	b.PrependUOffsetTSlot(1, iv, 0)
	b.PrependUOffsetTSlot(2, outv, 0)
	b.PrependUOffsetTSlot(3, ov, 0)
	sg := b.EndObject()
	cv, sv, bv := offsets(b, codes), offsets(b, []flatbuffers.UOffsetT{sg}), offsets(b, bufs)
	b.StartObject(5)
	b.PrependUint32Slot(0, m.Version, 0)
	b.PrependUOffsetTSlot(1, cv, 0)
	b.PrependUOffsetTSlot(2, sv, 0)
	b.PrependUOffsetTSlot(4, bv, 0)
	b.FinishWithFileIdentifier(b.EndObject(), []byte("TFL3"))
	return b.FinishedBytes()
}

// Int32s writes an int32 vector (a shape, an options table's list).
func Int32s(b *flatbuffers.Builder, v []int32) flatbuffers.UOffsetT {
	b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		b.PrependInt32(v[i])
	}
	return b.EndVector(len(v))
}

func offsets(b *flatbuffers.Builder, v []flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		b.PrependUOffsetT(v[i])
	}
	return b.EndVector(len(v))
}

// Float32s is v as a buffer's little-endian bytes.
func Float32s(v ...float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}
