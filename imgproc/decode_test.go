package imgproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/captioner/captioner/internal/testassets"
)

// testLimits is as generous as the decoders' tests need: any real photo passes.
var testLimits = Limits{MaxPixels: 50_000_000, MaxBytes: 1 << 30}

// assets returns the shared assets folder or skips the test.
func assets(t testing.TB) string {
	dir := testassets.Dir(t, "the test decodes its data/ and samples/ photos")
	return dir
}

// blockColors are the six colours of the test pattern, far apart so they survive
// JPEG and lossy WebP.
var blockColors = map[byte]color.RGBA{
	'A': {230, 30, 30, 255},
	'B': {30, 200, 30, 255},
	'C': {30, 30, 230, 255},
	'D': {230, 230, 30, 255},
	'E': {200, 30, 200, 255},
	'F': {30, 200, 200, 255},
}

const block = 16 // pixels per block side

// blocksImage draws one 16x16 block per letter: rows[i][j] is block (j, i).
func blocksImage(rows ...string) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, block*len(rows[0]), block*len(rows)))
	for y := 0; y < m.Rect.Dy(); y++ {
		for x := 0; x < m.Rect.Dx(); x++ {
			m.SetRGBA(x, y, blockColors[rows[y/block][x/block]])
		}
	}
	return m
}

// checkBlocks asserts that the centre of every block of img has the colour of
// the letter in rows, within tol per channel (lossy codecs).
func checkBlocks(t *testing.T, img image.Image, tol int, rows ...string) {
	t.Helper()
	want := image.Rect(0, 0, block*len(rows[0]), block*len(rows))
	if img.Bounds() != want {
		t.Fatalf("bounds %v, want %v", img.Bounds(), want)
	}
	for i, row := range rows {
		for j := range row {
			x, y := j*block+block/2, i*block+block/2
			r, g, b, _ := img.At(x, y).RGBA()
			w := blockColors[row[j]]
			if absDiff(int(r>>8), int(w.R)) > tol || absDiff(int(g>>8), int(w.G)) > tol || absDiff(int(b>>8), int(w.B)) > tol {
				t.Errorf("block (%d,%d) centre is (%d,%d,%d), want %c = (%d,%d,%d)", j, i, r>>8, g>>8, b>>8, row[j], w.R, w.G, w.B)
			}
		}
	}
}

func absDiff(a, b int) int {
	if a < b {
		return b - a
	}
	return a - b
}

// encode runs one of the standard encoders into memory.
func encode(t testing.TB, img image.Image, enc func(io.Writer, image.Image) error) []byte {
	var buf bytes.Buffer
	if err := enc(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	return encode(t, img, func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, &jpeg.Options{Quality: 95}) })
}

func encodePNG(t testing.TB, img image.Image) []byte { return encode(t, img, png.Encode) }

func encodeBMP(t testing.TB, img image.Image) []byte { return encode(t, img, bmp.Encode) }

// encodeGIF quantizes to the Plan 9 palette.
func encodeGIF(t testing.TB, img image.Image) []byte {
	return encode(t, img, func(w io.Writer, m image.Image) error { return gif.Encode(w, m, nil) })
}

func readFile(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFormats(t *testing.T) {
	src := blocksImage("ABC", "DEF")
	for _, tc := range []struct {
		name string
		data []byte
		tol  int
	}{
		{"png", encodePNG(t, src), 0},
		{"bmp", encodeBMP(t, src), 0},
		{"jpeg", encodeJPEG(t, src), 12},
		// The GIF encoder quantizes to the Plan 9 palette.
		{"gif", encodeGIF(t, src), 40},
		{"webp lossless", readFile(t, "testdata/blocks.lossless.webp"), 0},
		{"webp lossy", readFile(t, "testdata/blocks.lossy.webp"), 4}, // video-range YCbCr converted as such: 20 when taken for full range
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Decode(bytes.NewReader(tc.data), testLimits)
			if err != nil {
				t.Fatal(err)
			}
			checkBlocks(t, img, tc.tol, "ABC", "DEF")
		})
	}
}

