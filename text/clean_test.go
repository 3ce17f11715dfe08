package text

import (
	"reflect"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // tokens joined by spaces
	}{
		// Real Flickr8k captions.
		{"A child in a pink dress is climbing up a set of stairs in an entry way .",
			"child in pink dress is climbing up set of stairs in an entry way"},
		{"a person on ski 's looks from hill over snow covered landscape", // "'s" -> "s" -> dropped
			"person on ski looks from hill over snow covered landscape"},
		{"A black dog and a tri-colored dog playing with each other on the road .",
			"black dog and tricolored dog playing with each other on the road"},
		{"About 12 kids and a few adults get splashed by an off camera source .",
			"about kids and few adults get splashed by an off camera source"},
		{"Three people on ATV 's outside .", "three people on atv outside"},
		{"Man driving race car number 7 .", "man driving race car number"},
		// Punctuation is deleted inside words; words with digits go whole.
		{"It's 5 o'clock, rock'n'roll in the U.S.A.!", "its oclock rocknroll in the usa"},
		{"the 3rd x2 car_park --- ( )", "the carpark"},
		{"I saw a b c de", "saw de"},
		// Python's split(): tabs, newlines, and the ASCII separators 0x1c..0x1f.
		{"dog\tand\ncat\x1cbird\x1fsky\u00a0sea", "dog and cat bird sky sea"},
		// Python's lower() and isalpha() are Unicode-aware; string.punctuation is ASCII.
		// «» are not ASCII punctuation and not letters, so "«élan»" is not alpha.
		{"Café CRÈME, naïve «élan» naïve2", "café crème naïve"},
		{"", ""},
		{"   .  ,  ", ""},
	} {
		got := Clean(tc.in)
		var want []string
		if tc.want != "" {
			want = strings.Split(tc.want, " ")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, want)
		}
	}
}
