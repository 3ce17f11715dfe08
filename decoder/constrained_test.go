package decoder

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/text"
)

// constrained is textbook constrained beam search for one image: every live
// beam of every state is expanded by every word (but one that would repeat an
// n-gram, DecodeOptions.NoRepeat, and <end> before the first word); a word that meets unmet
// constraints moves the hypothesis to the state with them met; each state
// keeps its K best, and a hypothesis ending in <end> among them is finished;
// the answers are the all-met state's finished captions. Without constraints
// it is textbook beam search. No hypothesis says a token of avoid.
func (r *refDecoder) constrained(feat []float32, o DecodeOptions, cons []Constraint, avoid []int32) []Hypothesis {
	step, s0 := r.begin(feat)
	type beamT struct {
		s      refState
		toks   []int32
		lp     float64
		forced float64
		att    [][]float32 // per token, each step's attention weights
	}
	bitsOf := func(tok int32) int {
		bits := 0
		for j, c := range cons {
			if slices.Contains(c, tok) {
				bits |= 1 << j
			}
		}
		return bits
	}
	S, full := 1<<len(cons), 1<<len(cons)-1
	live := make([][]beamT, S)
	live[0] = []beamT{{s: s0}}
	var done []Hypothesis
	for t := 0; t < o.MaxLen && len(done) < o.Beam; t++ {
		type cand struct {
			from   beamT
			tok    int32
			lp     float64
			forced float64
			s      refState
			alpha  []float32
		}
		cs := make([][]cand, S)
		for st, beams := range live {
			for _, b := range beams {
				prev := o.Start
				if len(b.toks) > 0 {
					prev = b.toks[len(b.toks)-1]
				}
				ns, lp, alpha := step(b.s, prev)
				for w, v := range lp {
					to, forced := st|bitsOf(int32(w)), b.forced
					if seq := append(slices.Clone(b.toks), int32(w)); int32(w) != o.End &&
						(repeatsAnNGram(seq, o.NoRepeat) || o.NoRepeat >= 2 && (coordinatesItself(seq, o.Coordination, o.Placement) || placesItself(seq, o.Placement, o.Coordination.And)) ||
							slices.Contains(avoid, int32(w)) || breaksHeads(seq, to != st, cons, o) != "") {
						continue
					}
					if int32(w) == o.End && len(b.toks) == 0 {
						continue // a caption has a word
					}
					if to != st {
						forced += v
					}
					cs[to] = append(cs[to], cand{b, int32(w), b.lp + v, forced, ns, toF32(alpha)})
				}
			}
		}
		next := make([][]beamT, S)
		for st := range cs {
			sort.SliceStable(cs[st], func(i, j int) bool { return cs[st][i].lp > cs[st][j].lp })
			for rank, cd := range cs[st] {
				toks := append(slices.Clone(cd.from.toks), cd.tok)
				att := append(slices.Clone(cd.from.att), cd.alpha)
				if cd.tok == o.End {
					if rank < o.Beam && st == full {
						done = append(done, Hypothesis{Tokens: toks[:len(toks)-1], LogProb: cd.lp, Score: o.score(cd.lp, len(toks)), Forced: cd.forced,
							Attention: att[:len(att)-1]})
					}
					continue
				}
				next[st] = append(next[st], beamT{cd.s, toks, cd.lp, cd.forced, att})
				if len(next[st]) == o.Beam {
					break
				}
			}
		}
		live = next
	}
	if len(done) < o.Beam {
		for _, b := range live[full] {
			done = append(done, Hypothesis{Tokens: b.toks, LogProb: b.lp, Score: o.score(b.lp, len(b.toks)), Forced: b.forced, Attention: b.att})
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return done[i].Score > done[j].Score })
	return done
}

// coordinatesItself says whether seq ends "X and X" or "X and A X", A one of
// c's articles, or "X and A M... X" with X a thing by p and the Ms words p
// reuses (p's zero value: none).
func coordinatesItself(seq []int32, c Coordination, p Placement) bool {
	n := len(seq)
	if c.And == 0 {
		return false
	}
	if n >= 3 && seq[n-2] == c.And && seq[n-3] == seq[n-1] {
		return true
	}
	article := func(w int32) bool { return w != 0 && slices.Contains(c.Articles[:], w) }
	if n >= 4 && seq[n-3] == c.And && article(seq[n-2]) && seq[n-4] == seq[n-1] {
		return true
	}
	thing := refThing(p)
	for a := n - 2; a >= 1; a-- { // a: the position of "and"
		if seq[a] == c.And {
			x := seq[a-1]
			between := seq[a+1 : n-1]
			return x == seq[n-1] && thing(x) && !article(x) && len(between) > 0 &&
				!slices.ContainsFunc(between, func(w int32) bool { return !article(w) && thing(w) })
		}
		if !article(seq[a]) && thing(seq[a]) {
			return false
		}
	}
	return false
}

