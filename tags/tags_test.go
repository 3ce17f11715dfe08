package tags

import (
	"slices"
	"testing"
)

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		caption, noun string
		want          bool
	}{
		{"A dog runs on the grass .", "dog", true},
		{"Dogs play in the snow", "dog", true}, // case is ignored
		{"two dogs play", "dog", true},
		{"a puppy sleeps", "dog", true},
		{"a hotdog stand", "dog", false}, // whole words only
		{"A cat is lying on a bed", "cat", true},
		{"three kittens", "cat", true},
		{"a catalogue on a table", "cat", false},
		{"young boy is sitting on bed", "cat", false},
		{"a man in a red shirt", "person", true},
		{"Two women and a child", "person", true},
		{"a cup of espresso", "coffee", true},
		{"a cup of coffee", "coffee", true},
		{"a man rides a bicycle", "bike", true},
		{"bikes parked in a row", "bike", true},
		{"a horse and two ponies", "horse", true},
		{"geese by the lake", "goose", true},
		{"a red fire engine", "fire truck", true},
		{"a fire in the engine", "fire truck", false}, // a phrase must be contiguous
		{"kids on a go kart", "go-kart", true},
		{"a potter's wheel", "potter's wheel", true},
		{"a crane lifts steel", "crane", true}, // a noun outside the vocabulary names itself
		{"two cranes", "crane", true},
		{"", "dog", false},
		{"A skier is skiing down a hill.", "ski", true}, // madeFrom's words
		{"Two men playing basketball.", "ball", true},
		{"A german shepherd runs through the grass.", "dog", true}, // a breed names its dog
		{"A woman in a skirt", "ski", false},                       // no rule beyond madeFrom's list
		{"A man in black pants", "ant", false},
		{"A bird is flying", "fly", false},
		{"A boy in front of a corner store", "corn", false},
		{"a cat5 cable on the desk", "cat", false}, // digits are part of a word
	} {
		if got := Mentions(tc.caption, tc.noun); got != tc.want {
			t.Errorf("Mentions(%q, %q) = %v, want %v", tc.caption, tc.noun, got, tc.want)
		}
	}
}

func TestForms(t *testing.T) {
	for _, tc := range []struct {
		noun string
		want []string
	}{
		{"cat", []string{"cat", "cats", "kitten", "kittens", "kitties", "kitty"}},
		{"bike", []string{"bicycle", "bicycles", "bike", "bikes"}},
		{"abacus", []string{"abacus", "abacuses"}}, // outside the vocabulary
		{"lorry", []string{"lorries", "lorry"}},    // not a vocabulary noun: lorry is a form of truck
	} {
		if got := Forms(tc.noun); !slices.Equal(got, tc.want) {
			t.Errorf("Forms(%q) = %q, want %q", tc.noun, got, tc.want)
		}
	}
	if n, ok := NounOf("Kittens"); !ok || n != "cat" {
		t.Errorf(`NounOf("Kittens") = %q, %v; want "cat", true`, n, ok)
	}
	if n, ok := NounOf("abacus"); ok {
		t.Errorf(`NounOf("abacus") = %q, true; want no noun`, n)
	}
	// The result is the caller's: changing it changes no later answer.
	Forms("cat")[0] = "dog"
	if got := Forms("cat"); got[0] != "cat" {
		t.Errorf(`Forms("cat") after a caller changed its result = %q`, got)
	}
}

func TestPlural(t *testing.T) {
	for w, want := range map[string]string{
		"dog": "dogs", "bus": "buses", "fox": "foxes", "peach": "peaches", "brush": "brushes",
		"puppy": "puppies", "toy": "toys", "guy": "guys", "y": "ys", "hot dog": "hot dogs",
		"sheep": "sheep", "goose": "geese", "wolf": "wolves", "sea wolf": "sea wolves", "woman": "women",
	} {
		if got := Plural(w); got != want {
			t.Errorf("Plural(%q) = %q, want %q", w, got, want)
		}
	}
}

// Every vocabulary word belongs to one noun, and every noun of the class map
// is either a vocabulary noun or a class's own name outside it.
func TestVocabularyIsConsistent(t *testing.T) {
	for _, n := range Nouns() {
		if got, ok := NounOf(n); !ok || got != n {
			t.Errorf("NounOf(%q) = %q, %v", n, got, ok)
		}
		// "flower" and "flowers" are both in its row, so "flowers" is made twice.
		if fs := Forms(n); !slices.IsSorted(fs) || len(slices.Compact(slices.Clone(fs))) != len(fs) {
			t.Errorf("Forms(%q) = %q, want them sorted, each once", n, fs)
		}
	}
	for _, c := range Classes()[1:] {
		if n, ok := NounOf(c.Noun); ok && n != c.Noun {
			t.Errorf("class %d (%s) has noun %q, which the vocabulary files under %q", c.Index, c.Label, c.Noun, n)
		}
	}
}

// probsWith returns NumClasses probabilities with the given classes set and
// the rest of the mass spread evenly over the other classes.
func probsWith(set map[int]float32) []float32 {
	p := make([]float32, NumClasses)
	var sum float32
	for i, v := range set {
		p[i] = v
		sum += v
	}
	rest := (1 - sum) / float32(NumClasses-len(set))
	for i := range p {
		if _, ok := set[i]; !ok {
			p[i] = rest
		}
	}
	return p
}

