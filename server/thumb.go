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
	src := img
	dst := thumbBounds(img.Bounds(), side)
	// The antialiased BiLinear filter reads every source pixel; a cheap
	// nearest-like pass first brings a large photo down to 4x the thumbnail, which
	// keeps enough detail for the filter and costs far less on a 12 MP photo.
	if b := img.Bounds(); b.Dx() > 4*dst.Dx() && b.Dy() > 4*dst.Dy() {
		mid := image.NewRGBA(image.Rect(0, 0, 4*dst.Dx(), 4*dst.Dy()))
		draw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, b, draw.Src, nil)
		src = mid
	}
	out := image.NewRGBA(dst)
	// Transparent pixels show as white, as the encoder sees them (imgproc.ToTensor).
	draw.Draw(out, dst, image.White, image.Point{}, draw.Src)
	draw.BiLinear.Scale(out, dst, src, src.Bounds(), draw.Over, nil)
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