// placesItself says whether seq's last word is one p forbids: a thing (a word
// neither of p's places nor reusable) that seq says, or one of whose kind
// (p.Kinds) it says, before its last place word, other than as its first
// thing (the subject) or right before another thing (a modifier), while that
// place word's phrase is open: at most two things between it and the last
// word, and none of them followed by and.
func placesItself(seq []int32, p Placement, and int32) bool {
	n := len(seq)
	thing := refThing(p)
	// Or an unperchable thing after a posture, a rest and free words.
	if slices.Contains(p.Unperchable, seq[n-1]) {
		for i := n - 2; i >= 1 && !thing(seq[i]); i-- {
			if slices.Contains(p.Places, seq[i]) {
				if slices.Contains(p.Rests, seq[i]) && slices.Contains(p.Postures, seq[i-1]) {
					return true
				}
				break
			}
		}
	}
	place := openPlace(seq[:n-1], p, and)
	if place < 0 || !thing(seq[n-1]) {
		return false
	}
	subject := slices.IndexFunc(seq, thing)
	kin := func(a, b int32) bool {
		return a == b || slices.ContainsFunc(p.Kinds, func(k []int32) bool { return slices.Contains(k, a) && slices.Contains(k, b) })
	}
	for j := 0; j < place; j++ {
		if kin(seq[j], seq[n-1]) && j != subject && !thing(seq[j+1]) {
			return true
		}
	}
	return false
}

// refThing says whether a word is a thing by p: neither a place nor reusable.
func refThing(p Placement) func(int32) bool {
	return func(x int32) bool {
		return !slices.Contains(p.Places, x) && (int(x) >= len(p.Reusable) || !p.Reusable[x])
	}
}

// openPlace is the position of seq's last place word while its phrase is open
// (at most two things after it, none of them followed by and), else -1.
func openPlace(seq []int32, p Placement, and int32) int {
	thing := refThing(p)
	place := -1
	for i, x := range seq {
		if slices.Contains(p.Places, x) {
			place = i
		}
	}
	if place < 0 {
		return -1
	}
	things := 0
	for i := place + 1; i < len(seq); i++ {
		if thing(seq[i]) {
			things++
		}
		if seq[i] == and && thing(seq[i-1]) {
			return -1
		}
	}
	if things > 2 {
		return -1
	}
	return place
}

// breaksHeads names the rule of o.Heads that seq's last word, not <end>,
// breaks ("" for none); meets says whether it meets one of cons. A guided
// animal is a word of cons that Heads calls an animal, a thing a word that is
// neither a place nor reusable by o.Placement, nor <end>. No thing may follow a guided
// animal; no worn word may come while a guided animal is the only thing
// said; and a guided animal may meet its constraint only first or after a
// lead word, and then, unless it is a mount, outside an open place phrase
// (after one of Heads.Places); no word meets a constraint right after a
// copula; and a guided noun with a Use goes where it lets it (breaksUse).
func breaksHeads(seq []int32, meets bool, cons []Constraint, o DecodeOptions) string {
	h := o.Heads
	marks := func(tab []bool, x int32) bool { return int(x) < len(tab) && tab[x] }
	isThing := refThing(o.Placement)
	thing := func(x int32) bool { return x != o.End && isThing(x) }
	animal := func(x int32) bool {
		return marks(h.Animals, x) && slices.ContainsFunc(cons, func(c Constraint) bool { return slices.Contains(c, x) })
	}
	n, w := len(seq), seq[len(seq)-1]
	if n >= 2 && animal(seq[n-2]) && thing(w) {
		return "a thing after a guided animal"
	}
	var things []int32
	for _, x := range seq[:n-1] {
		if thing(x) && !slices.Contains(things, x) {
			things = append(things, x)
		}
	}
	if len(things) == 1 && animal(things[0]) && slices.Contains(h.Worn, w) {
		return "a worn word about a guided animal"
	}
	if meets && int(w) < len(h.Uses) && h.Uses[w] != UseAnywhere {
		if rule := breaksUse(seq[:n-1], w, o); rule != "" {
			return rule
		}
	}
	if meets && n >= 2 && slices.Contains(h.Copulas, seq[n-2]) {
		return "a guided noun after a copula"
	}
	if !meets || !animal(w) {
		return ""
	}
	if n >= 2 && !marks(h.Leads, seq[n-2]) {
		return "a guided animal after no lead word"
	}
	if !marks(h.Mounts, w) && openPlace(seq[:n-1], Placement{Places: h.Places, Reusable: o.Placement.Reusable}, o.Coordination.And) >= 0 {
		return "a guided animal as a place"
	}
	return ""
}

