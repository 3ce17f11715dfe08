package imgproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// fullresPhotos returns the paths of the shared 500-pixel Flickr8k photos, or skips.
func fullresPhotos(t testing.TB) []string {
	dir := assets(t)
	files, err := filepath.Glob(filepath.Join(dir, "samples/flickr8k_fullres/*.jpg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no photos in %s/samples/flickr8k_fullres (%v)", dir, err)
	}
	return files
}

// tensorMAD is the mean absolute difference of two tensors, in grey levels.
func tensorMAD(a, b []float32) float64 {
	var sum float64
	for i := range a {
		sum += math.Abs(float64(a[i] - b[i]))
	}
	return sum / float64(len(a)) * 127.5
}

// decodeBothWays decodes the file at path with DecodeBytes and with
// DecodeBytesAtLeast(minSide), which also gives the full size.
func decodeBothWays(t testing.TB, path string, minSide int) (full, scaled image.Image, size image.Point) {
	data := readFile(t, path)
	full, err := DecodeBytes(data, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	scaled, size, err = DecodeBytesAtLeast(data, testLimits, minSide)
	if err != nil {
		t.Fatal(err)
	}
	return full, scaled, size
}

func TestDecodeAtLeastSizes(t *testing.T) {
	for _, path := range fullresPhotos(t) {
		full, img, size := decodeBothWays(t, path, 224)
		got, want := img.Bounds().Size(), full.Bounds().Size()
		if size != want {
			t.Errorf("%s: full size %v, want %v", filepath.Base(path), size, want)
		}
		if got.X < 224 || got.Y < 224 || got.X > want.X || got.Y > want.Y {
			t.Errorf("%s: decoded %v from %v, want both sides in 224..full", filepath.Base(path), got, want)
		}
		if !turboJPEG && got != want {
			t.Errorf("%s: image/jpeg cannot scale, yet decoded %v from %v", filepath.Base(path), got, want)
		}
	}
}

// TestDecodeAtLeastTensorCloseToFull compares the encoder tensor made from the
// DCT-scaled decode with the one made from the full-resolution image/jpeg
// decode. Measured with libjpeg-turbo 2.1.5 over the 10 photos: 1.3 to 6.0
// grey levels, mean 3.4 (0 without cgo). That is far more than the two
// decoders differ at full scale (TestTurboMatchesImageJPEG: about 0.14 in the
// tensor): DCT scaling reconstructs each 8x8 block on its own, which leaves
// texture sharper and blockier than the antialiased resize does, and it moves
// the MobileNetV2 features by 4-19% (relative L2) on these photos.
func TestDecodeAtLeastTensorCloseToFull(t *testing.T) {
	scaled := make([]float32, 224*224*3)
	full := make([]float32, 224*224*3)
	var total, worst float64
	files := fullresPhotos(t)
	for _, path := range files {
		img, small, _ := decodeBothWays(t, path, 224)
		ToTensor(full, img, 224)
		ToTensor(scaled, small, 224)
		d := tensorMAD(scaled, full)
		t.Logf("%s: %v -> %v: %.2f grey levels", filepath.Base(path), img.Bounds().Size(), small.Bounds().Size(), d)
		total += d
		worst = max(worst, d)
	}
	mean := total / float64(len(files))
	t.Logf("scaled vs full-resolution tensor: mean %.2f, worst %.2f grey levels over %d photos", mean, worst, len(files))
	if mean > 4 || worst > 7 {
		t.Errorf("scaled decode's tensor differs from the full-resolution one by mean %.2f, worst %.2f grey levels (want <= 4, <= 7)", mean, worst)
	}
}

// zoomed shows img enlarged k times by pixel replication, so checkBlocks can
// read a DCT-scaled copy of the test pattern.
type zoomed struct {
	image.Image
	k int
}

func (z zoomed) Bounds() image.Rectangle {
	b := z.Image.Bounds()
	return image.Rectangle{b.Min.Mul(z.k), b.Max.Mul(z.k)}
}

func (z zoomed) At(x, y int) color.Color { return z.Image.At(x/z.k, y/z.k) }

// checkScaledBlocks is checkBlocks for a copy of the pattern decoded at 1/k.
func checkScaledBlocks(t *testing.T, img image.Image, tol int, rows ...string) {
	t.Helper()
	k := block * len(rows[0]) / img.Bounds().Dx()
	checkBlocks(t, zoomed{img, max(k, 1)}, tol, rows...)
}

// TestDecodeAtLeastOrientation: the libjpeg-turbo path applies every EXIF
// orientation and reports the upright full size, which callers show the user
// and which swaps width and height for the transposing orientations 5 to 8.
func TestDecodeAtLeastOrientation(t *testing.T) {
	for o := uint16(1); o <= 8; o++ {
		rows := storedBlocks[o] // stored as a camera would for orientation o
		data := withSegments(encodeJPEG(t, blocksImage(rows...)), exifSegment(binary.BigEndian, o))
		img, size, err := DecodeBytesAtLeast(data, testLimits, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if size != image.Pt(48, 32) {
			t.Errorf("orientation %d: full size %v, want upright 48x32", o, size)
		}
		checkBlocks(t, img, 12, "ABC", "DEF")
		// At minSide 16 the short side 32 allows 1/2: 24x16 upright.
		img, size, err = DecodeBytesAtLeast(data, testLimits, 16)
		if err != nil {
			t.Fatal(err)
		}
		if want := image.Pt(24, 16); turboJPEG && img.Bounds().Size() != want {
			t.Errorf("orientation %d at minSide 16: %v, want %v", o, img.Bounds().Size(), want)
		}
		if size != image.Pt(48, 32) {
			t.Errorf("orientation %d at minSide 16: full size %v, want upright 48x32", o, size)
		}
		checkScaledBlocks(t, img, 12, "ABC", "DEF")
	}
}

func TestDecodeAtLeastGray(t *testing.T) {
	// image/jpeg writes an *image.Gray as a one-component JPEG.
	src := blocksImage("ABC", "DEF")
	gray := image.NewGray(src.Rect)
	draw.Draw(gray, gray.Rect, src, image.Point{}, draw.Src)
	data := encodeJPEG(t, gray)
	for _, minSide := range []int{1 << 20, 8} { // full size; 1/4, 12x8
		img, _, err := DecodeBytesAtLeast(data, testLimits, minSide)
		if err != nil {
			t.Fatal(err)
		}
		k := 48 / img.Bounds().Dx()
		for y := block / 2; y < 32; y += block {
			for x := block / 2; x < 48; x += block {
				want := gray.GrayAt(x, y).Y
				r, g, b, _ := img.At(x/k, y/k).RGBA()
				if absDiff(int(r>>8), int(want)) > 3 || r != g || g != b {
					t.Errorf("minSide %d: block centre (%d,%d) is (%d,%d,%d), want grey %d", minSide, x, y, r>>8, g>>8, b>>8, want)
				}
			}
		}
	}
}

func TestDecodeAtLeastCMYK(t *testing.T) {
	for _, name := range []string{"testdata/blocks.cmyk.jpg", "testdata/blocks.ycck.jpg"} {
		img, size, err := DecodeFileAtLeast(name, testLimits, 8)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := img.(*image.CMYK); !ok || size != image.Pt(48, 32) {
			t.Errorf("%s: %T of full size %v, want image/jpeg's *image.CMYK, 48x32", name, img, size)
		}
		checkBlocks(t, img, 12, "ABC", "DEF")
	}
}

func TestDecodeAtLeastErrors(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("ABC", "DEF"))
	for _, tc := range []struct {
		name    string
		data    []byte
		kind    string
		message string
	}{
		{"empty", nil, "empty", "empty input"},
		{"text", []byte("hello\n"), "unsupported", "text, not an image"},
		{"jpeg truncated", jpg[:len(jpg)/2], "corrupt", "truncated"},
		{"jpeg magic only", []byte{0xff, 0xd8}, "corrupt", "jpeg"},
		{"jpeg bomb", jpegHeader(65500, 65500), "too large", "image.max_pixels"},
		{"png bomb", pngHeader(100000, 100000), "too large", "image.max_pixels"},
	} {
		img, _, err := DecodeBytesAtLeast(tc.data, testLimits, 224)
		if img != nil || errorKind(err) != tc.kind || !strings.Contains(fmt.Sprint(err), tc.message) {
			t.Errorf("%s: image %v, err %v; want a %s error containing %q", tc.name, img != nil, err, tc.kind, tc.message)
		}
	}
	if _, err := DecodeBytes(jpg[:len(jpg)/2], testLimits); !errors.As(err, new(*CorruptError)) {
		t.Errorf("truncated JPEG through DecodeBytes: %v", err)
	}
	_, _, err := DecodeFileAtLeast("testdata/no-such-file.jpg", testLimits, 224)
	if !strings.Contains(fmt.Sprint(err), "no-such-file.jpg") {
		t.Errorf("missing file: err = %v, want it named", err)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "minSide") {
			t.Errorf("panic %v, want one about minSide", p)
		}
	}()
	DecodeBytesAtLeast(jpg, testLimits, 0)
}

