package text

import (
	"reflect"
	"strings"
	"testing"
)

func TestCleanSeed(t *testing.T) {
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
		// Every character of string.punctuation, inside one word.
		{"in!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~to", "into"},
		{"I saw a b c de", "saw de"},
		// Python's split(): tabs, newlines, and the ASCII separators 0x1c..0x1f.
		{"dog\tand\ncat\x1cbird\x1fsky\u00a0sea", "dog and cat bird sky sea"},
		// Python's lower() and isalpha() are Unicode-aware; string.punctuation is ASCII.
		// «» are not ASCII punctuation and not letters, so "«élan»" is not alpha.
		{"Café CRÈME, naïve «élan» naïve2", "café crème naïve"},
		{"", ""},
		{"   .  ,  ", ""},
	} {
		got := CleaningSeed.Clean(tc.in)
		var want []string
		if tc.want != "" {
			want = strings.Split(tc.want, " ")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("CleaningSeed.Clean(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

func TestCleanStandard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		// Real Flickr8k captions: "a", numbers and "s" from "'s" stay.
		{"A child in a pink dress is climbing up a set of stairs in an entry way .",
			[]string{"a", "child", "in", "a", "pink", "dress", "is", "climbing", "up", "a", "set", "of", "stairs", "in", "an", "entry", "way"}},
		{"a person on ski 's looks from hill over snow covered landscape",
			[]string{"a", "person", "on", "ski", "s", "looks", "from", "hill", "over", "snow", "covered", "landscape"}},
		{"A black dog and a tri-colored dog playing with each other on the road .",
			[]string{"a", "black", "dog", "and", "a", "tricolored", "dog", "playing", "with", "each", "other", "on", "the", "road"}},
		{"About 12 kids and a few adults get splashed by an off camera source .",
			[]string{"about", "12", "kids", "and", "a", "few", "adults", "get", "splashed", "by", "an", "off", "camera", "source"}},
		{"Man driving race car number 7 .", []string{"man", "driving", "race", "car", "number", "7"}},
		// Punctuation is deleted inside words; a word of punctuation only goes.
		{"It's 5 o'clock, rock'n'roll in the U.S.A.!", []string{"its", "5", "oclock", "rocknroll", "in", "the", "usa"}},
		{"the 3rd x2 car_park --- ( )", []string{"the", "3rd", "x2", "carpark"}},
		{"in!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~to $5", []string{"into", "5"}},
		{"I saw a b c de", []string{"i", "saw", "a", "b", "c", "de"}},
		{"dog\tand\ncat\x1cbird", []string{"dog", "and", "cat", "bird"}},
		// Unicode punctuation goes too: curly quotes and apostrophes, dashes,
		// «», zero-width spaces, bytes that are not UTF-8. Symbols stay.
		{"Café CRÈME, «élan»", []string{"café", "crème", "élan"}},
		{"The dog’s “ball” — zero\u200bwidth \xff\xfeok 5°", []string{"the", "dogs", "ball", "zerowidth", "ok", "5°"}},
		{"   .  ,  ", nil},
	} {
		if got := CleaningStandard.Clean(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CleaningStandard.Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCleaning(t *testing.T) {
	for _, name := range []string{"seed", "standard"} {
		if c, err := ParseCleaning(name); err != nil || string(c) != name {
			t.Errorf("ParseCleaning(%q) = %q, %v", name, c, err)
		}
	}
	_, err := ParseCleaning("karpathy")
	want := `cleaning "karpathy" is not known; use "standard" (coco-caption, every word kept) or "seed" (the seed notebook's, drops "a")`
	if err == nil || err.Error() != want {
		t.Errorf("ParseCleaning(karpathy) error %v, want %s", err, want)
	}
}
