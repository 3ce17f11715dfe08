package imgproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/internal/hostile"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from fuzzSeeds")

// fuzzSeeds are small valid files of every format plus the interesting broken
// ones, for the fuzzer to mutate.
func fuzzSeeds(t testing.TB) map[string][]byte {
	blocks := blocksImage("AB", "CD")
	jpg := encodeJPEG(t, blocks)
	return map[string][]byte{
		"png":            encodePNG(t, blocks),
		"gif":            encodeGIF(t, blocks),
		"bmp":            encodeBMP(t, blocks),
		"jpeg":           jpg,
		"jpeg-exif-6-mm": withSegments(jpg, jfifSegment, exifSegment(binary.BigEndian, 6)),
		"jpeg-exif-7-ii": withSegments(jpg, exifSegment(binary.LittleEndian, 7)),
		"jpeg-truncated": jpg[:len(jpg)/2],
		"webp-lossless":  readFile(t, "testdata/blocks.lossless.webp"),
		"webp-lossy":     readFile(t, "testdata/blocks.lossy.webp"),
		"webp-alpha":     readFile(t, "testdata/blocks-alpha.lossy.webp"),
		"png-bomb":       pngHeader(100000, 100000),
		"gif-bomb":       gifHeader(65535, 65535),
		"jpeg-scans":     hostile.ProgressiveJPEG(24, 16, 12),
		"png-16bit":      hostile.ZeroPNG(6, 4, 16, 2),
		"text":           []byte("not an image\n"),
	}
}

func seedFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// TestFuzzSeeds keeps the committed corpus equal to fuzzSeeds; run with
// -update-seeds after changing them.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	for name, data := range fuzzSeeds(t) {
		path := filepath.Join(dir, name)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, seedFile(data), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: run go test ./imgproc -run TestFuzzSeeds -update-seeds", err)
		}
		// JPEG encoding is deterministic, so the files must match byte for byte.
		if !bytes.Equal(got, seedFile(data)) {
			t.Errorf("%s is stale: run go test ./imgproc -run TestFuzzSeeds -update-seeds", path)
		}
	}
}

// FuzzDecode: no input panics, every error is one of the documented kinds, the
// pixel limit holds, and any decoded image converts to a finite tensor in [-1, 1].
//
//	go test ./imgproc -run XXX -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	limit := Limits{MaxPixels: 1 << 20, MaxBytes: 64 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeBytes(data, limit)
		if err != nil {
			if kind := errorKind(err); kind == "untyped" {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if img != nil {
				t.Fatalf("image returned with error %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Empty() || b.Dx()*b.Dy() > limit.MaxPixels {
			t.Fatalf("decoded %v, outside 1..%d pixels", b, limit)
		}
		out := make([]float32, 5*5*3)
		ToTensor(out, img, 5)
		for i, v := range out {
			if math.IsNaN(float64(v)) || v < -1 || v > 1 {
				t.Fatalf("tensor element %d = %v", i, v)
			}
		}
	})
}

// FuzzReadHeader: ReadHeader's errors are typed, and its figures are what
// DecodeBytes checks: under limits that equal an image's header (Limits at its
// pixels and Header.Bytes) the image is never refused as too large unless its
// scans are, and one byte less is always refused before decoding.
//
//	go test ./imgproc -run XXX -fuzz FuzzReadHeader -fuzztime 60s
func FuzzReadHeader(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(data)
		if err != nil {
			if kind := errorKind(err); kind == "untyped" || kind == "too large" {
				t.Fatalf("ReadHeader: %s error %T: %v", kind, err, err)
			}
			return
		}
		px := int64(h.Width) * int64(h.Height)
		if h.Width <= 0 || h.Height <= 0 || h.Bytes <= 0 {
			t.Fatalf("header %+v", h)
		}
		if px > 1<<20 || h.Scans > MaxScans || h.jpeg.scanSamples > MaxScanPasses*px {
			return // too costly to decode in a fuzz run
		}
		exact := Limits{MaxPixels: int(px), MaxBytes: h.Bytes}
		if _, err := DecodeBytes(data, exact); errors.As(err, new(*TooLargeError)) {
			t.Fatalf("refused at its own header's limits %+v: %v", exact, err)
		}
		exact.MaxBytes--
		if _, err := DecodeBytes(data, exact); !errors.As(err, new(*TooLargeError)) {
			t.Fatalf("one byte under its cost %d: err = %v, want *TooLargeError", h.Bytes, err)
		}
	})
}
