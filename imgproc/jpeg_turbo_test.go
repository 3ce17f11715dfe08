//go:build cgo && (!purecpu || staticjpeg)

package imgproc

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/captioner/captioner/internal/hostile"
)

// rgbaOf converts img to an *image.RGBA at the origin.
func rgbaOf(img image.Image) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(m, m.Rect, img, img.Bounds().Min, draw.Src)
	return m
}

// TestTurboMatchesImageJPEG compares libjpeg-turbo's full-scale RGB output with
// image/jpeg's on the shared photos. They differ in IDCT rounding and in chroma
// upsampling (libjpeg interpolates, image.YCbCr repeats samples). Measured mean
// absolute difference per channel: 0.15 to 0.33 grey levels on the Flickr
// photos (mean 0.24), 0.45 on cat_720p (4:2:0, where upsampling matters more;
// its worst pixel differs by 26 at a saturated edge).
func TestTurboMatchesImageJPEG(t *testing.T) {
	files := append(fullresPhotos(t), filepath.Join(assets(t), "samples/cat_720p.jpg"))
	var total float64
	for _, path := range files {
		goImg, turbo, _ := decodeBothWays(t, path, 1<<20) // larger than the photo: full scale
		if _, ok := turbo.(*image.RGBA); !ok {
			t.Fatalf("%s: libjpeg-turbo path returned %T, want *image.RGBA", path, turbo)
		}
		a, b := rgbaOf(goImg), rgbaOf(turbo)
		if a.Rect != b.Rect {
			t.Fatalf("%s: bounds %v, image/jpeg %v", path, b.Rect, a.Rect)
		}
		var sum float64
		for i := range a.Pix {
			if i%4 != 3 {
				sum += float64(absDiff(int(a.Pix[i]), int(b.Pix[i])))
			}
		}
		mad := sum / float64(len(a.Pix)/4*3)
		t.Logf("%s: %.3f grey levels", filepath.Base(path), mad)
		total += mad
		if mad > 0.6 {
			t.Errorf("%s: libjpeg-turbo differs from image/jpeg by %.3f grey levels on average (want <= 0.6)", filepath.Base(path), mad)
		}
	}
	if mean := total / float64(len(files)); mean > 0.35 {
		t.Errorf("mean difference %.3f grey levels over %d photos, want <= 0.35", mean, len(files))
	}
}

func TestTurboScale(t *testing.T) {
	for _, tc := range []struct {
		w, h, minSide int
		num, denom    int
		wantW, wantH  int
	}{
		{500, 375, 224, 5, 8, 313, 235}, // 4/8 would give 188 rows
		{375, 500, 224, 5, 8, 235, 313},
		{500, 281, 224, 7, 8, 438, 246}, // 281*6/8 = 210.75 -> 211 < 224
		{447, 447, 224, 1, 2, 224, 224}, // 223.5 rounds up to 224
		{446, 446, 224, 5, 8, 279, 279},
		{1280, 720, 224, 3, 8, 480, 270},
		{4000, 3000, 224, 1, 8, 500, 375},
		{224, 224, 224, 1, 1, 224, 224},
		{100, 300, 224, 1, 1, 100, 300}, // a side already short: never enlarged
	} {
		f := smallestScale(turboScales(), tc.w, tc.h, tc.minSide)
		if f.num*tc.denom != tc.num*f.denom || f.scaled(tc.w) != tc.wantW || f.scaled(tc.h) != tc.wantH {
			t.Errorf("%dx%d, min %d: scale %d/%d -> %dx%d, want %d/%d -> %dx%d", tc.w, tc.h, tc.minSide,
				f.num, f.denom, f.scaled(tc.w), f.scaled(tc.h), tc.num, tc.denom, tc.wantW, tc.wantH)
		}
	}
	// And the decoder agrees: a 447x447 JPEG decodes at 1/2 to 224x224.
	img, size, err := DecodeBytesAtLeast(encodeJPEG(t, image.NewGray(image.Rect(0, 0, 447, 447))), testLimits, 224)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 224, 224) || size != image.Pt(447, 447) {
		t.Errorf("447x447 at min 224: decoded %v of %v, want 224x224 of 447x447", img.Bounds(), size)
	}
}

