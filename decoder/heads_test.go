package decoder

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestGuidedAnimalsHeadNounPhrases: with Heads set, constrained beam search
// finds the naive reference's captions under Heads' rules, and no caption
// breaks them; without, the test model's captions break each rule (the
// premise). Most of the 40 words are things, so after a guided animal the
// words TopK ranks first are mostly banned and the search must read the
// whole row.
func TestGuidedAnimalsHeadNounPhrases(t *testing.T) { bothArchs(t, testGuidedAnimalsHeadNounPhrases) }

func testGuidedAnimalsHeadNounPhrases(t *testing.T, c Config) {
	c.Vocab = 40
	F, n := c.InputDim(), 40 // smallVocabModel's images
	// 4 is a place, 9 and 22 Heads' places, 5, 6, 8 and 37 leads, 20, 25 and
	// 27 worn, 7 and 38 copulas (the test model says 7, 22, 25, 27, 37 and 38
	// often).
	marks := func(ws ...int32) []bool { return marked(c.Vocab, ws...) }
	// 15 is held (and played), 16 worn, 17 a container, 18 food, all but
	// 15 bare (plurals); 37 is Wearing and Plays, 25 (a thing) Takes, 27
	// (a thing) Eats.
	uses := make([]Use, c.Vocab)
	uses[15], uses[16], uses[17], uses[18] = UseHeld, UseWorn, UseContainer, UseFood
	set := func(o *DecodeOptions) {
		o.Coordination = Coordination{And: 8}
		o.Placement = Placement{Places: []int32{4}, Reusable: marks(5, 6, 7, 8, 9, 22, 37, 38)}
		o.Heads = Heads{Animals: marks(10, 11, 12, 13, 14), Mounts: marks(13), Leads: marks(5, 6, 8, 37),
			Worn: []int32{20, 25, 27}, Places: []int32{4, 9, 22}, Copulas: []int32{7, 38},
			Modifiers: marks(5, 6), Bare: marks(16, 17, 18), Played: marks(15), Uses: uses,
			In: 4, Into: 9, Wearing: []int32{37}, Takes: []int32{25}, Eats: []int32{27}, Plays: []int32{37}}
	}
	// Every image is guided to an animal (a mount for some),
	// some to a second noun that is no animal (15..18).
	cons := make([][]Constraint, n)
	for i := range cons {
		cons[i] = []Constraint{{int32(10 + i%5)}}
		if i%3 == 0 {
			cons[i] = append(cons[i], Constraint{int32(15 + i%4)})
		}
	}
	var headed DecodeOptions
	set(&headed)
	broken := func(seq []int32, cs []Constraint) []string {
		var rules []string
		for j := range seq {
			met := slices.ContainsFunc(cs, func(c Constraint) bool {
				return slices.Contains(c, seq[j]) && !slices.ContainsFunc(seq[:j], func(x int32) bool { return slices.Contains(c, x) })
			})
			if rule := breaksHeads(seq[:j+1], met, cs, headed); rule != "" {
				rules = append(rules, rule)
			}
		}
		return rules
	}
	breaks := map[bool]map[string]int{false: {}, true: {}}
	placed := map[int32]bool{} // the nouns with Uses that captions under Heads' rules place
	// Two of the test model's seeds: together their captions break every rule.
	for _, seed := range []uint64{4, 10} {
		m, ref, feats := smallVocabModel(t, c, seed)
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
						t.Fatalf("seed %d heads %v K=%d image %d: %d hypotheses, reference %d", seed, on, k, b, len(got[b]), len(want))
					}
					for i, h := range got[b] {
						all++
						if sameHyp(h, want[i]) {
							same++
						} else if math.Abs(h.LogProb-want[i].LogProb) > 1e-4 || math.Abs(h.Score-want[i].Score) > 1e-4 {
							t.Errorf("seed %d heads %v K=%d image %d hypothesis %d: got %v, reference %v", seed, on, k, b, i, h, want[i])
						}
						for _, rule := range broken(h.Tokens, cons[b]) {
							breaks[on][rule]++
						}
						for _, w := range h.Tokens {
							if on && w >= 15 && w <= 18 {
								placed[w] = true
							}
						}
					}
				}
				if same < all*9/10 {
					t.Errorf("seed %d heads %v K=%d: only %d of %d hypotheses are the reference's token for token", seed, on, k, same, all)
				}
			}
		}
	}
	// Loose images, in the same batch as headed ones, are searched as with
	// Heads' rules but those on animals (as if no word were one), the rule
	// on copulas and Uses: exactly what each gets in a batch of its kind.
	m, _, feats := smallVocabModel(t, c, 4)
	loose := make([]bool, n)
	for b := range loose {
		loose[b] = b%2 == 1
	}
	for _, k := range []int{1, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 10, Beam: k, Alpha: 0.7, NBest: k, NoRepeat: 2}
		set(&o)
		noAnimals := o
		noAnimals.Heads.Animals = nil
		buf := m.Device().Alloc(len(feats))
		m.Device().Upload(buf, feats)
		mixed, err := m.GenerateConstrained(context.Background(), buf, allImages(n), o, cons, nil, loose)
		m.Device().Free(buf)
		if err != nil {
			t.Fatal(err)
		}
		alone := map[bool][][]Hypothesis{false: generateConstrained(t, m, feats, nil, o, cons, nil), true: generateConstrained(t, m, feats, nil, noAnimals, cons, nil)}
		differ := 0
		for b := range mixed {
			want := alone[loose[b]][b]
			if !slices.EqualFunc(mixed[b], want, sameHyp) {
				t.Errorf("K=%d image %d (loose %v): %v in a mixed batch, %v alone", k, b, loose[b], mixed[b], want)
			}
			if !slices.EqualFunc(alone[true][b], alone[false][b], sameHyp) {
				differ++
			}
		}
		if differ == 0 {
			t.Errorf("K=%d: the rules on animals change no image's captions: the comparison shows nothing", k)
		}
	}
	for _, rule := range []string{"a thing after a guided animal", "a worn word about a guided animal", "a guided animal after no lead word", "a guided animal as a place",
		"a guided noun after a copula", "a held or worn noun as a subject", "a bare singular noun", "a worn noun out of place", "a held noun out of place",
		"a container out of place"} {
		if breaks[false][rule] == 0 {
			t.Errorf("without Heads no caption has %s: the test shows nothing of that rule (%v)", rule, breaks[false])
		}
	}
	if len(breaks[true]) > 0 {
		t.Errorf("with Heads, captions break its rules: %v", breaks[true])
	}
	for w := int32(15); w <= 18; w++ {
		if !placed[w] {
			t.Errorf("with Heads, no caption places %d (Use %d): the test shows nothing of where it may go", w, uses[w])
		}
	}
}

