// Command gen writes tags/imagenet_nouns.tsv: for each class of the encoder's
// ImageNet classifier, the plain noun a caption would use for it.
//
// Each ImageNet class is a WordNet 3.0 noun synset (wnids.txt; id
// "n" + the 8-digit offset into data.noun). gen walks the synset and its
// hypernyms breadth first, nearest first, and takes the first synset that
// has a word of the tags vocabulary among its lemmas: "Egyptian cat" goes
// domestic cat, then cat, and "cat" is in the vocabulary. A class with no
// vocabulary word above it keeps its own first name ("abacus"). The
// overrides below correct the walk where WordNet's tree and everyday
// speech part; each says why.
//
// gen also gives each class a role, how a caption may place its thing, for
// guided decoding's rules (pipeline's heads, decoder.Heads.Uses): an animal
// (classes 1-398, tags.Class.Animal); something worn (a hypernym is
// clothing: "a woman in a pink wig", not "sitting in a wig"); a thing people
// are on or in (a structure, area, vehicle, piece of furniture, geological
// formation, natural object, location or gymnastic apparatus: "sitting on a
// cliff"); a container ("a puppy in a basket"); food ("eating a pizza"); and
// the rest, things held, played or used, which captions never put after "on"
// or "in" ("a soccer player in a red ball", "sitting on a gun").
// roleOverrides correct it by noun, so that a noun's classes share one role.
//
// Usage (from tags/, needs Debian's wordnet-base and the labels asset):
//
//	CAPTIONER_ASSETS=../../shared go generate
package main

import (
	"bufio"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/tags"
)

//go:embed wnids.txt
var wnidList string

// override is a reviewed correction of the WordNet walk for one class.
type override struct{ noun, why string }