func TestDecodeGIFFrameOffset(t *testing.T) {
	// The first frame covers (5,5)-(15,15) of a 20x20 logical screen.
	pal := color.Palette{color.RGBA{200, 30, 30, 255}}
	frame := image.NewPaletted(image.Rect(5, 5, 15, 15), pal)
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: pal, Width: 20, Height: 20}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := DecodeBytes(buf.Bytes(), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 20, 20) {
		t.Fatalf("bounds %v, want the 20x20 screen", img.Bounds())
	}
	if _, _, _, a := img.At(2, 2).RGBA(); a != 0 {
		t.Errorf("outside the frame alpha = %d, want transparent", a)
	}
	if r, g, b, _ := img.At(10, 10).RGBA(); r>>8 != 200 || g>>8 != 30 || b>>8 != 30 {
		t.Errorf("inside the frame (%d,%d,%d), want (200,30,30)", r>>8, g>>8, b>>8)
	}
}

func TestDecodeWebPAlpha(t *testing.T) {
	img, err := DecodeFile("testdata/blocks-alpha.lossy.webp", testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, a := img.At(8, 8).RGBA(); a != 0 {
		t.Errorf("transparent block has alpha %d, want 0", a)
	}
	if _, _, _, a := img.At(24, 8).RGBA(); a != 0xffff {
		t.Errorf("opaque block has alpha %d, want 0xffff", a)
	}
	// Composited onto white, the transparent block is 1.0 in every channel.
	out := make([]float32, 48*48*3)
	ToTensor(out, img, 48) // squashes 48x32 to 48x48: block A covers rows 0..23, columns 0..15
	for c := 0; c < 3; c++ {
		if v := out[(10*48+5)*3+c]; v != 1 {
			t.Errorf("transparent pixel channel %d = %v, want 1 (white)", c, v)
		}
	}
}

func TestDecodeSamples(t *testing.T) {
	dir := assets(t)
	for _, tc := range []struct {
		path string
		w, h int
	}{
		{"samples/cat_720p.jpg", 1280, 720},
		{"samples/grace_hopper.bmp", 512, 600},
		{"samples/flickr8k_fullres/1000268201_693b08cb0e.jpg", 375, 500},
		{"samples/flickr8k_fullres/1022975728_75515238d8.jpg", 500, 281},
		{"data/flickr8k/images/1000268201_693b08cb0e.jpg", 224, 224},
	} {
		img, err := DecodeFile(filepath.Join(dir, tc.path), testLimits)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds(); got != image.Rect(0, 0, tc.w, tc.h) {
			t.Errorf("%s: bounds %v, want %dx%d", tc.path, got, tc.w, tc.h)
		}
	}
	// Grace Hopper's uniform is dark navy and her face is light: check that BMP
	// rows come out top-down (BMP stores them bottom-up).
	img, err := DecodeFile(filepath.Join(dir, "samples/grace_hopper.bmp"), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	top := luma(img, image.Rect(150, 50, 350, 250))     // face and cap
	bottom := luma(img, image.Rect(100, 450, 400, 600)) // uniform
	if top <= bottom {
		t.Errorf("mean luma top %.0f <= bottom %.0f: the BMP appears upside down", top, bottom)
	}
}

func luma(img image.Image, r image.Rectangle) float64 {
	var s float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			s += 0.299*float64(cr>>8) + 0.587*float64(cg>>8) + 0.114*float64(cb>>8)
		}
	}
	return s / float64(r.Dx()*r.Dy())
}

// pngHeader returns a PNG signature and an IHDR chunk announcing w x h RGB
// pixels, and nothing else: all a decompression bomb needs to show.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 4+13)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12] = 8 // bit depth
	ihdr[13] = 2 // colour type RGB
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

// jpegHeader returns SOI, a JFIF APP0 (without it image/jpeg reads on for an
// Adobe segment) and a baseline SOF0 announcing w x h, 3 components.
func jpegHeader(w, h uint16) []byte {
	b := append([]byte{0xff, 0xd8}, jfifSegment...)
	b = append(b, 0xff, 0xc0, 0, 17, 8)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	b = append(b, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0)
	return b
}

// gifHeader returns a GIF89a header whose logical screen is w x h.
func gifHeader(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0)
}

