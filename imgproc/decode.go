// Package imgproc decodes untrusted image files and turns them into encoder input:
// RGB, squashed to size x size, NHWC float32 in [-1, 1].
//
// Decode accepts JPEG, PNG, GIF (first frame), BMP and WebP, detected by their
// magic bytes, never by a file name. It reads only the header (and a JPEG's
// markers) before deciding whether the image is cheap enough to decode (Limits:
// pixels, decoded bytes, JPEG scans), so a decompression bomb costs a few bytes
// of work. Its errors are typed for callers that map them to HTTP status codes:
//
//	errors.Is(err, ErrEmpty)          no bytes at all                        400
//	errors.Is(err, ErrUnsupported)    not an image, or a format or variant
//	                                  this package cannot decode             415
//	errors.As(err, new(*TooLargeError)) header announces more pixels, decoded
//	                                  bytes or JPEG scans than the limits    413
//	errors.As(err, new(*CorruptError)) a supported format whose data is
//	                                  damaged or truncated                   400
//
// Any other error comes from the reader or the file system and is returned wrapped.
//
// With cgo, JPEGs are decoded (DecodeBytesAtLeast, at a DCT scale for large
// photos) and encoded (EncodeJPEG, for thumbnails) by libjpeg-turbo, and the
// resize of decoded RGBA runs in C; without cgo the same calls use image/jpeg and
// the Go filter.
package imgproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"math"
	"os"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// ErrEmpty is returned for zero bytes of input.
var ErrEmpty = errors.New("imgproc: empty input: the file or request body has no bytes; send a JPEG, PNG, GIF, BMP or WebP image")

// ErrUnsupported is matched (errors.Is) by every error about input this package
// cannot decode although it may be valid: an unknown format, a non-image file, or
// an unsupported variant of a known format (e.g. arithmetic-coded JPEG).
var ErrUnsupported = errors.New("imgproc: unsupported image format")

