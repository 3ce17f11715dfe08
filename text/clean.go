// Package text turns captions into model input: the seed notebook's cleaning and
// the coco-caption standard one, a vocabulary with special tokens, and the
// Flickr8k and Karpathy-JSON dataset formats.
package text

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Cleaning names how captions become tokens. A model records the cleaning it
// was trained with: its vocabulary and its evaluation references follow it.
type Cleaning string

const (
	// CleaningSeed is the seed notebook's clean_descriptions, which drops
	// one-letter words ("a") and words with digits.
	CleaningSeed Cleaning = "seed"
	// CleaningStandard is the coco-caption / Karpathy-split tokenisation that
	// published scores use: lowercase, punctuation removed, every word kept.
	CleaningStandard Cleaning = "standard"
)

// ParseCleaning checks a cleaning name (from a config or a flag).
func ParseCleaning(name string) (Cleaning, error) {
	switch c := Cleaning(name); c {
	case CleaningSeed, CleaningStandard:
		return c, nil
	}
	return "", fmt.Errorf("cleaning %q is not known; use %q (coco-caption, every word kept) or %q (the seed notebook's, drops \"a\")",
		name, CleaningStandard, CleaningSeed)
}

// Clean tokenises a caption. Both cleanings split on whitespace as Python's
// str.split() does, lowercase, and delete punctuation inside words, so "it's"
// becomes "its" and "t-shirt" becomes "tshirt".
//
// CleaningSeed then drops, exactly as the seed notebook's clean_descriptions,
//
//	desc = [word for word in desc if len(word)>1]        # one-character words ("a"!)
//	desc = [word for word in desc if word.isalpha()]     # words with digits etc.
//
// so "a" and "2" disappear and "3rd" is dropped whole. CleaningStandard keeps
// every word that is not only punctuation, and deletes Unicode punctuation
// too (unicodeNoise). Clean panics on a cleaning that
// ParseCleaning would reject (a programmer error).
func (c Cleaning) Clean(caption string) []string {
	if c != CleaningSeed && c != CleaningStandard {
		panic(fmt.Sprintf("text: Clean with unknown cleaning %q", string(c)))
	}
	var out []string
	for _, f := range strings.FieldsFunc(caption, isPySpace) {
		w := strings.Map(func(r rune) rune {
			if strings.ContainsRune(punctuation, r) || c == CleaningStandard && unicodeNoise(r) {
				return -1
			}
			return r
		}, strings.ToLower(f))
		keep := w != ""
		if c == CleaningSeed {
			keep = utf8.RuneCountInString(w) > 1 && isAlpha(w)
		}
		if keep {
			out = append(out, w)
		}
	}
	return out
}

// unicodeNoise is what CleaningStandard deletes beyond ASCII punctuation:
// Unicode punctuation (curly quotes and apostrophes, dashes, «», …), format
// characters (zero-width spaces, a byte-order mark) and bytes that are not
// UTF-8. Otherwise "dog’s" would be a word apart from "dog's" (which is
// "dogs"), and “quoted” a word with its quotes. CleaningSeed keeps them, as
// the seed notebook's ASCII string.punctuation does.
func unicodeNoise(r rune) bool {
	return unicode.IsPunct(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// punctuation is Python's string.punctuation.
const punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// isPySpace is Python's str.isspace for str.split(): Unicode whitespace plus
// the ASCII separators 0x1c..0x1f, which Go's unicode.IsSpace leaves out.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// isAlpha is Python's str.isalpha for a non-empty string: every rune a letter
// (Unicode categories Lu, Ll, Lt, Lm, Lo).
func isAlpha(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}
