package tags

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestEveryClassHasANoun(t *testing.T) {
	cs := Classes()
	if len(cs) != NumClasses {
		t.Fatalf("%d classes, want %d", len(cs), NumClasses)
	}
	if c := cs[0]; c.Label != "background" || c.Noun != "" || c.WNID != "" || c.Role != "" {
		t.Errorf("class 0 = %+v, want background with no noun and no role", c)
	}
	wnid := regexp.MustCompile(`^n[0-9]{8}$`)
	for _, c := range cs[1:] {
		if !wnid.MatchString(c.WNID) || c.Noun == "" || c.Label == "" {
			t.Errorf("class %d = %+v: want a WordNet id, a noun and a label", c.Index, c)
		}
		if c.Noun != strings.ToLower(c.Noun) || strings.TrimSpace(c.Noun) != c.Noun {
			t.Errorf("class %d (%s): noun %q is not lower case and trimmed", c.Index, c.Label, c.Noun)
		}
		if c.Index > 1 && c.WNID <= cs[c.Index-1].WNID {
			t.Errorf("class %d: %s follows %s; ILSVRC classes are in WordNet id order", c.Index, c.WNID, cs[c.Index-1].WNID)
		}
		if !Mentions("a photo of "+c.Noun, c.Noun) {
			t.Errorf("class %d: Mentions does not find %q in a caption naming it", c.Index, c.Noun)
		}
	}
}

// The map's labels are the encoder's: same lines, same order.
func TestLabelsMatchTheEncoderAsset(t *testing.T) {
	dir := os.Getenv("CAPTIONER_ASSETS")
	if dir == "" {
		t.Skip("CAPTIONER_ASSETS is not set")
	}
	b, err := os.ReadFile(filepath.Join(dir, "models/mobilenet_v2/imagenet_labels.txt"))
	if err != nil {
		t.Skip(err)
	}
	labels := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(labels) != NumClasses {
		t.Fatalf("the asset has %d labels, want %d", len(labels), NumClasses)
	}
	for _, c := range Classes() {
		if c.Label != labels[c.Index] {
			t.Errorf("class %d: label %q, the asset says %q", c.Index, c.Label, labels[c.Index])
		}
	}
}

func TestSpotChecks(t *testing.T) {
	cs := Classes()
	for _, tc := range []struct {
		index       int
		wnid, label string
		noun        string
	}{
		{286, "n02124075", "Egyptian cat", "cat"},
		{282, "n02123045", "tabby, tabby cat", "cat"},
		{968, "n07920052", "espresso", "coffee"},
		{340, "n02389026", "sorrel", "horse"},
		{672, "n03792782", "mountain bike, all-terrain bike, off-roader", "bike"},
		{135, "n02012849", "crane", "bird"},  // the bird
		{518, "n03126707", "crane", "crane"}, // the machine
		{1, "n01440764", "tench, Tinca tinca", "fish"},
		{49, "n01695060", "Komodo dragon, Komodo lizard, dragon lizard, giant lizard, Varanus komodoensis", "lizard"},
		{290, "n02128757", "snow leopard, ounce, Panthera uncia", "leopard"},
		{984, "n10565667", "scuba diver", "person"},
		{555, "n03344393", "fireboat", "boat"},
		{934, "n07697313", "cheeseburger", "burger"},
	} {
		c := cs[tc.index]
		if c.WNID != tc.wnid || c.Label != tc.label || c.Noun != tc.noun {
			t.Errorf("class %d = %+v, want %s %q -> %q", tc.index, c, tc.wnid, tc.label, tc.noun)
		}
	}
}

// ImageNet's 118 dog breeds are classes 152 (Chihuahua) to 269 (Mexican
// hairless); all are "dog", and so are the three wild dogs after them.
func TestDogBreedsAreDogs(t *testing.T) {
	cs := Classes()
	if cs[152].Label != "Chihuahua" || !strings.HasPrefix(cs[269].Label, "Mexican hairless") {
		t.Fatalf("classes 152 and 269 are %q and %q, want Chihuahua and Mexican hairless", cs[152].Label, cs[269].Label)
	}
	dogs := 0
	for _, c := range cs {
		breed := c.Index >= 152 && c.Index <= 269
		wild := c.Index >= 274 && c.Index <= 276 // dingo, dhole, African hunting dog
		if (breed || wild) != (c.Noun == "dog") {
			t.Errorf("class %d (%s) has noun %q", c.Index, c.Label, c.Noun)
		}
		if breed {
			dogs++
		}
	}
	if dogs != 118 {
		t.Errorf("%d breeds, want 118", dogs)
	}
}