var overrides = map[string]override{
	"n01695060": {"lizard", "the walk stops at \"monitor\" (monitor lizard), a computer screen's word"},       // 49 Komodo dragon
	"n01768244": {"fossil", "a trilobite is only ever seen as a fossil"},                                      // 70 trilobite
	"n01770081": {"spider", "a harvestman (daddy longlegs) looks and is named like a spider"},                 // 71 harvestman
	"n01871265": {"elephant", "a tusker is an elephant; WordNet files it under mammal only"},                  // 102 tusker
	"n01943899": {"shell", "a conch is seen as a seashell"},                                                   // 113 conch
	"n01955084": {"shell", "a chiton is seen as a shell on a rock"},                                           // 117 chiton
	"n01968897": {"shell", "a chambered nautilus is seen as a shell"},                                         // 118 chambered nautilus
	"n01986214": {"crab", "a hermit crab is a crab in everyday speech (WordNet: decapod)"},                    // 126 hermit crab
	"n02128757": {"leopard", "the walk passes \"snow leopard\" and stops at \"cat\" (big cat)"},               // 290 snow leopard
	"n02415577": {"sheep", "a bighorn is a wild sheep; WordNet's lemma is \"bighorn sheep\" only"},            // 350 bighorn
	"n02692877": {"blimp", "an airship is not a plane (the walk stops at \"aircraft\")"},                      // 406 airship
	"n02704792": {"vehicle", "an amphibian is an amphibious vehicle"},                                         // 409 amphibian
	"n02727426": {"beehive", "an apiary is a beehive"},                                                        // 411 apiary
	"n02747177": {"trash can", "\"ashcan\" is rare; the label's own synonyms"},                                // 413 ashcan
	"n02786058": {"bandage", "the trade name; a caption says bandage"},                                        // 420 Band Aid
	"n02788148": {"railing", "a bannister is a railing"},                                                      // 422 bannister
	"n02797295": {"wheelbarrow", "a barrow is a wheelbarrow, not a cart"},                                     // 429 barrow
	"n02808304": {"towel", "a bath towel is a towel"},                                                         // 435 bath towel
	"n02814533": {"car", "a station wagon is a car (the walk stops at \"wagon\")"},                            // 437 beach wagon
	"n02814860": {"lighthouse", "a beacon is a lighthouse"},                                                   // 438 beacon
	"n02825657": {"tower", "a bell cote is a bell tower"},                                                     // 443 bell cote
	"n02877765": {"bottle cap", "the walk stops at \"cap\", a hat's word"},                                    // 456 bottlecap
	"n02892201": {"plaque", "brass: a memorial plaque"},                                                       // 459 brass
	"n02892767": {"bra", "a brassiere is a bra"},                                                              // 460 brassiere
	"n02894605": {"pier", "a breakwater is seen as a pier or jetty"},                                          // 461 breakwater
	"n02895154": {"armor", "a breastplate is armor; the walk stops at \"plate\""},                             // 462 breastplate
	"n02916936": {"vest", "a bulletproof vest is a vest"},                                                     // 466 bulletproof vest
	"n02948072": {"candle", "a candle is not a lamp in a caption"},                                            // 471 candle
	"n02963159": {"sweater", "a cardigan is a sweater"},                                                       // 475 cardigan
	"n02965783": {"mirror", "a car mirror is a mirror"},                                                       // 476 car mirror
	"n02966687": {"toolbox", "a carpenter's kit is a toolbox"},                                                // 478 carpenter's kit
	"n02974003": {"wheel", "a car wheel is a wheel"},                                                          // 480 car wheel
	"n02977058": {"atm", "a cash machine is an ATM"},                                                          // 481 cash machine
	"n02981792": {"boat", "a catamaran is a boat"},                                                            // 485 catamaran
	"n03000684": {"chainsaw", "chain saw: one word in a caption"},                                             // 492 chain saw
	"n03016953": {"cabinet", "a chiffonier is a cabinet"},                                                     // 494 chiffonier
	"n03017168": {"bell", "chimes are bells"},                                                                 // 495 chime
	"n03026506": {"stocking", "a Christmas stocking is a stocking"},                                           // 497 Christmas stocking
	"n03032252": {"cinema", "a cinema is not a house (the walk stops at \"house\", as in theatre)"},           // 499 cinema
	"n03042490": {"ruins", "cliff dwellings are seen as ruins in a cliff"},                                    // 501 cliff dwelling
	"n03133878": {"pot", "a Crock Pot is a pot"},                                                              // 522 Crock Pot
	"n03240683": {"oil rig", "a drilling platform is an oil rig"},                                             // 541 drilling platform
	"n03259280": {"pot", "a Dutch oven is a pot"},                                                             // 545 Dutch oven
	"n03271574": {"fan", "an electric fan is a fan"},                                                          // 546 electric fan
	"n03290653": {"television", "an entertainment center is a TV stand"},                                      // 549 entertainment center
	"n03297495": {"coffee maker", "an espresso maker is a coffee maker"},                                      // 551 espresso maker
	"n03314780": {"makeup", "face powder is makeup"},                                                          // 552 face powder
	"n03325584": {"scarf", "a feather boa is a scarf"},                                                        // 553 feather boa
	"n03337140": {"cabinet", "a file is a filing cabinet"},                                                    // 554 file
	"n03393912": {"train", "a freight car is a railway wagon, part of a train"},                               // 566 freight car
	"n03445924": {"golf cart", "golfcart: two words in a caption"},                                            // 576 golfcart
	"n03459775": {"car", "grille photos show the front of a car"},                                             // 582 grille
	"n03461385": {"shop", "a grocery store is a shop (\"store\" is in the shop row)"},                         // 583 grocery store
	"n03476684": {"hair clip", "a hair slide is a hair clip"},                                                 // 585 hair slide
	"n03478589": {"truck", "a half track is a military truck"},                                                // 587 half track
	"n03483316": {"hair dryer", "a hand blower is a hair dryer"},                                              // 590 hand blower
	"n03492542": {"hard drive", "a hard disc is a hard drive"},                                                // 593 hard disc
	"n03498962": {"axe", "a hatchet is an axe"},                                                               // 597 hatchet
	"n03529860": {"television", "a home theater is a television set-up, not a house"},                         // 599 home theater
	"n03590841": {"pumpkin", "a jack-o'-lantern is a carved pumpkin"},                                         // 608 jack-o'-lantern
	"n03594734": {"jeans", "the walk stops at \"dress\" (attire, garb, dress)"},                               // 609 jean
	"n03598930": {"puzzle", "a jigsaw puzzle is a puzzle"},                                                    // 612 jigsaw puzzle
	"n03599486": {"rickshaw", "a jinrikisha is a rickshaw"},                                                   // 613 jinrikisha
	"n03657121": {"lens cap", "the walk stops at \"cap\", a hat's word"},                                      // 623 lens cap
	"n03691459": {"speaker", "a loudspeaker is a speaker"},                                                    // 633 loudspeaker
	"n03697007": {"sawmill", "a lumbermill is a sawmill"},                                                     // 635 lumbermill
	"n03706229": {"compass", "a magnetic compass is a compass"},                                               // 636 magnetic compass
	"n03710193": {"mailbox", "a mailbox is named as such; \"box\" would not match it as a word"},              // 638 mailbox
	"n03710637": {"swimsuit", "maillot: a one-piece swimsuit"},                                                // 639 maillot
	"n03721384": {"xylophone", "a marimba is a xylophone"},                                                    // 643 marimba
	"n03724870": {"mask", "the walk stops at \"dress\" (attire, garb, dress)"},                                // 644 mask
	"n03729826": {"match", "a matchstick is a match"},                                                         // 645 matchstick
	"n03733805": {"cup", "a measuring cup is a cup"},                                                          // 648 measuring cup
	"n03763968": {"uniform", "a military uniform is a uniform"},                                               // 653 military uniform
	"n03773504": {"rocket", "a missile is seen as a rocket"},                                                  // 658 missile
	"n03775071": {"glove", "a mitten is a glove in a caption"},                                                // 659 mitten
	"n03776460": {"trailer", "a mobile home is a trailer home"},                                               // 661 mobile home
	"n03781244": {"monastery", "a monastery is not a house (the walk stops at \"house\", a religious house)"}, // 664 monastery
	"n03788365": {"net", "a mosquito net is a net, not a screen"},                                             // 670 mosquito net
	"n03825788": {"bottle", "a nipple (teat) is seen on a baby's bottle; \"cap\" is a hat's word"},            // 681 nipple
	"n03874293": {"paddle wheel", "paddlewheel: two words in a caption"},                                      // 695 paddlewheel
	"n03876231": {"brush", "a paintbrush is a brush"},                                                         // 697 paintbrush
	"n03877472": {"pajamas", "pajamas are always plural in a caption"},                                        // 698 pajama
	"n03877845": {"palace", "a palace is not a house in a caption"},                                           // 699 palace
	"n03891251": {"bench", "a park bench is a bench (the walk stops at \"seat\")"},                            // 704 park bench
	"n03895866": {"train", "a passenger car is a railway carriage, part of a train"},                          // 706 passenger car
	"n03920288": {"petri dish", "the walk stops at \"dish\", a meal's word"},                                  // 713 Petri dish
	"n03961711": {"rack", "a plate rack is a dish rack"},                                                      // 730 plate rack
	"n03977966": {"van", "a police van is a van (the walk stops at \"wagon\")"},                               // 735 police van
	"n03995372": {"drill", "a power drill is a drill"},                                                        // 741 power drill
	"n03998194": {"rug", "a prayer rug is a rug"},                                                             // 742 prayer rug
	"n04008634": {"rocket", "a projectile (missile) is seen as a rocket"},                                     // 745 projectile
	"n04019541": {"puck", "a hockey puck; the walk stops at \"plate\""},                                       // 747 puck
	"n04023962": {"punching bag", "a punching bag is not a ball"},                                             // 748 punching bag
	"n04049303": {"barrel", "a rain barrel is a barrel, not a tank"},                                          // 757 rain barrel
	"n04065272": {"camper", "a recreational vehicle is a camper"},                                             // 758 recreational vehicle
	"n04074963": {"remote", "a remote control is a remote"},                                                   // 762 remote control
	"n04116512": {"eraser", "a rubber eraser is an eraser"},                                                   // 768 rubber eraser
	"n04118776": {"ruler", "a rule is a ruler"},                                                               // 770 rule
	"n04125021": {"safe", "a safe is not a box in a caption"},                                                 // 772 safe
	"n04131690": {"salt shaker", "saltshaker: two words in a caption"},                                        // 774 saltshaker
	"n04141076": {"saxophone", "\"sax\" is short for saxophone"},                                              // 777 sax
	"n04147183": {"boat", "a schooner is a sailing boat"},                                                     // 781 schooner
	"n04149813": {"scoreboard", "a scoreboard is not a sign in a caption"},                                    // 782 scoreboard
	"n04201297": {"door", "a shoji is a sliding paper door"},                                                  // 790 shoji
	"n04238763": {"ruler", "a slide rule looks like a ruler; WordNet calls it an analog computer"},            // 799 slide rule
	"n04239074": {"door", "a sliding door is a door"},                                                         // 800 sliding door
	"n04243546": {"slot machine", "\"slot\" is a one-armed bandit: a slot machine"},                           // 801 slot
	"n04252225": {"truck", "a snowplow is a truck with a plough"},                                             // 804 snowplow
	"n04264628": {"keyboard", "a space bar is seen on a keyboard"},                                            // 811 space bar
	"n04265275": {"heater", "a space heater is a heater"},                                                     // 812 space heater
	"n04286575": {"light", "a spotlight is a light, not a lamp"},                                              // 819 spotlight
	"n04311174": {"drum", "a steel drum is a drum"},                                                           // 823 steel drum
	"n04325704": {"scarf", "a stole is a scarf"},                                                              // 825 stole
	"n04326547": {"wall", "a stone wall is a wall, not a fence"},                                              // 826 stone wall
	"n04355933": {"sunglasses", "\"sunglass\" is a burning glass in WordNet; the photos show sunglasses"},     // 837 sunglass
	"n04356056": {"sunglasses", "sunglasses are not a glass"},                                                 // 838 sunglasses
	"n04367480": {"mop", "a swab is a mop"},                                                                   // 841 swab
	"n04370456": {"shirt", "a sweatshirt is a shirt-like top"},                                                // 842 sweatshirt
	"n04399382": {"teddy bear", "WordNet's \"teddy bear\" is a lemma of \"teddy\", not a bear"},               // 851 teddy
	"n04417672": {"roof", "thatch is a thatched roof"},                                                        // 854 thatch
	"n04423845": {"thimble", "the walk stops at \"cap\", a hat's word"},                                       // 856 thimble
	"n04435653": {"roof", "a tile roof is a roof"},                                                            // 859 tile roof
	"n04447861": {"toilet", "a toilet seat is seen on a toilet"},                                              // 862 toilet seat
	"n04483307": {"boat", "a trimaran is a boat"},                                                             // 872 trimaran
	"n04486054": {"arch", "a triumphal arch is an arch"},                                                      // 874 triumphal arch
	"n04493381": {"bathtub", "a tub is a bathtub"},                                                            // 877 tub
	"n04553703": {"sink", "a washbasin is a sink"},                                                            // 897 washbasin
	"n04554684": {"washing machine", "a washer is a washing machine"},                                         // 898 washer
	"n04562935": {"tower", "a water tower is a tower, not a tank"},                                            // 901 water tower
	"n04584207": {"wig", "the walk stops at \"dress\" (attire, garb, dress)"},                                 // 904 wig
	"n04589890": {"window", "a window screen is seen on a window"},                                            // 905 window screen
	"n04590129": {"window", "a window shade is seen on a window"},                                             // 906 window shade
	"n04592741": {"plane", "wing photos show an airplane's wing"},                                             // 909 wing
	"n04599235": {"yarn", "wool photos show balls of yarn"},                                                   // 912 wool
	"n04613696": {"tent", "a yurt is a round tent; the walk stops at \"home\" (dwelling)"},                    // 916 yurt
	"n06359193": {"website", "a screenshot of a web site; WordNet's \"site\" is a computer"},                  // 917 web site
	"n06596364": {"book", "a comic book is a book"},                                                           // 918 comic book
	"n06785654": {"crossword", "crossword puzzle: \"crossword\" in a caption"},                                // 919 crossword puzzle
	"n06874185": {"traffic light", "a traffic light is not a sign in a caption"},                              // 921 traffic light
	"n07248320": {"book", "a book jacket is on a book, not a coat"},                                           // 922 book jacket
	"n07565083": {"menu", "a menu is not food"},                                                               // 923 menu
	"n07753113": {"fig", "a fig is named as such; the walk stops at \"fruit\""},                               // 953 fig
	"n07802026": {"hay", "hay is not food in a caption"},                                                      // 959 hay
	"n07831146": {"pasta", "carbonara is pasta"},                                                              // 960 carbonara
	"n07836838": {"chocolate", "chocolate sauce: the walk stops at \"food\" (sauce)"},                         // 961 chocolate sauce
	"n07875152": {"pie", "a potpie is a pie"},                                                                 // 965 potpie
	"n09229709": {"bubble", "a soap bubble is not a ball"},                                                    // 972 bubble
	"n09332890": {"lake", "a lakeside shows a lake; the walk stops at \"shore\", the sea's word"},             // 976 lakeside
	"n09399592": {"cliff", "a promontory is seen as a cliff over the sea"},                                    // 977 promontory
	"n09421951": {"beach", "a sandbar is seen as a beach"},                                                    // 978 sandbar
	"n11879895": {"flower", "rapeseed photos show fields of yellow flowers"},                                  // 985 rapeseed
	"n12267677": {"acorn", "an acorn is a nut, not a fruit, in a caption"},                                    // 989 acorn
	"n12620546": {"berry", "a rose hip is seen as a red berry"},                                               // 990 hip
	"n12768682": {"chestnut", "a buckeye is a horse chestnut"},                                                // 991 buckeye
	"n13133613": {"corn", "an ear is an ear of corn"},                                                         // 999 ear
	"n15075141": {"toilet paper", "toilet tissue is toilet paper"},                                            // 1000 toilet tissue
}

