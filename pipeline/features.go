package pipeline

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/palette"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
)

// Vocab maps between a model's token ids and words (*text.Vocab).
type Vocab interface {
	Words(ids []int32) []string
	ID(word string) int
}

// Decoder is a caption model with its vocabulary and, optionally, the Tagger
// that gives each Result its tags and guided decoding; without one, Results
// have neither (the trainer's dev evaluation). NewDecoder makes one.
type Decoder struct {
	Model  *decoder.Model
	Vocab  Vocab
	Tagger *Tagger
	// bans is the vocabulary's ids that decoding's bans and Heads read, which
	// NewDecoder finds once (placement and heads read every word); a Decoder
	// built without it finds them at every batch.
	bans *banWords
}

// NewDecoder is model m with its vocabulary v and tagger t (nil: none).
func NewDecoder(m *decoder.Model, v Vocab, t *Tagger) Decoder {
	return Decoder{Model: m, Vocab: v, Tagger: t, bans: newBanWords(v, m.Cfg.Vocab)}
}

// banWords is the ids of the words that decoding's vocabulary bans and
// guided decoding's rule on where an animal goes (decoder.Heads) read.
type banWords struct {
	coordination decoder.Coordination
	placement    decoder.Placement
	heads        decoder.Heads
}

// animal says whether one of nm's tokens is an animal by Heads' table: a
// token Heads' rules on animals would place.
func (b *banWords) animal(nm naming) bool {
	return slices.ContainsFunc(nm.tokens, b.heads.Animal)
}

// newBanWords finds the ban words of v, which has n words.
func newBanWords(v Vocab, n int) *banWords {
	return &banWords{coordination: coordination(v), placement: placement(v, n), heads: heads(v, n)}
}

// featureBatch is how many images CaptionFeatures decodes at once: features
// already on the device cost no upload, so batches are as large as the
// decoder's workspace comfortably allows.
const featureBatch = 100

