package imgproc

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/benchstat"
)

// opaque hides an image's concrete type so ToTensor takes its general At path.
type opaque struct{ image.Image }

func randomImages(r *rand.Rand, w, h int) map[string]image.Image {
	rect := image.Rect(0, 0, w, h)
	fill := func(pix []uint8) {
		for i := range pix {
			pix[i] = uint8(r.IntN(256))
		}
	}
	imgs := map[string]image.Image{}
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		// In gamut: with Y in 90..165 and Cb, Cr in 108..148 every R, G, B stays
		// inside 0..255 (the largest term is 1.772*20 = 35.4), so the order of
		// clamping and filtering cannot matter.
		m := image.NewYCbCr(rect, ratio)
		for i := range m.Y {
			m.Y[i] = uint8(90 + r.IntN(76))
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(108+r.IntN(41)), uint8(108+r.IntN(41))
		}
		imgs["ycbcr "+ratio.String()] = m
	}
	rgba := image.NewRGBA(rect)
	fill(rgba.Pix)
	for i := 0; i < len(rgba.Pix); i += 4 { // premultiplied: colour <= alpha
		a := rgba.Pix[i+3]
		rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2] = min(rgba.Pix[i], a), min(rgba.Pix[i+1], a), min(rgba.Pix[i+2], a)
	}
	imgs["rgba"] = rgba
	nrgba := image.NewNRGBA(rect)
	fill(nrgba.Pix)
	imgs["nrgba"] = nrgba
	gray := image.NewGray(rect)
	fill(gray.Pix)
	imgs["gray"] = gray
	pal := color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{255, 0, 0, 128}}
	for len(pal) < 256 { // a full palette: index 255 is read too
		pal = append(pal, color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255})
	}
	paletted := image.NewPaletted(rect, pal)
	for i := range paletted.Pix {
		paletted.Pix[i] = uint8(r.IntN(len(pal)))
	}
	imgs["paletted"] = paletted
	cmyk := image.NewCMYK(rect)
	fill(cmyk.Pix)
	imgs["cmyk"] = cmyk
	nrgba64 := image.NewNRGBA64(rect)
	fill(nrgba64.Pix)
	imgs["nrgba64"] = nrgba64
	rgba64 := image.NewRGBA64(rect)
	for i := 0; i < len(rgba64.Pix); i += 8 { // premultiplied: colour <= alpha
		a := uint16(r.IntN(1 << 16))
		for c := 0; c < 4; c++ {
			v := a
			if c < 3 {
				v = uint16(r.IntN(int(a) + 1))
			}
			rgba64.Pix[i+2*c], rgba64.Pix[i+2*c+1] = uint8(v>>8), uint8(v)
		}
	}
	imgs["rgba64"] = rgba64
	gray16 := image.NewGray16(rect)
	fill(gray16.Pix)
	imgs["gray16"] = gray16
	return imgs
}

type subImager interface {
	SubImage(image.Rectangle) image.Image
}

// TestToTensorFastPaths checks every type-specific row reader against the
// general At path, on whole images and on sub-images whose origin is not (0, 0).
func TestToTensorFastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, img := range randomImages(r, 61, 43) {
		for _, view := range []image.Image{img, img.(subImager).SubImage(image.Rect(7, 5, 50, 40))} {
			for _, size := range []int{16, 43, 90} {
				fast := make([]float32, size*size*3)
				slow := make([]float32, size*size*3)
				ToTensor(fast, view, size)
				ToTensor(slow, opaque{view}, size)
				// At rounds to 16-bit premultiplied values (NRGBA: 0.004 grey levels);
				// for YCbCr the fast path keeps the JFIF conversion in float while At
				// uses integer coefficients: within one grey level.
				tol := 1e-4
				switch {
				case strings.HasPrefix(name, "ycbcr"):
					tol = 1.0 / 127.5
				case name == "nrgba64" || name == "rgba64" || name == "gray16":
					tol = 0 // the same integer arithmetic as At's
				}
				if d := maxDiff(fast, slow); d > tol {
					t.Errorf("%s %v -> %d: fast path differs from At by %g (tolerance %g)", name, view.Bounds(), size, d, tol)
				}
			}
		}
	}
}

