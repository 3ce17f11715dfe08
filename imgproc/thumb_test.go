package imgproc

import (
	"image"
	"image/color"
	"image/draw"
	"path/filepath"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// TestThumbnailKeepsLayout: the RGBA path (sampleRGBA) and the others keep the
// aspect ratio, the orientation and the colours, transparent pixels white, when
// shrinking and when enlarging.
func TestThumbnailKeepsLayout(t *testing.T) {
	quad := [4]color.RGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}, {}} // TL TR BL BR
	want := [4]color.RGBA{quad[0], quad[1], quad[2], {255, 255, 255, 255}}
	for _, tc := range []struct {
		w, h, side, tw, th int
	}{
		{200, 100, 64, 64, 32}, // wide, shrunk
		{90, 300, 60, 18, 60},  // tall, shrunk
		{4, 2, 48, 48, 24},     // enlarged (nearest)
		{400, 400, 128, 128, 128},
	} {
		m := image.NewRGBA(image.Rect(0, 0, tc.w, tc.h))
		for y := range tc.h {
			for x := range tc.w {
				m.SetRGBA(x, y, quad[2*(2*y/tc.h)+2*x/tc.w])
			}
		}
		n := image.NewNRGBA(m.Rect) // not *image.RGBA: x/image/draw's path
		draw.Draw(n, n.Rect, m, image.Point{}, draw.Src)
		for _, img := range []image.Image{m, n} {
			th := Thumbnail(img, tc.side)
			if b := th.Bounds(); b.Dx() != tc.tw || b.Dy() != tc.th {
				t.Fatalf("%T %dx%d -> %v, want %dx%d", img, tc.w, tc.h, b, tc.tw, tc.th)
			}
			for q, c := range want {
				// The centre of each quadrant: bilinear enlarging blends up to 9 levels of
				// the neighbour in there.
				x, y := (2*(q%2)+1)*tc.tw/4, (2*(q/2)+1)*tc.th/4
				got := th.RGBAAt(x, y)
				if d := max(absDiff(int(got.R), int(c.R)), absDiff(int(got.G), int(c.G)), absDiff(int(got.B), int(c.B))); d > 12 || got.A != 255 {
					t.Errorf("%T %dx%d -> %dx%d: quadrant %d at (%d, %d) is %v, want about %v", img, tc.w, tc.h, tc.tw, tc.th, q, x, y, got, c)
				}
			}
		}
	}
}

// TestSampleRGBAPhoto compares sampleRGBA and the ApproxBiLinear scaling it
// replaced with x/image/draw's antialiased BiLinear on a photo as the server
// decodes it. Both read 4 source pixels per thumbnail pixel; sampleRGBA spreads
// them over the footprint, so it aliases less. Measured mean differences in
// grey levels: sampleRGBA 6.6, ApproxBiLinear 10.8 (nearest neighbour 14.4).
func TestSampleRGBAPhoto(t *testing.T) {
	data := readFile(t, filepath.Join(assets(t), "samples", "flickr8k_fullres", "1000268201_693b08cb0e.jpg"))
	img, _, err := DecodeBytesAtLeast(data, Limits{MaxPixels: 1 << 30, MaxBytes: 1 << 40}, MinDecodeSide(224))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := img.(*image.RGBA)
	if !ok {
		t.Skipf("this build decodes JPEG to %T, not *image.RGBA: sampleRGBA is libjpeg-turbo's path", img)
	}
	dst := thumbBounds(m.Rect, 128)
	scaled := func(s xdraw.Scaler) *image.RGBA {
		out := image.NewRGBA(dst)
		s.Scale(out, dst, m, m.Rect, xdraw.Src, nil)
		return out
	}
	ref := scaled(xdraw.BiLinear)
	mad := func(a *image.RGBA) float64 {
		var sum float64
		for i := range a.Pix {
			sum += float64(absDiff(int(a.Pix[i]), int(ref.Pix[i])))
		}
		return sum / float64(len(a.Pix)/4*3) // alpha is 255 in both
	}
	ours, approx := mad(sampleRGBA(m, dst)), mad(scaled(xdraw.ApproxBiLinear))
	t.Logf("mean difference to BiLinear: sampleRGBA %.2f, ApproxBiLinear %.2f grey levels", ours, approx)
	if ours > 8 || ours > approx {
		t.Errorf("sampleRGBA differs from BiLinear by %.2f grey levels on average, ApproxBiLinear by %.2f", ours, approx)
	}
}
