package imgproc

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
)

// Limits bound what decoding one image may cost, checked against its header
// before any pixel is decoded. Both must be positive.
//
// What the costliest images the defaults (50,000,000 pixels, 256 MiB) let
// through cost, measured on one core of the 2-core development machine
// (BenchmarkHostile):
//
//	image                                       libjpeg-turbo, 448    image/jpeg or Go, full size
//	progressive JPEG 8000x6250, 31 scans        0.8 s, ~100 MB in C   6.4 s, 250 MB
//	progressive JPEG 800x500, 500 scans         0.1 s                 0.3 s, 2 MB
//	16-bit PNG 5792x5792 (the byte limit)       -                     1.7 s, 256 MiB
//	8-bit RGBA PNG 7071x7071 (the pixel limit)  -                     0.5 s, 200 MB
//
// The server and the CLI decode JPEGs with libjpeg-turbo at MinDecodeSide;
// image/jpeg decodes them without cgo, at full size (DecodeBytes), and where
// libjpeg-turbo stops on a warning. Before the byte and scan limits a
// 7000x7000 16-bit PNG of 381 KB took 6.9 s and 1 GB, and a 360 KB JPEG of
// 3,000 scans 14 s.
type Limits struct {
	// MaxPixels bounds width*height (image.max_pixels): the decoder's CPU time
	// grows with it.
	MaxPixels int
	// MaxBytes bounds the memory decoding allocates for pixels, Header.Cost
	// (image.max_decoded_bytes): a 16-bit PNG takes 8 bytes a pixel, a progressive
	// JPEG keeps every coefficient until its last scan.
	MaxBytes int64
}

func (l Limits) mustBeValid() {
	if l.MaxPixels <= 0 || l.MaxBytes <= 0 {
		panic(fmt.Sprintf("imgproc: limits must be positive, got %+v", l))
	}
}

// Check returns the error decoding an image of header h with limits l at
// minSide (see Header.Cost) returns before decoding any pixel, or nil.
func (l Limits) Check(h Header, minSide int) error { return l.check(h, h.Cost(minSide)) }

// check refuses an image whose header exceeds l, or whose decoding at this size
// costs more than l.MaxBytes.
func (l Limits) check(h Header, cost int64) error {
	switch {
	case int64(h.Width)*int64(h.Height) > int64(l.MaxPixels):
		return &TooLargeError{Width: h.Width, Height: h.Height, Max: l.MaxPixels}
	case h.Scans > MaxScans:
		return &TooLargeError{Width: h.Width, Height: h.Height, Scans: h.Scans, MaxScans: MaxScans}
	case h.jpeg.scanSamples > MaxScanPasses*int64(l.MaxPixels):
		return &TooLargeError{Width: h.Width, Height: h.Height, Scans: h.Scans,
			ScanSamples: h.jpeg.scanSamples, MaxScanSamples: MaxScanPasses * int64(l.MaxPixels)}
	case cost > l.MaxBytes:
		return &TooLargeError{Width: h.Width, Height: h.Height, Bytes: cost, MaxBytes: l.MaxBytes}
	}
	return nil
}

// Header is what an image's header announces, read without decoding pixels.
type Header struct {
	Format        string // "jpeg", "png", "gif", "bmp" or "webp"
	Width, Height int    // as stored, before any EXIF orientation
	Scans         int    // JPEG: scans in the file; 1 for other formats
	// Bytes is the most memory DecodeBytes allocates for this image's pixels:
	// the decoded image by colour model and bit depth, plus what the decoder
	// holds beside it (a progressive JPEG's coefficients, an interlaced PNG's
	// passes, a GIF's canvas, the EXIF rotation's copies).
	Bytes int64

	jpeg        jpegLayout
	orientation int // EXIF orientation (JPEG, PNG, WebP), 1..8; 0 for none
}

// ReadHeader reads the header of an image held in memory: its format, size
// and decoding cost, for a caller that budgets several images at once (a
// server request). Its errors are Decode's; it never decodes pixels.
func ReadHeader(b []byte) (Header, error) {
	if len(b) == 0 {
		return Header{}, ErrEmpty
	}
	c, err := sniff(b)
	if err != nil {
		return Header{}, err
	}
	return readHeader(c, b)
}

