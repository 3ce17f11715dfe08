package imgproc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color/palette"
	"image/gif"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/captioner/captioner/internal/hostile"
)

// defaultLimits are the configuration's defaults (configs/default.yaml).
var defaultLimits = Limits{MaxPixels: 50_000_000, MaxBytes: 256 << 20}

func TestManyScanJPEGRefused(t *testing.T) {
	const want = "imgproc: progressive JPEG has 501 scans, more than the limit of 500 (each scan is a pass over the whole image); re-save it as a baseline JPEG"
	b := hostile.ProgressiveJPEG(64, 48, MaxScans+1)
	for name, decode := range map[string]func() (image.Image, error){
		"DecodeBytes": func() (image.Image, error) { return DecodeBytes(b, defaultLimits) },
		"DecodeBytesAtLeast": func() (image.Image, error) {
			img, _, err := DecodeBytesAtLeast(b, defaultLimits, 8)
			return img, err
		},
	} {
		img, err := decode()
		if err == nil || err.Error() != want {
			t.Fatalf("%s: err = %v, want %q", name, err, want)
		}
		if img != nil || !errors.As(err, new(*TooLargeError)) {
			t.Errorf("%s: got image %v, error %T; want no image and a *TooLargeError", name, img, err)
		}
	}
}

// At the limit the same file decodes, by both decoders, to the DC scan's grey.
func TestManyScanJPEGAtLimitDecodes(t *testing.T) {
	b := hostile.ProgressiveJPEG(64, 48, MaxScans)
	h, err := ReadHeader(b)
	if err != nil || h.Scans != MaxScans || h.Width != 64 || h.Height != 48 {
		t.Fatalf("ReadHeader = %+v, %v; want 64x48 with %d scans", h, err, MaxScans)
	}
	full, err := DecodeBytes(b, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	scaled, _, err := DecodeBytesAtLeast(b, defaultLimits, 8)
	if err != nil {
		t.Fatal(err)
	}
	for name, img := range map[string]image.Image{"full": full, "scaled": scaled} {
		r, g, bl, _ := img.At(3, 5).RGBA()
		if r>>8 != 128 || g>>8 != 128 || bl>>8 != 128 {
			t.Errorf("%s: pixel = %d,%d,%d, want mid-grey 128", name, r>>8, g>>8, bl>>8)
		}
	}
}

func TestSixteenBitPNGBombRefused(t *testing.T) {
	// 7000x7000 is under the pixel limit, but at 8 bytes a pixel it decodes to 374 MiB.
	b := hostile.ZeroPNG(7000, 7000, 16, 2)
	const want = "imgproc: 7000x7000 image decodes to 374 MiB, more than the limit of 256 MiB; send a smaller or 8-bit image or raise image.max_decoded_bytes"
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeBytes(b, defaultLimits)
	runtime.ReadMemStats(&after)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var tl *TooLargeError
	if !errors.As(err, &tl) || *tl != (TooLargeError{Width: 7000, Height: 7000, Bytes: 7000 * 7000 * 8, MaxBytes: 256 << 20}) {
		t.Errorf("err = %#v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", n)
	}
}

// Header.Bytes is what the decoder allocates: at the byte limit an image
// decodes, one byte under it is refused.
func TestByteLimitIsExact(t *testing.T) {
	var gifData bytes.Buffer
	if err := gif.Encode(&gifData, image.NewPaletted(image.Rect(0, 0, 40, 30), palette.Plan9), nil); err != nil {
		t.Fatal(err)
	}
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		bytes int64
	}{
		// A byte a pixel, and an NRGBA canvas for a frame smaller than the screen.
		{"gif", gifData.Bytes(), 40 * 30 * 5},
		// A byte a sample (4 a pixel), and image.CMYK's 4 bytes a pixel.
		{"cmyk jpeg", fixture("blocks.cmyk.jpg"), 48*32*4 + 4*48*32},
		// Its Y and K planes full, Cb and Cr at half size both ways.
		{"ycck jpeg", fixture("blocks.ycck.jpg"), 2*48*32 + 2*24*16 + 4*48*32},
		{"png rgb16", hostile.ZeroPNG(40, 30, 16, 2), 40 * 30 * 8},
		{"png rgba8", hostile.ZeroPNG(40, 30, 8, 6), 40 * 30 * 4},
		{"png grey8", hostile.ZeroPNG(40, 30, 8, 0), 40 * 30},
		{"png grey16", hostile.ZeroPNG(40, 30, 16, 0), 40 * 30 * 2},
		// MCU-aligned plane of 40x32, then an int32 per coefficient.
		{"progressive grey jpeg", hostile.ProgressiveJPEG(40, 30, 3), 40 * 32 * 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(tc.data)
			if err != nil || h.Bytes != tc.bytes || h.Cost(fullSize) != tc.bytes {
				t.Fatalf("ReadHeader = %+v, %v; want Bytes = Cost(0) = %d", h, err, tc.bytes)
			}
			if _, err := DecodeBytes(tc.data, Limits{MaxPixels: 1536, MaxBytes: tc.bytes}); err != nil {
				t.Errorf("at the limit: %v", err)
			}
			_, err = DecodeBytes(tc.data, Limits{MaxPixels: 1536, MaxBytes: tc.bytes - 1})
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Bytes != tc.bytes || tl.MaxBytes != tc.bytes-1 {
				t.Errorf("one byte under: err = %v, want a *TooLargeError of %d bytes", err, tc.bytes)
			}
		})
	}
}