// TestHeadsByExample: DecodeOptions.mayMeet on hand-made sentences, checked
// against the test's reference, breaksHeads.
func TestHeadsByExample(t *testing.T) {
	words := strings.Fields(`<pad> <start> <end> <unk> a man sitting on in panda camel rock red and is shirt with tree
		running through of front holding`)
	id := wordIDs(words)
	marks := func(s string) []bool { return marked(len(words), id(s)...) }
	o := DecodeOptions{End: 2, Coordination: Coordination{And: id("and")[0]},
		Placement: Placement{Places: id("on in"), Reusable: marks("a sitting red and is with running through of front holding")},
		Heads: Heads{Animals: marks("panda camel"), Mounts: marks("camel"), Leads: marks("a red and with of"), Worn: id("shirt"),
			Places: id("on in through"), Copulas: id("is")}}
	cons := []Constraint{id("panda"), id("camel"), id("tree")}
	checkMayMeet(t, o, id, cons, []mayMeetCase{
		{"a", "panda", true},                                         // after an article
		{"", "panda", true},                                          // first
		{"a red", "panda", true},                                     // after an adjective
		{"a man sitting on a", "panda", false},                       // in a place phrase
		{"a man sitting on a red", "panda", false},                   // still in it
		{"a man running through a", "panda", false},                  // through is one of Heads' places, not Placement's
		{"a man in a red shirt is holding a", "panda", false},        // one thing after in: its phrase lasts
		{"a man sitting on a rock with a tree and a", "panda", true}, // a thing and "and": the phrase is over
		{"a man in front of a", "panda", false},                      // front is no thing
		{"a man sitting on a", "camel", true},                        // a mount may be there
		{"a man sitting on", "camel", false},                         // a mount too needs a lead word
		{"a man and a", "panda", true},
		{"a rock", "panda", false},                      // a modifier before it: "a rock panda"
		{"a man sitting", "panda", false},               // no lead word: "a man sitting panda"
		{"a panda", "rock", false},                      // no thing after a guided animal
		{"a panda", "camel", false},                     // nor another guided one
		{"a panda", "red", true},                        // an adjective is no thing
		{"a man", "rock", true},                         // after a thing that is no guided animal
		{"a panda is sitting in a red", "shirt", false}, // the panda wears nothing
		{"a panda and a man in a red", "shirt", true},   // the man may
		{"a man in a red", "shirt", true},
		{"a panda and a", "camel", true},
		{"a man is", "tree", false},             // no guided noun after a copula
		{"a man is sitting on a", "tree", true}, // a guided noun that is no animal may be a place
		{"a man", "tree", true},                 // or follow a thing
	})
}