// UnsupportedError says which format or variant was seen and what is accepted.
type UnsupportedError struct {
	// What names the input that was recognised or sniffed, e.g. "TIFF image",
	// "text", "jpeg: unsupported JPEG feature: ...".
	What string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("imgproc: unsupported image format: %s; accepted formats are JPEG, PNG, GIF, BMP and WebP", e.What)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// TooLargeError is returned when the header announces an image that would cost
// more to decode than the limits allow: more than Max pixels, more than
// MaxBytes of decoded pixels, or (JPEG) more than MaxScans scans or scans over
// more than MaxScanSamples samples in all; or when a file holds more than
// MaxFileBytes. Exactly one of Max, MaxBytes, MaxScans, MaxScanSamples and
// MaxFileBytes is set. Nothing beyond the header and the JPEG markers has been
// decoded when it is returned.
type TooLargeError struct {
	Width, Height               int
	Max                         int   // pixel limit exceeded
	Bytes, MaxBytes             int64 // decoded-size limit exceeded
	Scans, MaxScans             int   // scan limit exceeded (Scans is also set with MaxScanSamples)
	ScanSamples, MaxScanSamples int64 // scan work limit exceeded
	// The file-size limit exceeded: FileBytes is the file's size, or 0 for a
	// stream (a pipe, a device) that went on past MaxFileBytes.
	FileBytes, MaxFileBytes int64
}

func (e *TooLargeError) Error() string {
	switch {
	case e.MaxFileBytes > 0:
		size := "the data goes on past " + Limit(e.MaxFileBytes)
		if e.FileBytes > 0 {
			size = "the file holds " + Size(e.FileBytes)
		}
		return fmt.Sprintf("imgproc: %s; an image may decode to at most %s (image.max_decoded_bytes), and no image format stores more than it decodes to, bar metadata: send a smaller file or raise image.max_decoded_bytes",
			size, Limit(e.MaxFileBytes))
	case e.MaxScanSamples > 0:
		return fmt.Sprintf("imgproc: progressive JPEG of %dx%d has %d scans over %d samples in all, more than the limit of %d (%d passes over image.max_pixels); re-save it as a baseline JPEG",
			e.Width, e.Height, e.Scans, e.ScanSamples, e.MaxScanSamples, MaxScanPasses)
	case e.MaxScans > 0:
		return fmt.Sprintf("imgproc: progressive JPEG has %d scans, more than the limit of %d (each scan is a pass over the whole image); re-save it as a baseline JPEG",
			e.Scans, e.MaxScans)
	case e.MaxBytes > 0:
		return fmt.Sprintf("imgproc: %dx%d image decodes to %s, more than the limit of %s; send a smaller or 8-bit image or raise image.max_decoded_bytes",
			e.Width, e.Height, Size(e.Bytes), Limit(e.MaxBytes))
	}
	return fmt.Sprintf("imgproc: image is %dx%d = %d pixels, more than the limit of %d; send a smaller image or raise image.max_pixels",
		e.Width, e.Height, int64(e.Width)*int64(e.Height), e.Max)
}

// Size writes n bytes rounded up to whole MiB, for a size over a limit: it
// never reads as the limit or below it.
func Size(n int64) string { return fmt.Sprintf("%d MiB", (n+1<<20-1)>>20) }

// Limit writes a limit of n bytes as whole MiB, or, when it is none, in
// bytes: rounded, 1 MiB + 1 byte read as "2 MiB", and a size of 2 MiB was
// "more than the limit of 2 MiB".
func Limit(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// CorruptError is returned when the data is in a supported format but cannot be
// decoded: truncated, damaged, or with an impossible header.
type CorruptError struct {
	Format string // "jpeg", "png", "gif", "bmp" or "webp"
	Err    error  // the decoder's error
}

func (e *CorruptError) Error() string {
	if errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, io.EOF) {
		return fmt.Sprintf("imgproc: %s data ends early (truncated file?): %v", e.Format, e.Err)
	}
	return fmt.Sprintf("imgproc: corrupt %s image: %v", e.Format, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// codec is one accepted format. The decoders are called directly rather than
// through image.Decode so that formats registered by other packages in the same
// binary (TIFF, say) do not silently widen what we accept.
type codec struct {
	name   string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var (
	codecJPEG = codec{"jpeg", jpeg.DecodeConfig, jpeg.Decode}
	codecPNG  = codec{"png", png.DecodeConfig, png.Decode}
	codecGIF  = codec{"gif", gif.DecodeConfig, gif.Decode}
	codecBMP  = codec{"bmp", bmp.DecodeConfig, bmp.Decode}
	codecWebP = codec{"webp", webp.DecodeConfig, webp.Decode}
)

// PNGSignature is the eight bytes every PNG file starts with.
const PNGSignature = "\x89PNG\r\n\x1a\n"

// sniff picks the codec from the magic bytes. It returns an *UnsupportedError
// naming what the data looks like when no codec fits.
func sniff(b []byte) (codec, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8}):
		return codecJPEG, nil
	case bytes.HasPrefix(b, []byte(PNGSignature)):
		return codecPNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return codecGIF, nil
	case bytes.HasPrefix(b, []byte("BM")):
		return codecBMP, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return codecWebP, nil
	}
	return codec{}, &UnsupportedError{What: describe(b)}
}

// describe names common non-accepted inputs so the error tells the user what
// they actually sent.
func describe(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "TIFF image"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		brand := string(b[8:12])
		switch brand {
		case "heic", "heix", "mif1", "msf1", "hevc":
			return "HEIC/HEIF image (convert it to JPEG)"
		case "avif", "avis":
			return "AVIF image (convert it to JPEG)"
		}
		return fmt.Sprintf("ISO media file (brand %q)", brand)
	case bytes.HasPrefix(b, []byte("%PDF")):
		return "PDF document"
	case bytes.HasPrefix(b, []byte{0, 0, 1, 0}):
		return "ICO icon"
	}
	if looksLikeText(b) {
		if head := bytes.ToLower(b[:min(len(b), 1024)]); bytes.Contains(head, []byte("<svg")) {
			return "SVG drawing (text; render it to PNG or JPEG first)"
		}
		return "text, not an image"
	}
	n := min(len(b), 8)
	return fmt.Sprintf("unrecognised data starting % x", b[:n])
}

// looksLikeText reports whether the first bytes are printable ASCII or UTF-8
// continuation/lead bytes with whitespace, as HTML, SVG, JSON or an error page are.
func looksLikeText(b []byte) bool {
	n := min(len(b), 512)
	for _, c := range b[:n] {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
		if c == 0x7f {
			return false
		}
	}
	return n > 0
}

