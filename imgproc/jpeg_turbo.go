//go:build cgo && (!purecpu || staticjpeg)

package imgproc

// libjpeg-turbo is linked as a shared library (jpeg_turbo_shared.go) or, with the
// staticjpeg tag, from its static archive (jpeg_turbo_static.go).

/*
#include <stdio.h>
#include <turbojpeg.h>

// decompress_rgba decodes into RGBA and, on failure, copies the error message
// into msg within the same call: libjpeg-turbo keeps decoding errors in a
// thread-local buffer, and a goroutine may resume on another thread between two
// cgo calls, where that buffer holds another decode's message.
static int decompress_rgba(tjhandle h, const unsigned char *src, unsigned long n,
		unsigned char *dst, int w, int pitch, int ht, char *msg, int msgLen) {
	if (tjDecompress2(h, src, n, dst, w, pitch, ht, TJPF_RGBA, TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) == 0) {
		return 0;
	}
	snprintf(msg, msgLen, "%s", tjGetErrorStr2(h));
	return -1;
}
*/
import "C"

import (
	"fmt"
	"image"
	"io"
	"sync"
	"unsafe"
)

// decodeJPEGScaled decodes a JPEG with libjpeg-turbo straight into RGBA at the
// smallest DCT scale that keeps both sides at least minSide (see
// DecodeBytesAtLeast), then applies the EXIF orientation. h is the file's
// header, already checked against the limits. It returns errUseGoDecoder for
// what it leaves to image/jpeg.
//
// One TurboJPEG handle per call: creating and destroying one takes 0.3 µs
// against milliseconds for a decode, and a handle that is never pooled cannot
// leak.
func decodeJPEGScaled(b []byte, h Header, minSide int) (image.Image, error) {
	tj := C.tjInitDecompress()
	if tj == nil {
		return nil, errUseGoDecoder // out of memory in C: let Go try
	}
	defer C.tjDestroy(tj)
	// cgo pointer rules: b holds no Go pointers and C keeps it only during each call.
	src, srcLen := (*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b))
	var cw, ch, subsamp, colorspace C.int
	if C.tjDecompressHeader3(tj, src, srcLen, &cw, &ch, &subsamp, &colorspace) != 0 {
		// A broken header: image/jpeg reads it again and names the problem.
		return nil, errUseGoDecoder
	}
	if colorspace == C.TJCS_CMYK || colorspace == C.TJCS_YCCK {
		return nil, errUseGoDecoder // libjpeg has no CMYK -> RGB conversion
	}
	width, height := int(cw), int(ch)
	if width != h.Width || height != h.Height {
		return nil, errUseGoDecoder // not the frame the limits were checked on
	}
	f := smallestScale(turboScales(), width, height, minSide)
	dst := image.NewRGBA(image.Rect(0, 0, f.scaled(width), f.scaled(height)))
	// TJPF_RGBA fills the alpha byte with 255: the result is an opaque image.RGBA
	// with no conversion pass. TurboJPEG picks the largest scale whose output fits
	// the size it is given, which is f or one giving the same size: it writes
	// exactly dst.
	var msg [200]C.char // libjpeg's JMSG_LENGTH_MAX
	if C.decompress_rgba(tj, src, srcLen, (*C.uchar)(unsafe.Pointer(&dst.Pix[0])),
		C.int(dst.Rect.Dx()), C.int(dst.Stride), C.int(dst.Rect.Dy()), &msg[0], C.int(len(msg))) != 0 {
		return nil, turboFailure(C.GoString(&msg[0]), h)
	}
	return Orient(dst, h.orientation), nil
}

// jpegEOF is libjpeg's warning for data that ends before the image does
// (JWRN_JPEG_EOF), which TJFLAG_STOPONWARNING turns into an error.
const jpegEOF = "Premature end of JPEG file"

// jpegScanLimit is TurboJPEG's error under TJFLAG_LIMITSCANS.
var jpegScanLimit = fmt.Sprintf("Progressive JPEG image has more than %d scans", MaxScans)

// turboFailure classifies a failed libjpeg-turbo decode. A truncated file is
// corrupt for image/jpeg too, and libjpeg's message says so well. Any other
// failure goes to image/jpeg: libjpeg stops on warnings (extraneous bytes before
// a marker, say) that image/jpeg tolerates, and a file accepted today must stay
// accepted. Too many scans is final: image/jpeg would spend the same time on
// them. readJPEGLayout counts the same scans first, so this is a second guard.
func turboFailure(msg string, h Header) error {
	switch msg {
	case jpegEOF:
		return &CorruptError{Format: "jpeg", Err: &libjpegError{msg: msg}}
	case jpegScanLimit:
		return &TooLargeError{Width: h.Width, Height: h.Height, Scans: MaxScans + 1, MaxScans: MaxScans}
	}
	return errUseGoDecoder
}

// libjpegError is a message from libjpeg-turbo.
type libjpegError struct{ msg string }

func (e *libjpegError) Error() string { return "jpeg: " + e.msg }

// Unwrap makes a truncated file match io.ErrUnexpectedEOF, so that CorruptError
// calls it truncated.
func (e *libjpegError) Unwrap() error {
	if e.msg == jpegEOF {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// turboScales lists the DCT scaling factors of the linked libjpeg-turbo
// (M/8 for M = 1..16 in 2.x; the list is static in the library).
var turboScales = sync.OnceValue(func() []scaleFactor {
	var n C.int
	p := C.tjGetScalingFactors(&n)
	if p == nil {
		return nil // smallestScale then decodes at full size
	}
	var out []scaleFactor
	for _, f := range unsafe.Slice(p, int(n)) {
		out = append(out, scaleFactor{int(f.num), int(f.denom)})
	}
	return out
})

// turboEncodeJPEG compresses m (see EncodeJPEG), or returns nil for image/jpeg
// to do it. libjpeg-turbo allocates the output, sized by the compressed data.
func turboEncodeJPEG(m *image.RGBA, quality int) []byte {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if w <= 0 || h <= 0 {
		return nil // image/jpeg decides what an empty image encodes to
	}
	tj := C.tjInitCompress()
	if tj == nil {
		return nil
	}
	defer C.tjDestroy(tj)
	var out *C.uchar
	var size C.ulong
	defer func() { C.tjFree(out) }() // allocated even on some failures; NULL is fine
	// TJPF_RGBX reads the alpha byte and ignores it, as image/jpeg does.
	if C.tjCompress2(tj, (*C.uchar)(unsafe.Pointer(&m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y)])),
		C.int(w), C.int(m.Stride), C.int(h), C.TJPF_RGBX, &out, &size, C.TJSAMP_420, C.int(quality), 0) != 0 {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(size))
}

// turboJPEG says this build decodes JPEGs with libjpeg-turbo where it can.
const turboJPEG = true

// JPEGDecoder names what decodes JPEGs in this build: features computed from
// the same photo differ by decoder, so feature stores are keyed by it.
const JPEGDecoder = "libjpeg-turbo"
