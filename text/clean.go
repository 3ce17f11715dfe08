// Package text turns captions into model input: cleaning exactly as the seed
// Keras notebook did, a vocabulary with special tokens, and the Flickr8k and
// Karpathy-JSON dataset formats.
package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean tokenises a caption exactly as the seed notebook's clean_descriptions:
//
//	desc = desc.split()                                  # split on whitespace
//	desc = [word.lower() for word in desc]               # lowercase
//	desc = [w.translate(table) for w in desc]            # delete string.punctuation
//	desc = [word for word in desc if len(word)>1]        # drop one-character words ("a"!)
//	desc = [word for word in desc if word.isalpha()]     # drop words with digits etc.
//
// Punctuation is deleted inside words, so "it's" becomes "its" and "t-shirt"
// becomes "tshirt"; "a" and "2" disappear; "3rd" is dropped whole.
func Clean(caption string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(caption, isPySpace) {
		w := strings.Map(func(r rune) rune {
			if strings.ContainsRune(punctuation, r) {
				return -1
			}
			return r
		}, strings.ToLower(f))
		if utf8.RuneCountInString(w) > 1 && isAlpha(w) {
			out = append(out, w)
		}
	}
	return out
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
