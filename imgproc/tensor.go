package imgproc

import (
	"fmt"
	"image"
	"image/color"
	"sync"
)

// ToTensor writes img into dst[:size*size*3] as a (size, size, 3) NHWC float32
// tensor: RGB, squashed to size x size (no crop, the aspect ratio is not kept,
// as the Flickr8k training photos were made), scaled to [-1, 1] by
// x/127.5 - 1. dst must hold at least size*size*3 values.
//
// Every image type becomes RGB: gray is replicated, CMYK and paletted images are
// converted, and transparent pixels are composited onto white, because a
// transparent logo or sticker is meant to be seen on a light page and the encoder
// has never seen an alpha channel.
//
// Resampling is separable and antialiased: a triangle (bilinear) filter whose
// support widens with the scale factor when shrinking, so every source pixel
// contributes (area-like averaging, the same scheme as Pillow's BILINEAR resize,
// and of the filters tried the closest to the dataset's 224x224 photos: see
// TestToTensorMatchesTrainingPhotos); when enlarging it is plain bilinear
// interpolation. Weights are non-negative and sum to 1, so the output is in
// [-1, 1] (clamped against rounding) and is never NaN.
func ToTensor(dst []float32, img image.Image, size int) {
	if size <= 0 {
		panic(fmt.Sprintf("imgproc: ToTensor size must be positive, got %d", size))
	}
	if len(dst) < size*size*3 {
		panic(fmt.Sprintf("imgproc: ToTensor dst holds %d values, need %d for %dx%dx3", len(dst), size*size*3, size, size))
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		panic(fmt.Sprintf("imgproc: ToTensor of an empty image (%dx%d)", b.Dx(), b.Dy()))
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	switch m := img.(type) {
	case *image.YCbCr:
		if b.Min.X >= 0 && b.Min.Y >= 0 {
			s.ycbcr(dst, m, size)
			return
		}
	case *image.RGBA:
		s.rgbaFast(dst, m, size) // s.rgba, in C where cgo is available
		return
	}
	s.rgb(dst, img, size)
}

// scratch is the per-call working memory, pooled because a server converts many
// images per second and the intermediate planes are megabytes for a large photo.
// Each of the three channels is a separate plane so the filter loops run over
// contiguous float32s.
type scratch struct {
	xw, yw   filterWeights // full-resolution axes
	cxw, cyw filterWeights // chroma axes of a subsampled YCbCr image
	row      [3][]float32  // one source row per channel, (w)
	tmp      [3][]float32  // horizontally resampled rows per channel, (rows, size)
	out      [3][]float32  // resampled planes, (size, size)
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func grow(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// rgb is the path for every image type but YCbCr and RGBA: read each source row
// as RGB, resample it horizontally, then resample the columns.
func (s *scratch) rgb(dst []float32, img image.Image, size int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	xw := s.xw.get(w, size, 0, 0)
	yw := s.yw.get(h, size, 0, 0)
	s.growRGB(h, size)
	for c := range 3 {
		grow(&s.row[c], w)
	}
	read := newRowReader(img)
	for y := 0; y < h; y++ {
		read(s.row, b.Min.Y+y)
		for c := range 3 {
			hpass(s.tmp[c][y*size:(y+1)*size], s.row[c], xw)
		}
	}
	s.vpassRGB(dst, yw, size)
}

// rgba is the path of libjpeg-turbo's output (DecodeBytesAtLeast), of Orient's
// and of BMP's: it filters each row straight from the interleaved bytes, all
// four channels per tap, instead of first spreading the row into float planes.
// Compositing onto white is linear, so it is done after filtering:
// sum w*(c + 255 - a) = sum w*c + sum w*(255 - a).
func (s *scratch) rgba(dst []float32, m *image.RGBA, size int) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	xw := s.xw.get(w, size, 0, 0)
	yw := s.yw.get(h, size, 0, 0)
	s.growRGB(h, size)
	for y := 0; y < h; y++ {
		o := m.PixOffset(b.Min.X, b.Min.Y+y)
		hpassRGBA(s.tmp[0][y*size:(y+1)*size], s.tmp[1][y*size:(y+1)*size], s.tmp[2][y*size:(y+1)*size],
			m.Pix[o:o+4*w], xw)
	}
	s.vpassRGB(dst, yw, size)
}

// hpassRGBA is hpass over one row of premultiplied RGBA bytes, writing the
// channels composited onto white into r, g and bl (size each).
func hpassRGBA(r, g, bl []float32, row []uint8, f *filterWeights) {
	g, bl = g[:len(r)], bl[:len(r)]
	for i := range r {
		ws := f.weights(i)
		px := row[4*f.start[i] : 4*(f.start[i]+len(ws))]
		var ar, ag, ab, bg float32
		for k, wt := range ws {
			p := px[4*k : 4*k+4 : 4*k+4]
			ar += wt * float32(p[0])
			ag += wt * float32(p[1])
			ab += wt * float32(p[2])
			// White showing through. Summed per tap rather than as 255 - sum w*a
			// so that opaque pixels add exactly 0: the result is then bit for bit
			// the one of filtering the composited row, which the committed
			// encoder references (encoder/testdata/armnn_*.json) depend on.
			bg += wt * float32(255-p[3])
		}
		r[i], g[i], bl[i] = ar+bg, ag+bg, ab+bg
	}
}

// growRGB sizes the R, G, B planes for h source rows.
func (s *scratch) growRGB(h, size int) {
	for c := range 3 {
		grow(&s.tmp[c], h*size)
		grow(&s.out[c], size*size)
	}
}

// vpassRGB resamples the columns of the horizontally resampled R, G, B planes
// in s.tmp and writes the interleaved tensor.
func (s *scratch) vpassRGB(dst []float32, yw *filterWeights, size int) {
	for c := range 3 {
		vpass(s.out[c], s.tmp[c], yw, size)
	}
	r := s.out[0]
	g, bl := s.out[1][:len(r)], s.out[2][:len(r)]
	dst = dst[:3*len(r)]
	for i := range r {
		// Float rounding of weights that sum to 1 can overshoot by an ulp.
		dst[3*i] = clamp255(r[i])/127.5 - 1
		dst[3*i+1] = clamp255(g[i])/127.5 - 1
		dst[3*i+2] = clamp255(bl[i])/127.5 - 1
	}
}

// ycbcr is JPEG's path: it resamples the Y, Cb and Cr planes at their own
// resolutions (the chroma filter taps are the full-resolution taps merged onto
// the subsampled grid, which is exactly filtering the nearest-neighbour
// upsampled chroma that image.YCbCr.At describes) and converts only the
// size x size result to RGB. The conversion is affine, so this equals
// converting first and filtering after, except that out-of-gamut values are
// clamped after filtering rather than before; on photos that is a fraction of
// a grey level at saturated edges, and it saves converting every source pixel.
func (s *scratch) ycbcr(dst []float32, m *image.YCbCr, size int) {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	hs, vs := chromaShifts(m.SubsampleRatio)
	cw := ((b.Max.X - 1) >> hs) - (b.Min.X >> hs) + 1
	ch := ((b.Max.Y - 1) >> vs) - (b.Min.Y >> vs) + 1
	xw := s.xw.get(w, size, 0, 0)
	yw := s.yw.get(h, size, 0, 0)
	cxw := s.cxw.get(w, size, b.Min.X, hs)
	cyw := s.cyw.get(h, size, b.Min.Y, vs)
	ty := grow(&s.tmp[0], h*size)
	tcb := grow(&s.tmp[1], ch*size)
	tcr := grow(&s.tmp[2], ch*size)
	for y := 0; y < h; y++ {
		o := m.YOffset(b.Min.X, b.Min.Y+y)
		hpass(ty[y*size:(y+1)*size], m.Y[o:o+w], xw)
	}
	// Chroma row cy of the image starts at cy*CStride: image.YCbCr keeps its chroma
	// slices starting at the chroma sample of Rect.Min.
	for cy := 0; cy < ch; cy++ {
		o := cy * m.CStride
		hpass(tcb[cy*size:(cy+1)*size], m.Cb[o:o+cw], cxw)
		hpass(tcr[cy*size:(cy+1)*size], m.Cr[o:o+cw], cxw)
	}
	py := grow(&s.out[0], size*size)
	pcb := grow(&s.out[1], size*size)
	pcr := grow(&s.out[2], size*size)
	vpass(py, ty, yw, size)
	vpass(pcb, tcb, cyw, size)
	vpass(pcr, tcr, cyw, size)
	dst = dst[:3*len(py)]
	pcb, pcr = pcb[:len(py)], pcr[:len(py)]
	for i, yy := range py {
		// JFIF: R = Y + 1.402 Cr', G = Y - 0.34414 Cb' - 0.71414 Cr', B = Y + 1.772 Cb',
		// with Cb' = Cb - 128, Cr' = Cr - 128 (color.YCbCrToRGB's formula).
		cb, cr := pcb[i]-128, pcr[i]-128
		dst[3*i] = clamp255(yy+1.402*cr)/127.5 - 1
		dst[3*i+1] = clamp255(yy-0.34414*cb-0.71414*cr)/127.5 - 1
		dst[3*i+2] = clamp255(yy+1.772*cb)/127.5 - 1
	}
}

// chromaShifts returns log2 of the horizontal and vertical chroma subsampling.
func chromaShifts(r image.YCbCrSubsampleRatio) (hs, vs int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 1, 0
	case image.YCbCrSubsampleRatio420:
		return 1, 1
	case image.YCbCrSubsampleRatio440:
		return 0, 1
	case image.YCbCrSubsampleRatio411:
		return 2, 0
	case image.YCbCrSubsampleRatio410:
		return 2, 1
	}
	return 0, 0
}

// clamp255 is written with branches because the min and max builtins handle NaN
// for floats and do not inline into hot loops.
func clamp255(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}

// hpass resamples one row: dst[i] = sum_k w_i[k] * src[start_i + k].
// dst is (size), src is (in).
func hpass[T uint8 | float32](dst []float32, src []T, f *filterWeights) {
	for i := range dst {
		ws := f.weights(i)
		s := src[f.start[i] : f.start[i]+len(ws)]
		var acc float32
		for k, wt := range ws {
			acc += wt * float32(s[k])
		}
		dst[i] = acc
	}
}

// vpass resamples columns: dst is (size, size), tmp is (rows, size), and output
// row i is sum_k w_i[k] * tmp row (start_i + k).
func vpass(dst, tmp []float32, f *filterWeights, size int) {
	for i := 0; i < size; i++ {
		out := dst[i*size : (i+1)*size]
		clear(out)
		for k, wt := range f.weights(i) {
			r := f.start[i] + k
			src := tmp[r*size : (r+1)*size]
			out := out[:len(src)]
			for x, v := range src {
				out[x] += wt * v
			}
		}
	}
}

// filterWeights holds, for each output index i, the taps of a 1-D resampling
// from in to out samples: output i = sum_k w[off[i]+k] * input[start[i]+k].
type filterWeights struct {
	key   [4]int // in, out, origin, shift
	start []int
	off   []int // off[i]..off[i+1] indexes w; len(off) = out+1
	w     []float32
	// The same taps at a fixed count per output, made by fixed on first use.
	fstart []int
	fw     []float32
	ftaps  int
}

func (f *filterWeights) weights(i int) []float32 { return f.w[f.off[i]:f.off[i+1]] }

// get returns the triangle-filter weights for in -> out samples, recomputing
// only when the arguments change (a server sees many photos of the same size).
// With shift > 0 the input is subsampled by 1<<shift, aligned to the absolute
// coordinate origin as image.YCbCr aligns chroma: full-resolution sample j uses
// subsampled sample ((origin+j)>>shift) - (origin>>shift), and the taps that
// land on the same subsampled sample are summed.
func (f *filterWeights) get(in, out, origin, shift int) *filterWeights {
	key := [4]int{in, out, origin, shift}
	if f.key == key && f.start != nil {
		return f
	}
	f.key = key
	f.start, f.off, f.w, f.ftaps = f.start[:0], f.off[:0], f.w[:0], 0
	scale := float64(in) / float64(out)
	// Shrinking stretches the triangle to cover scale input samples on each side.
	support := max(scale, 1)
	for i := 0; i < out; i++ {
		center := (float64(i) + 0.5) * scale // in input pixel coordinates
		tri := func(j int) float64 {
			t := (float64(j) + 0.5 - center) / support
			if t < 0 {
				t = -t
			}
			return max(1-t, 0)
		}
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		// The window rounds outward: drop end taps whose weight is exactly 0.
		for lo < hi-1 && tri(lo) == 0 {
			lo++
		}
		for hi-1 > lo && tri(hi-1) == 0 {
			hi--
		}
		var sum float64
		for j := lo; j < hi; j++ {
			sum += tri(j)
		}
		sub := func(j int) int { return ((origin + j) >> shift) - (origin >> shift) }
		first := sub(lo)
		f.start = append(f.start, first)
		f.off = append(f.off, len(f.w))
		base := len(f.w)
		for j := lo; j < hi; j++ {
			k := base + sub(j) - first
			if k == len(f.w) {
				f.w = append(f.w, 0)
			}
			f.w[k] += float32(tri(j) / sum)
		}
	}
	f.off = append(f.off, len(f.w))
	return f
}

// fixed returns f's taps laid out taps per output, for loops with a fixed trip
// count (resize.c): output i is sum_k w[i*taps+k] * input[start[i]+k]. Each
// window is the output's own, widened with zero weights on the right, or moved
// left where that would pass the end of the in samples. Adding 0*x to a sum of
// non-negative terms leaves it bit for bit unchanged, even before the first
// real tap (0 + 0 = 0), so the sums are those of the variable-length taps.
func (f *filterWeights) fixed(in int) (start []int, w []float32, taps int) {
	if f.ftaps > 0 {
		return f.fstart, f.fw, f.ftaps
	}
	out := len(f.start)
	for i := range out {
		taps = max(taps, f.off[i+1]-f.off[i])
	}
	f.fstart = f.fstart[:0]
	clear(grow(&f.fw, out*taps))
	for i := range out {
		s := min(f.start[i], in-taps)
		f.fstart = append(f.fstart, s)
		copy(f.fw[i*taps+f.start[i]-s:], f.weights(i))
	}
	f.ftaps = taps
	return f.fstart, f.fw, taps
}

// newRowReader returns a function that writes row y of img as RGB values in
// 0..255 into the planes dst[0] (R), dst[1] (G), dst[2] (B), each (w), alpha
// composited onto white. The common decoder outputs have fast paths; every
// other type (CMYK, 16-bit, NYCbCrA, ...) goes through the general At path,
// which the fast paths are tested against.
func newRowReader(img image.Image) func(dst [3][]float32, y int) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.NRGBA:
		return func(dst [3][]float32, y int) {
			p := m.Pix[m.PixOffset(b.Min.X, y):][:4*w]
			r, g, bl := dst[0][:w], dst[1][:w], dst[2][:w]
			for x := range r {
				px := p[4*x : 4*x+4]
				a := float32(px[3]) / 255
				bg := 255 * (1 - a)
				r[x] = float32(px[0])*a + bg
				g[x] = float32(px[1])*a + bg
				bl[x] = float32(px[2])*a + bg
			}
		}
	case *image.Gray:
		return func(dst [3][]float32, y int) {
			p := m.Pix[m.PixOffset(b.Min.X, y):][:w]
			r, g, bl := dst[0][:w], dst[1][:w], dst[2][:w]
			for x, v := range p {
				r[x] = float32(v)
				g[x], bl[x] = r[x], r[x]
			}
		}
	// 16-bit PNGs, as over reads them but without a color.Color a pixel: At
	// boxed each one (a 5790x5790 image: 33 M allocations, 2.3 times the time).
	case *image.NRGBA64:
		return func(dst [3][]float32, y int) {
			p := m.Pix[m.PixOffset(b.Min.X, y):][:8*w]
			for x := range w {
				px := p[8*x : 8*x+8]
				a := be16(px[6:])
				setOver16(dst, x, be16(px[0:])*a/0xffff, be16(px[2:])*a/0xffff, be16(px[4:])*a/0xffff, a) // color.NRGBA64's premultiplication
			}
		}
	case *image.RGBA64:
		return func(dst [3][]float32, y int) {
			p := m.Pix[m.PixOffset(b.Min.X, y):][:8*w]
			for x := range w {
				px := p[8*x : 8*x+8]
				setOver16(dst, x, be16(px[0:]), be16(px[2:]), be16(px[4:]), be16(px[6:]))
			}
		}
	case *image.Gray16:
		return func(dst [3][]float32, y int) {
			p := m.Pix[m.PixOffset(b.Min.X, y):][:2*w]
			for x := range w {
				v := be16(p[2*x:])
				setOver16(dst, x, v, v, v, 0xffff)
			}
		}
	case *image.Paletted:
		var lut [256][3]float32
		for i, c := range m.Palette[:min(len(m.Palette), 256)] {
			lut[i] = over(c)
		}
		return func(dst [3][]float32, y int) {
			p := m.Pix[m.PixOffset(b.Min.X, y):][:w]
			r, g, bl := dst[0][:w], dst[1][:w], dst[2][:w]
			for x, i := range p {
				// An index past the palette (decoders reject those) reads as black.
				r[x], g[x], bl[x] = lut[i][0], lut[i][1], lut[i][2]
			}
		}
	}
	return func(dst [3][]float32, y int) {
		for x := 0; x < w; x++ {
			c := over(img.At(b.Min.X+x, y))
			dst[0][x], dst[1][x], dst[2][x] = c[0], c[1], c[2]
		}
	}
}