// breaksUse names the rule of o.Heads.Uses that guided noun w breaks after
// said, or "". It spells said as a string of word classes, one letter a
// word, and finds w's noun phrase so far with a regular expression: the
// longest end of said made of modifiers (m), each perhaps followed by one
// free word (f), and things (t); a word that takes a noun (k), unless an
// article makes it one, ends it.
func breaksUse(said []int32, w int32, o DecodeOptions) string {
	h := o.Heads
	marks := func(tab []bool, x int32) bool { return int(x) < len(tab) && tab[x] }
	isThing := refThing(o.Placement)
	in := func(list []int32, x int32) bool { return slices.Contains(list, x) }
	var classes strings.Builder
	for i, x := range said {
		afterArticle := i > 0 && in(o.Coordination.Articles[:], said[i-1])
		switch {
		case (in(h.Takes, x) || in(h.Wearing, x) || in(h.Eats, x) || in(h.Plays, x)) && !afterArticle:
			classes.WriteByte('k')
		case marks(h.Modifiers, x):
			classes.WriteByte('m')
		case x != o.End && isThing(x):
			classes.WriteByte('t')
		default:
			classes.WriteByte('f')
		}
	}
	loc := regexp.MustCompile(`(?:mf?|t)*$`).FindStringIndex(classes.String())
	start := loc[0]
	if start == 0 {
		return "a held or worn noun as a subject"
	}
	p, phrase := said[start-1], classes.String()[start:]
	var before int32 = -1
	if start >= 2 {
		before = said[start-2]
	}
	if !strings.Contains(phrase, "m") && !marks(h.Bare, w) && !(marks(h.Played, w) && in(h.Plays, p)) {
		return "a bare singular noun"
	}
	holder := before >= 0 && before != o.End && isThing(before) && openPlace(said[:start-1], o.Placement, o.Coordination.And) < 0
	use := h.Uses[w]
	var ok bool
	switch {
	case use == UseWorn:
		switch p {
		case h.In:
			ok = holder || in(h.Wearing, before)
		case o.Coordination.And:
			ok = in(h.Worn, before) || before >= 0 && int(before) < len(h.Uses) && h.Uses[before] == UseWorn
		default:
			ok = in(h.Wearing, p)
		}
	case in(h.Plays, p):
		ok = marks(h.Played, w)
	case use == UseContainer && (p == h.In || p == h.Into):
		ok = holder || in(o.Placement.Postures, before)
	default:
		ok = in(h.Takes, p) || use == UseFood && in(h.Eats, p)
	}
	switch {
	case ok:
		return ""
	case use == UseWorn:
		return "a worn noun out of place"
	case use == UseContainer:
		return "a container out of place"
	}
	return "a held noun out of place"
}

// repeatsAnNGram says whether seq ends with an n-gram it has already said,
// or with the same word twice (never, for n below 2).
func repeatsAnNGram(seq []int32, n int) bool {
	if n < 2 || len(seq) < 2 {
		return false
	}
	if seq[len(seq)-1] == seq[len(seq)-2] {
		return true
	}
	if len(seq) < n {
		return false
	}
	last := seq[len(seq)-n:]
	for i := 0; i+n < len(seq); i++ {
		if slices.Equal(seq[i:i+n], last) {
			return true
		}
	}
	return false
}

// generateConstrained decodes the images at positions images of feats; nil
// images is every one, in order.
func generateConstrained(t *testing.T, m *Model, feats []float32, images []int32, o DecodeOptions, cons [][]Constraint, avoid [][]int32) [][]Hypothesis {
	t.Helper()
	dev := m.Device()
	buf := dev.Alloc(len(feats))
	defer dev.Free(buf)
	dev.Upload(buf, feats)
	if images == nil {
		images = allImages(len(feats) / m.Cfg.InputDim())
	}
	hyps, err := m.GenerateConstrained(context.Background(), buf, images, o, cons, avoid, nil)
	if err != nil {
		t.Fatal(err)
	}
	return hyps
}

