package config

import (
	"fmt"

	"github.com/spf13/viper"
)

// Decode sets how captions are generated.
type Decode struct {
	// Beam is the beam width; 1 is greedy decoding.
	Beam int `mapstructure:"beam"`
	// MaxLen caps caption length in words.
	MaxLen int `mapstructure:"max_len"`
	// BatchSize is how many images caption/eval/extract run through the device at once.
	BatchSize int `mapstructure:"batch_size"`
	// Alpha is beam search's length normalisation, score = log-prob / length^Alpha
	// (0 favours short captions; 1 is the per-word average). Added by the decoder.
	Alpha float64 `mapstructure:"alpha"`
}

func decodeDefaults(v *viper.Viper) {
	v.SetDefault("decode.beam", 3)
	v.SetDefault("decode.max_len", 20)
	v.SetDefault("decode.batch_size", 32)
	v.SetDefault("decode.alpha", 0.7)
}

func (c Decode) validate() []error {
	var errs []error
	if c.Beam < 1 || c.Beam > 32 {
		errs = append(errs, fmt.Errorf("decode.beam: %d is outside 1..32 (1 is greedy)", c.Beam))
	}
	if c.MaxLen < 1 || c.MaxLen > 100 {
		errs = append(errs, fmt.Errorf("decode.max_len: %d is outside 1..100", c.MaxLen))
	}
	if err := positive("decode.batch_size", c.BatchSize); err != nil {
		errs = append(errs, err)
	}
	if c.Alpha < 0 || c.Alpha > 2 {
		errs = append(errs, fmt.Errorf("decode.alpha: %g is outside 0..2 (length normalisation exponent)", c.Alpha))
	}
	return errs
}
