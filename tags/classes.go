package tags

import (
	_ "embed"
	"fmt"
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
}

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

// nounClasses are the classes of one noun, and whether one is an animal's.
type nounClasses struct {
	classes []int
	animal  bool
}

// nounIndex groups the classes by noun, once.
var nounIndex = sync.OnceValue(func() map[string]nounClasses {
	idx := map[string]nounClasses{}
	for _, c := range Classes()[1:] {
		e := idx[c.Noun]
		e.classes, e.animal = append(e.classes, c.Index), e.animal || c.Animal()
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

// parseClasses reads the generator's table: index, wnid, noun, how the noun
// was chosen, label; "-" marks background's empty fields.
func parseClasses(tsv string) ([]Class, error) {
	var cs []Class
	for n, line := range strings.Split(strings.TrimRight(tsv, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("line %d has %d fields, want 5", n+1, len(f))
		}
		i, err := strconv.Atoi(f[0])
		if err != nil || i != len(cs) {
			return nil, fmt.Errorf("line %d is class %q, want %d", n+1, f[0], len(cs))
		}
		c := Class{Index: i, WNID: f[1], Noun: f[2], Label: f[4]}
		if c.WNID == "-" {
			c.WNID, c.Noun = "", ""
		}
		cs = append(cs, c)
	}
	if len(cs) != NumClasses {
		return nil, fmt.Errorf("%d classes, want %d", len(cs), NumClasses)
	}
	return cs, nil
}
