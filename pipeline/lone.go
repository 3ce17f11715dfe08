package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/captioner/captioner/models"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
)

// LoneProbe tells a photo of things alone, with no person or animal in it (a
// product shot, a cut-out on white), from Flickr8k's photos of people and
// animals: a logistic regression on the encoder's pooled features, trained by
// internal/loneprobe (models/lone-object/MODEL.md). The decoder, which learned
// from Flickr8k alone, puts a dog or a child into every photo ("A black and
// white dog is running through the water with a pot in its mouth." for a frying
// pan on a counter); such a photo gets a caption of the object instead
// (objectCaption).
type LoneProbe struct {
	Encoder string    `json:"encoder"` // the encoder ID whose features it reads
	Weight  []float32 `json:"weight"`  // (F)
	Bias    float32   `json:"bias"`
}

// LoneAbove is how probable a lone object must be for its caption to replace
// the decoder's. On Flickr8k's dev split the probe gives at most 0.53, and 2
// of 450 dev photos framed by margins, 1 of 400 shrunk onto a page and 2 of
// 100 shrunk to 60 px on an 800 px page reach it; none of testdata/ood's 58
// photos of animals does (a bee on a flower 0.52).
const LoneAbove = 0.6

// Prob is the probability that the photo of pooled features x shows things
// alone.
func (p *LoneProbe) Prob(x []float32) float64 {
	z := float64(p.Bias)
	for i, v := range x {
		z += float64(p.Weight[i]) * float64(v)
	}
	return 1 / (1 + math.Exp(-z))
}

// loadLoneProbe reads the shipped probe (models.LoneObjectProbe) for an encoder
// of ID id with F pooled features, or says why it does not read them.
func loadLoneProbe(id string, F int) (*LoneProbe, error) {
	var p LoneProbe
	if err := json.Unmarshal(models.LoneObjectProbe, &p); err != nil {
		return nil, fmt.Errorf("pipeline: the lone-object probe: %w", err)
	}
	if len(p.Weight) != F {
		return nil, fmt.Errorf("pipeline: the lone-object probe has %d weights for the encoder's %d features; retrain it for this encoder (models/lone-object/MODEL.md)", len(p.Weight), F)
	}
	// A build's suffixes (-gojpeg, -tf32) move features by rounding only.
	if !strings.HasPrefix(id, p.Encoder) {
		return nil, fmt.Errorf("pipeline: the lone-object probe was trained on the features of encoder %s, not %s; retrain it (models/lone-object/MODEL.md)", p.Encoder, id)
	}
	return &p, nil
}

// objectCaption is the caption of a photo of things alone, probable at alone:
// its colours (palette.Summary.Colours, "" for none) and its noun, and the
// plain backdrop it stands on where there is one (its colour, "" for none):
// "A yellow screwdriver on a gray background.", in at most maxLen words (the
// backdrop goes first, then the colours, then the article). The noun is the
// classifier's most probable, top, when it is at least nounAbove probable
// (guided decoding's threshold, which trusts a noun enough to force it into a
// caption), else "object": a vague word rather than a wrong one.
func objectCaption(top tags.Tag, nounAbove float32, alone float64, colours, backdrop string, maxLen int) Result {
	noun := "object"
	if top.Prob >= nounAbove {
		noun = top.Noun
	}
	named := func(colours string) []string {
		words := append(strings.Fields(colours), strings.Fields(noun)...)
		if alwaysBare[noun] {
			return words
		}
		return append([]string{article(words[0])}, words...)
	}
	full := named(colours)
	if backdrop != "" {
		full = append(full, "on", article(backdrop), backdrop, "background")
	}
	// A noun longer than max_len ("fire truck" at 1) becomes "object", not "fire".
	words := firstWithin(maxLen, full, named(colours), named(""), strings.Fields(noun), []string{"object"})
	// The choices that made it: that the photo is of things alone, and what
	// they are, which "object" leaves as unsure as the classifier is.
	c := math.Sqrt(alone * float64(top.Prob))
	return Result{Caption: text.Sentence(words), Tokens: words, Score: math.Log(c), Confidence: c, LoneObject: alone}
}

// blankCaption is the caption of a photo of one colour with nothing on it
// (palette.Summary.Blank), as sure as Blank is, in at most maxLen words: "A
// plain white image.", where the decoder, which has seen no such photo, wrote
// "A black and white dog is running in the snow." for an empty white page. A
// black one is "A very dark image.": a lens cap's frame, or a photo so
// underexposed that nothing in it reaches 15/255, which a reader should know
// may hold something after all.
func blankCaption(colour string, sure float64, maxLen int) Result {
	ways := [][]string{{"a", "plain", colour, "image"}, {"a", colour, "image"}, {colour, "image"}}
	if colour == "black" {
		ways = [][]string{{"a", "very", "dark", "image"}, {"a", "dark", "image"}, {"dark", "image"}, {"dark"}}
	}
	words := firstWithin(maxLen, ways...)
	c := max(sure, 1e-3) // its log, the score, stays finite
	return Result{Caption: text.Sentence(words), Tokens: words, Score: math.Log(c), Confidence: c}
}

// firstWithin is the first of the ways to say a caption, longest first, that
// has at most maxLen (at least 1) words, as max_len asks of every caption;
// else the last cut to maxLen.
func firstWithin(maxLen int, ways ...[]string) []string {
	maxLen = max(maxLen, 1)
	for _, w := range ways {
		if len(w) <= maxLen {
			return w
		}
	}
	return ways[len(ways)-1][:maxLen]
}

// instead is r in the place of the decoder's result plain: its tags kept,
// and r first among the alternatives, then plain's, or plain's caption where
// it has none (greedy decoding), so that the decoder's captions are always at
// hand: one more alternative than asked for.
func (r Result) instead(plain Result) Result {
	r.Tags = plain.Tags
	decoder := plain.Alternatives
	if len(decoder) == 0 {
		decoder = []Alternative{{Caption: plain.Caption, Score: plain.Score, Confidence: plain.Confidence}}
	}
	r.Alternatives = append([]Alternative{{Caption: r.Caption, Score: r.Score, Confidence: r.Confidence}}, decoder...)
	return r
}

// livingNoun says whether a tag's noun is a person or an animal, which a
// photo of things alone cannot show: where the classifier's top tag says one
// is there, the decoder's caption stands.
func livingNoun(noun string) bool {
	return tags.AnimalNoun(noun) || noun == "person" // tags' noun of the groom, the ballplayer and the scuba diver
}
