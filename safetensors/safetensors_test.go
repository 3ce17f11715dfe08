package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := []float32{1, -2.5, 3e-8, 4, 5, 6}
	ids := []int32{7, -1}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	in := []Tensor{FromFloat32("layer.weight", []int{2, 3}, w), FromInt32("ids", []int{2}, ids), FromFloat32("scalar", nil, []float32{9})}
	if err := WriteFile(path, in, map[string]string{"arch": "test"}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["arch"] != "test" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	got, err := f.Float32("layer.weight", 2, 3)
	if err != nil || !slices.Equal(got, w) {
		t.Errorf("layer.weight = %v, %v; want %v", got, err, w)
	}
	gi, err := f.Int32("ids")
	if err != nil || !slices.Equal(gi, ids) {
		t.Errorf("ids = %v, %v", gi, err)
	}
	if s, err := f.Float32("scalar"); err != nil || len(s) != 1 || s[0] != 9 {
		t.Errorf("scalar = %v, %v", s, err)
	}
	// File order is write order, and the data section starts 8-byte aligned.
	var names []string
	for _, x := range f.Tensors {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{"layer.weight", "ids", "scalar"}) {
		t.Errorf("order = %v", names)
	}
	raw, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", n)
	}
	if _, err := f.Float32("layer.weight", 3, 2); err == nil || !strings.Contains(err.Error(), "has shape [2 3], want [3 2]") {
		t.Errorf("shape check: %v", err)
	}
	if _, err := f.Int32("layer.weight"); err == nil || !strings.Contains(err.Error(), "is F32, want I32") {
		t.Errorf("dtype check: %v", err)
	}
	if _, err := f.Float32("missing"); err == nil || !strings.Contains(err.Error(), "no tensor missing") {
		t.Errorf("missing: %v", err)
	}
}

func TestHalfTensors(t *testing.T) {
	// 1, -2.5 and 65504 (the largest float16) are exact in float16; 0.1 is
	// not: its nearest is 1638/16384 = 0.0999755859375; 1e-9 is below the
	// smallest subnormal and becomes 0.
	in := []float32{1, -2.5, 65504, 0.1, 1e-9, 0}
	want := []float32{1, -2.5, 65504, 0.0999755859375, 0, 0}
	h := HalfFromFloat32("w", []int{3, 2}, in)
	if h.DType != F16 || len(h.Data) != 12 || binary.LittleEndian.Uint16(h.Data) != 0x3c00 {
		t.Fatalf("tensor %s %v, %d bytes, first %#04x; want F16, 12 bytes, 1.0 as 0x3c00", h.DType, h.Shape, len(h.Data), binary.LittleEndian.Uint16(h.Data))
	}
	b, err := Marshal([]Tensor{h}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Float32("w", 3, 2); err != nil || !slices.Equal(got, want) {
		t.Errorf("Float32 of the F16 tensor = %v, %v; want %v", got, err, want)
	}
	if _, err := f.Float32("w", 6); err == nil || !strings.Contains(err.Error(), "has shape [3 2], want [6]") {
		t.Errorf("shape check on F16: %v", err)
	}
	if _, err := f.Int32("w"); err == nil || !strings.Contains(err.Error(), "is F16, want I32") {
		t.Errorf("dtype check on F16: %v", err)
	}
}

// TestReadsReferenceLayout parses a file laid out by hand the way the reference
// implementation writes one, header included byte for byte.
func TestReadsReferenceLayout(t *testing.T) {
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}`
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	binary.Write(&b, binary.LittleEndian, []float32{0.5, -1})
	f, err := Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Float32("a", 2)
	if err != nil || v[0] != 0.5 || v[1] != -1 || f.Metadata["format"] != "pt" {
		t.Fatalf("got %v %v %v", v, err, f.Metadata)
	}
}

func file(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestBadFiles(t *testing.T) {
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"header beyond file", huge, "exceeds the 8-byte file"},
		{"not json", file("hello", nil), "not a JSON object"},
		{"unknown dtype", file(`{"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}`, make([]byte, 2)), `dtype "BF16" is not supported`},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), "needs 12 bytes, data_offsets give 8"},
		{"truncated data", file(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, make([]byte, 8)), "outside the 8 data bytes"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlapping or missing"},
		{"trailing", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)), "4 trailing bytes"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "bad dimension -1"},
		{"bad metadata", file(`{"__metadata__":{"a":1}}`, nil), "__metadata__ must map strings to strings"},
		{"negative offset", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), "outside the 4 data bytes"},
	}
	for _, c := range cases {
		_, err := Parse(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	a := FromFloat32("a", []int{1}, []float32{1})
	if _, err := Marshal([]Tensor{a, a}, nil); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := Marshal([]Tensor{{Name: "x", DType: "BF16", Shape: []int{1}, Data: make([]byte, 2)}}, nil); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("dtype: %v", err)
	}
	if _, err := Marshal([]Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}, nil); err == nil || !strings.Contains(err.Error(), "needs 8 bytes") {
		t.Errorf("size: %v", err)
	}
	if _, err := Marshal([]Tensor{FromFloat32("", []int{1}, []float32{1})}, nil); err == nil || err.Error() != `safetensors: invalid tensor name ""` {
		t.Errorf("empty name: %v", err)
	}
	// A scalar's shape is [], not null, which other readers refuse.
	b, err := Marshal([]Tensor{{Name: "s", DType: F32, Data: make([]byte, 4)}}, nil)
	if err != nil || !strings.Contains(string(b), `"shape":[]`) {
		t.Errorf("scalar: %v, header %.80q", err, b)
	}
}