// TestToTensorYCbCrPhoto bounds the one place the YCbCr path differs from
// converting first: out-of-gamut values are clamped after filtering. Measured:
// cat_720p mean 0.125, max 8.1 grey levels (a few saturated edge pixels);
// a Flickr photo mean 0.089, max 3.4. The dataset's own JPEG noise is 3.85.
func TestToTensorYCbCrPhoto(t *testing.T) {
	dir := assets(t)
	for _, name := range []string{"samples/cat_720p.jpg", "samples/flickr8k_fullres/1000268201_693b08cb0e.jpg"} {
		img, err := DecodeFile(filepath.Join(dir, name), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := img.(*image.YCbCr); !ok {
			t.Fatalf("%s decodes to %T, want *image.YCbCr", name, img)
		}
		fast := make([]float32, 224*224*3)
		slow := make([]float32, 224*224*3)
		ToTensor(fast, img, 224)
		ToTensor(slow, opaque{img}, 224)
		var sum float64
		for i := range fast {
			sum += math.Abs(float64(fast[i] - slow[i]))
		}
		mean, worst := sum/float64(len(fast))*127.5, maxDiff(fast, slow)*127.5
		t.Logf("%s: YCbCr path vs convert-first: mean %.3f, max %.2f grey levels", name, mean, worst)
		if mean > 0.2 || worst > 12 {
			t.Errorf("%s: YCbCr path differs from convert-first by mean %.3f, max %.2f grey levels", name, mean, worst)
		}
	}
	// Fully saturated random YCbCr still lands inside [-1, 1].
	r := rand.New(rand.NewPCG(7, 8))
	m := image.NewYCbCr(image.Rect(0, 0, 30, 30), image.YCbCrSubsampleRatio420)
	for _, p := range [][]uint8{m.Y, m.Cb, m.Cr} {
		for i := range p {
			p[i] = uint8(r.IntN(256))
		}
	}
	out := make([]float32, 17*17*3)
	ToTensor(out, m, 17)
	for i, v := range out {
		if v < -1 || v > 1 {
			t.Fatalf("element %d = %v outside [-1, 1]", i, v)
		}
	}
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// naiveTensor is an independent float64 reference: each output pixel is the
// 2-D weighted sum over the whole source of tri(dx/sx)*tri(dy/sy), normalised,
// with no windows, no separability and no caching.
func naiveTensor(img image.Image, size int) []float64 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	weights := func(in, i int) []float64 {
		scale := float64(in) / float64(size)
		s := max(scale, 1)
		c := (float64(i) + 0.5) * scale
		ws := make([]float64, in)
		var sum float64
		for x := range ws {
			ws[x] = max(0, 1-math.Abs(float64(x)+0.5-c)/s)
			sum += ws[x]
		}
		for x := range ws {
			ws[x] /= sum
		}
		return ws
	}
	out := make([]float64, size*size*3)
	for i := 0; i < size; i++ {
		wy := weights(h, i)
		for j := 0; j < size; j++ {
			wx := weights(w, j)
			var acc [3]float64
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					cr, cg, cb, ca := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
					bg := float64(0xffff - ca)
					wt := wy[y] * wx[x]
					acc[0] += wt * (float64(cr) + bg) / 257
					acc[1] += wt * (float64(cg) + bg) / 257
					acc[2] += wt * (float64(cb) + bg) / 257
				}
			}
			for c := range acc {
				out[(i*size+j)*3+c] = acc[c]/127.5 - 1
			}
		}
	}
	return out
}

func TestToTensorMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	imgs := randomImages(r, 37, 23)
	for _, name := range []string{"nrgba", "ycbcr YCbCrSubsampleRatio420", "paletted"} {
		// Shrink both ways, shrink one way and enlarge the other, enlarge, 1x1.
		for _, size := range []int{16, 5, 30, 50, 1} {
			got := make([]float32, size*size*3)
			ToTensor(got, imgs[name], size)
			want := naiveTensor(opaque{imgs[name]}, size)
			tol := 1e-4 // the reference reads 16-bit premultiplied values through At
			if strings.HasPrefix(name, "ycbcr") {
				tol = 1.0 / 127.5
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > tol {
					t.Fatalf("%s -> %d: element %d = %v, reference %v", name, size, i, got[i], want[i])
				}
			}
		}
	}
}

func TestToTensorHandComputed(t *testing.T) {
	// 4x4 grey image whose columns are 0, 60, 120, 240, squashed to 2x2. Scale 2,
	// so the triangle spans 2 source pixels each side of the output centre.
	// Output column 0: centre 1.0, source centres 0.5 1.5 2.5 -> weights
	// 0.75 0.75 0.25 (0 for 3.5): (0*0.75 + 60*0.75 + 120*0.25)/1.75 = 75/1.75 = 42.857...
	// Output column 1: centre 3.0, source 1.5 2.5 3.5 -> 0.25 0.75 0.75:
	// (60*0.25 + 120*0.75 + 240*0.75)/1.75 = 285/1.75 = 162.857...
	// Rows are equal, so vertical filtering changes nothing. Then x/127.5 - 1.
	m := image.NewGray(image.Rect(0, 0, 4, 4))
	for y := 0; y < 4; y++ {
		copy(m.Pix[y*4:], []uint8{0, 60, 120, 240})
	}
	got := make([]float32, 2*2*3)
	ToTensor(got, m, 2)
	c0, c1 := 75/1.75/127.5-1, 285/1.75/127.5-1 // -0.66386..., 0.27731...
	want := []float64{c0, c0, c0, c1, c1, c1, c0, c0, c0, c1, c1, c1}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-6 {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestToTensorExactCases(t *testing.T) {
	// Same size: every pixel is copied exactly.
	r := rand.New(rand.NewPCG(5, 6))
	m := randomImages(r, 20, 20)["nrgba"].(*image.NRGBA)
	got := make([]float32, 20*20*3)
	ToTensor(got, m, 20)
	for i := 0; i < 400; i++ {
		c := over(m.At(i%20, i/20))
		for ch := 0; ch < 3; ch++ {
			if want := c[ch]/127.5 - 1; math.Abs(float64(got[3*i+ch]-want)) > 1e-4 {
				t.Fatalf("pixel %d channel %d = %v, want %v", i, ch, got[3*i+ch], want)
			}
		}
	}
	// A constant image stays constant at every size; white is 1, black -1.
	for _, tc := range []struct {
		c    color.Color
		want [3]float32
	}{
		{color.White, [3]float32{1, 1, 1}},
		{color.Black, [3]float32{-1, -1, -1}},
		{color.Transparent, [3]float32{1, 1, 1}}, // onto white
		// Half-transparent red onto white: R 255, G and B 255*(1-128/255) = 127.
		{color.NRGBA{255, 0, 0, 128}, [3]float32{1, 127/127.5 - 1, 127/127.5 - 1}},
	} {
		m := image.NewNRGBA(image.Rect(0, 0, 33, 17))
		for i := 0; i < 33*17; i++ {
			m.Set(i%33, i/33, tc.c)
		}
		for _, size := range []int{1, 7, 17, 224} {
			out := make([]float32, size*size*3)
			ToTensor(out, m, size)
			for i, v := range out {
				if math.Abs(float64(v-tc.want[i%3])) > 1e-5 {
					t.Fatalf("%v -> %d: element %d = %v, want %v", tc.c, size, i, v, tc.want[i%3])
				}
			}
		}
	}
}

func TestToTensorSquashesNotCrops(t *testing.T) {
	// 60x20: a black stripe in the 10 leftmost columns, white elsewhere. Squashed
	// to 6x6 the stripe is output column 0 in every row; a centre crop would lose it.
	m := image.NewGray(image.Rect(0, 0, 60, 20))
	for i := range m.Pix {
		if i%60 >= 10 {
			m.Pix[i] = 255
		}
	}
	out := make([]float32, 6*6*3)
	ToTensor(out, m, 6)
	for y := 0; y < 6; y++ {
		for x := 0; x < 6; x++ {
			v := out[(y*6+x)*3]
			if (x == 0) != (v < -0.5) || (x >= 2 && v < 0.9999) {
				t.Fatalf("row %d: %v; want column 0 dark, columns 2.. white", y, out[y*18:(y+1)*18])
			}
		}
	}
}

// TestToTensorMatchesTrainingPhotos resizes the full-resolution Flickr8k photos
// and compares them with the dataset's 224x224 copies, which were made by an
// antialiased bilinear resize and saved again as JPEG. Measured mean absolute
// differences in grey levels: ours 3.85; golang.org/x/image/draw BiLinear 3.86,
// CatmullRom 3.94, box 4.95, Lanczos-3 4.56, ApproxBiLinear 5.62, nearest 9.39.
func TestToTensorMatchesTrainingPhotos(t *testing.T) {
	dir := assets(t)
	files, err := filepath.Glob(filepath.Join(dir, "samples/flickr8k_fullres/*.jpg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no photos in %s/samples/flickr8k_fullres (%v)", dir, err)
	}
	ours := make([]float32, 224*224*3)
	theirs := make([]float32, 224*224*3)
	var total float64
	for _, f := range files {
		full, err := DecodeFile(f, testLimits)
		if err != nil {
			t.Fatal(err)
		}
		small, err := DecodeFile(filepath.Join(dir, "data/flickr8k/images", filepath.Base(f)), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		ToTensor(ours, full, 224)
		ToTensor(theirs, small, 224)
		var sum float64
		for i := range ours {
			sum += math.Abs(float64(ours[i] - theirs[i]))
		}
		mae := sum / float64(len(ours)) * 127.5
		total += mae
		if mae > 7 {
			t.Errorf("%s: mean absolute difference %.2f grey levels", filepath.Base(f), mae)
		}
	}
	mean := total / float64(len(files))
	t.Logf("mean absolute difference to the dataset's 224x224 photos: %.2f grey levels over %d photos", mean, len(files))
	if mean > 4.3 {
		t.Errorf("mean absolute difference %.2f grey levels > 4.3: the resize no longer matches how the training photos were made", mean)
	}
}

func TestToTensorPanics(t *testing.T) {
	m := image.NewGray(image.Rect(0, 0, 4, 4))
	for _, tc := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"short dst", func() { ToTensor(make([]float32, 10), m, 2) }, "dst holds 10 values, need 12"},
		{"size 0", func() { ToTensor(make([]float32, 10), m, 0) }, "size must be positive"},
		{"empty image", func() { ToTensor(make([]float32, 12), image.NewGray(image.Rect(0, 0, 0, 3)), 2) }, "empty image"},
	} {
		func() {
			defer func() {
				p := recover()
				if s, _ := p.(string); !strings.Contains(s, tc.msg) {
					t.Errorf("%s: panic %v, want %q", tc.name, p, tc.msg)
				}
			}()
			tc.f()
		}()
	}
}

// benchLoop runs f b.N times and reports images/s (wall) and cpu-ms/op.
func benchLoop(b *testing.B, f func()) {
	start := benchstat.CPUTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(benchstat.CPUTime()-start)/1e6/float64(b.N), "cpu-ms/op")
}

