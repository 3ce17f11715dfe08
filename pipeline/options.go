package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/text"
)

// Options choose how one call decodes. Zero fields take the defaults (see
// Decoding.Complete).
type Options struct {
	Beam         int   // beam width; 1 is greedy
	MaxLen       int   // maximum words per caption
	Alternatives int   // n-best captions returned per image (<= Beam)
	Guide        Guide // guided decoding on or off; GuideDefault is decode.guide
	// NoRepeat is the n-gram a caption may not say twice (and a word twice in
	// a row; decoder.DecodeOptions.NoRepeat): 0 is decode.no_repeat, NoRepeatOff
	// allows every repeat (no_repeat=0 in a request).
	NoRepeat int
	// Attention asks for each word's attention weights over the image regions
	// (Result.Attention): an attention model's only (decoder.ErrNoAttention).
	Attention bool
	// Model names the caption model that decodes (Info.Model, its folder's
	// name) where several are loaded; "" is the default model.
	Model string
}

// NoRepeatOff is Options.NoRepeat for a request that allows repeats.
const NoRepeatOff = -1

// Guide is a request's choice of guided decoding (see config.Decode.Guide).
type Guide int8

const (
	GuideDefault Guide = iota // as configured (decode.guide)
	GuideOff                  // guide=0
	GuideOn                   // guide=1
)

// Decoding turns the configured decode settings plus a request's Options into
// the decoder's options. It is the one place for the defaults and for the
// limits a request must stay within: the server, the commands and Pipeline all
// go through it.
type Decoding struct {
	cfg     config.Decode
	maxBeam int
}

// NewDecoding returns the decoding of cfg for requests whose beam width may be
// at most maxBeam (server.max_beam for the server, config.MaxBeam for the
// commands, whose beam is the configuration's own).
func NewDecoding(cfg config.Decode, maxBeam int) Decoding {
	return Decoding{cfg: cfg, maxBeam: maxBeam}
}

// Complete fills o's zero fields and checks the others: the beam width defaults
// to decode.beam, capped at the maximum beam, and may be 1..maximum; max_len
// defaults to decode.max_len and may be 1..config.MaxCaptionLen; alternatives
// default to the beam width and may be 1..beam. Complete options that decode
// alike are equal, so the server's batcher groups requests by them. The errors
// name the request's fields (beam=9 is outside 1..8) and say what to change.
func (d Decoding) Complete(o Options) (Options, error) {
	for _, f := range d.fields(&o) {
		if *f.val == 0 {
			*f.val = f.def
		} else if err := f.check(*f.val); err != nil {
			return o, err
		}
	}
	if o.Alternatives == 0 {
		o.Alternatives = o.Beam
	}
	if o.Guide == GuideDefault {
		o.Guide = GuideOff
		if d.cfg.Guide {
			o.Guide = GuideOn
		}
	}
	if o.NoRepeat == 0 {
		o.NoRepeat = d.cfg.NoRepeat
		if o.NoRepeat == 0 {
			o.NoRepeat = NoRepeatOff
		}
	}
	if o.Alternatives > o.Beam {
		return o, fmt.Errorf("alternatives=%d is more than beam=%d: beam search keeps only beam candidates; raise beam or ask for fewer alternatives", o.Alternatives, o.Beam)
	}
	return o, nil
}