func TestDecodeBombs(t *testing.T) {
	bigBMP := encodeBMP(t, image.NewRGBA(image.Rect(0, 0, 4, 4)))
	binary.LittleEndian.PutUint32(bigBMP[18:], 60000) // width in BITMAPINFOHEADER
	binary.LittleEndian.PutUint32(bigBMP[22:], 60000) // height
	for _, tc := range []struct {
		name string
		data []byte
		w, h int
	}{
		{"png", pngHeader(100000, 100000), 100000, 100000},
		{"jpeg", jpegHeader(65500, 65500), 65500, 65500},
		{"gif", gifHeader(65535, 65535), 65535, 65535},
		{"bmp", bigBMP, 60000, 60000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeBytes(tc.data, testLimits)
			runtime.ReadMemStats(&after)
			var tl *TooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("err = %v, want *TooLargeError", err)
			}
			if want := (TooLargeError{Width: tc.w, Height: tc.h, Max: testLimits.MaxPixels}); *tl != want {
				t.Errorf("TooLargeError %+v, want %+v", *tl, want)
			}
			if !strings.Contains(err.Error(), "image.max_pixels") {
				t.Errorf("message %q does not say which setting to raise", err)
			}
			// Decoding would need gigabytes; rejecting from the header needs almost nothing.
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("rejecting the bomb allocated %d bytes", n)
			}
		})
	}
	// Just under the limit is accepted by the check (and then fails as a
	// truncated file, since only the header is there).
	_, err := DecodeBytes(pngHeader(100, 100), Limits{MaxPixels: 100 * 100, MaxBytes: 1 << 20})
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Errorf("100x100 with limit 10000: err = %v, want *CorruptError (truncated)", err)
	}
	_, err = DecodeBytes(pngHeader(101, 100), Limits{MaxPixels: 100 * 100, MaxBytes: 1 << 20})
	if !errors.As(err, new(*TooLargeError)) {
		t.Errorf("101x100 with limit 10000: err = %v, want *TooLargeError", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("ABC", "DEF"))
	pngData := encodePNG(t, blocksImage("ABC", "DEF"))
	gifData := encodeGIF(t, blocksImage("ABC", "DEF"))
	webpData := readFile(t, "testdata/blocks.lossy.webp")
	badCRC := bytes.Clone(pngData)
	badCRC[30] ^= 0xff // inside IHDR's CRC
	for _, tc := range []struct {
		name    string
		data    []byte
		kind    string // "empty", "unsupported", "corrupt"
		message string // part of the message
	}{
		{"empty", nil, "empty", "empty input"},
		{"text", []byte("hello, this is not an image\n"), "unsupported", "text, not an image"},
		{"html", []byte("<!DOCTYPE html><html><body>404</body></html>"), "unsupported", "text, not an image"},
		{"tab-separated text", []byte("\tname\tcaption\n"), "unsupported", "text, not an image"},
		{"svg", []byte("<?xml version=\"1.0\"?>\n<SVG xmlns=\"http://www.w3.org/2000/svg\" width=\"10\"/>"), "unsupported", "SVG drawing (text; render it to PNG or JPEG first)"},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00\x00\x00"), "unsupported", "TIFF image"},
		{"heic", append([]byte("\x00\x00\x00\x18ftypheic"), make([]byte, 20)...), "unsupported", "HEIC"},
		{"binary junk", []byte{0x00, 0x13, 0x37, 0xfe, 0x01}, "unsupported", "unrecognised data starting 00 13 37 fe 01"},
		{"jpeg truncated", jpg[:len(jpg)/2], "corrupt", "truncated"},
		{"jpeg magic only", []byte{0xff, 0xd8}, "corrupt", "jpeg"},
		{"png truncated", pngData[:len(pngData)-30], "corrupt", "png"},
		{"png bad crc", badCRC, "corrupt", "corrupt png image"},
		{"gif truncated", gifData[:len(gifData)/2], "corrupt", "gif"},
		{"webp truncated", webpData[:len(webpData)-40], "corrupt", "webp"},
		{"png zero width", pngHeader(0, 10), "corrupt", "png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Decode(bytes.NewReader(tc.data), testLimits)
			if err == nil {
				t.Fatalf("decoded a %v image, want an error", img.Bounds())
			}
			if img != nil {
				t.Errorf("returned an image with the error %v", err)
			}
			kind := errorKind(err)
			if kind != tc.kind {
				t.Errorf("err %q is %s, want %s", err, kind, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("err %q does not contain %q", err, tc.message)
			}
		})
	}
}

// errorKind names the documented class of a Decode error, or "untyped".
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.As(err, new(*TooLargeError)):
		return "too large"
	case errors.As(err, new(*CorruptError)):
		return "corrupt"
	}
	return "untyped"
}

