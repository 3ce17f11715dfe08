package decoder

import "slices"

// Heads is where constrained beam search may write a guided animal: a token
// that names an animal (Animals) and one of the image's constraints. The
// search puts a constraint's token wherever it costs least, and for an animal
// the decoder hardly knows (a panda, said as its donor "bear") that was often
// a place or a modifier: "a man is sitting on a panda", "a black dog is
// running through the gorilla", "a man is sitting on a rock lizard", "a group
// of crab men" (12 of the 59 guided captions of testdata/ood). So:
//   - a guided animal meets its constraint only as the head of a noun phrase:
//     first, or right after a Leads word (an article, a number, an adjective,
//     "with", "of"), and outside a place phrase unless it is one of Mounts
//     ("sitting on a camel"): a phrase as Placement reads one, but after any
//     of Places, prepositions of place and of way ("running through the
//     gorilla");
//   - no thing follows a guided animal (a word Placement's tables call
//     neither free nor a place: "a monkey toy");
//   - a caption whose subject (its first thing) is a guided animal says none
//     of Worn, the words for what people wear: a decoder that sees a person in
//     every photo went on "a parrot in a red shirt".
//
// It reads Placement's tables to tell things; with Heads' zero value, guided
// animals go anywhere.
type Heads struct {
	Animals, Mounts, Leads []bool // by token id; ids past a table's end are false
	Worn, Places           []int32
}

// has says whether tab, a table by token id, marks w.
func has(tab []bool, w int32) bool { return int(w) < len(tab) && tab[w] }

// thing says whether w is a thing by Placement's tables: neither free nor
// <end>.
func (o DecodeOptions) thing(w int32) bool { return w != o.End && !o.Placement.free(w) }

// guidedAnimal says whether w names an animal and, by guided, meets one of the
// image's constraints.
func (o DecodeOptions) guidedAnimal(w int32, guided func(int32) bool) bool {
	return has(o.Heads.Animals, w) && guided(w)
}

// afterHead says whether tokens end in a guided animal, which no thing may
// follow (Heads).
func (o DecodeOptions) afterHead(tokens []int32, guided func(int32) bool) bool {
	n := len(tokens)
	return n > 0 && o.guidedAnimal(tokens[n-1], guided)
}

// aboutAnimal says whether the subject of tokens, their first thing, is a
// guided animal, when they may say none of Heads.Worn.
func (o DecodeOptions) aboutAnimal(tokens []int32, guided func(int32) bool) bool {
	i := slices.IndexFunc(tokens, o.thing)
	return i >= 0 && o.guidedAnimal(tokens[i], guided)
}

// meets says whether a hypothesis of tokens may meet an unmet constraint with
// its token w by Heads' rules (NoRepeat's bans never forbid such a word: the
// hypothesis has not said it).
func (o DecodeOptions) meets(tokens []int32, w int32, guided func(int32) bool) bool {
	switch {
	case o.afterHead(tokens, guided) && o.thing(w):
		return false
	case o.aboutAnimal(tokens, guided) && slices.Contains(o.Heads.Worn, w):
		return false
	case !o.guidedAnimal(w, guided):
		return true
	case len(tokens) > 0 && !has(o.Heads.Leads, tokens[len(tokens)-1]):
		return false
	}
	places := Placement{Places: o.Heads.Places, Reusable: o.Placement.Reusable}
	return has(o.Heads.Mounts, w) || places.phrase(tokens, o.Coordination.And) < 0
}