// allImages is the positions of n images, in order.
func allImages(n int) []int32 {
	images := make([]int32, n)
	for i := range images {
		images[i] = int32(i)
	}
	return images
}

// With constraints the batched search matches the naive one per image, and
// every answer contains a token of every constraint. The images have
// different numbers of constraints, so one batch mixes 1, 2 and 4 states.
// With tokens to avoid as well, no answer says one, and the captions that
// change are still the naive search's. The batch takes the five images out
// of order, two of them twice under other constraints, one of which shares a
// token between two constraints.
func TestConstrainedMatchesNaiveReference(t *testing.T) { bothArchs(t, testConstrained) }

func testConstrained(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	ref := newRefDecoder(m.Cfg, host)
	F := m.Cfg.InputDim()
	images := []int32{3, 0, 4, 1, 2, 1, 0}
	cons := [][]Constraint{
		{{5}, {6}},
		{{7}},
		{{4, 7}, {8}},
		{{6, 8}},
		nil,
		{{7}},
		{{5, 6}, {6, 7}}, // 6 meets both, or the second after 5
	}
	avoid := [][]int32{{4}, {5}, {3}, nil, {7, 8}, nil, nil}
	// NoRepeat's bans that read the vocabulary, with made-up words: 8 is
	// "and" and 5 an article, 4 a place word and 6 a reusable word.
	bans := []func(o *DecodeOptions){
		func(o *DecodeOptions) {},
		func(o *DecodeOptions) { o.Coordination = Coordination{And: 8, Articles: [3]int32{5}} },
		func(o *DecodeOptions) { o.Placement = Placement{Places: []int32{4}, Reusable: []bool{6: true}} },
	}
	changed, same, all, avoided := 0, 0, 0, 0
	bannedBy := make([]int, len(bans)) // captions each ban changed
	// Beam width, NoRepeat, whether to avoid tokens, and the ban.
	for _, kr := range [][4]int{{1, 0, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, 0}, {2, 2, 0, 0}, {3, 2, 0, 0}, {3, 3, 0, 0}, {1, 0, 1, 0}, {3, 2, 1, 0},
		{1, 2, 0, 1}, {3, 2, 0, 1}, {1, 2, 0, 2}, {3, 2, 0, 2}} {
		k := kr[0]
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: k, Alpha: 0.7, NBest: k, NoRepeat: kr[1]}
		unbanned := o
		bans[kr[3]](&o)
		plain := generate(t, m, feats, o)
		var av [][]int32
		if kr[2] == 1 {
			av = avoid
		}
		got := generateConstrained(t, m, feats, images, o, cons, av)
		if kr[3] != 0 {
			for b, hs := range generateConstrained(t, m, feats, images, unbanned, cons, av) {
				if len(hs) > 0 && len(got[b]) > 0 && !slices.Equal(hs[0].Tokens, got[b][0].Tokens) {
					bannedBy[kr[3]]++
				}
			}
		}
		withoutAvoid := got
		if av != nil {
			withoutAvoid = generateConstrained(t, m, feats, images, o, cons, nil)
		}
		if len(got) != len(images) {
			t.Fatalf("K=%d: %d images' hypotheses for %d images", k, len(got), len(images))
		}
		for b, img := range images {
			var avb []int32
			if av != nil {
				avb = av[b]
				if len(got[b]) > 0 && len(withoutAvoid[b]) > 0 && !slices.Equal(got[b][0].Tokens, withoutAvoid[b][0].Tokens) {
					avoided++
				}
			}
			want := ref.constrained(feats[int(img)*F:int(img+1)*F], o, cons[b], avb)
			if len(got[b]) != min(len(want), k) {
				t.Fatalf("K=%d image %d: %d hypotheses, reference %d", k, b, len(got[b]), len(want))
			}
			for i, h := range got[b] {
				// Captions of equal log-probability (this model repeats words
				// with saturated states) may come in either order, float32
				// against float64; anything else must be the reference's.
				if sameHyp(h, want[i]) {
					if math.Abs(h.Forced-want[i].Forced) > 1e-4 || (len(cons[b]) > 0) != (h.Forced < 0) {
						t.Errorf("K=%d image %d hypothesis %d: forced log-probability %g, reference %g", k, b, i, h.Forced, want[i].Forced)
					}
					same++
				} else if math.Abs(h.LogProb-want[i].LogProb) > 1e-4 || math.Abs(h.Score-want[i].Score) > 1e-4 {
					t.Errorf("K=%d image %d hypothesis %d: got %v, reference %v", k, b, i, h, want[i])
				}
				all++
				for j, c := range cons[b] {
					if !slices.ContainsFunc(h.Tokens, func(tok int32) bool { return slices.Contains(c, tok) }) {
						t.Errorf("K=%d image %d hypothesis %v misses constraint %d %v", k, b, h.Tokens, j, c)
					}
				}
				if slices.ContainsFunc(h.Tokens, func(tok int32) bool { return slices.Contains(avb, tok) }) {
					t.Errorf("K=%d image %d hypothesis %v says a token of %v", k, b, h.Tokens, avb)
				}
			}
			if av == nil && len(got[b]) > 0 && !slices.Equal(got[b][0].Tokens, plain[img][0].Tokens) {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Error("no constraint changed a caption; the test constrains nothing the model avoids")
	}
	if avoided == 0 {
		t.Error("no token to avoid changed a caption; the test bans nothing the model says")
	}
	if same < all*9/10 {
		t.Errorf("only %d of %d hypotheses are the reference's token for token", same, all)
	}
	if bannedBy[1] == 0 || bannedBy[2] == 0 {
		t.Errorf("guided captions changed by the X-and-X ban: %d, by the ban on placing a thing in itself: %d; want some of each (the test bans nothing the model says)", bannedBy[1], bannedBy[2])
	}
}

// A caption must fit its constraints in MaxLen words: two constraints cannot
// be met in one word, so there is no answer.
func TestConstrainedWithoutRoomHasNoAnswer(t *testing.T) {
	m, _, feats := peakedModel(t, tinyConfig())
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 1, Beam: 2, NBest: 1}
	got := generateConstrained(t, m, feats[:m.Cfg.InputDim()], nil, o, [][]Constraint{{{5}, {6}}}, nil)
	if len(got[0]) != 0 {
		t.Errorf("got %v, want no hypothesis", got[0])
	}
}

