package imgproc

import (
	"image"

	"golang.org/x/image/draw"
)

// Thumbnail returns img scaled so that its longest side is side pixels, keeping
// the aspect ratio, composited onto white as the encoder sees transparent
// pixels (ToTensor). It is made for small previews (the server's live page):
// each output pixel reads 4 source pixels, a little aliasing for a fraction of
// an antialiased filter's cost, which reads every source pixel and costs more
// than decoding the JPEG.
func Thumbnail(img image.Image, side int) *image.RGBA {
	dst := thumbBounds(img.Bounds(), side)
	if m, ok := img.(*image.RGBA); ok {
		return sampleRGBA(m, dst)
	}
	out := image.NewRGBA(dst)
	draw.Draw(out, dst, image.White, image.Point{}, draw.Src)
	draw.ApproxBiLinear.Scale(out, dst, img, img.Bounds(), draw.Over, nil)
	return out
}

// sampleRGBA is Thumbnail's path for libjpeg-turbo's output (DecodeBytesAtLeast),
// the server's usual image: each pixel of the dst-sized result is the mean of
// the 4 source pixels at a quarter and three quarters of its footprint across
// and down, composited onto white. Like ApproxBiLinear it reads 4 pixels per
// output pixel, but spread over the footprint (less aliasing: see
// TestSampleRGBAPhoto) and at a quarter of the cost (0.2 ms against 0.85 for a
// 500x375 photo): no interface calls or float weights per pixel.
func sampleRGBA(m *image.RGBA, dst image.Rectangle) *image.RGBA {
	out := image.NewRGBA(dst)
	xs := quarterPoints(m.Rect.Dx(), dst.Dx())
	for i := range xs {
		xs[i] *= 4 // byte offsets in a row
	}
	ys := quarterPoints(m.Rect.Dy(), dst.Dy())
	for i := range dst.Dy() {
		r0 := m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+ys[2*i]):][:4*m.Rect.Dx()]
		r1 := m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y+ys[2*i+1]):][:len(r0)]
		o := out.Pix[i*out.Stride:][:4*dst.Dx()]
		for j := 0; j < len(o); j += 4 {
			a, b := xs[j/2], xs[j/2+1]
			p, q, r, s := r0[a:a+4:a+4], r0[b:b+4:b+4], r1[a:a+4:a+4], r1[b:b+4:b+4]
			// Premultiplied: a pixel onto white is c + 255 - alpha; +2 rounds the mean.
			white := 4*255 + 2 - uint(p[3]) - uint(q[3]) - uint(r[3]) - uint(s[3])
			px := o[j : j+4 : j+4]
			px[0] = uint8((uint(p[0]) + uint(q[0]) + uint(r[0]) + uint(s[0]) + white) >> 2)
			px[1] = uint8((uint(p[1]) + uint(q[1]) + uint(r[1]) + uint(s[1]) + white) >> 2)
			px[2] = uint8((uint(p[2]) + uint(q[2]) + uint(r[2]) + uint(s[2]) + white) >> 2)
			px[3] = 255
		}
	}
	return out
}

// quarterPoints returns, for each of out samples spread over in, the input
// samples at a quarter and three quarters of its footprint: 2*out indexes in
// 0..in-1 (the same one twice when enlarging more than 2x: nearest neighbour).
func quarterPoints(in, out int) []int {
	p := make([]int, 2*out)
	for j := range out {
		p[2*j] = (4*j + 1) * in / (4 * out)
		p[2*j+1] = (4*j + 3) * in / (4 * out)
	}
	return p
}

// thumbBounds is the size of a thumbnail of b whose longest side is side.
func thumbBounds(b image.Rectangle, side int) image.Rectangle {
	w, h := b.Dx(), b.Dy()
	if w >= h {
		return image.Rect(0, 0, side, max(1, h*side/w))
	}
	return image.Rect(0, 0, max(1, w*side/h), side)
}