func main() {
	wordnet := flag.String("wordnet", "/usr/share/wordnet", "WordNet 3.0 database folder (Debian: wordnet-base)")
	labelsPath := flag.String("labels", filepath.Join(os.Getenv("CAPTIONER_ASSETS"), assets.ImageNetLabels), "the encoder's ImageNet labels (1001 lines)")
	out := flag.String("out", "imagenet_nouns.tsv", "output file")
	flag.Parse()
	if err := run(*wordnet, *labelsPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(wordnet, labelsPath, out string) error {
	wnids := readWNIDs(wnidList)
	if len(wnids)+1 != tags.NumClasses {
		return fmt.Errorf("wnids.txt has %d ids; want %d (the classifier's classes but background)", len(wnids), tags.NumClasses-1)
	}
	labels, err := encoder.LoadLabels(labelsPath, tags.NumClasses)
	if err != nil {
		return fmt.Errorf("%w (set CAPTIONER_ASSETS or --labels)", err)
	}
	synsets, err := readSynsets(filepath.Join(wordnet, "data.noun"))
	if err != nil {
		return fmt.Errorf("%w (install Debian's wordnet-base or pass --wordnet)", err)
	}
	var b strings.Builder
	b.WriteString("# Code generated by tags/internal/gen from WordNet 3.0; DO NOT EDIT.\n")
	b.WriteString("# index\twnid\tnoun\trole\tvia\tlabel\n")
	fmt.Fprintf(&b, "0\t-\t-\t-\t-\t%s\n", labels[0])
	names := map[string]string{} // class id -> the label's first name
	type class struct{ id, noun, via, label string }
	classes := make([]class, len(wnids))
	byNoun := map[string][]int{} // noun -> its classes' indices in wnids
	for i, id := range wnids {
		if i > 0 && id <= wnids[i-1] {
			return fmt.Errorf("wnids.txt: %s follows %s; the ILSVRC order is increasing", id, wnids[i-1])
		}
		s, ok := synsets[id[1:]]
		if !ok {
			return fmt.Errorf("wnids.txt: %s is not a WordNet 3.0 noun synset", id)
		}
		label := labels[i+1]
		name := strings.TrimSpace(strings.Split(label, ",")[0])
		if !slices.Contains(s.lemmas, strings.ToLower(name)) {
			return fmt.Errorf("class %d: %s has lemmas %v, not the label's %q: wnids.txt is out of step with the labels", i+1, id, s.lemmas, name)
		}
		noun, via := choose(id, name, synsets)
		names[id], classes[i] = name, class{id, noun, via, label}
		byNoun[noun] = append(byNoun[noun], i)
	}
	roles := map[string]string{}
	for noun, is := range byNoun {
		r, err := nounRole(noun, is, wnids, synsets)
		if err != nil {
			return err
		}
		roles[noun] = r
	}
	for i, c := range classes {
		fmt.Fprintf(&b, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, c.id, c.noun, roles[c.noun], c.via, c.label)
	}
	for noun := range roleOverrides {
		if _, ok := byNoun[noun]; !ok {
			return fmt.Errorf("role override for %q, which names no class", noun)
		}
	}
	for id, o := range overrides {
		name, ok := names[id]
		if !ok {
			return fmt.Errorf("override for %s, which is not an ImageNet class", id)
		}
		if n, _ := walk(id, name, synsets); n == o.noun {
			return fmt.Errorf("override for %s gives %q, as the WordNet walk does: remove it", id, n)
		}
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// The roles of the table's role column, as tags reads them.
const (
	roleAnimal    = string(tags.Animal)
	roleWorn      = string(tags.Worn)
	roleThing     = string(tags.Thing)
	roleContainer = string(tags.Container)
	roleFood      = string(tags.Food)
	roleHeld      = string(tags.Held)
)

// roleRoots are the WordNet synsets (offsets) whose hyponyms take a role,
// first match first: a bathing cap is clothing, a car a vehicle though
// WordNet also files it under container. What none reaches is held.
var roleRoots = []struct {
	role    string
	offsets []string
}{
	{roleWorn, []string{"03051540"}}, // clothing (headdress and footwear are kinds of it)
	{roleThing, []string{
		"04341686", // structure
		"02735688", // area
		"04524313", // vehicle
		"03100490", // conveyance
		"03405725", // furniture
		"09287968", // geological formation
		"00019308", // natural object
		"00027167", // location
		"03472232", // gymnastic apparatus
	}},
	{roleContainer, []string{"03094503"}}, // container
	{roleFood, []string{
		"00021265", // food
		"13134947", // fruit
		"07707451", // vegetable
	}},
}

// roleOverrides correct the roles WordNet gives, by noun (a noun's role is
// then the same whichever of its classes the classifier picks). Fixtures
// people stand at rather than on or in (an ATM, a curtain, a clock) stay
// held: as things, which no rule places, they came back as "a man stands on
// an atm sidewalk" and "a girl in a red curtain".
var roleOverrides = roleGroups([]roleGroup{
	{roleThing, "a fixture or machine people ride, climb, stand on or are in, which WordNet files as a device or container",
		`barrel, bathtub, carousel, crane, dishwasher, dome, door, flagpole, gas pump, guillotine, harvester,
		lawn mower, mailbox, manhole cover, maypole, maze, oil rig, organ, paddle wheel, parking meter, photocopier,
		piano, pier, plane, potter's wheel, radio telescope, refrigerator, rocket, roof, safe, sign, sink, slot machine,
		solar dish, stage, stove, sundial, swing, thresher, tower, traffic light, trash can, vault, vending machine,
		washing machine, window`},
	{roleThing, "what people sit, lie or stand on or among", "quilt, rug, doormat, pillow, towel, hay, flower, corn, pumpkin, spider web, bubble, net"},
	{roleThing, "people stand on skis, and a caption's \"ski\" is as often a slope's or a lift's", "ski"},
	{roleThing, "a screen or machine captions put after \"on\": talking on a phone, typing on a keyboard, on television", "phone, computer, keyboard, screen, television, radio"},
	{roleThing, "people, who are never held", "person"},
	{roleWorn, "worn on the body; WordNet files it as armour, a device or a covering",
		`helmet, armor, chain mail, cuirass, cloak, bib, clog, shoe, gasmask, oxygen mask, ski mask, snorkel, sunglasses,
		necklace, neck brace, bandage, muzzle, makeup, watch, hair clip`},
	{roleContainer, "every class of it holds things", "cup, bottle, pot"},
	{roleHeld, "held by its handle: nothing is in a ladle in a caption", "ladle, spoon"},
	{roleHeld, "a cassette holds nothing a caption puts in it", "cassette"},
	{roleContainer, "a tool kit holds tools", "toolbox"},
	{roleFood, "a mushroom is eaten; one class of it is a fungus (WordNet: organism)", "mushroom"},
	{roleHeld, "held or read, not eaten: ImageNet's plate is a plate of food, a menu a list of dishes", "plate, menu"},
})

// roleGroup is roleOverrides' entries for nouns, comma-separated, that one
// reason gives one role.
type roleGroup struct{ role, why, nouns string }

// roleGroups is the override of each noun of groups.
func roleGroups(groups []roleGroup) map[string]struct{ role, why string } {
	m := map[string]struct{ role, why string }{}
	for _, g := range groups {
		for _, n := range strings.Split(g.nouns, ",") {
			n = strings.TrimSpace(n)
			m[n] = struct{ role, why string }{g.role, g.why}
		}
	}
	return m
}

// nounRole is the role of noun, whose classes are wnids[i] for i in is:
// roleOverrides' or, the same for every class, WordNet's (classRole). A noun
// with an animal's class is an animal's, as tags.AnimalNoun says.
func nounRole(noun string, is []int, wnids []string, synsets map[string]synset) (string, error) {
	var walked []string
	for _, i := range is {
		if r := classRole(i+1, wnids[i], synsets); !slices.Contains(walked, r) {
			walked = append(walked, r)
		}
	}
	o, overridden := roleOverrides[noun]
	switch {
	case slices.Contains(walked, roleAnimal) && overridden:
		return "", fmt.Errorf("role override for %q, an animal's noun: remove it", noun)
	case slices.Contains(walked, roleAnimal):
		return roleAnimal, nil
	case overridden && len(walked) == 1 && walked[0] == o.role:
		return "", fmt.Errorf("role override for %q gives %s, as WordNet does: remove it", noun, o.role)
	case overridden:
		return o.role, nil
	case len(walked) > 1:
		return "", fmt.Errorf("the classes of %q take roles %v from WordNet: give it one in roleOverrides", noun, walked)
	}
	return walked[0], nil
}

// classRole is the role WordNet gives class index (id): an animal's for the
// ILSVRC animal subtree (tags.Class.Animal), else the first of roleRoots
// among its hypernyms, else held.
func classRole(index int, id string, synsets map[string]synset) string {
	if (tags.Class{Index: index}).Animal() {
		return roleAnimal
	}
	above := ancestors(id[1:], synsets)
	for _, r := range roleRoots {
		if slices.ContainsFunc(r.offsets, func(off string) bool { return above[off] }) {
			return r.role
		}
	}
	return roleHeld
}

// ancestors is the set of off and all its hypernyms.
func ancestors(off string, synsets map[string]synset) map[string]bool {
	seen := map[string]bool{}
	for todo := []string{off}; len(todo) > 0; {
		o := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if !seen[o] {
			seen[o] = true
			todo = append(todo, synsets[o].hypernyms...)
		}
	}
	return seen
}

// choose returns the class's noun and how it was found.
func choose(id, name string, synsets map[string]synset) (noun, via string) {
	if o, ok := overrides[id]; ok {
		return o.noun, "override: " + o.why
	}
	return walk(id, name, synsets)
}

// walk returns the noun of the first vocabulary lemma on the way up from id,
// nearest first, or the class's own name.
func walk(id, name string, synsets map[string]synset) (noun, via string) {
	seen := map[string]bool{}
	for level := []string{id[1:]}; len(level) > 0; {
		var next []string
		for _, off := range level {
			if seen[off] {
				continue
			}
			seen[off] = true
			s := synsets[off]
			for _, l := range s.lemmas {
				if n, ok := tags.NounOf(l); ok {
					return n, "wordnet: " + l
				}
			}
			next = append(next, s.hypernyms...)
		}
		level = next
	}
	return strings.ToLower(name), "own name"
}

type synset struct {
	lemmas    []string // lower case, spaces for underscores, adjective markers dropped
	hypernyms []string // offsets of hypernyms and instance hypernyms
}

var marker = regexp.MustCompile(`\([a-z]+\)$`)

// readSynsets parses WordNet's data.noun (format: wndb(5WN)).
func readSynsets(path string) (map[string]synset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]synset{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "  ") { // licence header
			continue
		}
		p := strings.Fields(strings.SplitN(line, " | ", 2)[0])
		bad := fmt.Errorf("%s: bad line %.40q", path, line)
		if len(p) < 4 {
			return nil, bad
		}
		n, err := strconv.ParseInt(p[3], 16, 32)
		if err != nil || len(p) < 5+2*int(n) {
			return nil, bad
		}
		var s synset
		for k := 0; k < int(n); k++ {
			l := marker.ReplaceAllString(p[4+2*k], "")
			s.lemmas = append(s.lemmas, strings.ToLower(strings.ReplaceAll(l, "_", " ")))
		}
		i := 4 + 2*int(n)
		pointers, err := strconv.Atoi(p[i])
		if err != nil || len(p) < i+1+4*pointers {
			return nil, bad
		}
		for k := 0; k < pointers; k++ {
			sym, off, pos := p[i+1+4*k], p[i+2+4*k], p[i+3+4*k]
			if (sym == "@" || sym == "@i") && pos == "n" {
				s.hypernyms = append(s.hypernyms, off)
			}
		}
		m[p[0]] = s
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New(path + ": no synsets")
	}
	return m, nil
}

func readWNIDs(text string) []string {
	var ids []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ids = append(ids, l)
		}
	}
	return ids
}
