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

// A served photo (Bytes) becomes the same tensor as the file the CLI and the
// feature cache read (File), decoded at imgproc.MinDecodeSide of the input
// side, with the full size reported; Cost budgets that decode, and the limits
// are the configuration's.
func TestPreprocessorDecodesAtMinDecodeSide(t *testing.T) {
	path := filepath.Join(testConfig(t, "", 1).Assets, "samples", "cat_720p.jpg") // 1280x720
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img := config.Image{MaxPixels: 1 << 21, MaxDecodedBytes: 1 << 27}
	pre := NewPreprocessor(encoder.Config{Input: 224}, img)
	if want := (imgproc.Limits{MaxPixels: img.MaxPixels, MaxBytes: img.MaxDecodedBytes}); pre.Limits() != want {
		t.Errorf("limits %+v, want %+v", pre.Limits(), want)
	}
	served, err := pre.Bytes(data)
	if err != nil {
		t.Fatal(err)
	}
	file, err := pre.File(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(served.Tensor, file.Tensor) {
		t.Error("Bytes and File give different tensors for one photo")
	}
	decoded, _, err := imgproc.DecodeBytesAtLeast(data, pre.Limits(), imgproc.MinDecodeSide(224))
	if err != nil {
		t.Fatal(err)
	}
	if served.Size != image.Pt(1280, 720) || served.Decoded.Bounds() != decoded.Bounds() {
		t.Errorf("size %v, decoded %v; want (1280,720), decoded at MinDecodeSide %v", served.Size, served.Decoded.Bounds(), decoded.Bounds())
	}
	h, cost, err := pre.Cost(data)
	if err != nil || cost != h.Cost(imgproc.MinDecodeSide(224)) {
		t.Errorf("Cost = %d, %v; want the header's cost at MinDecodeSide, %d", cost, err, h.Cost(imgproc.MinDecodeSide(224)))
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
