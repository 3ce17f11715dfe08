package config

import (
	"fmt"

	"github.com/spf13/viper"
)

// Image bounds what the image decoder accepts, checked against each image's
// header before any pixel is decoded (imgproc.Limits, imgproc.ReadHeader).
type Image struct {
	// MaxPixels rejects images whose header announces more pixels (decompression
	// bombs); decoding time grows with it. 50 MP lets a 50 MP phone photo in.
	MaxPixels int `mapstructure:"max_pixels"`
	// MaxDecodedBytes rejects an image whose decoding would allocate more, by its
	// colour model and bit depth (a 16-bit PNG takes 8 bytes a pixel, a
	// progressive JPEG keeps its coefficients): 256 MiB holds a 50 MP photo,
	// not a 7000x7000 16-bit PNG (374 MiB from a 381 KB file).
	MaxDecodedBytes int64 `mapstructure:"max_decoded_bytes"`
	// MaxRequestDecodedBytes bounds the decoded bytes of all images of one server
	// request together, so 16 images at the per-image limit cannot take 4 GiB.
	MaxRequestDecodedBytes int64 `mapstructure:"max_request_decoded_bytes"`
}

func imageDefaults(v *viper.Viper) {
	v.SetDefault("image.max_pixels", 50_000_000)
	v.SetDefault("image.max_decoded_bytes", 256<<20)
	v.SetDefault("image.max_request_decoded_bytes", 512<<20)
}

func (c Image) validate() []error {
	var errs []error
	if err := positive("image.max_pixels", c.MaxPixels); err != nil {
		errs = append(errs, err)
	}
	if c.MaxDecodedBytes <= 0 {
		errs = append(errs, fmt.Errorf("image.max_decoded_bytes: %d must be positive", c.MaxDecodedBytes))
	}
	if c.MaxRequestDecodedBytes < c.MaxDecodedBytes {
		errs = append(errs, fmt.Errorf("image.max_request_decoded_bytes: %d is less than image.max_decoded_bytes (%d): a request could not hold one image at the limit",
			c.MaxRequestDecodedBytes, c.MaxDecodedBytes))
	}
	return errs
}