func TestConstrainedErrors(t *testing.T) {
	m, _, feats := peakedModel(t, tinyConfig())
	buf := m.Device().Alloc(len(feats))
	defer m.Device().Free(buf)
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 2}
	for _, tc := range []struct {
		images []int32
		cons   [][]Constraint
		avoid  [][]int32
		want   string
	}{
		{[]int32{0, 5}, make([][]Constraint, 2), nil, "decoder: image position 5 is outside the 5 images of the features"},
		{[]int32{-1}, make([][]Constraint, 1), nil, "decoder: image position -1 is outside the 5 images of the features"},
		{[]int32{4, 1}, make([][]Constraint, 3), nil, "decoder: constraints for 3 images, want 2"},
		{nil, make([][]Constraint, 4), nil, "decoder: constraints for 4 images, want 5"},
		{[]int32{4, 3, 2}, [][]Constraint{nil, {{3}}, nil}, [][]int32{nil, {3}, nil}, "decoder: image 3: token 3 is both a constraint's and one to avoid"},
		{[]int32{4, 3, 2}, [][]Constraint{nil, nil, {{9}}}, nil, "decoder: image 2: constraint token 9 is outside the vocabulary's words (0..8, not <start>, <end>, <pad> or <unk>)"},
		{nil, make([][]Constraint, 5), make([][]int32, 4), "decoder: tokens to avoid for 4 images, want 5 (or none: nil)"},
		{nil, [][]Constraint{nil, {{3}}, nil, nil, nil}, [][]int32{nil, {3}, nil, nil, nil}, "decoder: image 1: token 3 is both a constraint's and one to avoid"},
		{nil, make([][]Constraint, 5), [][]int32{nil, nil, {2}, nil, nil}, "decoder: image 2: token 2 to avoid is <end>, which would keep every caption from ending"},
		{nil, make([][]Constraint, 5), [][]int32{nil, nil, nil, {9}, nil}, "decoder: image 3: token 9 to avoid is outside the vocabulary (0..8)"},
		{nil, [][]Constraint{nil, {{3}, {4}, {5}, {6}}, nil, nil, nil}, nil, "decoder: image 1 has 4 constraints; at most 3 (the search keeps 2^C beams)"},
		{nil, [][]Constraint{nil, nil, {{}}, nil, nil}, nil, "decoder: image 2: constraint 0 has no tokens"},
		{nil, [][]Constraint{nil, nil, nil, {{2}}, nil}, nil, "decoder: image 3: constraint token 2 is outside the vocabulary's words (0..8, not <start>, <end>, <pad> or <unk>)"},
		{nil, [][]Constraint{nil, nil, nil, nil, {{9}}}, nil, "decoder: image 4: constraint token 9 is outside the vocabulary's words (0..8, not <start>, <end>, <pad> or <unk>)"},
		{nil, [][]Constraint{nil, {{4, text.UnkID}}, nil, nil, nil}, nil, "decoder: image 1: constraint token 3 is outside the vocabulary's words (0..8, not <start>, <end>, <pad> or <unk>)"},
	} {
		images := tc.images
		if images == nil {
			images = allImages(5)
		}
		_, err := m.GenerateConstrained(context.Background(), buf, images, o, tc.cons, tc.avoid, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v, %v, %v: got error %v, want %q", images, tc.cons, tc.avoid, err, tc.want)
		}
	}
	worn := o
	worn.Heads.Worn = []int32{5, 2}
	if _, err := m.GenerateConstrained(context.Background(), buf, allImages(5), worn, make([][]Constraint, 5), nil, nil); err == nil ||
		err.Error() != "decoder: Heads.Worn holds <end> (token 2), which would keep a caption about a guided animal from ending; list only words" {
		t.Errorf("<end> among the worn words: got error %v", err)
	}
	if _, err := m.GenerateConstrained(context.Background(), buf, allImages(5), o, make([][]Constraint, 5), nil, make([]bool, 4)); err == nil ||
		err.Error() != "decoder: loose flags for 4 images, want 5 (or none: nil)" {
		t.Errorf("4 loose flags for 5 images: got error %v", err)
	}
	short := buf.Slice(0, buf.Len()-1)
	want := fmt.Sprintf("decoder: %d feature values are not a whole number of images of %d features", short.Len(), m.Cfg.InputDim())
	if _, err := m.GenerateConstrained(context.Background(), short, []int32{0}, o, make([][]Constraint, 1), nil, nil); err == nil || err.Error() != want {
		t.Errorf("features one value short: got error %v, want %q", err, want)
	}
}