// CaptionFeatures captions the n images of a (n, InputDim) feature buffer on
// the model's device, featureBatch at a time: eval on cached features and the
// trainer's dev evaluation, which have every image's features on the device
// already.
func CaptionFeatures(ctx context.Context, d Decoder, feats gpu.Buf, n int, p Plan) ([]Result, error) {
	F := d.Model.Cfg.InputDim()
	out := make([]Result, 0, n)
	for lo := 0; lo < n; lo += featureBatch {
		b := min(featureBatch, n-lo)
		f := feats.Slice(lo*F, b*F)
		res, err := d.generate(ctx, f, f, b, p, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// generate captions n images whose features are on the model's device: the
// best hypothesis of each, with the n-best list of a beam search, and the tags, from tagFeats (the features of the ImageNet encoder:
// feats, unless the model's encoder was fine-tuned). With p.Guide, an image whose caption misses the noun of a
// tag at least p.GuideThreshold probable is decoded again by constrained beam
// search over those nouns, and keeps the plain caption only when no caption
// naming them fits in max_len words. A guided caption that still names an
// animal of the plain caption the classifier rules out (ruledOut) is
// searched for once more without it; only the best caption is checked, so
// the n-best alternatives may still name it.
//
// With guidance on and no attention weights asked for, a blank photo gets
// blankCaption's caption, and a photo of things alone (its LoneProbe
// probability at least LoneAbove, and no person or animal the classifier's
// top tag) objectCaption's, from its look: looks are the images'
// palette.Summary, nil where the features come without them
// (CaptionFeatures), which leaves every caption the decoder's.
func (d Decoder) generate(ctx context.Context, feats, tagFeats gpu.Buf, n int, p Plan, looks []palette.Summary) ([]Result, error) {
	bans := d.bans
	if bans == nil {
		bans = newBanWords(d.Vocab, d.Model.Cfg.Vocab)
	}
	p.Coordination, p.Placement, p.Heads = bans.coordination, bans.placement, bans.heads
	hyps, err := d.Model.Generate(ctx, feats, n, p.DecodeOptions)
	if err != nil {
		return nil, err
	}
	out := make([]Result, n)
	for i, hs := range hyps {
		out[i] = d.result(hs, p, nil)
	}
	if d.Tagger == nil || (p.Tags == 0 && !p.Guide) {
		return out, nil
	}
	// A blank photo's or a lone object's caption may replace the decoder's
	// only with guidance on and no attention asked for; the probe answers
	// only then.
	ownCaptions := looks != nil && p.Guide && !p.Attention
	probs, alone, err := d.Tagger.probs(tagFeats, n, ownCaptions)
	if err != nil {
		return nil, err
	}
	var guided []int32
	var cons [][]decoder.Constraint
	var avoid [][]int32
	var names [][]naming
	var loose []bool // images whose guided animals go anywhere (headsAbove)
	// One Select serves every list: the tags shown and the nouns guidance
	// insists on are each a prefix of the most probable nouns, cut at its own
	// threshold (above), and the most probable, however improbable, names a
	// lone object (its probability is the caption's confidence).
	k := p.Tags
	if p.Guide {
		k = max(k, decoder.MaxConstraints)
	}
	for i := range out {
		all, err := tags.Select(probs[i*tags.NumClasses:(i+1)*tags.NumClasses], k, 0)
		if err != nil {
			return nil, err
		}
		if p.Tags > 0 {
			out[i].Tags = above(all[:min(p.Tags, len(all))], p.TagThreshold)
		}
		if !p.Guide {
			continue
		}
		if ownCaptions {
			if colour, sure, ok := looks[i].Blank(); ok {
				out[i] = blankCaption(colour, sure, p.MaxLen).instead(out[i])
				continue
			}
			if alone != nil && alone[i] >= LoneAbove && !livingNoun(all[0].Noun) {
				backdrop, _ := looks[i].Backdrop()
				out[i] = objectCaption(all[0], float32(p.GuideThreshold), alone[i], looks[i].Colours(), backdrop, p.MaxLen).instead(out[i])
				continue
			}
		}
		missing := false
		var ns []naming
		var cs []decoder.Constraint
		for _, t := range above(all[:min(decoder.MaxConstraints, len(all))], p.GuideThreshold) {
			nm, ok := d.Tagger.naming(d.Vocab, t.Noun)
			if !ok {
				continue
			}
			nm.prob = t.Prob
			ns, cs = append(ns, nm), append(cs, nm.tokens)
			missing = missing || !tags.Mentions(out[i].Caption, t.Noun)
		}
		if missing {
			guided, cons, names = append(guided, int32(i)), append(cons, cs), append(names, ns)
			loose = append(loose, slices.ContainsFunc(ns, func(nm naming) bool { return nm.prob < headsAbove && bans.animal(nm) }))
			avoid = append(avoid, ruledOut(d.Vocab, probs[i*tags.NumClasses:(i+1)*tags.NumClasses], out[i].Tokens, ns))
		}
	}
	if len(guided) == 0 {
		return out, nil
	}
	ghyps, err := d.Model.GenerateConstrained(ctx, feats, guided, p.DecodeOptions, cons, nil, loose)
	if err != nil {
		return nil, err
	}
	// A guided caption that still names an animal the classifier rules out
	// (ruledOut) is decoded once more without it. Only those: banning
	// words reshapes every beam of the search, so a caption without them
	// would change too ("A small cat is laying on the floor." became "... is
	// playing with a pacifier." when "dog" was banned from the start).
	var again, at []int32
	var againCons [][]decoder.Constraint
	var againAvoid [][]int32
	var againLoose []bool
	for j, i := range guided {
		if len(ghyps[j]) > 0 && slices.ContainsFunc(ghyps[j][0].Tokens, func(t int32) bool { return slices.Contains(avoid[j], t) }) {
			again, at = append(again, i), append(at, int32(j))
			againCons, againAvoid, againLoose = append(againCons, cons[j]), append(againAvoid, avoid[j]), append(againLoose, loose[j])
		}
	}
	if len(again) > 0 {
		hyps, err := d.Model.GenerateConstrained(ctx, feats, again, p.DecodeOptions, againCons, againAvoid, againLoose)
		if err != nil {
			return nil, err
		}
		for k, j := range at {
			if len(hyps[k]) > 0 {
				ghyps[j] = hyps[k]
			}
		}
	}
	for j, i := range guided {
		if len(ghyps[j]) == 0 {
			continue
		}
		r := d.result(ghyps[j], p, names[j])
		r.Tags = out[i].Tags
		for _, nm := range names[j] {
			r.Guided = append(r.Guided, nm.noun)
		}
		out[i] = r
	}
	return out, nil
}

// headsAbove is how probable the tags of the animals an image is guided to
// must all be for decoder.Heads' rules on animals to place them: the
// classifier sees no people, and on Flickr8k's photos of them it gives
// 0.8-0.95 to an animal ("stingray" for a boy in a pool). There the rules made
// the wrong animal the subject ("A young stingray in a swimming pool.") where
// the search, free to put it anywhere, had tucked it away ("A young boy
// stingrays in a swimming pool."), which a reader prefers: judged blind, the
// captions before the rules won 15 to 6 below 0.95, and lost 4 to 15 above it
// (testdata/ood/judgements-session33.tsv). A variable only so that a test can
// move it.
var headsAbove float32 = 0.95

// coordination is v's ids of the words decoder.Coordination names, 0 for
// those v lacks.
func coordination(v Vocab) decoder.Coordination {
	return decoder.Coordination{And: wordID(v, "and"), Articles: [3]int32{wordID(v, "a"), wordID(v, "an"), wordID(v, "the")}}
}

// wordID is v's id of w, 0 when v lacks it.
func wordID(v Vocab, w string) int32 {
	if i := v.ID(w); i != text.UnkID {
		return int32(i)
	}
	return 0
}

// placement is v's ids (v has n words) of decoder.Placement's place
// prepositions and of the words it lets a caption say again inside a place
// phrase: reusableInPlace's function words, numbers, colours, sizes and
// actions, and every -ing and -ed word but those that are things ("wrestling
// in a wrestling match", "a striped shirt on a striped towel", but "a
// building", "a sled").
func placement(v Vocab, n int) decoder.Placement {
	var p decoder.Placement
	p.Places = ids(v, "on in into onto down")
	p.Reusable = make([]bool, n)
	for i, w := range allWords(v, n) {
		p.Reusable[i] = !isThing(w)
	}
	for _, kind := range thingKinds {
		if words := ids(v, kind); len(words) > 1 {
			p.Kinds = append(p.Kinds, words)
		}
	}
	p.Postures, p.Rests, p.Unperchable = ids(v, postures), ids(v, "on onto"), ids(v, unperchable)
	return p
}

// postures and unperchable are placement's: no one sits or stands on a
// cellphone, which captions said after "sitting on a" ("A man in a blue shirt
// is sitting on a cellphone.", while talking on it).
const (
	postures    = "sitting sits sit standing stands stand laying lays lying lies kneeling kneels seated perched"
	unperchable = `cellphone cellphones phone camera cameras book microphone guitar guitars drink drinks cup cups
		bottle bottles video picture pictures paper newspaper magazine cigarette`
)

// ids is v's ids of the words of list that it has.
func ids(v Vocab, list string) []int32 {
	var out []int32
	for _, w := range strings.Fields(list) {
		if i := v.ID(w); i != text.UnkID {
			out = append(out, int32(i))
		}
	}
	return out
}

// thingKinds are the words that placement's ban takes for one thing: what a
// person rides on wheels or a board, what floats, what drives. Captions put
// one on another only by mistake ("a man is riding a bicycle on a bike",
// "a man kayaks on a boat", "a man is driving a jeep stuck on a car").
var thingKinds = []string{
	"bike bikes bicycle bicycles unicycle tricycle tricycles motorcycle motorcycles motorbike motorbikes scooter scooters skateboard skateboards atv",
	"boat boats kayak kayaks canoe canoes raft rafts",
	"car cars truck trucks jeep jeeps van bus suv",
}

// allWords is the words of v, which has n, by id.
func allWords(v Vocab, n int) []string {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i)
	}
	return v.Words(ids)
}

// reusableInPlace is placement's list of English function words, numbers,
// colours, sizes and the actions of captions that do not end in -ing
// ("sits", "ride"; not those as often things: "waves", "skis", "steps").
var reusableInPlace = wordSet(determiners, adjectives, `s
		of in on at into onto with by for from to near under over behind through across along around down up out off
		inside outside between beneath below above underneath atop within among upon beyond
		next beside toward towards against together front top side back middle bottom edge
		and or but while as than is are was were be has have it he she they him them there who which what
		jumps runs stands sits walks plays looks rides holds watches leaps climbs smiles takes carries poses catches
		wears gets makes swims chases flies performs tries slides goes drinks splashes throws kicks hangs prepares
		attempts lays dances talks leans hits points pushes drives eats reads waits lies raises enjoys falls blows
		shakes shows surfs follows gives laughs pulls puts says uses crouches kneels reaches balances grinds paddles
		bites rests chews flips leads licks passes rolls crosses dribbles helps moves touches kisses stares begins
		crawls turns digs dives floats comes speaks hikes sniffs spins pours retrieves sings barks emerges hugs jogs
		relaxes sleeps stretches wades bends grabs picks shoots approaches descends lifts opens peeks travels bounces
		fetches juggles observes overlooks shovels sprays soars writes casts checks cheers squirts steers tackles
		trots wrestles sells
		play run jump sit stand walk ride swim climb look watch hold wait pose smile stare dance talk sleep eat drink
		read lie lay hang kneel lean sing push pull kick throw catch chase carry wear get go do make take land rest
		lands perches grazes`)

// determiners and adjectives are English words that come before a noun in a
// noun phrase: the words of reusableInPlace that a guided animal may follow
// (heads), with "with", "and" and "of".
const (
	determiners = `a an the this that these those his her their its my your our some each other another one all ` + counts
	// counts is the words that count more than one thing.
	counts     = `two three four five six seven eight nine ten several many few both`
	adjectives = `white black brown red blue green yellow pink orange purple grey gray tan silver golden blonde blond
		dark light bright colorful striped big small little large long short tall young old older elderly
		wet hot shirtless fluffy shaggy furry curly spotted muddy wooden snowy grassy sandy rocky busy crowded empty`
)

// wordSet is the set of the words of lists, each a whitespace-separated list.
func wordSet(lists ...string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, w := range strings.Fields(l) {
			m[w] = true
		}
	}
	return m
}