func readHeader(c codec, b []byte) (Header, error) {
	h := Header{Format: c.name, Scans: 1}
	if c.name == "jpeg" {
		l, ok := readJPEGLayout(b)
		if !ok {
			if _, err := c.config(bytes.NewReader(b)); err != nil {
				return Header{}, classify(c.name, err)
			}
			return Header{}, &CorruptError{Format: c.name, Err: fmt.Errorf("no frame header (SOF marker) found")}
		}
		h.Width, h.Height, h.Scans, h.jpeg = l.width, l.height, l.scans, l
		h.orientation = jpegOrientation(b)
	} else {
		if c.name == "webp" {
			if _, animated := webpChunk(b, "ANIM"); animated {
				return Header{}, &UnsupportedError{What: "an animated WebP (the decoder reads still WebP images): send one frame, e.g. as PNG"}
			}
		}
		cfg, err := c.config(bytes.NewReader(b))
		if err != nil {
			return Header{}, classify(c.name, err)
		}
		h.Width, h.Height = cfg.Width, cfg.Height
		h.Bytes = pixels(h) * bytesPerPixel(c.name, cfg.ColorModel, b)
		switch c.name {
		case "png":
			h.orientation = pngOrientation(b)
		case "webp":
			h.orientation = webpOrientation(b)
		}
	}
	if h.Width <= 0 || h.Height <= 0 {
		return Header{}, &CorruptError{Format: c.name, Err: fmt.Errorf("header announces %dx%d pixels", h.Width, h.Height)}
	}
	if c.name == "jpeg" {
		h.Bytes = h.jpegGoBytes()
	}
	return h, nil
}

func pixels(h Header) int64 { return int64(h.Width) * int64(h.Height) }

// bytesPerPixel is the memory per pixel of the image the Go decoder of format
// returns for model, and of what it allocates beside it.
func bytesPerPixel(format string, model color.Model, b []byte) int64 {
	var n int64
	switch model {
	case color.GrayModel, color.AlphaModel:
		n = 1
	case color.Gray16Model, color.Alpha16Model:
		n = 2
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		n = 4
	case color.RGBA64Model, color.NRGBA64Model:
		n = 8
	case color.YCbCrModel:
		n = 3 // 4:4:4 at most; WebP's is 4:2:0
		if format == "webp" {
			n = 2 // 1.5, rounded up
		}
	case color.NYCbCrAModel:
		n = 4
	default:
		if _, ok := model.(color.Palette); ok {
			n = 1
		} else {
			n = 8 // unknown: the widest
		}
	}
	switch format {
	case "png":
		// An interlaced PNG decodes its 7 passes into images of their own, then
		// copies them into the result.
		if len(b) > 28 && b[28] == 1 {
			n *= 2
		}
	case "gif":
		n += 4 // a frame smaller than the screen is placed on an NRGBA canvas
	}
	return n
}

// jpegGoBytes is the memory image/jpeg needs for h: one byte per sample in
// MCU-aligned planes, an image.CMYK for 4 components, the int32 coefficients of
// a progressive file, and the two RGBA copies of an EXIF rotation.
func (h Header) jpegGoBytes() int64 {
	samples := h.jpeg.samples()
	n := samples
	if len(h.jpeg.comps) == 4 {
		n += 4 * pixels(h)
	}
	if h.jpeg.progressive {
		n += 4 * samples
	}
	return n + h.orientationBytes(pixels(h))
}

// orientationBytes is what Orient allocates for an image of n pixels: an RGBA
// copy and its rotation.
func (h Header) orientationBytes(n int64) int64 {
	if h.orientation >= 2 && h.orientation <= 8 {
		return 8 * n
	}
	return 0
}

// samples counts the samples of every component.
func (l jpegLayout) samples() int64 {
	var n int64
	for _, c := range l.comps {
		n += l.componentSamples(c)
	}
	return n
}

// componentSamples counts c's samples, padded to whole MCUs as image/jpeg
// allocates them.
func (l jpegLayout) componentSamples(c jpegComponent) int64 {
	hmax, vmax := 1, 1
	for _, c := range l.comps {
		hmax, vmax = max(hmax, c.h), max(vmax, c.v)
	}
	mcuX := int64((l.width + 8*hmax - 1) / (8 * hmax))
	mcuY := int64((l.height + 8*vmax - 1) / (8 * vmax))
	return mcuX * 8 * int64(c.h) * mcuY * 8 * int64(c.v)
}

// Cost is the most memory decoding allocates for the image's pixels when
// called with minSide: DecodeBytesAtLeast(b, limits, minSide), or DecodeBytes
// for minSide 0. With libjpeg-turbo a JPEG decodes into RGBA at a DCT scale,
// and a progressive one keeps its coefficients (2 bytes each) at full size.
// A JPEG that libjpeg-turbo hands to image/jpeg is checked again, at Bytes.
func (h Header) Cost(minSide int) int64 {
	if !turboJPEG || h.Format != "jpeg" || minSide == fullSize || len(h.jpeg.comps) == 4 {
		return h.Bytes
	}
	f := smallestScale(turboScales(), h.Width, h.Height, minSide)
	out := int64(f.scaled(h.Width)) * int64(f.scaled(h.Height))
	n := 4*out + h.orientationBytes(out)
	if h.jpeg.progressive {
		n += 2 * h.jpeg.samples()
	}
	return n
}

// size is the upright size of the image, EXIF orientation applied.
func (h Header) size() image.Point {
	if h.orientation >= 5 {
		return image.Pt(h.Height, h.Width)
	}
	return image.Pt(h.Width, h.Height)
}
