package pipeline

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
)

// Tagger names what the encoder recognises: its ImageNet classifier on pooled
// features already on the decoder's device (one (n, F)·(F, 1001) product),
// turned into caption nouns by tags.Select. It also finds, for guided
// decoding, the words that name a noun in the decoder's vocabulary.
type Tagger struct {
	dev   gpu.Device
	cls   *encoder.Classifier
	vecs  map[string][]float32 // per class noun: the mean of its classes' unit classifier rows, at unit length
	alone *LoneProbe           // nil where the shipped probe does not read this encoder's features

	// probs' device buffers, grown to the largest batch seen: made per batch,
	// they would make a GPU wait on every cuMemFree.
	pooled, out gpu.Buf
}

// NewTagger uploads w's classifier to dev, the device of the features it will
// read.
func NewTagger(dev gpu.Device, w *encoder.Weights) (*Tagger, error) {
	if w.Config.Classes != tags.NumClasses {
		return nil, fmt.Errorf("pipeline: the encoder has %d classes; tags need the %d of the ImageNet classifier", w.Config.Classes, tags.NumClasses)
	}
	cls, err := encoder.NewClassifier(dev, w)
	if err != nil {
		return nil, err
	}
	alone, err := loadLoneProbe(w.Config.ID(), w.Config.Head)
	if err != nil {
		slog.Warn("pipeline: photos of things alone get the decoder's captions, which put a person or an animal into them", "why", err)
	}
	return &Tagger{dev: dev, cls: cls, vecs: nounVectors(w.Tensors["classifier.weight"], w.Config.Head), alone: alone}, nil
}

// ruleOutBelow is how improbable an animal the plain caption names must be
// for guided decoding to keep it out of the caption (ruledOut).
const ruleOutBelow = 0.02

// ruledOut lists the tokens of v that guided decoding keeps out of an image's
// caption (decoder.GenerateConstrained's avoid) when one of the nouns it
// insists on, ns, is an animal: the forms of each animal noun that words, the
// plain caption, names and that probs, the image's class probabilities, give
// less than ruleOutBelow. A decoder that learned Flickr8k's dogs sees one in
// every animal: told to name a sheep, it wrote "a black and white dog is
// running through a sheep"; without "dog" it writes "a black and white sheep
// is running through the grass". Only animal for animal: the classifier
// gives one label per photo, so a sled or a boat that takes its probability
// says nothing about the dogs pulling or sitting in it. A noun's probability
// is that of its own classes, so a general word is ruled out beside a
// specific tag ("bird" beside "parrot", whose classes are not bird's): the
// guided caption then names the parrot as its subject, which is right.
func ruledOut(v Vocab, probs []float32, words []string, ns []naming) []int32 {
	if !slices.ContainsFunc(ns, func(nm naming) bool { return tags.AnimalNoun(nm.noun) }) {
		return nil
	}
	var out []int32
	for _, w := range words {
		noun, ok := tags.NounOf(w)
		if !ok || !tags.AnimalNoun(noun) || tags.NounProb(probs, noun) >= ruleOutBelow {
			continue
		}
		for _, id := range formIDs(v, noun) {
			if !slices.Contains(out, id) && !slices.ContainsFunc(ns, func(nm naming) bool { return slices.Contains(nm.tokens, id) }) {
				out = append(out, id)
			}
		}
	}
	return out
}

// Close frees the classifier.
func (t *Tagger) Close() {
	t.cls.Close()
	gpu.FreeAll(t.dev, t.pooled, t.out)
}

// probs returns, on the host, the class probabilities (n, NumClasses) of n
// images whose features are on the device: pooled vectors (n, F), or the
// encoder's grids (n, R, F) that an attention decoder reads, which are pooled
// here first as the encoder pools them (the mean of the R regions). With
// them, where withAlone asks, each image's probability of showing things
// alone (LoneProbe; F multiply-adds an image, on the host); else, or without
// a probe, nil.
func (t *Tagger) probs(feats gpu.Buf, n int, withAlone bool) (classes []float32, alone []float64, err error) {
	F := t.cls.Features()
	if R := feats.Len() / (n * F); R > 1 {
		pooled := gpu.Grow(t.dev, &t.pooled, n*F)
		t.dev.GlobalAvgPool(pooled, feats, n, R, F)
		feats = pooled
	}
	out := gpu.Grow(t.dev, &t.out, n*tags.NumClasses)
	t.cls.Probs(out, feats, n)
	classes = make([]float32, n*tags.NumClasses)
	if err := t.dev.Download(classes, out); err != nil {
		return nil, nil, err
	}
	if !withAlone || t.alone == nil {
		return classes, nil, nil
	}
	pooled := make([]float32, n*F)
	if err := t.dev.Download(pooled, feats.Slice(0, n*F)); err != nil {
		return nil, nil, err
	}
	alone = make([]float64, n)
	for i := range alone {
		alone[i] = t.alone.Prob(pooled[i*F : (i+1)*F])
	}
	return classes, alone, nil
}