// BenchmarkPhotoToTensor is the server's per-photo work on the 10 Flickr8k
// photos (500 pixels wide, 140-200 KB): decode the file bytes and make the
// 224x224 tensor, one photo per op, cycling through them.
//
//	go image/jpeg at full resolution (DecodeBytes), the *image.YCbCr path
//	turbo-full libjpeg-turbo at full resolution, the *image.RGBA path
//	turbo-224 libjpeg-turbo at the smallest DCT scale >= 224 (DecodeBytesAtLeast)
func BenchmarkPhotoToTensor(b *testing.B) {
	var photos [][]byte
	for _, path := range fullresPhotos(b) {
		photos = append(photos, readFile(b, path))
	}
	dst := make([]float32, 224*224*3)
	for _, tc := range []struct {
		name   string
		decode func([]byte) (image.Image, error)
	}{
		{"go", func(p []byte) (image.Image, error) { return DecodeBytes(p, testLimits) }},
		{"turbo-full", func(p []byte) (image.Image, error) { return decodeAtLeast(p, 1<<20) }},
		{"turbo-224", func(p []byte) (image.Image, error) { return decodeAtLeast(p, 224) }},
	} {
		for _, tensor := range []bool{false, true} {
			name := tc.name + "/decode"
			if tensor {
				name += "+tensor"
			}
			b.Run(name, func(b *testing.B) {
				if !turboJPEG && tc.name != "go" {
					b.Skip("built without cgo: no libjpeg-turbo")
				}
				i := 0
				benchLoop(b, func() {
					img, err := tc.decode(photos[i%len(photos)])
					if err != nil {
						b.Fatal(err)
					}
					if tensor {
						ToTensor(dst, img, 224)
					}
					i++
				})
			})
		}
	}
}

