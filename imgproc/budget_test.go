package imgproc

import (
	"errors"
	"image"
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
	for _, tc := range []struct {
		name  string
		data  []byte
		bytes int64
	}{
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
			if _, err := DecodeBytes(tc.data, Limits{MaxPixels: 1200, MaxBytes: tc.bytes}); err != nil {
				t.Errorf("at the limit: %v", err)
			}
			_, err = DecodeBytes(tc.data, Limits{MaxPixels: 1200, MaxBytes: tc.bytes - 1})
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