// heads is v's tables (v has n words) for decoder.Heads: its words that name
// animals (the forms of the classifier's animal nouns), those of them people
// ride (mounts), the words a guided animal may follow (leads), modifiers,
// worn words, animalPlaces, copulas; and for Uses, the Use of each word that
// names a class noun (uses), which of them stand bare (bareWord) and which
// are played, "in", "into" and the words that take a noun (takes, eats).
func heads(v Vocab, n int) decoder.Heads {
	h := decoder.Heads{Animals: make([]bool, n), Mounts: make([]bool, n), Leads: make([]bool, n), Modifiers: make([]bool, n),
		Uses: make([]decoder.Use, n), Bare: make([]bool, n), Played: make([]bool, n)}
	h.In, h.Into = wordID(v, "in"), wordID(v, "into")
	h.Wearing, h.Takes, h.Eats, h.Plays = ids(v, "wearing wears wear dressed"), ids(v, takes), ids(v, eats), ids(v, "playing play plays")
	for i, w := range allWords(v, n) {
		noun, ok := tags.NounOf(w)
		h.Animals[i] = ok && tags.AnimalNoun(noun)
		h.Mounts[i] = h.Animals[i] && mounts[noun]
		h.Leads[i] = leads[w]
		h.Modifiers[i] = modifiers[w]
		if noun, ok := tags.ClassNoun(w); ok {
			h.Uses[i], h.Bare[i], h.Played[i] = uses[tags.NounRole(noun)], bareWord(w, noun), played[noun]
		}
		if worn[w] {
			h.Worn = append(h.Worn, int32(i))
		}
		if animalPlaces[w] {
			h.Places = append(h.Places, int32(i))
		}
		if copulas[w] {
			h.Copulas = append(h.Copulas, int32(i))
		}
	}
	return h
}

