package decoder

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// TestGuidedAnimalsHeadNounPhrases: with Heads set, constrained beam search
// finds the naive reference's captions under Heads' rules, and no caption
// breaks them; without, the test model's captions do (the premise). Most of
// the 40 words are things, so after a guided animal the words TopK ranks
// first are mostly banned and the search must read the whole row.
func TestGuidedAnimalsHeadNounPhrases(t *testing.T) { bothArchs(t, testGuidedAnimalsHeadNounPhrases) }

func testGuidedAnimalsHeadNounPhrases(t *testing.T, c Config) {
	c.Vocab = 40
	m, ref, feats := smallVocabModel(t, c, 4)
	F := c.InputDim()
	n := len(feats) / F
	free := make([]bool, c.Vocab)
	for _, w := range []int32{5, 6, 7, 8} {
		free[w] = true
	}
	set := func(o *DecodeOptions) {
		o.Coordination = Coordination{And: 8}
		o.Placement = Placement{Places: []int32{4}, Reusable: free}
		o.Heads = Heads{Animals: make([]bool, c.Vocab), Mounts: make([]bool, c.Vocab), Leads: make([]bool, c.Vocab), Worn: []int32{20, 21, 22}, Places: []int32{4, 9}}
		for _, w := range []int32{10, 11, 12, 13, 14} {
			o.Heads.Animals[w] = true
		}
		o.Heads.Mounts[13] = true
		o.Heads.Leads[5], o.Heads.Leads[8] = true, true
	}
	// Every image is guided to an animal (a mount for some), a second
	// constraint for some, a noun that is no animal (15) for a few.
	cons := make([][]Constraint, n)
	for i := range cons {
		cons[i] = []Constraint{{int32(10 + i%5)}}
		if i%3 == 0 {
			cons[i] = append(cons[i], Constraint{int32(15 + i%4)})
		}
	}
	var headed DecodeOptions
	set(&headed)
	breaks := func(seq []int32, cs []Constraint) bool {
		for j := range seq {
			met := slices.ContainsFunc(cs, func(c Constraint) bool {
				return slices.Contains(c, seq[j]) && !slices.ContainsFunc(seq[:j], func(x int32) bool { return slices.Contains(c, x) })
			})
			if misplacesAnimal(seq[:j+1], met, cs, headed) {
				return true
			}
		}
		return false
	}
	broken := map[bool]int{}
	for _, on := range []bool{false, true} {
		for _, k := range []int{1, 3} {
			o := DecodeOptions{Start: 1, End: 2, MaxLen: 10, Beam: k, Alpha: 0.7, NBest: k, NoRepeat: 2}
			if on {
				set(&o)
			}
			got := generateConstrained(t, m, feats, nil, o, cons, nil)
			same, all := 0, 0
			for b := range got {
				want := ref.constrained(feats[b*F:(b+1)*F], o, cons[b], nil)
				if len(got[b]) != min(len(want), k) {
					t.Fatalf("heads %v K=%d image %d: %d hypotheses, reference %d", on, k, b, len(got[b]), len(want))
				}
				for i, h := range got[b] {
					all++
					if sameHyp(h, want[i]) {
						same++
					} else if math.Abs(h.LogProb-want[i].LogProb) > 1e-4 || math.Abs(h.Score-want[i].Score) > 1e-4 {
						t.Errorf("heads %v K=%d image %d hypothesis %d: got %v, reference %v", on, k, b, i, h, want[i])
					}
					if breaks(h.Tokens, cons[b]) {
						broken[on]++
					}
				}
			}
			if same < all*9/10 {
				t.Errorf("heads %v K=%d: only %d of %d hypotheses are the reference's token for token", on, k, same, all)
			}
		}
	}
	if broken[false] == 0 || broken[true] != 0 {
		t.Errorf("captions that break Heads' rules without them: %d, with them: %d; want some, then none", broken[false], broken[true])
	}
}

// TestHeadsByExample: DecodeOptions.meets on hand-made sentences, checked
// against the test's reference, misplacesAnimal.
func TestHeadsByExample(t *testing.T) {
	words := strings.Fields("<pad> <start> <end> <unk> a man sitting on in panda camel rock red and is shirt with tree running through")
	id := wordIDs(words)
	n := len(words)
	marks := func(s string) []bool {
		tab := make([]bool, n)
		for _, w := range id(s) {
			tab[w] = true
		}
		return tab
	}
	o := DecodeOptions{End: 2, Coordination: Coordination{And: id("and")[0]},
		Placement: Placement{Places: id("on in"), Reusable: marks("a sitting red and is with running through")},
		Heads:     Heads{Animals: marks("panda camel"), Mounts: marks("camel"), Leads: marks("a red and with"), Worn: id("shirt"), Places: id("on in through")}}
	cons := []Constraint{id("panda"), id("camel")}
	guided := func(w int32) bool {
		return slices.ContainsFunc(cons, func(c Constraint) bool { return slices.Contains(c, w) })
	}
	for _, tc := range []struct {
		said, word string
		meets      bool
	}{
		{"a", "panda", true},                               // after an article
		{"", "panda", true},                                // first
		{"a red", "panda", true},                           // after an adjective
		{"a man sitting on a", "panda", false},             // in a place phrase
		{"a man sitting on a", "camel", true},              // a mount may be there
		{"a man running through a", "panda", false},        // through is one of Heads' places, not Placement's
		{"a man sitting on a rock with a", "panda", false}, // two things after on: the phrase is open
		{"a man and a", "panda", true},
		{"a rock", "panda", false},        // a modifier before it: "a rock panda"
		{"a man sitting", "panda", false}, // no lead word
		{"a panda", "rock", false},        // no thing after a guided animal
		{"a panda", "red", true},
		{"a panda", "camel", false},                     // nor another guided one
		{"a panda is sitting in a red", "shirt", false}, // it wears nothing
		{"a man in a red", "shirt", true},
		{"a panda and a", "camel", true},
	} {
		said := id(tc.said)
		w := id(tc.word)[0]
		if got := o.meets(said, w, guided); got != tc.meets {
			t.Errorf("after %q, %q meets its constraint: %v, want %v", tc.said, tc.word, got, tc.meets)
		}
		if ref := !misplacesAnimal(append(slices.Clone(said), w), true, cons, o); ref != tc.meets {
			t.Errorf("after %q, %q: the test's reference says %v, want %v", tc.said, tc.word, ref, tc.meets)
		}
	}
}
