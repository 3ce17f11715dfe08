package pipeline

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/imgproc"
)

// gradientPNG is a w x h PNG with a colour gradient.
func gradientPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(255 * x / (w - 1)), uint8(255 * y / (h - 1)), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPreprocessorFollowsEncoderConfig: the tensor's side is the encoder
// configuration's Input, whatever it is, and its values are imgproc's resize of
// the decoded image.
func TestPreprocessorFollowsEncoderConfig(t *testing.T) {
	data := gradientPNG(t, 300, 200)
	path := filepath.Join(t.TempDir(), "g.png")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, side := range []int{224, 96, 33} {
		pre := NewPreprocessor(encoder.Config{Input: side}, config.Image{MaxPixels: 1 << 20, MaxDecodedBytes: 1 << 30})
		if pre.TensorLen() != side*side*3 {
			t.Errorf("input %d: TensorLen %d, want %d", side, pre.TensorLen(), side*side*3)
		}
		im, err := pre.Bytes(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Tensor) != side*side*3 || im.Size != image.Pt(300, 200) {
			t.Fatalf("input %d: %d values, size %v; want %d values, (300,200)", side, len(im.Tensor), im.Size, side*side*3)
		}
		want := make([]float32, side*side*3)
		imgproc.ToTensor(want, im.Decoded, side)
		if !slices.Equal(im.Tensor, want) {
			t.Errorf("input %d: the tensor is not imgproc.ToTensor of the decoded image", side)
		}
		files, err := pre.Files([]string{path, path})
		if err != nil || len(files) != 2 || !slices.Equal(files[0], want) || !slices.Equal(files[1], want) {
			t.Errorf("input %d: Files gave %d tensors, %v; want the same tensor twice", side, len(files), err)
		}
	}
}

func TestPreprocessorErrors(t *testing.T) {
	pre := NewPreprocessor(encoder.Config{Input: 224}, config.Image{MaxPixels: 10_000, MaxDecodedBytes: 1 << 30})
	var tooLarge *imgproc.TooLargeError
	if _, err := pre.Bytes(gradientPNG(t, 200, 100)); !errors.As(err, &tooLarge) {
		t.Errorf("20000 pixels with a limit of 10000: %v, want *imgproc.TooLargeError", err)
	}
	if _, err := pre.Bytes(nil); !errors.Is(err, imgproc.ErrEmpty) {
		t.Errorf("no bytes: %v, want imgproc.ErrEmpty", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.jpg")
	if _, err := pre.Files([]string{missing}); err == nil || !bytes.Contains([]byte(err.Error()), []byte(missing)) {
		t.Errorf("missing file: %v, want an error naming %s", err, missing)
	}
}