// be16 is the big-endian 16-bit value at the start of p.
func be16(p []uint8) uint32 { return uint32(p[0])<<8 | uint32(p[1]) }

// setOver16 writes into column x of dst what over gives for the premultiplied
// 16-bit colour (r, g, b, a).
func setOver16(dst [3][]float32, x int, r, g, b, a uint32) {
	c := over16(r, g, b, a)
	dst[0][x], dst[1][x], dst[2][x] = c[0], c[1], c[2]
}

// over composites c onto white and returns RGB in 0..255.
func over(c color.Color) [3]float32 { return over16(c.RGBA()) }

// over16 composites the premultiplied 16-bit colour (r, g, b, a), as
// color.Color's RGBA gives it, onto white: RGB in 0..255.
func over16(r, g, b, a uint32) [3]float32 {
	bg := 0xffff - a
	return [3]float32{float32(r+bg) / 257, float32(g+bg) / 257, float32(b+bg) / 257}
}

// MirrorTensor flips a (size, size, 3) tensor of ToTensor left to right, in
// place. ToTensor's resampling is symmetric and never crops, so this is the
// tensor of the mirrored photo (to within the rounding of chroma that a JPEG
// subsamples from its left edge): extract --mirror uses it to compute the
// features of mirrored training photos (a data augmentation) without writing
// mirrored image files.
func MirrorTensor(t []float32, size int) {
	if len(t) != size*size*3 {
		panic(fmt.Sprintf("imgproc: MirrorTensor of %d values, want %dx%dx3", len(t), size, size))
	}
	for y := 0; y < size; y++ {
		row := t[y*size*3 : (y+1)*size*3]
		for l, r := 0, size-1; l < r; l, r = l+1, r-1 {
			for c := 0; c < 3; c++ {
				row[l*3+c], row[r*3+c] = row[r*3+c], row[l*3+c]
			}
		}
	}
}
