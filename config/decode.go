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
	// NoRepeat keeps a caption from saying any NoRepeat consecutive words twice,
	// or a word twice in a row (2: "a man rides a bike on a bike" is never
	// written), nor a word joined to itself by "and" ("a woman and woman",
	// "a red shirt and a black shirt"), nor a thing placed in or on itself or
	// its kind ("riding a bike on a dirt bike", "a bicycle on a bike"), nor
	// anyone sitting on a handheld thing ("sitting on a cellphone"); 0 allows
	// repeats.
	// It raised the shipped attention model's dev BLEU-4 and CIDEr-D (MODEL.md).
	NoRepeat int `mapstructure:"no_repeat"`
	// Tags is how many of the encoder's ImageNet nouns every caption carries
	// (tags.Select: classes sharing a noun summed), most probable first; 0 for none.
	Tags int `mapstructure:"tags"`
	// TagThreshold drops tags less probable than this.
	TagThreshold float64 `mapstructure:"tag_threshold"`
	// Guide turns on guided decoding: a caption that misses the noun of a tag at
	// least GuideThreshold probable is decoded again with constrained beam
	// search, so that it names it. Requests may ask otherwise (guide=0|1).
	Guide bool `mapstructure:"guide"`
	// GuideThreshold is how probable a tag must be for guided decoding to insist
	// on its noun. Above 0.5 at most one noun qualifies. 0.8, not lower: on the
	// out-of-domain photos (testdata/ood) 0.6 names what the photo shows in one
	// more caption of 108 but puts twice as many misrecognised nouns into
	// captions (21 against 10), and on Flickr8k's dev split it guides 230 captions
	// against 130, for lower BLEU-4 and CIDEr-D (MODEL.md).
	GuideThreshold float64 `mapstructure:"guide_threshold"`
}

// Limits of the decode settings and of what a request may ask for (pipeline
// checks requests against them): beam search's work grows with the beam width
// and the caption length, and captions of the shipped models are far shorter.
const (
	MaxBeam       = 32  // widest beam: decode.beam and server.max_beam
	MaxCaptionLen = 100 // longest caption in words: decode.max_len and requests' max_len
	MaxTags       = 20  // most tags per caption: decode.tags
	// MaxBatchSize caps decode.batch_size (and extract --batch): the encoder
	// holds its activations for a whole batch, and a batch of 100,000 ran
	// the process out of memory.
	MaxBatchSize = 256
)

func decodeDefaults(v *viper.Viper) {
	v.SetDefault("decode.beam", 3)
	v.SetDefault("decode.max_len", 20)
	v.SetDefault("decode.batch_size", 32)
	v.SetDefault("decode.alpha", 0.7)
	v.SetDefault("decode.no_repeat", 2)
	v.SetDefault("decode.tags", 5)
	v.SetDefault("decode.tag_threshold", 0.05)
	v.SetDefault("decode.guide", true)
	v.SetDefault("decode.guide_threshold", 0.8)
}

func (c Decode) validate() []error {
	var errs []error
	if c.Beam < 1 || c.Beam > MaxBeam {
		errs = append(errs, fmt.Errorf("decode.beam: %d is outside 1..%d (1 is greedy)", c.Beam, MaxBeam))
	}
	if c.MaxLen < 1 || c.MaxLen > MaxCaptionLen {
		errs = append(errs, fmt.Errorf("decode.max_len: %d is outside 1..%d", c.MaxLen, MaxCaptionLen))
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("decode.batch_size: %d is outside 1..%d (images through the device at once; the encoder holds a whole batch's activations)", c.BatchSize, MaxBatchSize))
	}
	if c.Alpha < 0 || c.Alpha > 2 {
		errs = append(errs, fmt.Errorf("decode.alpha: %g is outside 0..2 (length normalisation exponent)", c.Alpha))
	}
	if c.NoRepeat < 0 || c.NoRepeat == 1 || c.NoRepeat > MaxCaptionLen {
		errs = append(errs, fmt.Errorf("decode.no_repeat: %d must be 0 (repeats allowed) or 2..%d (1 would forbid any word twice, \"a\" included)", c.NoRepeat, MaxCaptionLen))
	}
	if c.Tags < 0 || c.Tags > MaxTags {
		errs = append(errs, fmt.Errorf("decode.tags: %d is outside 0..%d (0: no tags)", c.Tags, MaxTags))
	}
	for _, p := range []struct {
		key string
		v   float64
	}{{"decode.tag_threshold", c.TagThreshold}, {"decode.guide_threshold", c.GuideThreshold}} {
		if !(p.v >= 0 && p.v <= 1) {
			errs = append(errs, fmt.Errorf("%s: %g is outside 0..1 (a probability)", p.key, p.v))
		}
	}
	return errs
}