// nounVectors gives each class noun a direction in feature space: the mean of
// its classes' classifier rows (K, F), each scaled to unit length, so that
// nouns the encoder tells apart by similar features point alike. The
// directions are kept at unit length in float32 (2.8 MB for the 540 nouns of
// the 1,000 classes, half of float64's), so that their cosine is a dot product.
func nounVectors(weights []float32, F int) map[string][]float32 {
	sums := map[string][]float64{}
	for _, c := range tags.Classes()[1:] {
		row := weights[c.Index*F : (c.Index+1)*F]
		v, ok := sums[c.Noun]
		if !ok {
			v = make([]float64, F)
			sums[c.Noun] = v
		}
		norm := norm(row)
		for i, x := range row {
			v[i] += float64(x) / norm
		}
	}
	vecs := make(map[string][]float32, len(sums))
	for noun, v := range sums {
		u := make([]float32, F)
		norm := norm(v)
		for i, x := range v {
			u[i] = float32(x / norm)
		}
		vecs[noun] = u
	}
	return vecs
}

// norm is the Euclidean length of v, summed in float64.
func norm[T float32 | float64](v []T) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// naming is how a caption names a noun: the tokens of the decoder's vocabulary
// that count, and, when the noun has no word there, the in-vocabulary noun
// that stands in for it (its donor) with each donor token's rewrite.
type naming struct {
	noun    string
	prob    float32 // the tag's probability
	tokens  []int32
	donor   string           // "" when the noun's own words are in the vocabulary
	renamed map[int32]string // donor token -> the noun's word, singular or plural
}

// naming finds how vocabulary v names noun. A noun counts as named by any of
// its single-word forms (tags.Forms) that v has. A noun none of whose forms v
// has is named through a donor, as Deep Compositional Captioning (Hendricks et
// al. 2016) transfers a new word: copying a close word's embedding and output
// rows makes the new word behave exactly like that word, so decoding with the
// donor and writing the noun in its place gives the same captions without
// growing the model. The donor is the in-vocabulary class noun whose classes'
// classifier rows point most like the noun's (cosine of nounVectors): the
// encoder's own sense of what looks alike (cheetah -> tiger). ok is false when
// neither route exists (a noun of no class, outside the vocabulary).
func (t *Tagger) naming(v Vocab, noun string) (naming, bool) {
	if ids := formIDs(v, noun); len(ids) > 0 {
		return naming{noun: noun, tokens: ids}, true
	}
	nv, ok := t.vecs[noun]
	if !ok {
		return naming{}, false
	}
	best, bestCos := "", math.Inf(-1)
	for m, mv := range t.vecs {
		if m == noun || v.ID(m) == text.UnkID || strings.Contains(m, " ") || notNouns[m] {
			continue
		}
		if c := cosine(nv, mv); c > bestCos || (c == bestCos && m < best) {
			best, bestCos = m, c
		}
	}
	if best == "" {
		return naming{}, false
	}
	n := naming{noun: noun, donor: best, renamed: map[int32]string{}}
	for _, f := range []struct{ donor, word string }{{best, noun}, {tags.Plural(best), tags.Plural(noun)}} {
		// A donor whose plural is itself ("fish") is renamed singular;
		// Decoder.words gives the noun the number its words ask for.
		id := int32(v.ID(f.donor))
		if _, renamed := n.renamed[id]; id == text.UnkID || renamed {
			continue
		}
		n.tokens = append(n.tokens, id)
		n.renamed[id] = f.word
	}
	return n, true
}

// notNouns are class nouns that captions mostly say as colours ("an orange
// shirt") or verbs ("a dog watches", "a bird flies", "a girl swings"): no
// donors, since decoding would meet the noun's constraint with the colour or
// the verb and write the noun there ("a black and pineapple dog", "a dog
// clocks").
var notNouns = map[string]bool{"orange": true, "lemon": true, "lime": true, "watch": true, "fly": true, "swing": true}

// formIDs are the token ids of noun's single-word forms in v, sorted.
func formIDs(v Vocab, noun string) []int32 {
	var ids []int32
	for _, f := range tags.Forms(noun) {
		if id := v.ID(f); id != text.UnkID && !strings.Contains(f, " ") {
			ids = append(ids, int32(id))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// cosine is the cosine of two unit vectors, their dot product.
func cosine(a, b []float32) float64 {
	var ab float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
	}
	return ab
}