func TestDecodeUnsupportedVariant(t *testing.T) {
	// An RLE-compressed BMP (compression 1) is a valid file the decoder lacks.
	b := encodeBMP(t, image.NewPaletted(image.Rect(0, 0, 4, 4), palette.Plan9))
	binary.LittleEndian.PutUint32(b[30:], 1)
	_, err := DecodeBytes(b, testLimits)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(ue.What, "a kind of BMP this decoder does not read") {
		t.Errorf("err = %#v, want an *UnsupportedError naming BMP", err)
	}
}

func TestDecodeFileErrors(t *testing.T) {
	_, err := DecodeFile("testdata/no-such-file.jpg", testLimits)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no-such-file.jpg") {
		t.Errorf("missing file: err = %v, want a not-exist error naming the file", err)
	}
	path := filepath.Join(t.TempDir(), "notes.jpg")
	if err := os.WriteFile(path, []byte("just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = DecodeFile(path, testLimits)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "notes.jpg") {
		t.Errorf("text file: err = %v, want ErrUnsupported naming the file", err)
	}
}

// TestDecodeFileBoundsWhatItReads: a file can be no larger than the image it
// holds decodes to, and its first bytes must be an image's, so data that
// never ends (a device, a pipe) is refused at once or at the limit, not read
// until memory runs out.
func TestDecodeFileBoundsWhatItReads(t *testing.T) {
	lim := Limits{MaxPixels: 1 << 20, MaxBytes: 4 << 20}
	_, err := DecodeFile("/dev/zero", lim)
	if want := "/dev/zero: imgproc: unsupported image format: unrecognised data starting 00 00 00 00 00 00 00 00; accepted formats are JPEG, PNG, GIF, BMP and WebP"; err == nil || err.Error() != want {
		t.Errorf("/dev/zero: err = %v, want %q", err, want)
	}

	// A photo padded past the limit: refused by its size before a byte is read.
	photo := encodeJPEG(t, blocksImage("AB", "CD"))
	path := filepath.Join(t.TempDir(), "padded.jpg")
	if err := os.WriteFile(path, photo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 5<<20+1); err != nil {
		t.Fatal(err)
	}
	_, err = DecodeFile(path, lim)
	want := path + ": imgproc: the file holds 6 MiB; an image may decode to at most 4 MiB (image.max_decoded_bytes), and no image format stores more than it decodes to, bar metadata: send a smaller file or raise image.max_decoded_bytes"
	if err == nil || err.Error() != want {
		t.Errorf("padded file: err = %v, want %q", err, want)
	}

	// The same photo from a pipe that goes on: refused once past the limit.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		defer w.Close()
		w.Write(photo)
		for zeros := make([]byte, 1<<16); ; {
			if _, err := w.Write(zeros); err != nil {
				return // the reader closed its end
			}
		}
	}()
	pipe := fmt.Sprintf("/dev/fd/%d", r.Fd())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = DecodeFile(pipe, lim)
	runtime.ReadMemStats(&after)
	// What reading the stream to its refusal allocated: a buffer that doubles
	// up to the limit allocates about twice it in all (io.ReadAll's smaller
	// steps, and a copy to join the sniffed bytes, took 3.4 times it).
	if got := after.TotalAlloc - before.TotalAlloc; got > 5*uint64(lim.MaxBytes)/2 {
		t.Errorf("endless pipe: reading it to the limit of %d MiB allocated %.1f MiB, want at most 2.5 times the limit", lim.MaxBytes>>20, float64(got)/(1<<20))
	}
	want = pipe + ": imgproc: the data goes on past 4 MiB; an image may decode to at most 4 MiB (image.max_decoded_bytes), and no image format stores more than it decodes to, bar metadata: send a smaller file or raise image.max_decoded_bytes"
	if err == nil || err.Error() != want {
		t.Errorf("endless pipe: err = %v, want %q", err, want)
	}
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Errorf("endless pipe: err = %#v, want a *TooLargeError (413 in the server)", err)
	}
}

