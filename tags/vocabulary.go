package tags

import (
	"slices"
	"strings"
	"sync"
)

// vocabulary lists the caption-level nouns the class map uses (the first word
// of each row) with the other words a caption may use for the same thing
// (synonyms, the young of an animal, common names). Plurals are added by
// Plural, so a row lists singular forms and only plurals Plural does not
// make ("fishes" beside its "fish").
//
// The generator (internal/gen) walks each ImageNet class up its WordNet
// hypernyms and stops at the first synset that has one of these words as a
// lemma, so a row here both names a noun and decides which classes fall
// into it: "bird" gathers the finches and jays, while "owl" and "parrot"
// keep their own. Keep each word in one row only.
var vocabulary = [][]string{
	// People (ImageNet's ballplayer, groom and scuba diver).
	{"person", "people", "man", "men", "woman", "women", "boy", "girl", "child", "children", "kid", "guy", "lady", "player", "diver", "groom", "bride"},

	// Mammals.
	{"dog", "puppy", "pup", "hound", "wild dog"},
	{"wolf", "wolves"},
	{"coyote"},
	{"fox"},
	{"hyena"},
	{"cat", "kitten", "kitty"},
	{"lion", "lioness"},
	{"tiger"},
	{"leopard"},
	{"jaguar"},
	{"cheetah"},
	{"cougar", "puma", "mountain lion"},
	{"lynx"},
	{"bear", "polar bear"},
	{"panda"},
	{"mongoose"},
	{"meerkat"},
	{"rabbit", "bunny"},
	{"hare"},
	{"hamster"},
	{"porcupine", "hedgehog"}, // ImageNet's class is "porcupine, hedgehog"
	{"squirrel"},
	{"marmot"},
	{"beaver"},
	{"guinea pig"},
	{"horse", "pony", "foal", "mare", "stallion"},
	{"zebra"},
	{"pig", "hog", "boar", "piglet"},
	{"warthog"},
	{"hippo", "hippopotamus"},
	{"cow", "cattle", "bull", "ox", "oxen", "calf", "calves"},
	{"buffalo", "bison"},
	{"sheep", "ram", "lamb"},
	{"goat", "ibex"},
	{"antelope", "gazelle", "impala"},
	{"camel", "dromedary"},
	{"llama", "alpaca"},
	{"weasel"},
	{"mink"},
	{"ferret"},
	{"otter"},
	{"skunk"},
	{"badger"},
	{"armadillo"},
	{"sloth"},
	{"orangutan"},
	{"gorilla"},
	{"chimpanzee", "chimp"},
	{"monkey", "ape", "gibbon", "baboon", "macaque"},
	{"lemur"},
	{"elephant"},
	{"koala"},
	{"kangaroo", "wallaby"},
	{"wombat"},
	{"platypus"},
	{"echidna"},
	{"whale", "orca"},
	{"seal", "sea lion"},
	{"dugong"},

	// Birds.
	{"bird"},
	{"chicken", "hen", "rooster", "cock", "chick"},
	{"ostrich"},
	{"owl"},
	{"eagle"},
	{"vulture"},
	{"parrot", "macaw", "cockatoo"},
	{"peacock"},
	{"duck", "duckling", "drake"},
	{"goose", "geese", "gosling"},
	{"swan"},
	{"penguin"},
	{"flamingo"},
	{"pelican"},
	{"hummingbird"},
	{"toucan"},
	{"stork"},
	{"heron", "egret"},

	// Fish and other water animals.
	{"fish", "fishes", "goldfish"},
	{"shark"},
	{"stingray", "ray"},
	{"eel"},
	{"jellyfish"},
	{"coral"},
	{"crab"},
	{"lobster", "crayfish"},
	{"snail"},
	{"slug"},
	{"shell", "seashell"},
	{"starfish"},
	{"worm"},

	// Reptiles, amphibians, insects, spiders.
	{"turtle", "tortoise"},
	{"lizard", "gecko", "iguana", "chameleon"},
	{"crocodile", "alligator"},
	{"dinosaur"},
	{"snake"},
	{"frog", "toad"},
	{"salamander", "newt"},
	{"spider"},
	{"scorpion"},
	{"beetle"},
	{"ladybug", "ladybird"},
	{"fly"},
	{"bee"},
	{"ant"},
	{"grasshopper"},
	{"cricket"},
	{"cockroach"},
	{"mantis"},
	{"dragonfly"},
	{"butterfly"},
	{"insect", "bug"},

	// Vehicles.
	{"car", "auto", "automobile"},
	{"ambulance"},
	{"taxi", "cab"},
	{"van", "minivan"},
	{"bus"},
	{"truck", "lorry"},
	{"fire truck", "fire engine"},
	{"tractor"},
	{"train", "locomotive"},
	{"tram", "streetcar", "trolley"},
	{"bike", "bicycle"},
	{"motorcycle", "motorbike"},
	{"scooter", "moped"},
	{"boat", "canoe", "kayak"},
	{"ship"},
	{"submarine"},
	{"plane", "airplane", "aircraft", "jet"},
	{"balloon"},
	{"sled", "sledge", "sleigh"},
	{"cart", "wagon"},
	{"tank"},

	// Food and drink.
	{"food", "meal", "dish"},
	{"coffee", "espresso", "cappuccino"},
	{"wine"},
	{"soup"},
	{"bread", "loaf", "loaves", "baguette"},
	{"burger", "hamburger", "cheeseburger"},
	{"hot dog"},
	{"pizza"},
	{"pie"},
	{"pasta", "spaghetti"},
	{"ice cream"},
	{"popsicle", "lollipop"},
	{"dessert", "cake"},
	{"chocolate"},
	{"potato", "potatoes"},
	{"cabbage"},
	{"broccoli"},
	{"cauliflower"},
	{"squash", "zucchini"},
	{"pumpkin"},
	{"cucumber"},
	{"pepper"},
	{"mushroom", "fungus", "fungi"},
	{"apple"},
	{"strawberry"},
	{"orange"},
	{"lemon"},
	{"banana"},
	{"pineapple"},
	{"drink", "beverage"},
	{"fruit"},
	{"vegetable"},
	{"corn"},

	// Places and scenes.
	{"mountain"},
	{"cliff"},
	{"lake"},
	{"beach", "shore", "coast", "seashore"},
	{"valley"},
	{"volcano"},
	{"reef"},
	{"flower", "daisy", "flowers"},
	{"shop", "store"},
	{"restaurant"},
	{"church"},
	{"bridge"},
	{"house", "home"},
	{"fence"},

	// Things.
	{"clock"},
	{"watch"},
	{"phone", "telephone"},
	{"computer", "laptop"},
	{"keyboard"},
	{"screen", "monitor"},
	{"television", "tv"},
	{"camera"},
	{"guitar"},
	{"piano"},
	{"drum"},
	{"violin", "fiddle"},
	{"horn", "trumpet"},
	{"ball"},
	{"bottle"},
	{"cup", "mug"},
	{"glass"},
	{"bowl"},
	{"plate"},
	{"pot", "pan", "teapot", "wok", "saucepan"},
	{"spoon"},
	{"knife", "knives"},
	{"bag", "backpack"},
	{"box"},
	{"basket"},
	{"bucket"},
	{"chair", "seat"},
	{"table", "desk"},
	{"bed"},
	{"couch", "sofa"},
	{"lamp"},
	{"curtain"},
	{"cabinet", "cupboard"},
	{"refrigerator", "fridge"},
	{"pen"},
	{"swimsuit", "bikini"},
	{"skirt"},
	{"hat", "cap"},
	{"helmet"},
	{"shoe", "boot", "sandal"},
	{"shirt"},
	{"dress", "gown"},
	{"coat", "jacket"},
	{"tie"},
	{"umbrella"},
	{"gun", "rifle"},
	{"book"},
	{"sign"},
	{"tent"},
}