// worn is the words for what people wear, which a caption about a guided
// animal does not say (decoder.Heads).
var worn = wordSet(`shirt shirts tshirt jacket jackets coat coats dress dresses hat hats helmet helmets cap caps
	uniform uniforms shorts pants jeans trousers sweater sweatshirt hoodie costume costumes outfit outfits suit suits
	swimsuit bikini vest scarf glasses sunglasses goggles boots shoes sneakers skirt gloves wetsuit jersey jerseys
	clothes clothing apron tie headband bandana backpack wearing wears dressed`)

// animalPlaces is the prepositions of place and of way whose object no
// guided animal is (unless it is a mount): "sitting on a panda", "running
// through the gorilla", "jumps over a kangaroo"; not "at", "near" or "behind"
// ("looking at a lizard").
var animalPlaces = wordSet("on in into onto through across over")

// copulas is the forms of "be", which no guided noun follows directly ("a
// boy is tricycle").
var copulas = wordSet("is are was were be")

// leads is the words a guided animal may follow (heads). Not actions: they
// gave "a group of people are playing crab".
var leads = wordSet(determiners, adjectives, "with and of baby giant wild s")

// modifiers is the words decoder.Heads reads past, with things, to find the
// preposition whose object a guided noun would be.
var modifiers = wordSet(determiners, adjectives)