func TestSelectMergesClassesOfOneNoun(t *testing.T) {
	// A beagle-ish dog (three hound classes) and an Egyptian cat.
	probs := probsWith(map[int]float32{0: 0.02, 163: 0.3, 168: 0.25, 162: 0.2, 286: 0.15})
	got, err := Select(probs, 5, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Select = %+v, want dog and cat", got)
	}
	rest := probs[1] // one of the spread classes
	dog, cat := got[0], got[1]
	// dog: three named classes plus the spread mass of the other 118 dog classes.
	wantDog := float32(0.3+0.25+0.2) + 118*rest
	if dog.Noun != "dog" || dog.Label != "beagle" || dog.LabelProb != 0.3 || abs(dog.Prob-wantDog) > 1e-5 {
		t.Errorf("top tag = %+v, want dog at %g labelled beagle at 0.3", dog, wantDog)
	}
	wantCat := float32(0.15) + 4*rest // Egyptian cat + tabby, tiger, Persian, Siamese
	if cat.Noun != "cat" || cat.Label != "Egyptian cat" || abs(cat.Prob-wantCat) > 1e-5 {
		t.Errorf("second tag = %+v, want cat at %g", cat, wantCat)
	}
}

func TestSelectThresholdAndK(t *testing.T) {
	probs := probsWith(map[int]float32{968: 0.5, 969: 0.2, 505: 0.1, 0: 0.15}) // espresso, cup, coffee mug
	// A noun of one class is labelled with it, at its own probability.
	if got, err := Select(probs, 1, 0); err != nil || len(got) != 1 || got[0] != (Tag{Noun: "coffee", Prob: 0.5, Label: "espresso", LabelProb: 0.5}) {
		t.Errorf("Select(k=1) = %+v, %v; want coffee at 0.5 labelled espresso at 0.5", got, err)
	}
	for _, tc := range []struct {
		k         int
		threshold float32
		want      []string
	}{
		{5, 0.05, []string{"coffee", "cup"}}, // cup = cup + coffee mug = 0.3; background (0.15) is not a tag
		{1, 0.05, []string{"coffee"}},
		{5, 0.4, []string{"coffee"}},
		{5, 0.6, nil},
		{5, 0.5, []string{"coffee"}},        // at the threshold counts: coffee is espresso alone, 0.5
		{5, 0.3, []string{"coffee", "cup"}}, // cup's other classes' spread mass puts it just above
		{5, 1, nil},                         // the bounds are thresholds too
		{2, 0, []string{"coffee", "cup"}},
	} {
		got, err := Select(probs, tc.k, tc.threshold)
		if err != nil {
			t.Fatal(err)
		}
		var nouns []string
		for _, g := range got {
			nouns = append(nouns, g.Noun)
		}
		if !slices.Equal(nouns, tc.want) {
			t.Errorf("Select(k=%d, threshold=%g) = %q, want %q", tc.k, tc.threshold, nouns, tc.want)
		}
	}
}

// Ties keep class order: with every class equally probable, nouns of as many
// classes come in the order of their first classes, and each is labelled
// with its first class.
func TestSelectTiesKeepClassOrder(t *testing.T) {
	probs := make([]float32, NumClasses)
	for i := range probs {
		probs[i] = 1.0 / NumClasses
	}
	first := map[string]int{} // each noun's first class
	for _, c := range Classes()[1:] {
		if _, ok := first[c.Noun]; !ok {
			first[c.Noun] = c.Index
		}
	}
	got, err := Select(probs, NumClasses, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		if want := Classes()[first[g.Noun]].Label; g.Label != want {
			t.Errorf("%s is labelled %q, want its first class's %q", g.Noun, g.Label, want)
		}
		if i > 0 && got[i-1].Prob == g.Prob && first[got[i-1].Noun] > first[g.Noun] {
			t.Errorf("%s (class %d) before %s (class %d), both at %g", got[i-1].Noun, first[got[i-1].Noun], g.Noun, first[g.Noun], g.Prob)
		}
	}
}

func TestSelectErrors(t *testing.T) {
	_, err := Select(make([]float32, 1000), 5, 0.5)
	want := "tags: 1000 class probabilities, want 1001 (ImageNet's 1000 classes and background); the classifier is not the one the noun map was made for"
	if err == nil || err.Error() != want {
		t.Errorf("Select(1000 probs) = %v, want %q", err, want)
	}
	for _, tc := range []struct {
		k         int
		threshold float32
	}{{0, 0.5}, {5, -0.1}, {5, 1.5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Select(k=%d, threshold=%g) did not panic", tc.k, tc.threshold)
				}
			}()
			Select(make([]float32, NumClasses), tc.k, tc.threshold)
		}()
	}
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func TestMentionRate(t *testing.T) {
	cat := Tag{Noun: "cat", Prob: 0.9}
	photos := []Captioned{
		{Caption: "a cat on a bed", Tags: []Tag{cat}},                                          // eligible, mentioned
		{Caption: "young boy is sitting on bed", Tags: []Tag{cat}},                             // eligible, not mentioned
		{Caption: "a kitten", Tags: []Tag{{Noun: "cat", Prob: 0.6}}},                           // at the threshold: eligible
		{Caption: "a dog", Tags: []Tag{{Noun: "dog", Prob: 0.59}}},                             // below: not eligible
		{Caption: "a man", Tags: nil},                                                          // no tag: not eligible
		{Caption: "a cup", Tags: []Tag{{Noun: "coffee", Prob: 0.7}, {Noun: "cup", Prob: 0.2}}}, // only the top tag counts
	}
	m, e := MentionRate(photos, 0.6)
	if m != 2 || e != 4 {
		t.Errorf("MentionRate = %d of %d, want 2 of 4", m, e)
	}
}
