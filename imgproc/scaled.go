package imgproc

import (
	"errors"
	"fmt"
	"image"
)

// DecodeBytesAtLeast is DecodeBytes for callers that shrink the image to at most
// minSide x minSide anyway, as ToTensor does: a JPEG may come out smaller than
// the file, at the smallest DCT scale M/8 (M = 1..8) whose both sides are still
// at least minSide, so that the antialiased resize after it only ever
// downsamples. An image smaller than minSide comes out at full size: a minSide
// larger than any image asks for libjpeg-turbo's speed without the scaling.
// Other formats, and every JPEG in a build without cgo, always come out at full
// size. full is the upright size of the image in the file, for callers that
// report it. Errors are those of DecodeBytes.
//
// A 500x375 photo for a 224 tensor decodes at 5/8, 313x235, which leaves the
// resize a third of the work. The scaled pixels are not those of a full decode
// and resize, though: DCT scaling rebuilds each 8x8 block on its own. On the
// Flickr8k sample photos the 224x224 tensor moves by 3.4 grey levels on
// average (TestDecodeAtLeastTensorCloseToFull) and the encoder's features by
// about 11% (relative L2).
func DecodeBytesAtLeast(b []byte, lim Limits, minSide int) (img image.Image, full image.Point, err error) {
	checkMinSide(minSide)
	return decodeBytes(b, lim, minSide)
}

// DecodeFileAtLeast is DecodeBytesAtLeast for the image at path; errors name the file.
func DecodeFileAtLeast(path string, lim Limits, minSide int) (img image.Image, full image.Point, err error) {
	checkMinSide(minSide)
	return decodeFile(path, lim, minSide)
}

// MinDecodeSide is the minSide to pass for an image that becomes a size x size
// tensor: twice the tensor's side, so that the antialiased resize, not the DCT
// scaling, does at least the last halving. With minSide = size the encoder's
// features moved by about 11% on the Flickr8k sample photos; with 2*size those
// 500x375 photos decode at full scale (features within ~1% of image/jpeg's),
// while large photos still skip most of their decoding (1280x720 decodes at
// 5/8, a 4000x3000 one at 1/4).
func MinDecodeSide(size int) int { return 2 * size }

func checkMinSide(minSide int) {
	if minSide <= 0 {
		panic(fmt.Sprintf("imgproc: minSide must be positive, got %d", minSide))
	}
}

// errUseGoDecoder is how the libjpeg-turbo path hands a JPEG back to image/jpeg:
// without cgo, for colour spaces it cannot turn into RGB (CMYK, YCCK), and for
// any failure other than truncation, so that the Go decoder decides whether the
// file is acceptable and which error it gets, exactly as DecodeBytes does.
var errUseGoDecoder = errors.New("imgproc: JPEG left to image/jpeg")

// scaleFactor is a DCT scaling factor num/denom, as tjGetScalingFactors lists them.
type scaleFactor struct{ num, denom int }

// scaled is the size libjpeg gives a side of n pixels at scale f (TJSCALED):
// rounded up.
func (f scaleFactor) scaled(n int) int { return (n*f.num + f.denom - 1) / f.denom }

// smallestScale returns the smallest factor of at most 1 among factors under which
// both w and h stay at least minSide; 1/1 when none does (the image is already
// smaller than minSide: the decoder never enlarges).
func smallestScale(factors []scaleFactor, w, h, minSide int) scaleFactor {
	best := scaleFactor{1, 1}
	for _, f := range factors {
		if f.num > f.denom || f.num*best.denom >= best.num*f.denom {
			continue // enlarging, or not smaller than the best so far
		}
		if f.scaled(w) >= minSide && f.scaled(h) >= minSide {
			best = f
		}
	}
	return best
}
