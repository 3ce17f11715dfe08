// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header mapping each tensor name to its dtype, shape and byte range
// ("data_offsets", relative to the end of the header), an optional "__metadata__"
// object of string values, then the raw little-endian tensor bytes.
//
// It is captioner's weight format for every model. F32, F16 and I32 tensors are
// read and written; other dtypes are rejected by name. F16 halves a model's
// size; Float32 widens it back exactly.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"

	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/internal/f16"
)

// DType is a tensor element type as spelt in the header.
type DType string

const (
	F32 DType = "F32"
	F16 DType = "F16" // IEEE 754 binary16
	I32 DType = "I32"
)

// maxHeader bounds the JSON header so that a corrupt length cannot make a reader
// allocate gigabytes (the reference implementation uses the same 100 MB cap).
const maxHeader = 100 << 20

// Tensor is one named tensor. Data is its little-endian bytes, row-major.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// File is the contents of a safetensors file.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor // in file order
	byName   map[string]int
}

// FromFloat32 makes an F32 tensor; len(v) must equal the product of shape.
func FromFloat32(name string, shape []int, v []float32) Tensor {
	return encode(name, F32, shape, v, func(b []byte, x float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(x)) })
}

// HalfFromFloat32 makes an F16 tensor of v, each value rounded to the nearest
// float16 (ties to even); len(v) must equal the product of shape.
func HalfFromFloat32(name string, shape []int, v []float32) Tensor {
	return encode(name, F16, shape, v, func(b []byte, x float32) { binary.LittleEndian.PutUint16(b, f16.FromFloat32(x)) })
}

// FromInt32 makes an I32 tensor; len(v) must equal the product of shape.
func FromInt32(name string, shape []int, v []int32) Tensor {
	return encode(name, I32, shape, v, func(b []byte, x int32) { binary.LittleEndian.PutUint32(b, uint32(x)) })
}

