package config

import "github.com/spf13/viper"

// Image bounds what the image decoder accepts.
type Image struct {
	// MaxPixels rejects images whose header announces more pixels (decompression bombs).
	MaxPixels int `mapstructure:"max_pixels"`
}

func imageDefaults(v *viper.Viper) {
	v.SetDefault("image.max_pixels", 50_000_000)
}

func (c Image) validate() []error {
	var errs []error
	if err := positive("image.max_pixels", c.MaxPixels); err != nil {
		errs = append(errs, err)
	}
	return errs
}
