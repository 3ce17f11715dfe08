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
// A guided noun that is no animal goes where its Use lets it (Heads.fits):
// the search had put a guided ball, racket or puck where a caption has a
// shirt or a place ("a soccer player in a red ball", "a woman in a white
// shirt is running on a tennis racket", "two hockey players in the puck"),
// a gun or a harmonica where people sit ("a man is sitting on a gun"), and a
// wig or swimsuit where they are ("two girls are smiling in the swimsuit");
// barred from those, it made them subjects ("a soccer ball in a red
// uniform", "two bikinis are playing in the mud"), verbs ("two men balls on
// a green ball") and objects of any verb ("a young girl is running balls").
// So none is a subject, and each comes only after the words that take it:
// what is worn after Wearing or after a thing and "in", what is held after
// Takes. Where no caption fits so, the plain caption stands. (Held things
// as subjects, alone in their phrase and wearing nothing, named the object
// of a photo of it alone, "a yellow screwdriver is flying through the
// water", but on Flickr8k's photos gave "a ball in a red leotard is jumping
// in the air" and "two umbrellas are walking through the street".)
//
// With Heads' zero value, guided nouns go anywhere.
type Heads struct {
	Animals, Mounts, Leads, Modifiers []bool // by token id; ids past a table's end are false
	Worn, Places, Copulas             []int32
	// Uses is, by token id, where a guided noun that is no animal may go;
	// ids past its end go anywhere. Uses read In and Into, the vocabulary's
	// "in" and "into" (0 if it lacks them); by token id, the nouns that
	// stand Bare, without a modifier (plurals, "jeans", "coffee"), and those
	// Played; and these lists of words: Wearing, those a worn noun follows
	// ("wearing"; it also follows "and" after one of Worn or a worn noun);
	// Takes, those a held thing follows (verbs that take one, "holding",
	// "throws", and "with"); Eats, those food also follows ("eating", "drinking");
	// and Plays, those that take only Played nouns ("playing ball").
	Uses                        []Use
	Bare, Played                []bool
	In, Into                    int32
	Wearing, Takes, Eats, Plays []int32
}

// Use is where a guided noun of one kind of thing may go: what word its
// noun phrase may follow, read back past Modifiers and things ("sitting on
// a table harmonica" follows "on"); none of them goes first, as a subject.
type Use uint8

const (
	UseAnywhere  Use = iota // what people are on or in, and animals, which Heads' other rules place
	UseWorn                 // after "in" after a thing, or Wearing: "a woman in a pink wig", not "sitting in a wig"
	UseContainer            // after Takes, or "in" or "into" after a thing or a posture: "a puppy in a basket", not "sitting on a bucket"
	UseHeld                 // after Takes: held, played or used things
	UseFood                 // after Takes or Eats: "eating a pizza", "drinking coffee"
)

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

// fits says whether w, a guided noun, may come after tokens by its Use. It
// reads back over w's noun phrase so far, Modifiers, things and any word
// right after a modifier ("a swimming cap", "a red and white ball"), to the
// word the phrase follows: none (w would be part of the subject), a place
// preposition, or another word (an action, "with", "and"). The words that
// take a noun (Wearing, Takes, Eats, Plays) end the phrase but after an
// article, though captions' "swings" and "hits" are things and "holding" may
// follow a colour ("a man in red holding a ball"); after an article they are
// nouns ("riding a wave"). A noun not Bare needs a modifier in its
// phrase, but a Played one after one of Plays ("playing ball"): the search
// wrote "a soccer player is running ball" and "a group of children are
// playing book". Plays take nothing but Played nouns ("two children play
// shovels in the snow").
func (o DecodeOptions) fits(tokens []int32, w int32) bool {
	h := o.Heads
	if int(w) >= len(h.Uses) || h.Uses[w] == UseAnywhere {
		return true
	}
	use := h.Uses[w]
	// takes says whether tokens[i] is a word that takes a noun: one of the
	// lists, and not a noun itself, as after an article ("riding a wave").
	takes := func(i int) bool {
		x := tokens[i]
		verb := slices.Contains(h.Takes, x) || slices.Contains(h.Wearing, x) || slices.Contains(h.Eats, x) || slices.Contains(h.Plays, x)
		return verb && (i == 0 || !slices.Contains(o.Coordination.Articles[:], tokens[i-1]))
	}
	at, modified := len(tokens)-1, false
	for ; at >= 0; at-- {
		x := tokens[at]
		mod := has(h.Modifiers, x)
		if takes(at) || !mod && !o.thing(x) && (at == 0 || !has(h.Modifiers, tokens[at-1])) {
			break
		}
		modified = modified || mod
	}
	if at < 0 {
		return false // the subject
	}
	p := tokens[at]
	if !modified && !has(h.Bare, w) && !(has(h.Played, w) && slices.Contains(h.Plays, p)) {
		return false
	}
	// holder says whether the word before p is a thing that is not itself in
	// a place phrase ("a woman in a hat", "a puppy in a basket"; not "two boys
	// playing in the mud in a swimsuit"); only "in" and "into" ask.
	holder := func() bool {
		return at > 0 && o.thing(tokens[at-1]) && o.Placement.phrase(tokens[:at], o.Coordination.And) < 0
	}
	switch {
	case use == UseWorn && p == h.In:
		return holder() || at > 0 && slices.Contains(h.Wearing, tokens[at-1])
	case use == UseWorn && p == o.Coordination.And: // "a black jacket and tie"
		return at > 0 && (slices.Contains(h.Worn, tokens[at-1]) || int(tokens[at-1]) < len(h.Uses) && h.Uses[tokens[at-1]] == UseWorn)
	case use == UseWorn:
		return slices.Contains(h.Wearing, p)
	case use == UseContainer && (p == h.In || p == h.Into):
		return holder() || at > 0 && slices.Contains(o.Placement.Postures, tokens[at-1]) // "sitting in a basket", not "running in the cup"
	case slices.Contains(h.Plays, p):
		return has(h.Played, w) // "playing guitars", not "playing shovels": "playing with a shovel"
	case use == UseFood && slices.Contains(h.Eats, p):
		return true
	}
	return slices.Contains(h.Takes, p)
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
	case !o.fits(tokens, w):
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
