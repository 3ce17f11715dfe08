package server

import (
	"testing"

	"github.com/captioner/captioner/imgproc"
)

// BenchmarkPrepare times the handler-side work per uploaded photo (a 500x375
// Flickr8k JPEG): decoding, the encoder tensor and the live thumbnail.
func BenchmarkPrepare(b *testing.B) {
	data := photo(b, "samples/flickr8k_fullres/1000268201_693b08cb0e.jpg")
	side := testEncoder.Input
	img, _, err := imgproc.DecodeBytesAtLeast(data, imgproc.Limits{MaxPixels: 1 << 30, MaxBytes: 1 << 40}, imgproc.MinDecodeSide(side))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			imgproc.DecodeBytesAtLeast(data, imgproc.Limits{MaxPixels: 1 << 30, MaxBytes: 1 << 40}, imgproc.MinDecodeSide(side))
		}
	})
	b.Run("tensor", func(b *testing.B) {
		dst := make([]float32, side*side*3)
		for b.Loop() {
			imgproc.ToTensor(dst, img, side)
		}
	})
	b.Run("thumbnail", func(b *testing.B) {
		for b.Loop() {
			thumbnail(img, 128)
		}
	})
}