func TestParseClassesErrors(t *testing.T) {
	for _, tc := range []struct{ tsv, want string }{
		{"0\t-\t-\t-\t-\tbackground\n2\tn1\tx\theld\tvia\tl\n", `line 2 is class "2", want 1`},
		{"0\t-\t-\t-\tbackground\n", "line 1 has 5 fields, want 6"},
		{"# header\n0\t-\t-\t-\t-\tbackground\n", "1 classes, want 1001"},
		{"0\t-\t-\t-\t-\tbackground\n1\tn1\tfish\tpet\tvia\ttench\n", `line 2: class 1 has role "pet", not one of animal, worn, thing, container, food, held`},
		{"0\t-\t-\t-\t-\tbackground\n1\tn1\tfish\theld\tvia\ttench\n", "line 2: class 1 has role held, but classes 1-398 and only they are animals"},
	} {
		if _, err := parseClasses(tc.tsv); err == nil || err.Error() != tc.want {
			t.Errorf("parseClasses(%q) = %v, want %q", tc.tsv, err, tc.want)
		}
	}
	// The whole committed table (two comment lines, then class i on line
	// i+3) with one class's role changed.
	withRole := func(index int, role string) string {
		lines := strings.Split(nounsTSV, "\n")
		f := strings.Split(lines[index+2], "\t")
		if f[0] != strconv.Itoa(index) || len(f) != 6 {
			t.Fatalf("line %d of imagenet_nouns.tsv is %q, want class %d", index+3, lines[index+2], index)
		}
		f[3] = role
		lines[index+2] = strings.Join(f, "\t")
		return strings.Join(lines, "\n")
	}
	if _, err := parseClasses(withRole(500, "held")); err != nil {
		t.Fatalf("the committed table, class 500 held as it is: %v", err)
	}
	for _, tc := range []struct {
		index      int
		role, want string
	}{
		{399, "animal", "line 402: class 399 has role animal, but classes 1-398 and only they are animals"}, // the abacus
		{500, "", `line 503: class 500 has role "", not one of animal, worn, thing, container, food, held`}, // background's alone
	} {
		if _, err := parseClasses(withRole(tc.index, tc.role)); err == nil || err.Error() != tc.want {
			t.Errorf("parseClasses(the table with class %d's role %q) = %v, want %q", tc.index, tc.role, err, tc.want)
		}
	}
}

// Animal is the ILSVRC-2012 animal subtree, the first 398 classes: their last
// is the puffer fish, the next the abacus; background is none.
func TestAnimalClasses(t *testing.T) {
	cs := Classes()
	for _, tc := range []struct {
		index  int
		label  string
		animal bool
	}{{0, "background", false}, {1, "tench", true}, {398, "puffer", true}, {399, "abacus", false}, {1000, "toilet tissue", false}} {
		c := cs[tc.index]
		if !strings.HasPrefix(c.Label, tc.label) || c.Animal() != tc.animal {
			t.Errorf("class %d is %q, Animal() %v; want %q, %v", tc.index, c.Label, c.Animal(), tc.label, tc.animal)
		}
	}
	for _, c := range cs[1:] {
		if n := c.Noun; (n == "dog" || n == "cat" || n == "bird" || n == "fish") && !c.Animal() {
			t.Errorf("class %d (%s, noun %s) is not an animal", c.Index, c.Label, n)
		}
	}
}

// NounProb is the probability Select gives a noun, the sum over its classes;
// AnimalNoun follows Class.Animal.
func TestNounProbAndAnimalNoun(t *testing.T) {
	probs := make([]float32, NumClasses)
	for i := range probs {
		probs[i] = float32(i%7+1) / 4004
	}
	all, err := Select(probs, NumClasses, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range all {
		if got := NounProb(probs, tg.Noun); math.Abs(float64(got-tg.Prob)) > 1e-6 {
			t.Errorf("NounProb(%s) = %g, Select says %g", tg.Noun, got, tg.Prob)
		}
	}
	for _, noun := range []string{"no such noun", ""} { // background has no noun
		if got := NounProb(probs, noun); got != 0 {
			t.Errorf("NounProb(%q) = %g, want 0: no class has that noun", noun, got)
		}
	}
	for noun, want := range map[string]bool{"dog": true, "sheep": true, "ball": false, "person": false, "no such noun": false} {
		if AnimalNoun(noun) != want {
			t.Errorf("AnimalNoun(%s) = %v, want %v", noun, !want, want)
		}
	}
}

// Each noun has one role, WordNet's unless internal/gen's roleOverrides
// correct it; these are the rules of guided decoding that read it.
func TestNounRoles(t *testing.T) {
	for _, tc := range []struct {
		noun string
		want Role
	}{
		{"cat", Animal}, {"dog", Animal},
		{"wig", Worn}, {"swimsuit", Worn}, {"helmet", Worn}, // helmet: a hat's and armour's classes
		{"cliff", Thing}, {"unicycle", Thing}, {"bench", Thing}, {"stage", Thing}, {"quilt", Thing}, {"phone", Thing},
		{"bucket", Container}, {"cup", Container}, {"basket", Container},
		{"ball", Held}, {"racket", Held}, {"gun", Held}, {"ladle", Held}, {"puck", Held},
		{"lemon", Food}, {"pizza", Food}, {"coffee", Food},
		{"shirtless", ""}, // a word of no class
	} {
		if got := NounRole(tc.noun); got != tc.want {
			t.Errorf("NounRole(%q) = %q, want %q", tc.noun, got, tc.want)
		}
	}
	for _, c := range Classes()[1:] {
		if c.Role != NounRole(c.Noun) {
			t.Errorf("class %d (%s) is %s, its noun %q %s: a noun's classes share a role", c.Index, c.Label, c.Role, c.Noun, NounRole(c.Noun))
		}
	}
}

// ClassNoun knows the vocabulary's words, as NounOf does, and also the forms
// of class nouns outside it, a class's own name: "wig", "wigs".
func TestClassNoun(t *testing.T) {
	for _, tc := range []struct {
		word, noun string
		ok         bool
	}{
		{"kitten", "cat", true}, // NounOf's
		{"wig", "wig", true},    // a class's own name
		{"Wigs", "wig", true},
		{"abacuses", "abacus", true},
		{"shirtless", "", false},
	} {
		if _, known := NounOf(tc.word); tc.word == "wig" && known {
			t.Fatal(`NounOf knows "wig": the case shows nothing of ClassNoun`)
		}
		if n, ok := ClassNoun(tc.word); n != tc.noun || ok != tc.ok {
			t.Errorf("ClassNoun(%q) = %q, %v; want %q, %v", tc.word, n, ok, tc.noun, tc.ok)
		}
	}
}