// takes is the words after which a guided thing that is held may come
// (decoder.Heads.Takes): "with" and the verbs of captions that take
// something held. Not "at" ("a man is jumping into the water at the
// paddle"), nor eating and drinking, which take only food (eats: "a group of
// people are eating candles").
const takes = `with holding holds hold carrying carries carry throwing throws throw
	catching catches catch kicking kicks kick hitting hits hit swinging swings swing using uses use
	reading reads read pushing pushes push pulling pulls pull blowing blows blow chasing chases
	chase fetching fetches fetch retrieving retrieves retrieve grabbing grabs grab biting bites bite shaking shakes shake
	lifting lifts lift waving waves wave balancing balances balance juggling juggles juggle dribbling dribbles dribble
	tossing tosses toss bouncing bounces bounce shooting shoots shoot opening opens open`

// eats is the words after which guided food may also come
// (decoder.Heads.Eats): "eating a pizza". Not "of", which also gave
// "standing in front of a lemon".
const eats = "eating eats eat drinking drinks drink"

// played is the class nouns of the things people play, the only ones
// "playing" takes, bare or not ("playing ball", "playing guitars";
// decoder.Heads.Plays).
var played = wordSet(`ball guitar drum violin cello banjo flute saxophone horn trombone harmonica accordion xylophone
	oboe bassoon harp panpipe ocarina maraca gong`)

// bareWord says whether w, a word for noun, stands without an article: a
// plural (the plural of one of noun's forms), a noun always plural
// ("jeans"), or a mass noun ("coffee").
func bareWord(w, noun string) bool {
	if alwaysBare[noun] {
		return true
	}
	return slices.ContainsFunc(tags.Forms(noun), func(f string) bool { return f != w && tags.Plural(f) == w })
}

// alwaysBare is the class nouns that take no article: those always plural
// and mass nouns.
var alwaysBare = wordSet(`jeans pajamas binoculars sunglasses food coffee wine soup pasta chocolate
	makeup bread dessert hay lotion sunscreen perfume yarn velvet`)

// uses is the decoder.Use of each tags.Role but an animal's, which Heads'
// rules on animals place.
var uses = map[tags.Role]decoder.Use{tags.Worn: decoder.UseWorn, tags.Container: decoder.UseContainer, tags.Held: decoder.UseHeld, tags.Food: decoder.UseFood}