// Tokens to avoid widen each row's candidates beyond what the no-repeat bans
// need (at most MaxLen): with 20 of 50 words to avoid and captions of at most
// 2 words, the search still finds the naive search's captions, none of them
// saying an avoided word.
func TestConstrainedAvoidsManyTokens(t *testing.T) {
	c := tinyConfig()
	c.Vocab = 50
	m, ref, feats := smallVocabModel(t, c, 9)
	F := c.InputDim()
	B := len(feats) / F
	avoid := make([][]int32, B)
	for b := range avoid {
		for w := range 20 {
			avoid[b] = append(avoid[b], int32(3+(b+w)%47))
		}
	}
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 2, Beam: 3, Alpha: 0.7, NBest: 3, NoRepeat: 2}
	got := generateConstrained(t, m, feats, nil, o, make([][]Constraint, B), avoid)
	for b := range got {
		want := ref.constrained(feats[b*F:(b+1)*F], o, nil, avoid[b])
		for i, h := range got[b] {
			if i >= len(want) || !sameHyp(h, want[i]) {
				t.Fatalf("image %d hypothesis %d: got %v, reference %v", b, i, h, want)
			}
			if slices.ContainsFunc(h.Tokens, func(tok int32) bool { return slices.Contains(avoid[b], tok) }) {
				t.Errorf("image %d: %v says a word to avoid", b, h.Tokens)
			}
		}
	}
}

// allocCounter counts a device's allocations and frees.
type allocCounter struct {
	gpu.Device
	allocs, frees int
}

func (d *allocCounter) Alloc(n int) gpu.Buf {
	d.allocs++
	return d.Device.Alloc(n)
}

func (d *allocCounter) Free(b gpu.Buf) {
	d.frees++
	d.Device.Free(b)
}

// A constrained search allocates no device memory once one of its size has
// run: tag-guided serving runs one or two a batch, and on CUDA every buffer
// freed waits for the device (cuMemFree synchronises). Close frees what the
// searches kept.
func TestConstrainedKeepsItsBuffers(t *testing.T) { bothArchs(t, testConstrainedKeepsItsBuffers) }