// Plural returns the English plural of word (of its last word, for a
// phrase): irregularPlurals' or the regular one. The vocabulary lists the
// irregular plurals of its nouns too, as their forms.
func Plural(word string) string {
	head, last := "", word
	if i := strings.LastIndexByte(word, ' '); i >= 0 {
		head, last = word[:i+1], word[i+1:]
	}
	if p, ok := irregularPlurals[last]; ok {
		return head + p
	}
	switch {
	case strings.HasSuffix(word, "s"), strings.HasSuffix(word, "x"), strings.HasSuffix(word, "ch"), strings.HasSuffix(word, "sh"):
		return word + "es"
	case strings.HasSuffix(word, "y") && len(word) > 1 && !strings.ContainsRune("aeiou", rune(word[len(word)-2])):
		return word[:len(word)-1] + "ies"
	}
	return word + "s"
}

// irregularPlurals is the plurals of captions' nouns that Plural's rule
// would get wrong ("sheeps", "gooses", "wolfs").
var irregularPlurals = map[string]string{"sheep": "sheep", "deer": "deer", "fish": "fish", "moose": "moose",
	"bison": "bison", "goose": "geese", "mouse": "mice", "ox": "oxen", "wolf": "wolves", "calf": "calves",
	"knife": "knives", "leaf": "leaves", "shelf": "shelves", "loaf": "loaves", "scarf": "scarves", "man": "men",
	"woman": "women", "child": "children", "person": "people", "foot": "feet", "tooth": "teeth",
	"tomato": "tomatoes", "potato": "potatoes"}

// forms maps each vocabulary noun to every word and phrase that names it,
// plurals included, sorted.
var forms = sync.OnceValue(func() map[string][]string {
	m := make(map[string][]string, len(vocabulary))
	for _, row := range vocabulary {
		var all []string
		for _, w := range row {
			all = append(all, w, Plural(w))
		}
		slices.Sort(all)
		m[row[0]] = slices.Compact(all)
	}
	return m
})

// words maps each word and phrase of forms back to its noun.
var words = sync.OnceValue(func() map[string]string {
	m := make(map[string]string)
	for noun, fs := range forms() {
		for _, f := range fs {
			if other, ok := m[f]; ok && other != noun {
				panic("tags: vocabulary word " + f + " is in the rows of both " + other + " and " + noun)
			}
			m[f] = noun
		}
	}
	return m
})
