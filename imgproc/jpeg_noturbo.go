//go:build !cgo || purecpu

package imgproc

import "image"

// decodeJPEGScaled: without cgo, or with the purecpu tag (the GPU bundle, which must
// not need libturbojpeg.so), there is no libjpeg-turbo, and image/jpeg, which
// cannot scale while decoding, handles every JPEG at full size.
func decodeJPEGScaled(b []byte, maxPixels, minSide int) (image.Image, image.Point, error) {
	return nil, image.Point{}, errUseGoDecoder
}

// turboEncodeJPEG: without cgo image/jpeg encodes every JPEG.
func turboEncodeJPEG(*image.RGBA, int) []byte { return nil }

// turboJPEG says this build decodes JPEGs with libjpeg-turbo where it can.
const turboJPEG = false
