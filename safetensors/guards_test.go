package safetensors

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestMoreBadFiles: headers that pass a naive reading but describe no valid
// file: a length that cannot be read, reversed or oversized byte ranges, and
// shapes whose element count overflows or is beyond any dimension a writer
// makes (either could make a tensor of no bytes pass the size check).
func TestMoreBadFiles(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"seven bytes", make([]byte, 7), "safetensors: 7 bytes is too short for a header; the file is empty or truncated"},
		{"reversed offsets", file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), "tensor a: data_offsets [4, 0] outside the 4 data bytes"},
		{"range larger than the shape", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), "tensor a: F32 shape [1] needs 4 bytes, data_offsets give 8"},
		{"dimension beyond int32", file(`{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}`, nil), "tensor a: bad dimension 4611686018427387904"},
		{"element count overflows", file(`{"a":{"dtype":"F32","shape":[1073741824,1073741824,1073741824,1073741824],"data_offsets":[0,0]}}`, nil), "needs 4294967296 bytes, data_offsets give 0"},
	}
	for _, c := range cases {
		if f, err := Parse(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v (file %v), want it to mention %q", c.name, err, f, c.want)
		}
	}
}

// TestMarshalRejectsMore: a tensor called __metadata__ (which readers take for
// the metadata), and data longer than its shape, are refused when writing;
// FromFloat32 panics on a value count that is not the shape's.
func TestMarshalRejectsMore(t *testing.T) {
	if _, err := Marshal([]Tensor{FromFloat32("__metadata__", []int{1}, []float32{1})}, nil); err == nil || err.Error() != `safetensors: invalid tensor name "__metadata__"` {
		t.Errorf("__metadata__ tensor: %v", err)
	}
	if _, err := Marshal([]Tensor{{Name: "x", DType: F32, Shape: []int{1}, Data: make([]byte, 8)}}, nil); err == nil || err.Error() != "safetensors: tensor x: shape [1] needs 4 bytes, have 8" {
		t.Errorf("long data: %v", err)
	}
	defer func() {
		if r := recover(); r != "safetensors: tensor w: 3 values for shape [2 2]" {
			t.Errorf("FromFloat32 of 3 values for shape [2 2]: panic %v", r)
		}
	}()
	FromFloat32("w", []int{2, 2}, []float32{1, 2, 3})
}

// TestHeaderAlignment: whatever the header's natural length, the data section
// starts 8-byte aligned (the header is padded with spaces).
func TestHeaderAlignment(t *testing.T) {
	for n := 1; n <= 8; n++ {
		b, err := Marshal([]Tensor{FromFloat32(strings.Repeat("w", n), []int{1}, []float32{1})}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if h := binary.LittleEndian.Uint64(b); h%8 != 0 {
			t.Errorf("name of %d bytes: header length %d is not a multiple of 8", n, h)
		}
		if _, err := Parse(b); err != nil {
			t.Errorf("name of %d bytes: %v", n, err)
		}
	}
}

// TestErrorsReturnNoValues: Float32 and Int32 give no values with an error,
// so a caller cannot use a tensor of the wrong shape by mistake.
func TestErrorsReturnNoValues(t *testing.T) {
	f, err := Parse(mustMarshal(t, FromFloat32("w", []int{2, 3}, make([]float32, 6)), FromInt32("i", []int{2}, []int32{1, 2})))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Float32("w", 3, 2); err == nil || v != nil {
		t.Errorf("Float32 of the wrong shape = %v, %v; want nil and an error", v, err)
	}
	if v, err := f.Int32("i", 3); err == nil || v != nil {
		t.Errorf("Int32 of the wrong shape = %v, %v; want nil and an error", v, err)
	}
}

// TestCheckShape: the shape of a tensor the file holds is checked; a missing
// tensor is not CheckShape's to report.
func TestCheckShape(t *testing.T) {
	f, err := Parse(mustMarshal(t, FromFloat32("w", []int{2, 3}, make([]float32, 6))))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckShape("w", 2, 3); err != nil {
		t.Errorf("right shape: %v", err)
	}
	if err := f.CheckShape("w", 3, 2); err == nil || err.Error() != "safetensors: tensor w has shape [2 3], want [3 2]" {
		t.Errorf("wrong shape: %v", err)
	}
	if err := f.CheckShape("missing", 1); err != nil {
		t.Errorf("missing tensor: %v, want nil", err)
	}
}

// TestChecksumCoversEverything: changing any tensor's name, shape or data,
// or any metadata value, changes the checksum; the checksum entry itself does
// not count.
func TestChecksumCoversEverything(t *testing.T) {
	base := func() ([]Tensor, map[string]string) {
		return []Tensor{FromFloat32("w", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}), FromInt32("i", []int{2}, []int32{7, 8})},
			map[string]string{"format": "test", "quant": `{"a":1}`}
	}
	ts, meta := base()
	sum := Checksum(ts, meta)
	if got := WithChecksum(ts, meta)[ChecksumKey]; got != sum {
		t.Errorf("WithChecksum recorded %s, Checksum is %s", got, sum)
	}
	meta[ChecksumKey] = "anything"
	if got := Checksum(ts, meta); got != sum {
		t.Errorf("the checksum entry changed the checksum")
	}
	for _, c := range []struct {
		what string
		edit func(ts []Tensor, meta map[string]string)
	}{
		{"a data byte", func(ts []Tensor, _ map[string]string) { ts[0].Data[5] ^= 1 }},
		{"a shape", func(ts []Tensor, _ map[string]string) { ts[0].Shape = []int{3, 2} }},
		{"a name", func(ts []Tensor, _ map[string]string) { ts[1].Name = "j" }},
		{"a metadata value", func(_ []Tensor, meta map[string]string) { meta["quant"] = `{"a":2}` }},
		{"a metadata key", func(_ []Tensor, meta map[string]string) { meta["format2"] = meta["format"]; delete(meta, "format") }},
	} {
		ts, meta := base()
		c.edit(ts, meta)
		if Checksum(ts, meta) == sum {
			t.Errorf("changing %s left the checksum unchanged", c.what)
		}
	}
}

func mustMarshal(t *testing.T, ts ...Tensor) []byte {
	t.Helper()
	b, err := Marshal(ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