func testConstrainedKeepsItsBuffers(t *testing.T, c Config) {
	dev := &allocCounter{Device: openCPU(t)}
	m, err := New(dev, c, 12)
	if err != nil {
		t.Fatal(err)
	}
	feats := make([]float32, 4*c.InputDim())
	for i := range feats {
		feats[i] = float32(i%7) - 3
	}
	buf := dev.Alloc(len(feats))
	dev.Upload(buf, feats)
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 2}
	search := func(images []int32, cons [][]Constraint) int {
		before := dev.allocs
		if _, err := m.GenerateConstrained(context.Background(), buf, images, o, cons, nil, nil); err != nil {
			t.Fatal(err)
		}
		return dev.allocs - before
	}
	if n := search([]int32{3, 1}, [][]Constraint{{{5}, {6, 7}}, {{4}}}); n == 0 {
		t.Fatal("the first search allocated nothing; the test counts the wrong device")
	}
	if n := search([]int32{0, 2}, [][]Constraint{{{4}}, {{5}, {6, 7}}}); n != 0 {
		t.Errorf("a second search of the same size allocated %d buffers", n)
	}
	if n := search([]int32{2}, [][]Constraint{{{7}}}); n != 0 {
		t.Errorf("a smaller search allocated %d buffers", n)
	}
	// A larger one grows the kept buffers, freeing those it replaces (the
	// count at Close below would tell a leak).
	if n := search([]int32{0, 1, 2, 3}, [][]Constraint{{{4}}, {{5}}, {{6, 7}}, {{4}, {5}}}); n == 0 {
		t.Errorf("a larger search allocated nothing")
	}
	dev.Free(buf)
	m.Close()
	if dev.allocs != dev.frees {
		t.Errorf("%d buffers allocated, %d freed after Close", dev.allocs, dev.frees)
	}
}

// markovStepper is a model whose next word depends on the word fed alone
// (row logp[w] after w), so that a test puts the search's candidates where it
// wants them; its state is the word, so advance, spread and keep have
// nothing to do.
type markovStepper struct {
	dev  gpu.Device
	logp [][]float32
	buf  gpu.Buf
}

func (s *markovStepper) step(toks []int32) gpu.Buf {
	host := make([]float32, 0, len(toks)*len(s.logp))
	for _, w := range toks {
		host = append(host, s.logp[w]...)
	}
	out := gpu.Grow(s.dev, &s.buf, len(host)).Slice(0, len(host))
	s.dev.Upload(out, host)
	return out
}
func (*markovStepper) advance([]int32) {}
func (*markovStepper) spread(int)      {}
func (*markovStepper) keep([]int32)    {}

// A constraint with more tokens than the beam, all of them ranked first:
// each row's candidates must reach past them to the words that keep state
// 0's beams (its top-k holds 2K + the constraint tokens + the bans). With
// top 2K + bans alone, "8" was never a candidate, and the search missed
// "8 10" (log-prob -3.02) for "4" (-3.69).
func TestConstrainedReachesPastConstraintTokens(t *testing.T) {
	const V = 12
	logp := make([][]float32, V)
	uniform := func(p float64) []float32 {
		row := make([]float32, V)
		for i := range row {
			row[i] = float32(math.Log(p))
		}
		return row
	}
	for w := range logp {
		logp[w] = uniform(1.0 / V)
	}
	// After <start>: the constraint's tokens 4, 5, 6 first, then <end>, 7 and 8.
	logp[1] = uniform(0.04 / 6)
	for w, p := range map[int]float64{4: .3, 5: .25, 6: .2, 2: .1, 7: .06, 8: .05} {
		logp[1][w] = float32(math.Log(p))
	}
	logp[8] = uniform(0.01 / 11) // 8 is followed by 10, the constraint's fourth token
	logp[8][10] = float32(math.Log(.99))
	logp[10] = uniform(0.01 / 11) // and 10 by <end>
	logp[10][2] = float32(math.Log(.99))
	dev := cpu.New(1)
	defer dev.Close()
	var gathered gpu.Buf
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 4, Beam: 2, NBest: 1}
	hyps, err := constrainedBeam(context.Background(), dev, &markovStepper{dev: dev, logp: logp}, 1, V, 0, o, [][]Constraint{{{4, 5, 6, 10}}}, nil, nil, 2, &gathered)
	if err != nil {
		t.Fatal(err)
	}
	if len(hyps[0]) == 0 || !slices.Equal(hyps[0][0].Tokens, []int32{8, 10}) || math.Abs(hyps[0][0].LogProb-math.Log(.05*.99*.99)) > 1e-5 {
		t.Errorf("best caption %v, want 8 10 at log-prob %.4f", hyps[0], math.Log(.05*.99*.99))
	}
}