// Decode reads a whole image from r and returns it upright (EXIF orientation
// applied for JPEG; a GIF's first frame placed on its logical screen).
// lim bounds its cost as announced by the header. Decode reads all of r: bound
// untrusted streams first (http.MaxBytesReader).
func Decode(r io.Reader, lim Limits) (image.Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("imgproc: reading image: %w", err)
	}
	return DecodeBytes(b, lim)
}

// DecodeFile decodes the image at path ("-": standard input); see Decode.
// Errors name the file.
func DecodeFile(path string, lim Limits) (image.Image, error) {
	img, _, err := decodeFile(path, lim, fullSize)
	return img, err
}

// decodeFile reads path and decodes it with decodeBytes, naming the file in errors.
func decodeFile(path string, lim Limits, minSide int) (image.Image, image.Point, error) {
	b, err := ReadFile(path, lim)
	if err != nil {
		return nil, image.Point{}, err
	}
	img, size, err := decodeBytes(b, lim, minSide)
	if err != nil {
		return nil, image.Point{}, namingFile(path, err)
	}
	return img, size, nil
}

// ReadFile reads the image file at path ("-": standard input) whole, for a
// caller that needs its bytes as well as the image (extract hashes them),
// with DecodeFile's bounds: a file larger than lim.MaxBytes, or one whose
// first bytes are no image's, is refused before it is read. Errors name the
// file.
func ReadFile(path string, lim Limits) ([]byte, error) {
	b, err := readImageFile(path, lim)
	if err != nil {
		return nil, namingFile(path, err)
	}
	return b, nil
}

// namingFile is err prefixed with path, unless it names the file already.
func namingFile(path string, err error) error {
	if _, ok := err.(*fs.PathError); ok {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// sniffLen is how much of a file readImageFile reads to tell an image from other
// data: describe's text test looks at this much.
const sniffLen = 512

// readImageFile reads the image file at path ("-": standard input, as
// command-line tools take it), refusing early what no image within lim can
// be: a file larger than lim.MaxBytes (no format this package reads stores
// more bytes than it decodes to, bar metadata), and data whose first bytes are
// no image's, so that /dev/zero or a pipe of garbage is refused at once rather
// than read until memory runs out.
func readImageFile(path string, lim Limits) ([]byte, error) {
	lim.mustBeValid()
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
		defer f.Close()
	}
	// A regular file's size is known (bar growth, which the byte past it
	// tells), so its bytes are read into one buffer of that size.
	size := int64(0)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > lim.MaxBytes {
			return nil, &TooLargeError{FileBytes: st.Size(), MaxFileBytes: lim.MaxBytes}
		}
		size = st.Size() + 1
	}
	b := make([]byte, sniffLen)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n == 0 {
		return nil, ErrEmpty
	}
	if _, err := sniff(b[:n]); err != nil {
		return nil, err
	}
	if size > int64(n) {
		b = append(make([]byte, 0, size), b[:n]...)
	}
	// One byte past the limit tells a stream that goes on past it.
	b, err = readRest(f, b[:n], lim.MaxBytes+1)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > lim.MaxBytes {
		return nil, &TooLargeError{MaxFileBytes: lim.MaxBytes}
	}
	return b, nil
}

// readRest appends what is left of r to b, up to limit bytes in all, growing b
// by doubling: io.ReadAll's smaller steps, and a copy to join the sniffed
// bytes, took `caption -` reading an endless stream to nearly 1 GB before its
// refusal at the default 256 MiB; doubling up to the limit holds at most 1.5
// times it at once, and allocates about twice it in all.
func readRest(r io.Reader, b []byte, limit int64) ([]byte, error) {
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			c := 2 * int64(cap(b))
			if 2*c > limit { // the next doubling would pass it: go to the limit now
				c = limit
			}
			grown := make([]byte, len(b), c)
			copy(grown, b)
			b = grown
		}
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// DecodeBytes decodes an image held in memory; see Decode.
func DecodeBytes(b []byte, lim Limits) (image.Image, error) {
	img, _, err := decodeBytes(b, lim, fullSize)
	return img, err
}

// fullSize as decodeBytes' minSide asks for every pixel of the file.
const fullSize = 0