// TestFileSizeLimitIsExact: a file (or stream) of exactly lim.MaxBytes is read
// and decoded, one byte more is refused with the file-size limit's
// *TooLargeError, by its size (a regular file) or once the data goes past it
// (a pipe). An off-by-one would refuse an image that fits the limit.
func TestFileSizeLimitIsExact(t *testing.T) {
	lim := Limits{MaxPixels: 1 << 20, MaxBytes: 64 << 10}
	photo := encodeJPEG(t, blocksImage("AB", "CD"))
	// padded is photo followed by zeros, n bytes in all: image/jpeg stops at EOI.
	padded := func(n int64) []byte {
		b := make([]byte, n)
		copy(b, photo)
		return b
	}
	pipe := func(data []byte) string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		go func() {
			defer w.Close()
			w.Write(data)
		}()
		return fmt.Sprintf("/dev/fd/%d", r.Fd())
	}
	for _, tc := range []struct {
		name string
		open func(data []byte) string // returns the path DecodeFile reads
		over TooLargeError            // the error one byte over the limit
	}{
		{"regular file", func(data []byte) string {
			path := filepath.Join(t.TempDir(), "padded.jpg")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}, TooLargeError{FileBytes: lim.MaxBytes + 1, MaxFileBytes: lim.MaxBytes}},
		{"pipe", pipe, TooLargeError{MaxFileBytes: lim.MaxBytes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := DecodeFile(tc.open(padded(lim.MaxBytes)), lim)
			if err != nil {
				t.Fatalf("%d bytes, the limit: %v", lim.MaxBytes, err)
			}
			checkBlocks(t, img, 12, "AB", "CD")
			_, err = DecodeFile(tc.open(padded(lim.MaxBytes+1)), lim)
			var tl *TooLargeError
			if !errors.As(err, &tl) || *tl != tc.over {
				t.Errorf("%d bytes, one over the limit: err = %#v, want %#v", lim.MaxBytes+1, err, &tc.over)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestDecodeReaderError(t *testing.T) {
	_, err := Decode(failingReader{}, testLimits)
	if !errors.Is(err, io.ErrClosedPipe) || errorKind(err) != "untyped" {
		t.Errorf("err = %v, want the reader's error, not an image error", err)
	}
}

func TestDecodeBadLimitsPanic(t *testing.T) {
	for _, lim := range []Limits{{}, {MaxPixels: 1}, {MaxBytes: 1}} {
		func() {
			defer func() {
				want := fmt.Sprintf("imgproc: limits must be positive, got %+v", lim)
				if p := recover(); p != want {
					t.Errorf("panic %v, want %q", p, want)
				}
			}()
			DecodeBytes([]byte{1}, lim)
		}()
	}
}

// TestUnsupportedBMPSaysWhatItReads: a BMP variant the decoder lacks (here 16
// bits a pixel) is unsupported, with the variants it reads and what to do.
func TestUnsupportedBMPSaysWhatItReads(t *testing.T) {
	b := make([]byte, 14+40+4*2)
	copy(b, "BM")
	binary.LittleEndian.PutUint32(b[2:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[10:], 14+40)
	binary.LittleEndian.PutUint32(b[14:], 40)
	binary.LittleEndian.PutUint32(b[18:], 2) // width
	binary.LittleEndian.PutUint32(b[22:], 2) // height
	binary.LittleEndian.PutUint16(b[26:], 1) // planes
	binary.LittleEndian.PutUint16(b[28:], 16)
	_, err := DecodeBytes(b, testLimits)
	want := "imgproc: unsupported image format: a kind of BMP this decoder does not read (it reads uncompressed BMPs with a standard header: palettes of 1 to 8 bits, 24 or 32 bits a pixel): save the image as PNG or JPEG; accepted formats are JPEG, PNG, GIF, BMP and WebP"
	if err == nil || err.Error() != want || !errors.Is(err, ErrUnsupported) {
		t.Errorf("16-bit BMP: %v\nwant %s", err, want)
	}
}

// fromVideoRange maps BT.601's video range exactly: Y 16 is black, 235
// white, 126 the grey between (an offset off by one had moved every pixel of a
// lossy WebP by one level, within TestDecodeFormats' tolerance).
func TestFromVideoRangeIsExact(t *testing.T) {
	ycc := image.NewYCbCr(image.Rect(0, 0, 4, 1), image.YCbCrSubsampleRatio444)
	copy(ycc.Y, []uint8{16, 235, 126, 81})
	copy(ycc.Cb, []uint8{128, 128, 128, 90})
	copy(ycc.Cr, []uint8{128, 128, 128, 240})
	got := fromVideoRange(ycc).(*image.NRGBA)
	// BT.601 red is Y 81, Cb 90, Cr 240, rounded: back to 254, 0, 0.
	want := []uint8{0, 0, 0, 255, 255, 255, 255, 255, 128, 128, 128, 255, 254, 0, 0, 255}
	if !slices.Equal(got.Pix, want) {
		t.Errorf("pixels %v, want %v", got.Pix, want)
	}
}
