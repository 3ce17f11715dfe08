package imgproc

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"testing"
)

// TestEncodeJPEG: whichever encoder the build uses, the file decodes to the
// picture, sub-images included, and a failing writer's error comes back.
func TestEncodeJPEG(t *testing.T) {
	src := blocksImage("ABC", "DEF", "CAB")
	for _, tc := range []struct {
		m    *image.RGBA
		rows []string
	}{
		{src, []string{"ABC", "DEF", "CAB"}},
		{src.SubImage(image.Rect(block, block, 3*block, 3*block)).(*image.RGBA), []string{"EF", "AB"}},
	} {
		for _, q := range []int{80, 0, 500} { // out-of-range qualities are clamped
			var buf bytes.Buffer
			if err := EncodeJPEG(&buf, tc.m, q); err != nil {
				t.Fatal(err)
			}
			img, err := jpeg.Decode(&buf)
			if err != nil {
				t.Fatalf("quality %d: %v", q, err)
			}
			tol := 40 // quality 1 is very lossy
			if q >= 80 {
				tol = 12
			}
			checkBlocks(t, img, tol, tc.rows...)
		}
	}
	broken := errors.New("broken writer")
	if err := EncodeJPEG(failingWriter{broken}, src, 80); !errors.Is(err, broken) {
		t.Errorf("writer failure: %v, want %v", err, broken)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