func decodeAtLeast(data []byte, minSide int) (image.Image, error) {
	img, _, err := DecodeBytesAtLeast(data, testLimits, minSide)
	return img, err
}

// FuzzScaledDecode: the libjpeg-turbo path keeps FuzzDecode's promises (no
// panic, documented errors only, the pixel limit, a finite tensor), never
// returns more pixels than the file holds, and accepts every file that
// DecodeBytes accepts.
//
//	go test ./imgproc -run XXX -fuzz FuzzScaledDecode -fuzztime 60s
func FuzzScaledDecode(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Add(readFile(f, "testdata/blocks.ycck.jpg"))
	limit := Limits{MaxPixels: 1 << 20, MaxBytes: 64 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, full, err := DecodeBytesAtLeast(data, limit, 8)
		if err != nil {
			if kind := errorKind(err); kind == "untyped" {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if img != nil {
				t.Fatalf("image returned with error %v", err)
			}
			if _, goErr := DecodeBytes(data, limit); goErr == nil {
				t.Fatalf("DecodeBytes accepts the file, DecodeBytesAtLeast says %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Empty() || b.Dx() > full.X || b.Dy() > full.Y || full.X*full.Y > limit.MaxPixels {
			t.Fatalf("decoded %v of a %v image, limit %d pixels", b, full, limit)
		}
		out := make([]float32, 5*5*3)
		ToTensor(out, img, 5)
		for i, v := range out {
			if math.IsNaN(float64(v)) || v < -1 || v > 1 {
				t.Fatalf("tensor element %d = %v", i, v)
			}
		}
	})
}

// TestMinDecodeSide pins what MinDecodeSide promises for a 224 tensor: twice
// the side, so a 500x375 photo decodes at full scale (at 224 it would come out
// at 5/8, whose blockier pixels moved the features by ~11%), while a 1280x720
// one still skips most of its decoding at 5/8.
func TestMinDecodeSide(t *testing.T) {
	if got := MinDecodeSide(224); got != 448 {
		t.Errorf("MinDecodeSide(224) = %d, want 448", got)
	}
	for _, tc := range []struct{ full, turbo image.Point }{
		{image.Pt(500, 375), image.Pt(500, 375)},
		{image.Pt(1280, 720), image.Pt(800, 450)},
	} {
		data := encodeJPEG(t, image.NewRGBA(image.Rectangle{Max: tc.full}))
		img, full, err := DecodeBytesAtLeast(data, testLimits, MinDecodeSide(224))
		if err != nil {
			t.Fatal(err)
		}
		want := tc.turbo
		if !turboJPEG {
			want = tc.full // image/jpeg cannot scale
		}
		if got := img.Bounds().Size(); got != want || full != tc.full {
			t.Errorf("%v at MinDecodeSide(224): decoded %v of %v, want %v", tc.full, got, full, want)
		}
	}
}