func TestTurboTruncated(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("ABC", "DEF"))
	// Cut inside the scan data. (A cut inside the header goes to image/jpeg,
	// as every header libjpeg rejects does, and is called truncated there.)
	_, _, err := DecodeBytesAtLeast(jpg[:len(jpg)-20], testLimits, 8)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want a *CorruptError matching io.ErrUnexpectedEOF", err)
	}
	want := "imgproc: jpeg data ends early (truncated file?): jpeg: Premature end of JPEG file"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// TestTurboErrorsUnderConcurrency decodes truncated files and files with a
// tolerated warning from many goroutines at once: each failure must carry its
// own decode's message. libjpeg-turbo keeps messages in a thread-local buffer,
// and goroutines move between threads between cgo calls, so reading the message
// in a second call mixed them up (a truncated upload was then sometimes
// reported with image/jpeg's words).
func TestTurboErrorsUnderConcurrency(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("ABC", "DEF"))
	truncated := jpg[:len(jpg)-20]
	n := 4 + (int(jpg[4])<<8 | int(jpg[5]))
	junk := append(append(append([]byte{}, jpg[:n]...), 0x00, 0x01, 0x02), jpg[n:]...)
	want := "imgproc: jpeg data ends early (truncated file?): jpeg: Premature end of JPEG file"
	var wg sync.WaitGroup
	errs := make(chan error, 16*200)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				if (g+i)%2 == 0 {
					if _, _, err := DecodeBytesAtLeast(junk, testLimits, 8); err != nil {
						errs <- fmt.Errorf("junk before a marker: %w", err)
					}
					continue
				}
				if _, _, err := DecodeBytesAtLeast(truncated, testLimits, 8); err == nil || err.Error() != want {
					errs <- fmt.Errorf("truncated: %v", err)
				}
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	close(errs)
	bad := 0
	for err := range errs {
		if bad++; bad <= 3 {
			t.Error(err)
		}
	}
	if bad > 3 {
		t.Errorf("... %d wrong results in all", bad)
	}
}

// TestTurboWarningGoesToImageJPEG: libjpeg stops on warnings that image/jpeg
// tolerates, such as junk bytes before a marker; such a file must still decode.
func TestTurboWarningGoesToImageJPEG(t *testing.T) {
	jpg := encodeJPEG(t, blocksImage("ABC", "DEF"))
	// Junk after the first segment (SOI, then a marker and a 2-byte length).
	n := 4 + (int(jpg[4])<<8 | int(jpg[5]))
	junk := append(append(append([]byte{}, jpg[:n]...), 0x00, 0x01, 0x02), jpg[n:]...)
	img, _, err := DecodeBytesAtLeast(junk, testLimits, 8)
	if err != nil {
		t.Fatalf("junk before a marker: %v", err)
	}
	if _, ok := img.(*image.YCbCr); !ok {
		t.Errorf("junk before a marker decoded to %T, want image/jpeg's *image.YCbCr", img)
	}
	checkBlocks(t, img, 12, "ABC", "DEF")
}

// TestTurboEncodes: EncodeJPEG goes through libjpeg-turbo in this build, except
// for what it hands to image/jpeg.
func TestTurboEncodes(t *testing.T) {
	if b := turboEncodeJPEG(blocksImage("AB"), 80); len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		t.Errorf("turboEncodeJPEG gave %d bytes, want a JPEG", len(b))
	}
	if b := turboEncodeJPEG(image.NewRGBA(image.Rect(0, 0, 0, 5)), 80); b != nil {
		t.Errorf("empty image: %d bytes, want nil (left to image/jpeg)", len(b))
	}
}

// libjpeg-turbo's own scan limit (TJFLAG_LIMITSCANS) holds when the marker walk
// is bypassed; at the limit it decodes the file itself.
func TestTurboLimitsScans(t *testing.T) {
	over := hostile.ProgressiveJPEG(64, 48, MaxScans+1)
	h, err := ReadHeader(over)
	if err != nil {
		t.Fatal(err)
	}
	_, err = decodeJPEGScaled(over, h, 8)
	want := TooLargeError{Width: 64, Height: 48, Scans: MaxScans + 1, MaxScans: MaxScans}
	if tl := new(TooLargeError); !errors.As(err, &tl) || *tl != want {
		t.Errorf("err = %v, want %+v", err, want)
	}
	at := hostile.ProgressiveJPEG(64, 48, MaxScans)
	if h, err = ReadHeader(at); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeJPEGScaled(at, h, 8); err != nil {
		t.Errorf("%d scans: %v, want libjpeg-turbo to decode it", MaxScans, err)
	}
}
