//go:build !cgo || (purecpu && !staticjpeg)

package imgproc

import "image"

// decodeJPEGScaled: without cgo, or with the purecpu tag alone (a build that must
// not need libturbojpeg.so and has no static libjpeg-turbo to link instead), there
// is no libjpeg-turbo, and image/jpeg, which cannot scale while decoding, handles
// every JPEG at full size.
func decodeJPEGScaled([]byte, Header, int) (image.Image, error) {
	return nil, errUseGoDecoder
}

// turboScales: without libjpeg-turbo there are no DCT scales.
func turboScales() []scaleFactor { return nil }

// turboEncodeJPEG: without cgo image/jpeg encodes every JPEG.
func turboEncodeJPEG(*image.RGBA, int) []byte { return nil }

// turboJPEG says this build decodes JPEGs with libjpeg-turbo where it can.
const turboJPEG = false

// JPEGDecoder names what decodes JPEGs in this build: features computed from
// the same photo differ by decoder, so feature stores are keyed by it.
const JPEGDecoder = "image/jpeg"