// decodeBytes is DecodeBytes and, for minSide > 0, DecodeBytesAtLeast: it also
// returns the upright size of the full-resolution image.
func decodeBytes(b []byte, lim Limits, minSide int) (img image.Image, size image.Point, err error) {
	lim.mustBeValid()
	if len(b) == 0 {
		return nil, image.Point{}, ErrEmpty
	}
	c, err := sniff(b)
	if err != nil {
		return nil, image.Point{}, err
	}
	// The decoders are third-party code fed untrusted bytes: a panic in one of them
	// must cost this request, not the server or a 1000-image batch.
	defer func() {
		if p := recover(); p != nil {
			img, size, err = nil, image.Point{}, &CorruptError{Format: c.name, Err: fmt.Errorf("decoder panicked: %v", p)}
		}
	}()
	h, err := readHeader(c, b)
	if err != nil {
		return nil, image.Point{}, err
	}
	if err := lim.check(h, h.Cost(minSide)); err != nil {
		return nil, image.Point{}, err
	}
	if c.name == "jpeg" && minSide != fullSize {
		img, err := decodeJPEGScaled(b, h, minSide)
		switch {
		case err == nil:
			return img, h.size(), nil
		case !errors.Is(err, errUseGoDecoder):
			return nil, image.Point{}, err
		}
		// image/jpeg decodes at full size, which may cost more.
		if err := lim.check(h, h.Bytes); err != nil {
			return nil, image.Point{}, err
		}
	}
	img, err = c.decode(bytes.NewReader(b))
	if err != nil {
		return nil, image.Point{}, classify(c.name, err)
	}
	switch c.name {
	case "webp":
		img = Orient(fromVideoRange(img), h.orientation)
	case "jpeg", "png":
		img = Orient(img, h.orientation)
	case "gif":
		img = onScreen(img, h.Width, h.Height)
	}
	return img, img.Bounds().Size(), nil
}

// fromVideoRange converts the YCbCr image lossy WebP decodes to (VP8 stores
// BT.601 "video range": Y 16..235, chroma 16..240) into RGB. image/color's
// conversion, which ToTensor and At use, is JPEG's full range 0..255: it lifted
// blacks to grey and cut contrast and saturation by a seventh. Other images
// (lossless WebP decodes to RGBA) pass unchanged.
func fromVideoRange(img image.Image) image.Image {
	var ycc *image.YCbCr
	var alpha func(x, y int) uint8
	switch m := img.(type) {
	case *image.YCbCr:
		ycc = m
	case *image.NYCbCrA:
		ycc, alpha = &m.YCbCr, func(x, y int) uint8 { return m.A[m.AOffset(x, y)] }
	default:
		return img
	}
	r := ycc.Bounds()
	out := image.NewNRGBA(r)
	clamp := func(v float64) uint8 { return uint8(min(255, max(0, math.Round(v)))) }
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			yy := 1.164383 * (float64(ycc.Y[ycc.YOffset(x, y)]) - 16)
			cb, cr := float64(ycc.Cb[ycc.COffset(x, y)])-128, float64(ycc.Cr[ycc.COffset(x, y)])-128
			i := out.PixOffset(x, y)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = clamp(yy+1.596027*cr), clamp(yy-0.391762*cb-0.812968*cr), clamp(yy+2.017232*cb)
			out.Pix[i+3] = 255
			if alpha != nil {
				out.Pix[i+3] = alpha(x, y)
			}
		}
	}
	return out
}

// onScreen places a GIF's first frame on its logical screen. A frame may cover
// only part of the screen, at an offset; the rest is transparent (white once
// converted), as browsers show it.
func onScreen(frame image.Image, width, height int) image.Image {
	screen := image.Rect(0, 0, width, height)
	if frame.Bounds() == screen {
		return frame
	}
	canvas := image.NewNRGBA(screen)
	draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Src)
	return canvas
}

// classify turns a decoder's error into ErrUnsupported (a valid file using a
// feature the decoder lacks) or *CorruptError (everything else).
func classify(format string, err error) error {
	var ju jpeg.UnsupportedError
	var pu png.UnsupportedError
	if errors.Is(err, bmp.ErrUnsupported) { // the package names no variant
		return &UnsupportedError{What: "a kind of BMP this decoder does not read (it reads uncompressed BMPs with a standard header: palettes of 1 to 8 bits, 24 or 32 bits a pixel): save the image as PNG or JPEG"}
	}
	if errors.As(err, &ju) || errors.As(err, &pu) {
		return &UnsupportedError{What: err.Error()}
	}
	return &CorruptError{Format: format, Err: err}
}
