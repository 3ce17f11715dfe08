package decoder

import "slices"

// Heads is where constrained beam search may write a guided noun (a token of
// one of the image's constraints), a guided animal (one that Animals marks)
// above all. The
// search puts a constraint's token wherever it costs least, and for an animal
// the decoder hardly knows (a panda, said as its donor "bear") that was often
// a place or a modifier: "a man is sitting on a panda", "a black dog is
// running through the gorilla", "a man is sitting on a rock lizard", "a group
// of crab men" (12 of the 59 guided captions of testdata/ood). So:
//   - a guided animal meets its constraint only as the head of a noun phrase:
//     first, or right after a Leads word (an article, a number, an adjective,
//     "with", "and", "of");
//   - and outside a place phrase, unless it is one of Mounts ("sitting on a
//     camel"): a phrase as Placement reads one, but after any of Places,
//     prepositions of place and of way ("running through the gorilla"). That
//     keeps "a man in a red shirt is holding a snake" out too, since the
//     phrase of "in" lasts while at most two things follow it: the decoder,
//     which sees a person in every photo, otherwise wrote "a man in a blue
//     shirt is climbing a panda" for a red panda alone on a branch;
//   - no thing follows a guided animal ("a monkey toy"): no word that
//     Placement's tables call neither reusable nor a place, nor <end>;
//   - while a guided animal is all the things a caption has said (its
//     subject), none of Worn, the words for what people wear, comes: the
//     decoder went on "a parrot in a red shirt". Dogs in sweaters (3% of
//     Flickr8k's dog captions dress the dog) are lost with it when guided.
//
// And no guided noun, an animal or not, comes right after one of Copulas
// (forms of "be"): "a boy is tricycle on a sidewalk", "three dogs are sled in
// the snow" (8 of the 616 guided captions of the Flickr8k train split said
// so; the rule changed 16, the search taking other paths).
//
// With Heads' zero value, guided nouns go anywhere.
type Heads struct {
	Animals, Mounts, Leads []bool // by token id; ids past a table's end are false
	Worn, Places, Copulas  []int32
}

// Animal says whether h names w an animal (Animals).
func (h Heads) Animal(w int32) bool { return has(h.Animals, w) }

// has says whether tab, a table by token id, marks w.
func has(tab []bool, w int32) bool { return int(w) < len(tab) && tab[w] }

// thing says whether w is a thing by Placement's tables: neither free nor
// <end>.
func (o DecodeOptions) thing(w int32) bool { return w != o.End && !o.Placement.free(w) }

// guidedAnimal says whether w names an animal and, by guided, meets one of the
// image's constraints.
func (o DecodeOptions) guidedAnimal(w int32, guided func(int32) bool) bool {
	return o.Heads.Animal(w) && guided(w)
}

// endsInGuidedAnimal says whether tokens end in a guided animal, which no
// thing may follow (Heads).
func (o DecodeOptions) endsInGuidedAnimal(tokens []int32, guided func(int32) bool) bool {
	n := len(tokens)
	return n > 0 && o.guidedAnimal(tokens[n-1], guided)
}

// undressed says whether the only thing tokens have said is a guided animal:
// none of Heads.Worn may come next.
func (o DecodeOptions) undressed(tokens []int32, guided func(int32) bool) bool {
	subject := int32(-1)
	for _, w := range tokens {
		switch {
		case !o.thing(w), w == subject:
		case subject >= 0:
			return false // a second thing: worn words may be its
		default:
			subject = w
		}
	}
	return subject >= 0 && o.guidedAnimal(subject, guided)
}

// mayMeet says whether Heads' rules let a hypothesis of tokens meet an unmet
// constraint with its token w (NoRepeat's bans, which can forbid such a word
// though the hypothesis has not said it, by Placement.Kinds, are checked
// beside it).
func (o DecodeOptions) mayMeet(tokens []int32, w int32, guided func(int32) bool) bool {
	h := o.Heads
	switch {
	case o.endsInGuidedAnimal(tokens, guided) && o.thing(w):
		return false
	case o.undressed(tokens, guided) && slices.Contains(h.Worn, w):
		return false
	case len(tokens) > 0 && slices.Contains(h.Copulas, tokens[len(tokens)-1]):
		return false
	case !o.guidedAnimal(w, guided):
		return true
	}
	if n := len(tokens); n > 0 && !has(h.Leads, tokens[n-1]) {
		return false
	}
	places := Placement{Places: h.Places, Reusable: o.Placement.Reusable}
	return has(h.Mounts, w) || places.phrase(tokens, o.Coordination.And) < 0
}