// The cost is an upper bound on what the Go decoders allocate, and not a loose
// one for the formats whose decoded size it knows exactly.
func TestCostBoundsAllocation(t *testing.T) {
	blocks := blocksImage("ABCD", "EFGH", "IJKL")
	big := image.NewRGBA(image.Rect(0, 0, 640, 480))
	copy(big.Pix, blocks.Pix)
	for _, tc := range []struct {
		name  string
		data  []byte
		tight bool // allocation within 10% of the cost
	}{
		{"png rgb16", hostile.ZeroPNG(640, 480, 16, 2), true},
		{"png rgba8", encodePNG(t, big), true},
		{"png rgba8 interlaced", rgbaPNG(t, big, true), true},
		{"jpeg 4:2:0", encodeJPEG(t, big), true},
		{"progressive jpeg", hostile.ProgressiveJPEG(640, 480, 20), true},
		{"gif", encodeGIF(t, big), false},
		{"bmp", encodeBMP(t, big), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := DecodeBytes(tc.data, testLimits); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			// The decoders' own buffers (zlib's window, Huffman tables) come on top
			// of the pixels.
			alloc := int64(after.TotalAlloc - before.TotalAlloc)
			if alloc > h.Bytes+256<<10 {
				t.Errorf("allocated %d bytes, more than the cost %d + 256 KiB", alloc, h.Bytes)
			}
			if tc.tight && alloc < h.Bytes*9/10 {
				t.Errorf("allocated %d bytes, cost %d overstates it by more than 10%%", alloc, h.Bytes)
			}
		})
	}
}