// BenchmarkDecodeToTensor measures what the server does per photo: decode the
// file bytes and produce the 224x224 tensor.
func BenchmarkDecodeToTensor(b *testing.B) {
	dir := assets(b)
	for _, tc := range []struct{ name, path string }{
		{"cat_1280x720", "samples/cat_720p.jpg"},
		{"flickr_500x375", "samples/flickr8k_fullres/1001773457_577c3a7d70.jpg"},
		{"flickr_224x224", "data/flickr8k/images/1001773457_577c3a7d70.jpg"},
		{"grace_hopper_bmp_512x600", "samples/grace_hopper.bmp"},
	} {
		data := readFile(b, filepath.Join(dir, tc.path))
		img, err := DecodeBytes(data, testLimits)
		if err != nil {
			b.Fatal(err)
		}
		dst := make([]float32, 224*224*3)
		decode := func() image.Image {
			img, err := Decode(bytes.NewReader(data), testLimits)
			if err != nil {
				b.Fatal(err)
			}
			return img
		}
		b.Run("decode/"+tc.name, func(b *testing.B) { benchLoop(b, func() { decode() }) })
		b.Run("totensor/"+tc.name, func(b *testing.B) { benchLoop(b, func() { ToTensor(dst, img, 224) }) })
		b.Run("both/"+tc.name, func(b *testing.B) { benchLoop(b, func() { ToTensor(dst, decode(), 224) }) })
	}
}