// A constraint's word is held to NoRepeat's bans as any word: with
// Placement.Kinds, one the hypothesis never said can be banned ("a man
// riding a bike on a unicycle", the unicycle guided), and the search had met
// the constraint with it there anyway.
func TestConstrainedWordsKeepTheKindBan(t *testing.T) {
	const V, on, bike, unicycle, man = 9, 4, 5, 6, 7
	logp := make([][]float32, V)
	for w := range logp {
		logp[w] = make([]float32, V)
		for i := range logp[w] {
			logp[w][i] = float32(math.Log(0.1 / (V - 1)))
		}
		// No caption ends (the search runs to MaxLen, and answers the
		// all-met state's live beams), and the unicycle comes after "on"
		// alone.
		logp[w][2], logp[w][unicycle] = float32(math.Log(1e-9)), float32(math.Log(1e-9))
	}
	// start -> man -> bike -> on -> unicycle, each at 0.9.
	for from, to := range map[int]int{1: man, man: bike, bike: on, on: unicycle} {
		logp[from][to] = float32(math.Log(0.9))
	}
	dev := cpu.New(1)
	defer dev.Close()
	var gathered gpu.Buf
	p := Placement{Places: []int32{on}, Reusable: make([]bool, V), Kinds: [][]int32{{bike, unicycle}}}
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 4, Beam: 2, NBest: 1, NoRepeat: 2, Placement: p}
	hyps, err := constrainedBeam(context.Background(), dev, &markovStepper{dev: dev, logp: logp}, 1, V, 0, o, [][]Constraint{{{unicycle}}}, nil, nil, 2, &gathered)
	if err != nil {
		t.Fatal(err)
	}
	if len(hyps[0]) == 0 {
		t.Fatal("no caption meets the constraint")
	}
	seq := hyps[0][0].Tokens
	if !slices.Contains(seq, unicycle) {
		t.Errorf("caption %v does not meet the constraint", seq)
	}
	for i := range seq {
		if placesItself(seq[:i+1], p, 0) {
			t.Errorf("caption %v places word %d in its kind", seq, seq[i])
		}
	}
}

// A kind's ban lists more words than a caption has said: greedy's and beam
// search's top-k buffers make room for them (a buffer of 1 + MaxLen had
// been sliced past its end).
func TestKindBansFitTheBuffers(t *testing.T) {
	const V, on, man, bike = 20, 4, 7, 8
	logp := make([][]float32, V)
	for w := range logp {
		logp[w] = make([]float32, V)
		for i := range logp[w] {
			logp[w][i] = float32(math.Log(0.1 / (V - 1)))
		}
	}
	for from, to := range map[int]int{1: man, man: bike, bike: on} {
		logp[from][to] = float32(math.Log(0.9))
	}
	kind := make([]int32, 0, 10)
	for w := int32(bike); w < bike+10; w++ {
		kind = append(kind, w)
	}
	dev := cpu.New(1)
	defer dev.Close()
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 4, NBest: 1, NoRepeat: 2,
		Placement: Placement{Places: []int32{on}, Reusable: make([]bool, V), Kinds: [][]int32{kind}}}
	for _, k := range []int{1, 2} {
		o.Beam = k
		s := &markovStepper{dev: dev, logp: logp}
		var hyps [][]Hypothesis
		var err error
		if k == 1 {
			hyps, err = greedy(context.Background(), dev, s, 1, V, 0, o)
		} else {
			var gathered gpu.Buf
			hyps, err = constrainedBeam(context.Background(), dev, s, 1, V, 0, o, [][]Constraint{nil}, nil, nil, 1, &gathered)
		}
		if err != nil || len(hyps[0]) == 0 {
			t.Fatalf("beam %d: %v, %v", k, hyps, err)
		}
		if seq := hyps[0][0].Tokens; len(seq) == 4 && slices.Contains(kind, seq[3]) {
			t.Errorf("beam %d: %v places a bike's kind on it", k, seq)
		}
	}
}