// A large progressive JPEG gets fewer scans than MaxScans: all scans together
// may cover at most MaxScanPasses times the pixel limit.
func TestScanWorkLimit(t *testing.T) {
	lim := Limits{MaxPixels: 400 * 400, MaxBytes: 256 << 20}
	if _, err := DecodeBytes(hostile.ProgressiveJPEG(400, 400, MaxScanPasses), lim); err != nil {
		t.Errorf("%d scans over the whole image: %v", MaxScanPasses, err)
	}
	_, err := DecodeBytes(hostile.ProgressiveJPEG(400, 400, MaxScanPasses+1), lim)
	const want = "imgproc: progressive JPEG of 400x400 has 33 scans over 5280000 samples in all, more than the limit of 5120000 (32 passes over image.max_pixels); re-save it as a baseline JPEG"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// adam7 lists the seven passes of PNG interlacing: each takes the pixels
// (x0 + i*dx, y0 + j*dy).
var adam7 = [7]struct{ x0, y0, dx, dy int }{
	{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2},
}

// rgbaPNG writes m as an 8-bit RGBA PNG (colour type 6), Adam7-interlaced if
// asked: image/png's encoder never interlaces. Every row is unfiltered.
func rgbaPNG(t testing.TB, m *image.RGBA, interlaced bool) []byte {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	var raw []byte
	row := func(y, x0, dx int) {
		raw = append(raw, 0) // filter: none
		for x := x0; x < w; x += dx {
			raw = append(raw, m.Pix[m.PixOffset(x, y):m.PixOffset(x, y)+4]...)
		}
	}
	if !interlaced {
		for y := range h {
			row(y, 0, 1)
		}
	}
	for _, p := range adam7 {
		for y := p.y0; interlaced && y < h && p.x0 < w; y += p.dy {
			row(y, p.x0, p.dx) // a pass with no columns has no rows either
		}
	}
	var idat bytes.Buffer
	z := zlib.NewWriter(&idat)
	z.Write(raw)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	b := []byte("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		start := len(b)
		b = append(append(b, typ...), data...)
		b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	method := byte(0)
	if interlaced {
		method = 1
	}
	chunk("IHDR", append(ihdr, 8, 6, 0, 0, method)) // byte 28 of the file
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return b
}

// An interlaced PNG costs twice its plain twin: image/png decodes the seven
// passes into images of their own, as large as the result together, then
// copies them into it. Counted once, a server's decoded-byte limit would let
// through interlaced PNGs that take twice the memory it allows.
func TestInterlacedPNGCostsTwice(t *testing.T) {
	src := blocksImage("ABC", "DEF")
	plain, interlaced := rgbaPNG(t, src, false), rgbaPNG(t, src, true)
	for name, data := range map[string][]byte{"plain": plain, "interlaced": interlaced} {
		img, err := DecodeBytes(data, testLimits)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkBlocks(t, img, 0, "ABC", "DEF") // the helper writes valid PNGs
	}
	hp, err := ReadHeader(plain)
	if err != nil || hp.Bytes != 48*32*4 {
		t.Fatalf("plain: ReadHeader = %+v, %v; want Bytes = %d (NRGBA)", hp, err, 48*32*4)
	}
	hi, err := ReadHeader(interlaced)
	if err != nil || hi.Bytes != 2*hp.Bytes {
		t.Errorf("interlaced: ReadHeader = %+v, %v; want Bytes = %d, twice the plain PNG's", hi, err, 2*hp.Bytes)
	}
}

// Any EXIF orientation but 1 makes the decoder copy the image into RGBA and
// rotate or mirror it into a second RGBA: 8 more bytes a pixel, a mirror (2)
// as much as a rotation. Uncounted, a mirrored photo could decode to more than
// the limit allows.
func TestOrientationCost(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("ABC", "DEF")) // 48x32
	plain, err := ReadHeader(jpg)
	if err != nil {
		t.Fatal(err)
	}
	for o := uint16(1); o <= 8; o++ {
		h, err := ReadHeader(withSegments(jpg, exifSegment(binary.BigEndian, o)))
		want := plain.Bytes
		if o >= 2 {
			want += 8 * 48 * 32
		}
		if err != nil || h.Bytes != want {
			t.Errorf("orientation %d: ReadHeader = %+v, %v; want Bytes = %d (%d without EXIF)", o, h, err, want, plain.Bytes)
		}
	}
}

// With libjpeg-turbo, DecodeBytesAtLeast decodes a JPEG straight into RGBA at
// a DCT scale: Cost is 4 bytes a pixel of the scaled size (plus the EXIF
// rotation's two RGBA copies, plus a progressive file's 2-byte coefficients
// at full size), and the limit holds it to the byte. A 1280x720 photo at
// minSide 448 decodes at 5/8, 800x450. Counting fewer bytes would let the
// decode allocate more than image.max_decoded_bytes.
func TestCostAtDCTScale(t *testing.T) {
	const minSide = 448
	out := int64(800 * 450)
	photo := encodeJPEG(t, image.NewRGBA(image.Rect(0, 0, 1280, 720)))
	for _, tc := range []struct {
		name  string
		data  []byte
		turbo int64 // Cost(minSide) with libjpeg-turbo
	}{
		{"baseline", photo, 4 * out},
		{"baseline, orientation 6", withSegments(photo, exifSegment(binary.BigEndian, 6)), (4 + 8) * out},
		{"progressive grey", hostile.ProgressiveJPEG(1280, 720, 3), 4*out + 2*1280*720},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.turbo
			if !turboJPEG {
				want = h.Bytes // image/jpeg decodes at full size
				t.Logf("no libjpeg-turbo in this build: Cost(%d) is Bytes, the DCT-scale cost goes unchecked", minSide)
			}
			if got := h.Cost(minSide); got != want {
				t.Fatalf("Cost(%d) = %d, want %d", minSide, got, want)
			}
			img, _, err := DecodeBytesAtLeast(tc.data, Limits{MaxPixels: 1280 * 720, MaxBytes: want}, minSide)
			if err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			if size := img.Bounds().Size(); turboJPEG && size.X*size.Y != int(out) {
				t.Errorf("decoded %v, want 800x450 pixels", size)
			}
			_, _, err = DecodeBytesAtLeast(tc.data, Limits{MaxPixels: 1280 * 720, MaxBytes: want - 1}, minSide)
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Bytes != want || tl.MaxBytes != want-1 {
				t.Errorf("one byte under: err = %v, want a *TooLargeError of %d bytes", err, want)
			}
		})
	}
}

// A JPEG that libjpeg-turbo hands back to image/jpeg (here for two stray
// bytes after its start marker, which turbo's warning stops on and image/jpeg
// skips; without turbo, every JPEG) is decoded at full size, and checked
// against the limit at full size again: its scaled cost passed, its full one
// may not.
func TestJPEGLeftToGoIsCheckedAtFullSize(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 400, 400))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	jpg := encodeJPEG(t, src)
	stray := append([]byte{0xff, 0xd8, 0x12, 0x34}, jpg[2:]...)
	h, err := ReadHeader(stray)
	if err != nil {
		t.Fatal(err)
	}
	scaled := h.Cost(8)
	if scaled == h.Bytes {
		t.Skip("this build decodes every JPEG at full size (no libjpeg-turbo): its first check is the full one")
	}
	_, _, err = DecodeBytesAtLeast(stray, Limits{MaxPixels: 1 << 20, MaxBytes: scaled}, 8)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Bytes != h.Bytes {
		t.Errorf("within the scaled cost, over the full one: %v, want a *TooLargeError of %d bytes", err, h.Bytes)
	}
	if _, _, err := DecodeBytesAtLeast(stray, Limits{MaxPixels: 1 << 20, MaxBytes: h.Bytes}, 8); err != nil {
		t.Errorf("within the full cost: %v", err)
	}
}