// mounts is the animal nouns (tags') people ride or sit on, which a caption
// may place ("a boy sitting on a camel", "a cowboy on a bull": tags names a
// bull or an ox a cow, a pony a horse). A noun said through its donor is
// the donor's: a zebra, said as "horse", is a mount.
var mounts = wordSet("horse camel elephant cow")

// isThing says whether w is a thing by placement's word lists.
func isThing(w string) bool { return !reusableInPlace[w] && !action(w) && !participle(w) }

// action says whether w is an -ing word that is no thing: "running", not
// "building".
func action(w string) bool { return strings.HasSuffix(w, "ing") && !thingsInIng[w] }

// participle says whether w is an -ed word that is no thing: "covered",
// "perched", not "sled".
func participle(w string) bool { return strings.HasSuffix(w, "ed") && !thingsInEd[w] }

// thingsInEd is the -ed words of captions that name things.
var thingsInEd = wordSet("bed shed sled speed breed")

// thingsInIng is the -ing words of captions that name things, which
// placement does not take for actions.
var thingsInIng = map[string]bool{"awning": true, "building": true, "ceiling": true, "clearing": true, "clothing": true,
	"crossing": true, "drawing": true, "fencing": true, "landing": true, "meeting": true, "opening": true, "outcropping": true,
	"painting": true, "railing": true, "ring": true, "seating": true, "setting": true, "sling": true, "something": true,
	"string": true, "swing": true, "wedding": true}

// above is the prefix of ts (most probable first) at least threshold probable.
func above(ts []tags.Tag, threshold float32) []tags.Tag {
	n := 0
	for n < len(ts) && ts[n].Prob >= threshold {
		n++
	}
	return ts[:n]
}

// result is the Result of an image's hypotheses, best first; names rewrite
// donor tokens into the nouns they stand for.
func (d Decoder) result(hs []decoder.Hypothesis, p Plan, names []naming) Result {
	words, from := d.words(hs[0].Tokens, names)
	r := Result{Caption: text.Sentence(words), Tokens: words, Score: hs[0].Score, Confidence: confidence(hs[0], p.MaxLen, names)}
	if hs[0].Attention != nil { // a row per word: a phrase noun's words share their token's
		r.Attention = make([][]float32, len(from))
		for i, k := range from {
			r.Attention[i] = hs[0].Attention[k]
		}
	}
	if p.Beam > 1 { // as many as asked for, one included; greedy decoding keeps one caption and has none
		for _, h := range hs {
			words, _ := d.words(h.Tokens, names)
			caption := text.Sentence(words)
			// Hypotheses that differ in a donor's token or an article
			// can read alike once written ("a bird", "an bird": "an
			// owl"): a reader is offered each sentence once, at its best.
			if slices.ContainsFunc(r.Alternatives, func(a Alternative) bool { return a.Caption == caption }) {
				continue
			}
			r.Alternatives = append(r.Alternatives, Alternative{Caption: caption, Score: h.Score, Confidence: confidence(h, p.MaxLen, names)})
		}
	}
	return r
}