// TestTopNoThings against a naive reference: every word that is no thing,
// sorted by log-probability (ties: the lower id first), then unspeakable
// words; rows with many ties, and lists longer than the words there are.
func TestTopNoThings(t *testing.T) {
	const V = 300
	logp := make([]float32, V)
	for w := range logp {
		logp[w] = -float32((w * 7919) % 13) // 13 values: many ties
	}
	for _, every := range []int{2, 3, 50, V + 1} { // every every-th word is no thing
		thing := func(w int32) bool { return int(w)%every != 0 }
		var want []int32
		for w := range int32(V) {
			if !thing(w) {
				want = append(want, w)
			}
		}
		slices.SortStableFunc(want, func(a, b int32) int { return cmp.Compare(logp[b], logp[a]) })
		for _, n := range []int{1, 2, 9, 40} {
			idx, val := make([]int32, n), make([]float32, n)
			topNoThings(idx, val, logp, thing)
			for j := range n {
				w, v := int32(0), float32(neverEmitted)
				if j < len(want) {
					w, v = want[j], logp[want[j]]
				}
				if idx[j] != w || val[j] != v {
					t.Fatalf("every %d, %d words: word %d is %d (%g), want %d (%g)", every, n, j, idx[j], val[j], w, v)
				}
			}
		}
	}
}

