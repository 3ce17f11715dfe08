package pipeline

import (
	"image"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/imgproc"
)

// Preprocessor turns images, as bytes or files, into the encoder's input: the
// same decoding and resizing for captioning, serving and feature extraction, so
// cached features are the ones a served image gets.
type Preprocessor struct {
	side   int // the encoder's input side
	limits imgproc.Limits
}

// NewPreprocessor preprocesses for an encoder of configuration enc (its Input
// side) and refuses images whose header announces more than img.MaxPixels or
// more than img.MaxDecodedBytes once decoded.
func NewPreprocessor(enc encoder.Config, img config.Image) Preprocessor {
	return Preprocessor{side: enc.Input, limits: imgproc.Limits{MaxPixels: img.MaxPixels, MaxBytes: img.MaxDecodedBytes}}
}

// Limits are the decoding budgets images are held to.
func (p Preprocessor) Limits() imgproc.Limits { return p.limits }

// Image is one preprocessed image.
type Image struct {
	// Tensor is the encoder's input, (S, S, 3) NHWC in [-1, 1] with S the input side.
	Tensor []float32
	// Decoded is the picture as decoded: a JPEG at a reduced DCT scale when its
	// short side stays at least 2S (imgproc.MinDecodeSide), else at full size.
	Decoded image.Image
	// Size is the full image's width and height.
	Size image.Point
}

// TensorLen is the length of one input tensor, S*S*3.
func (p Preprocessor) TensorLen() int { return p.side * p.side * 3 }

// Bytes decodes an encoded image and resizes it into the encoder's input. Its
// errors are imgproc's typed ones (ErrEmpty, ErrUnsupported, *TooLargeError,
// *CorruptError).
func (p Preprocessor) Bytes(data []byte) (Image, error) {
	img, full, err := imgproc.DecodeBytesAtLeast(data, p.limits, imgproc.MinDecodeSide(p.side))
	if err != nil {
		return Image{}, err
	}
	return p.tensor(img, full), nil
}

// Cost reads an encoded image's header and returns it with the memory Bytes
// allocates for its pixels (imgproc.Header.Cost), or the error Bytes returns
// before decoding any pixel: the image is unreadable or over the per-image
// limits. A caller budgeting several images checks them all before decoding one.
func (p Preprocessor) Cost(data []byte) (imgproc.Header, int64, error) {
	h, err := imgproc.ReadHeader(data)
	if err != nil {
		return h, 0, err
	}
	minSide := imgproc.MinDecodeSide(p.side)
	if err := p.limits.Check(h, minSide); err != nil {
		return h, 0, err
	}
	return h, h.Cost(minSide), nil
}

// File is Bytes for the image file at path; errors name the file.
func (p Preprocessor) File(path string) (Image, error) {
	img, full, err := imgproc.DecodeFileAtLeast(path, p.limits, imgproc.MinDecodeSide(p.side))
	if err != nil {
		return Image{}, err
	}
	return p.tensor(img, full), nil
}

// ReadFile reads the image file at path for Bytes, within File's bounds (a
// file too large for the image limits, or no image's first bytes, is refused
// unread), for a caller that needs the bytes too; errors name the file.
func (p Preprocessor) ReadFile(path string) ([]byte, error) {
	return imgproc.ReadFile(path, p.limits)
}

// Files returns the input tensors of image files, in order; the first file that
// cannot be read is the error.
func (p Preprocessor) Files(paths []string) ([][]float32, error) {
	tensors := make([][]float32, len(paths))
	for i, path := range paths {
		im, err := p.File(path)
		if err != nil {
			return nil, err
		}
		tensors[i] = im.Tensor
	}
	return tensors, nil
}

func (p Preprocessor) tensor(img image.Image, full image.Point) Image {
	t := make([]float32, p.TensorLen())
	imgproc.ToTensor(t, img, p.side)
	return Image{Tensor: t, Decoded: img, Size: full}
}