// encode lays out v as dtype dt's little-endian bytes, put writing one value.
func encode[T any](name string, dt DType, shape []int, v []T, put func([]byte, T)) Tensor {
	if numel(shape) != len(v) {
		panic(fmt.Sprintf("safetensors: tensor %s: %d values for shape %v", name, len(v), shape))
	}
	size := elemSize(dt)
	b := make([]byte, size*len(v))
	for i, x := range v {
		put(b[size*i:], x)
	}
	return Tensor{Name: name, DType: dt, Shape: append([]int(nil), shape...), Data: b}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func elemSize(d DType) int {
	switch d {
	case F32, I32:
		return 4
	case F16:
		return 2
	}
	return 0
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Marshal encodes tensors (written in the order given) and metadata.
func Marshal(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		if t.Name == "__metadata__" || t.Name == "" {
			return nil, fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if _, dup := header[t.Name]; dup {
			return nil, fmt.Errorf("safetensors: tensor %s appears twice", t.Name)
		}
		size := elemSize(t.DType)
		if size == 0 {
			return nil, fmt.Errorf("safetensors: tensor %s: dtype %q is not supported (use F32, F16 or I32)", t.Name, t.DType)
		}
		if n := int64(size * numel(t.Shape)); n != int64(len(t.Data)) {
			return nil, fmt.Errorf("safetensors: tensor %s: shape %v needs %d bytes, have %d", t.Name, t.Shape, n, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // a scalar: JSON [] rather than null
		}
		header[t.Name] = headerEntry{t.DType, shape, [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	h, err := json.Marshal(header) // map keys come out sorted: deterministic files
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	// Pad the header with spaces so the data starts 8-byte aligned.
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

// WriteFile writes tensors and metadata to path atomically (a temporary file in
// the same folder, then a rename), so a reader never sees half a file.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	b, err := Marshal(tensors, metadata)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	return nil
}

// ReadFile reads and parses a safetensors file.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return f, nil
}

// Parse decodes a safetensors file held in memory. Tensor data aliases b.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors: %d bytes is too short for a header; the file is empty or truncated", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte file (or the 100 MB limit); not a safetensors file or truncated", n, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("safetensors: header is not a JSON object: %w", err)
	}
	data := b[8+n:]
	f := &File{byName: map[string]int{}}
	type span struct {
		begin, end int64
		name       string
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %s: %w", name, err)
		}
		size := elemSize(e.DType)
		if size == 0 {
			return nil, fmt.Errorf("safetensors: tensor %s: dtype %q is not supported (F32, F16 and I32 are)", name, e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || d > math.MaxInt32 {
				return nil, fmt.Errorf("safetensors: tensor %s: bad dimension %d in shape %v", name, d, e.Shape)
			}
			count *= int64(d)
			if count > int64(len(data)) {
				break // cannot fit: the range check below reports it
			}
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(data)) {
			return nil, fmt.Errorf("safetensors: tensor %s: data_offsets [%d, %d] outside the %d data bytes; the file is truncated or corrupt", name, begin, end, len(data))
		}
		if end-begin != count*int64(size) {
			return nil, fmt.Errorf("safetensors: tensor %s: %s shape %v needs %d bytes, data_offsets give %d", name, e.DType, e.Shape, count*int64(size), end-begin)
		}
		spans = append(spans, span{begin, end, name})
		f.Tensors = append(f.Tensors, Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: data[begin:end:end]})
	}
	// The format requires the tensors to tile the data section exactly: no overlap
	// (two tensors sharing bytes) and no holes.
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var at int64
	for _, s := range spans {
		if s.begin != at {
			return nil, fmt.Errorf("safetensors: tensor %s starts at byte %d, expected %d (overlapping or missing data)", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != int64(len(data)) {
		return nil, fmt.Errorf("safetensors: %d trailing bytes after the last tensor", int64(len(data))-at)
	}
	order := map[string]int64{}
	for _, s := range spans {
		order[s.name] = s.begin
	}
	sort.Slice(f.Tensors, func(i, j int) bool { return order[f.Tensors[i].Name] < order[f.Tensors[j].Name] })
	for i, t := range f.Tensors {
		f.byName[t.Name] = i
	}
	return f, nil
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (Tensor, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Tensor{}, false
	}
	return f.Tensors[i], true
}

// Float32 returns the values of F32 or F16 tensor name (F16 widened exactly),
// checking its shape when shape is given (pass none to accept any shape).
func (f *File) Float32(name string, shape ...int) ([]float32, error) {
	if t, ok := f.Tensor(name); ok && t.DType == F16 {
		t, err := f.lookup(name, F16, shape)
		return decode(t, func(b []byte) float32 { return f16.ToFloat32(binary.LittleEndian.Uint16(b)) }), err
	}
	t, err := f.lookup(name, F32, shape)
	return decode(t, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }), err
}

// Int32 returns the values of I32 tensor name, checking its shape when given.
func (f *File) Int32(name string, shape ...int) ([]int32, error) {
	t, err := f.lookup(name, I32, shape)
	return decode(t, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }), err
}

// decode reads t's values, get reading one from its bytes; nil for the empty
// Tensor lookup returns with an error.
func decode[T any](t Tensor, get func([]byte) T) []T {
	size := elemSize(t.DType)
	if size == 0 {
		return nil
	}
	v := make([]T, len(t.Data)/size)
	for i := range v {
		v[i] = get(t.Data[size*i:])
	}
	return v
}

// lookup finds tensor name and checks its dtype and (when given) shape; on an
// error it returns no tensor.
func (f *File) lookup(name string, dt DType, shape []int) (Tensor, error) {
	t, ok := f.Tensor(name)
	switch {
	case !ok:
		return Tensor{}, fmt.Errorf("safetensors: no tensor %s", name)
	case t.DType != dt:
		return Tensor{}, fmt.Errorf("safetensors: tensor %s is %s, want %s", name, t.DType, dt)
	case len(shape) > 0:
		if err := shapeIs(t, shape); err != nil {
			return Tensor{}, err
		}
	}
	return t, nil
}

// CheckShape returns an error when the file holds tensor name in another
// shape than shape, without reading its values: a reader checks every shape
// before allocating what they add up to. A missing tensor is Float32's to
// report.
func (f *File) CheckShape(name string, shape ...int) error {
	if t, ok := f.Tensor(name); ok {
		return shapeIs(t, shape)
	}
	return nil
}

func shapeIs(t Tensor, shape []int) error {
	if !slices.Equal(shape, t.Shape) {
		return fmt.Errorf("safetensors: tensor %s has shape %v, want %v", t.Name, t.Shape, shape)
	}
	return nil
}