// words are the words of ids, a donor's tokens written as the noun they stand
// for (a phrase noun as its words: "fire truck" is two), and for each word the
// index in ids of the token it came from.
func (d Decoder) words(ids []int32, names []naming) (words []string, from []int) {
	vocab := d.Vocab.Words(ids)
	words, from = make([]string, 0, len(ids)), make([]int, 0, len(ids))
	for k, id := range ids {
		w, guided := vocab[k], ""
		for _, nm := range names {
			if r, ok := nm.renamed[id]; ok {
				w = r
			}
			if slices.Contains(nm.tokens, id) {
				guided = nm.noun
			}
		}
		// A phrase noun standing in for its own last word ("fire truck" for
		// truck) after the decoder's first words of it: "fire fire truck".
		fields, said := strings.Fields(w), 0
		for p := len(fields) - 1; p > 0; p-- {
			if n := len(words); n >= p && slices.Equal(words[n-p:], fields[:p]) {
				said = p
				break
			}
		}
		before := words[:len(words)-said]
		// Guidance forces its noun after whatever the beam had written, for
		// the donor when there is one, so the words before it decide its
		// number: "a chickens" and "a white geese" are singular, and "a group
		// of crab are" plural (the vocabulary lacks many plurals: "frogs",
		// crab's donor's).
		if guided != "" {
			switch numberAt(before) {
			case singular:
				if w == tags.Plural(guided) {
					w = guided
				}
			case plural: // unless it modifies the next word: "two sled dogs"
				if w == guided && !uncountable[guided] && (k+1 == len(ids) || !isThing(vocab[k+1])) {
					w = tags.Plural(guided)
				}
			}
			fields = strings.Fields(w)
		}
		// The article agrees with the word after it: the decoder writes "a
		// orange", a guided noun comes after the donor's article ("a bird",
		// which the noun writes "an owl") or another word's ("a atm").
		if n := len(before); said == 0 && n > 0 && (before[n-1] == "a" || before[n-1] == "an") {
			words[n-1] = article(w)
		}
		fields = fields[said:]
		for _, f := range fields {
			words, from = append(words, f), append(from, k)
		}
	}
	return words, from
}

// number is how many things words count.
type number int

const (
	uncounted number = iota
	singular
	plural
)

// numberAt is the number words end in counting, adjectives after the count
// aside: singular after "a", "an" or "one" ("a small", "a black and white"),
// plural after more than one ("two", "several small", "a group of", "a herd
// of brown").
func numberAt(words []string) number {
	n := len(words)
	for n > 0 && (adjectiveSet[words[n-1]] || n > 1 && words[n-1] == "and" && adjectiveSet[words[n-2]]) {
		n--
	}
	switch {
	case n > 0 && (words[n-1] == "a" || words[n-1] == "an" || words[n-1] == "one"):
		return singular
	case n > 0 && manyWords[words[n-1]], n > 1 && words[n-1] == "of" && collectives[words[n-2]]:
		return plural
	}
	return uncounted
}

// manyWords, collectives and adjectiveSet are numberAt's words; uncountable
// is the guided nouns that stay singular after a count ("a lot of food").
var (
	manyWords    = wordSet(counts)
	collectives  = wordSet("group groups herd herds flock flocks pack packs pair couple school bunch family crowd lot lots line team swarm")
	adjectiveSet = wordSet(adjectives)
	uncountable  = wordSet("food fruit corn broccoli rice bread meat popcorn cheese water snow sand grass hay")
)

// article is the indefinite article before word: "an" before a vowel sound,
// told from its spelling ("an owl", "an hourglass", but "a unicycle").
func article(word string) string {
	switch {
	case strings.HasPrefix(word, "hour") || strings.HasPrefix(word, "honest"):
		return "an"
	case strings.HasPrefix(word, "uni") || strings.HasPrefix(word, "use") || strings.HasPrefix(word, "eu") || strings.HasPrefix(word, "one"):
		return "a"
	case word != "" && strings.ContainsRune("aeiou", rune(word[0])):
		return "an"
	}
	return "a"
}

// confidence is the geometric mean of the probabilities of the caption's
// words and its end, exp(log-prob / tokens): in [0, 1], the typical
// probability of each choice. The decoder's probabilities, except for a
// guided caption's nouns (names, which met its constraints): the decoder did
// not choose those, the encoder did, so theirs is the tag's probability. A
// caption cut at maxLen words has no end token.
func confidence(h decoder.Hypothesis, maxLen int, names []naming) float64 {
	n := len(h.Tokens) + 1
	if len(h.Tokens) >= maxLen {
		n = len(h.Tokens)
	}
	lp := h.LogProb
	if h.Forced != 0 {
		lp -= h.Forced
		for _, nm := range names {
			lp += math.Log(float64(nm.prob))
		}
	}
	return math.Exp(lp / float64(n))
}
