// Package tags turns the encoder's ImageNet probabilities into caption-level
// nouns ("Egyptian cat" -> "cat", "espresso" -> "coffee": Select) and judges
// whether a caption names them (Mentions, MentionRate).
//
// The class-to-noun map (imagenet_nouns.tsv) is generated from WordNet 3.0 by
// internal/gen, which says how a noun is chosen; internal/mentionrate
// measures the mention rate on a photo set such as testdata/ood.
package tags

import (
	"slices"
	"strings"
	"unicode"
)

// Nouns returns the nouns of the vocabulary, sorted. The class map may also
// use nouns outside it (a class's own name where no vocabulary word fits).
func Nouns() []string {
	var ns []string
	for n := range forms() {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// Forms returns the words and phrases a caption may use to name noun: the
// noun, its synonyms and their plurals, sorted. A noun outside the vocabulary
// has itself and its regular plural.
func Forms(noun string) []string {
	if fs, ok := forms()[noun]; ok {
		return slices.Clone(fs)
	}
	fs := []string{noun, Plural(noun)}
	slices.Sort(fs)
	return fs
}

// NounOf returns the vocabulary noun that word (or phrase) names, if any.
func NounOf(word string) (string, bool) {
	n, ok := words()[strings.ToLower(word)]
	return n, ok
}

// Mentions reports whether caption names noun or one of its Forms as whole
// words: "two kittens play" mentions "cat"; "a catalogue" does not. Case and
// punctuation are ignored on both sides ("go-kart" matches "go kart"). The
// words madeFrom lists name their noun too: "skier" and "basketball" mention
// ski and ball, so guided decoding leaves "A skier is skiing down a snowy
// hill." alone instead of forcing "A man skis down a snowy hill.".
func Mentions(caption, noun string) bool {
	text := " " + normalize(caption) + " "
	for _, f := range append(Forms(noun), madeFrom[noun]...) {
		if strings.Contains(text, " "+normalize(f)+" ") {
			return true
		}
	}
	return false
}

// madeFrom lists, per noun, caption words that name it without being a name
// of it (Forms): who uses it or what is done with it, games named after
// their ball, and the dog breeds captions name instead of "dog" ("a german
// shepherd runs"). An explicit list, since a rule would misread too many words
// ("pants" ends in ant, "flying" starts with fly); these are the ones
// guidance wrongly insisted on in Flickr8k's dev and train captions (a bare
// "shepherd" may be a person, "boxer" mostly is: left out).
var madeFrom = map[string][]string{
	"ski":  {"skier", "skiers", "skiing"},
	"ball": {"basketball", "basketballs", "football", "footballs", "baseball", "baseballs", "volleyball", "volleyballs", "softball", "softballs"},
	"dog": {"german shepherd", "german shepherds", "australian shepherd", "australian shepherds", "lab", "labs",
		"pit bull", "pit bulls", "greyhound", "greyhounds", "collie", "collies", "poodle", "poodles", "terrier", "terriers",
		"labrador", "labradors", "retriever", "retrievers", "dachshund", "dachshunds", "beagle", "beagles", "pug", "pugs",
		"husky", "huskies", "bulldog", "bulldogs", "pitbull", "pitbulls", "sheepdog", "sheepdogs", "doberman", "dobermans",
		"dalmatian", "dalmatians", "rottweiler", "rottweilers", "spaniel", "spaniels", "corgi", "corgis"},
}

// normalize lower-cases s and turns every run of non-letters and non-digits
// into one space.
func normalize(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}), " ")
}