// TestUsesByExample: DecodeOptions.mayMeet on hand-made sentences for guided
// nouns that are no animals, checked against the test's reference,
// breaksUse.
func TestUsesByExample(t *testing.T) {
	words := strings.Fields(`<pad> <start> <end> <unk> a the red white black man in into on sitting running holding with wearing and
		ball balls basket shirt hat playing of mud two boys jacket tie swimming rock book swings racket eating pizza cup
		coffee mask wig riding wave dancing beach baby city street corner shorts`)
	id := wordIDs(words)
	marks := func(s string) []bool { return marked(len(words), id(s)...) }
	uses := make([]Use, len(words))
	for _, u := range []struct {
		words string
		use   Use
	}{{"ball balls book racket", UseHeld}, {"shirt hat jacket tie mask wig", UseWorn}, {"basket cup", UseContainer}, {"pizza coffee", UseFood}} {
		for _, w := range id(u.words) {
			uses[w] = u.use
		}
	}
	// "swings" and "wave" are things by Placement's tables, as "swings",
	// "hits" and "wave" are in the shipped vocabulary, and so are "baby",
	// "beach", "city", "street" and "corner"; "riding" and "dancing" are
	// not. Worn, the ban list on guided animals, lacks "mask" and has
	// "shorts", which has no Use.
	o := DecodeOptions{End: 2, Coordination: Coordination{And: id("and")[0], Articles: [3]int32{id("a")[0], id("the")[0]}},
		Placement: Placement{Places: id("on in into"), Reusable: marks("a the red white black sitting running holding with wearing and playing of two swimming eating riding dancing"), Postures: id("sitting")},
		Heads: Heads{Modifiers: marks("a the red white black two"), Bare: marks("balls coffee"), Played: marks("ball balls"), Worn: id("shirt hat jacket tie shorts"),
			Uses: uses, In: id("in")[0], Into: id("into")[0], Wearing: id("wearing"), Takes: id("holding with swings wave"), Eats: id("eating"), Plays: id("playing")}}
	cons := []Constraint{id("ball balls"), id("hat"), id("basket"), id("book"), id("shirt"), id("tie"), id("racket"), id("pizza"), id("coffee"), id("wig")}
	checkMayMeet(t, o, id, cons, []mayMeetCase{
		{"", "ball", false},                          // a subject
		{"a red", "ball", false},                     // still the subject's phrase
		{"a man holding a", "ball", true},            // after a word that takes it
		{"a man with a red and white", "ball", true}, // "a red and white" is one phrase
		{"a man holding", "ball", false},             // singular, no modifier
		{"a man holding", "balls", true},             // a plural needs none
		{"a man playing", "ball", true},              // "playing ball"
		{"a man playing", "book", false},             // a book is not played
		{"a man running", "balls", false},            // running takes nothing
		{"a man in a red", "ball", false},            // where a shirt goes
		{"a man sitting on a", "ball", false},        // where a seat goes
		{"a man sitting on a rock", "ball", false},   // read past a thing: "a rock ball"
		{"a man sitting on a red and white", "ball", false},
		{"a man in a red", "shirt", true},                  // worn after a thing and "in"
		{"a man in a swimming", "hat", true},               // "swimming" after a modifier is in the phrase
		{"a man sitting in a", "hat", false},               // not after an action
		{"a man wearing a", "hat", true},                   // after Wearing
		{"two boys playing in the mud in a", "hat", false}, // "mud" is in a place phrase
		{"a man in a red jacket and a", "tie", true},       // "and" after something worn
		{"a man in a red jacket and", "tie", false},        // singular: it needs a modifier too
		{"a man and a", "hat", false},                      // not after anything else
		{"a man with a", "hat", false},                     // "with" is no Wearing
		{"a man in a", "basket", true},                     // a container after a thing and "in"
		{"a man sitting in a", "basket", true},             // or after a posture
		{"a man running into a", "basket", false},          // not after an action
		{"a man sitting on a", "basket", false},            // nor after "on"
		{"a man holding a", "basket", true},                // held like the rest
		{"a man swings a", "racket", true},                 // "swings" takes it, though a thing
		{"a man in red holding a", "ball", true},           // "holding" after a colour ends the phrase
		{"a man eating a", "pizza", true},                  // food after Eats
		{"a man eating a", "ball", false},                  // nothing else
		{"a man holding a", "pizza", true},                 // food is held too
		{"a man eating", "coffee", true},                   // coffee stands bare
		{"a man riding a wave", "balls", false},            // "wave" after an article is a noun: "riding" takes nothing
		{"a man wave", "balls", true},                      // else a word that takes a held thing
		{"a man in a", "pizza", false},
		{"a man in a black mask and a red", "wig", true},           // "and" after a worn noun Worn lacks
		{"a man in a black rock and a red", "wig", false},          // not after a rock
		{"a man in red playing", "ball", true},                     // "playing" after a colour ends the phrase too
		{"a man dancing in black wearing a", "hat", true},          // and "wearing": not "in" after an action
		{"a man riding the wave", "balls", false},                  // "the" is an article as "a" is
		{"a man holding baby white", "ball", true},                 // a modifier before a thing counts
		{"on a beach a man in a", "hat", false},                    // "man" is in the place phrase that opens the caption
		{"a man on a city street corner in a red", "jacket", true}, // three things close the place phrase
		{"a man in black shorts and a red", "hat", true},           // "and" after a word of Worn with no Use
		{"shorts and a red", "hat", true},                          // the first word too
	})
	// A Uses table shorter than the vocabulary: the ids past its end, "ball"
	// the first of them, go anywhere.
	short := o
	short.Heads.Uses = uses[:id("ball")[0]]
	checkMayMeet(t, short, id, cons, []mayMeetCase{
		{"", "ball", true},
		{"a man sitting on a", "ball", true},
		{"a man in a red", "hat", true},
	})
}

// mayMeetCase is a hand-made sentence for mayMeet: whether word may meet
// its constraint after said.
type mayMeetCase struct {
	said, word string
	may        bool
}

// checkMayMeet checks o.mayMeet on each case, every word of cons guided, and
// the test's reference, breaksHeads, beside it.
func checkMayMeet(t *testing.T, o DecodeOptions, id func(string) []int32, cons []Constraint, cases []mayMeetCase) {
	t.Helper()
	guided := func(w int32) bool {
		return slices.ContainsFunc(cons, func(c Constraint) bool { return slices.Contains(c, w) })
	}
	for _, tc := range cases {
		said := id(tc.said)
		w := id(tc.word)[0]
		if got := o.mayMeet(said, w, guided); got != tc.may {
			t.Errorf("after %q, %q meets its constraint: %v, want %v", tc.said, tc.word, got, tc.may)
		}
		if rule := breaksHeads(append(slices.Clone(said), w), true, cons, o); (rule == "") != tc.may {
			t.Errorf("after %q, %q: the test's reference says %q, want a rule broken: %v", tc.said, tc.word, rule, !tc.may)
		}
	}
}
