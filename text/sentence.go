package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentence writes a generated caption's words as a sentence: joined by
// spaces, the first letter capitalised and a full stop at the end ("dog runs"
// -> "Dog runs."). No words is the empty sentence. It is the one place a
// caption is formatted for people: the command line, the API and the pages
// all show this; the raw words stay available as tokens.
func Sentence(words []string) string {
	s := strings.Join(words, " ")
	if s == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:] + "."
}