// ParseOptions reads a request's options from text fields keyed by their API
// names (beam, max_len, alternatives, guide, no_repeat, attention, model;
// other keys are ignored) and completes them; the model name is checked by
// whoever knows the loaded models. A field that is present must hold a number
// within its limits, so beam=0 is refused where an absent beam takes the
// default; guide is 0 (off) or 1 (on), no_repeat 0 (off) or 2..100,
// attention 0 or 1.
func (d Decoding) ParseOptions(fields map[string]string) (Options, error) {
	var o Options
	for _, f := range d.fields(&o) {
		v, ok := fields[f.key]
		if !ok {
			continue
		}
		n, err := ParseField(f.key, v, f.lo, f.hi)
		if err != nil {
			return o, err
		}
		*f.val = n
	}
	if v, ok := fields["guide"]; ok {
		n, err := ParseField("guide", v, 0, 1)
		if err != nil {
			return o, err
		}
		o.Guide = GuideOff + Guide(n)
	}
	if v, ok := fields["no_repeat"]; ok {
		n, err := ParseField("no_repeat", v, 0, config.MaxCaptionLen)
		if err != nil {
			return o, err
		}
		if n == 1 {
			return o, fmt.Errorf("no_repeat=1 would forbid any word twice (\"a\" included): use 0 (repeats allowed) or 2..%d", config.MaxCaptionLen)
		}
		o.NoRepeat = n
		if n == 0 {
			o.NoRepeat = NoRepeatOff
		}
	}
	if v, ok := fields["attention"]; ok {
		n, err := ParseField("attention", v, 0, 1)
		if err != nil {
			return o, err
		}
		o.Attention = n == 1
	}
	if v, ok := fields["model"]; ok {
		if o.Model = strings.TrimSpace(v); o.Model == "" {
			return o, fmt.Errorf("model is empty: name a served model (GET /v1/models lists them), or leave model out for the default")
		}
	}
	return d.Complete(o)
}

// ParseField reads the whole number in a request field key=v and checks that
// it lies in lo..hi; the errors name the field as the request wrote it.
func ParseField(key, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s=%.32s is outside %d..%d", key, strings.TrimSpace(v), lo, hi)
	}
	if err != nil { // the value is quoted and cut: errors go back to the client
		return 0, fmt.Errorf("%s=%.32q is not a whole number: use %d..%d", key, v, lo, hi)
	}
	return n, checkRange(key, n, lo, hi)
}

func checkRange(key string, n, lo, hi int) error {
	if n < lo || n > hi {
		return fmt.Errorf("%s=%d is outside %d..%d", key, n, lo, hi)
	}
	return nil
}

// field is one request option: its API name, where it goes, its default (0:
// filled in later) and its limits.
type field struct {
	key    string
	val    *int
	def    int
	lo, hi int
}

func (f field) check(n int) error { return checkRange(f.key, n, f.lo, f.hi) }

// fields lists o's fields in the order their errors are reported.
func (d Decoding) fields(o *Options) []field {
	return []field{
		{"beam", &o.Beam, min(d.cfg.Beam, d.maxBeam), 1, d.maxBeam},
		{"max_len", &o.MaxLen, d.cfg.MaxLen, 1, config.MaxCaptionLen},
		{"alternatives", &o.Alternatives, 0, 1, d.maxBeam},
	}
}

// Plan is how one call decodes: the decoder's options, the tags each Result
// carries and whether guided decoding insists on confident tags' nouns.
type Plan struct {
	decoder.DecodeOptions
	Tags           int     // tags per Result (decode.tags); 0 for none
	TagThreshold   float32 // least probability of a tag (decode.tag_threshold)
	Guide          bool    // guided decoding
	GuideThreshold float32 // least probability of a tag guided decoding insists on
}

// Plan is the plan of o, completed as Complete does.
func (d Decoding) Plan(o Options) (Plan, error) {
	o, err := d.Complete(o)
	if err != nil {
		return Plan{}, err
	}
	return Plan{
		DecodeOptions: decoder.DecodeOptions{Start: text.StartID, End: text.EndID, Beam: o.Beam, MaxLen: o.MaxLen,
			NBest: o.Alternatives, Alpha: d.cfg.Alpha, Attention: o.Attention, NoRepeat: max(o.NoRepeat, 0)},
		Tags: d.cfg.Tags, TagThreshold: float32(d.cfg.TagThreshold),
		Guide: o.Guide == GuideOn, GuideThreshold: float32(d.cfg.GuideThreshold),
	}, nil
}
