package tags

import (
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// NumClasses is the number of classes of the encoder's ImageNet classifier:
// background (class 0) and the 1,000 ILSVRC-2012 classes.
const NumClasses = 1001

// Class is one class of the encoder's ImageNet classifier.
type Class struct {
	Index int    // the classifier's output index
	WNID  string // WordNet 3.0 id ("n02124075"); "" for background
	Label string // the labels file's line ("Egyptian cat")
	Noun  string // the plain noun a caption would use ("cat"); "" for background
	Role  Role   // how a caption may place the class's thing; "" for background
}

// Role is how a caption may place a thing of some class, which guided
// decoding's rules read (pipeline's heads): internal/gen gives each class
// one from WordNet, the same for all classes of a noun.
type Role string

// The roles.
const (
	Animal    Role = "animal"    // an animal (Class.Animal)
	Worn      Role = "worn"      // clothing: "a woman in a pink wig"
	Thing     Role = "thing"     // what people are on or in: a structure, a vehicle, furniture, a place
	Container Role = "container" // what things are in: "a puppy in a basket"
	Food      Role = "food"      // what is eaten or drunk: "eating a pizza"
	Held      Role = "held"      // the rest, held, played or used: never after "on" or "in"
)

//go:embed imagenet_nouns.tsv
var nounsTSV string

// Animal says whether the class is an animal's. ILSVRC-2012 orders its
// classes by WordNet id, which puts the animal subtree first: tench
// (n01440764) to puffer (n02655020), classes 1–398 here; abacus (399) is the
// first artifact.
func (c Class) Animal() bool { return c.Index >= 1 && c.Index <= 398 }

// NounProb is noun's probability in probs, a classifier's NumClasses
// outputs: the sum over the classes that share the noun, as Select gives it;
// 0 for a noun of no class.
func NounProb(probs []float32, noun string) float32 {
	var p float32
	for _, i := range nounIndex()[noun].classes {
		p += probs[i]
	}
	return p
}

// AnimalNoun says whether one of noun's classes is an animal's (Class.Animal).
func AnimalNoun(noun string) bool { return nounIndex()[noun].animal }

// NounRole is the Role of noun's classes; "" for a noun of no class.
func NounRole(noun string) Role { return nounIndex()[noun].role }

// ClassNoun returns the noun that word names, as NounOf does, or else the
// class noun outside the vocabulary whose Forms hold it ("wig", "wigs": a
// class's own name, which NounOf does not know).
func ClassNoun(word string) (string, bool) {
	if n, ok := NounOf(word); ok {
		return n, true
	}
	n, ok := outsideForms()[strings.ToLower(word)]
	return n, ok
}

// outsideForms maps the Forms of the class nouns outside the vocabulary to
// their noun; where two share a form, the first noun in sort order has it.
var outsideForms = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for noun := range nounIndex() {
		if _, ok := forms()[noun]; ok {
			continue
		}
		for _, f := range Forms(noun) {
			_, word := words()[f]
			if other, ok := m[f]; !word && (!ok || noun < other) {
				m[f] = noun
			}
		}
	}
	return m
})

// nounClasses are the classes of one noun, whether one is an animal's, and
// their role.
type nounClasses struct {
	classes []int
	animal  bool
	role    Role
}

// nounIndex groups the classes by noun, once.
var nounIndex = sync.OnceValue(func() map[string]nounClasses {
	idx := map[string]nounClasses{}
	for _, c := range Classes()[1:] {
		e := idx[c.Noun]
		e.classes, e.animal, e.role = append(e.classes, c.Index), e.animal || c.Animal(), c.Role
		idx[c.Noun] = e
	}
	return idx
})

// Classes returns the NumClasses classes in index order.
func Classes() []Class { return classes() }

var classes = sync.OnceValue(func() []Class {
	cs, err := parseClasses(nounsTSV)
	if err != nil {
		panic("tags: imagenet_nouns.tsv: " + err.Error()) // the file is generated and tested
	}
	return cs
})

// parseClasses reads the generator's table: index, wnid, noun, role, how the
// noun was chosen, label; "-" marks background's empty fields.
func parseClasses(tsv string) ([]Class, error) {
	var cs []Class
	for n, line := range strings.Split(strings.TrimRight(tsv, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("line %d has %d fields, want 6", n+1, len(f))
		}
		i, err := strconv.Atoi(f[0])
		if err != nil || i != len(cs) {
			return nil, fmt.Errorf("line %d is class %q, want %d", n+1, f[0], len(cs))
		}
		c := Class{Index: i, WNID: f[1], Noun: f[2], Role: Role(f[3]), Label: f[5]}
		switch {
		case c.WNID == "-":
			c.WNID, c.Noun, c.Role = "", "", ""
		case !slices.Contains([]Role{Animal, Worn, Thing, Container, Food, Held}, c.Role):
			return nil, fmt.Errorf("line %d: class %d has role %q, not one of animal, worn, thing, container, food, held", n+1, i, f[3])
		case (c.Role == Animal) != c.Animal():
			return nil, fmt.Errorf("line %d: class %d has role %s, but classes 1-398 and only they are animals", n+1, i, c.Role)
		}
		cs = append(cs, c)
	}
	if len(cs) != NumClasses {
		return nil, fmt.Errorf("%d classes, want %d", len(cs), NumClasses)
	}
	return cs, nil
}