// BenchmarkOrient measures the cost of an EXIF-rotated 720p photo.
func BenchmarkOrient(b *testing.B) {
	img, err := DecodeFile(filepath.Join(assets(b), "samples/cat_720p.jpg"), testLimits)
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range []int{3, 6} {
		b.Run(fmt.Sprint("orientation", o), func(b *testing.B) {
			for b.Loop() {
				Orient(img, o)
			}
		})
	}
}

// TestMirrorTensorIsTheMirroredPhoto: the tensor of a photo mirrored pixel by
// pixel equals the mirrored tensor of the photo (what extract --mirror relies
// on), for shrinking and enlarging, odd and even sides, the RGBA and general
// conversion paths and YCbCr without chroma subsampling. (Subsampled chroma is
// sited from the left edge, so a 4:2:0 photo's mirror is not exactly
// representable; the command's test measures the whole path on a photo.)
func TestMirrorTensorIsTheMirroredPhoto(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sz := range []image.Point{{37, 23}, {300, 201}, {9, 9}, {224, 224}} {
		img := image.NewRGBA(image.Rect(0, 0, sz.X, sz.Y))
		for i := range img.Pix {
			img.Pix[i] = uint8(r.IntN(256))
		}
		mirrored := image.NewRGBA(img.Rect)
		for y := 0; y < sz.Y; y++ {
			for x := 0; x < sz.X; x++ {
				mirrored.SetRGBA(sz.X-1-x, y, img.RGBAAt(x, y))
			}
		}
		for _, size := range []int{16, 31} {
			ycc := func(m *image.RGBA) *image.YCbCr {
				y := image.NewYCbCr(m.Rect, image.YCbCrSubsampleRatio444)
				for py := 0; py < sz.Y; py++ {
					for px := 0; px < sz.X; px++ {
						c := m.RGBAAt(px, py)
						yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
						y.Y[y.YOffset(px, py)], y.Cb[y.COffset(px, py)], y.Cr[y.COffset(px, py)] = yy, cb, cr
					}
				}
				return y
			}
			for name, pair := range map[string][2]image.Image{"rgba": {img, mirrored}, "general": {opaque{img}, opaque{mirrored}}, "ycbcr444": {ycc(img), ycc(mirrored)}} {
				want := make([]float32, size*size*3)
				ToTensor(want, pair[1], size)
				got := make([]float32, size*size*3)
				ToTensor(got, pair[0], size)
				MirrorTensor(got, size)
				for i := range got {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
						t.Fatalf("%v photo at %d, %s: value %d (pixel %d,%d) is %g mirrored, %g from the mirrored photo",
							sz, size, name, i, i/3%size, i/3/size, got[i], want[i])
					}
				}
			}
		}
	}
	// A hand case: 2x2 pixels, each pixel's channels kept in order.
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	MirrorTensor(x, 2)
	if got := fmt.Sprint(x); got != "[4 5 6 1 2 3 10 11 12 7 8 9]" {
		t.Fatalf("2x2 mirrored to %v", got)
	}
}
