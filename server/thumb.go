package server

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/jpeg"

	"golang.org/x/image/draw"
)

// thumbnail returns img as a small JPEG data URL, longest side side pixels, for
// the live page: a few KB per caption, no file storage, no extra request.
func thumbnail(img image.Image, side int) string {
	dst := thumbBounds(img.Bounds(), side)
	out := image.NewRGBA(dst)
	// Transparent pixels show as white, as the encoder sees them (imgproc.ToTensor).
	draw.Draw(out, dst, image.White, image.Point{}, draw.Src)
	// ApproxBiLinear reads 4 source pixels per output pixel: a little aliasing at
	// thumbnail size, for a tenth of the antialiased filter's cost, which reads
	// every source pixel and cost more than decoding the JPEG.
	draw.ApproxBiLinear.Scale(out, dst, img, img.Bounds(), draw.Over, nil)
	var buf bytes.Buffer
	buf.WriteString("data:image/jpeg;base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &buf)
	if err := jpeg.Encode(enc, out, &jpeg.Options{Quality: 80}); err != nil {
		panic("server: jpeg encoding into memory failed: " + err.Error()) // cannot fail on a bytes.Buffer
	}
	enc.Close()
	return buf.String()
}

// thumbBounds is the size of a thumbnail of b whose longest side is side.
func thumbBounds(b image.Rectangle, side int) image.Rectangle {
	w, h := b.Dx(), b.Dy()
	if w >= h {
		return image.Rect(0, 0, side, max(1, h*side/w))
	}
	return image.Rect(0, 0, max(1, w*side/h), side)
}
