package tags

import (
	"fmt"
	"slices"
)

// Tag is a noun the encoder recognises in an image.
type Tag struct {
	Noun      string  `json:"noun"`       // "cat"
	Prob      float32 `json:"prob"`       // the noun's probability: the sum over its classes
	Label     string  `json:"label"`      // the most probable of those classes ("Egyptian cat")
	LabelProb float32 `json:"label_prob"` // that class's own probability
}

// Select returns the (at most) k nouns whose probability is at least
// threshold, most probable first. probs are the classifier's NumClasses
// softmax outputs for one image; background (class 0) is never a tag.
//
// Classes that share a noun are merged by summing their probabilities: the
// softmax classes are exclusive outcomes, so the sum is the probability that
// the image shows the noun. The max would undercount exactly the nouns
// ImageNet splits finely: a dog whose breed is uncertain (0.3 beagle, 0.3
// foxhound, 0.2 basset) is a dog at 0.8 but at 0.3 by the max.
func Select(probs []float32, k int, threshold float32) ([]Tag, error) {
	if k < 1 || !(threshold >= 0 && threshold <= 1) {
		panic(fmt.Sprintf("tags: Select(k=%d, threshold=%g): want k >= 1 and 0 <= threshold <= 1", k, threshold))
	}
	if len(probs) != NumClasses {
		return nil, fmt.Errorf("tags: %d class probabilities, want %d (ImageNet's 1000 classes and background); the classifier is not the one the noun map was made for", len(probs), NumClasses)
	}
	byNoun := map[string]*Tag{}
	var tags []*Tag
	for _, c := range Classes()[1:] {
		p := probs[c.Index]
		t, ok := byNoun[c.Noun]
		if !ok {
			t = &Tag{Noun: c.Noun, Label: c.Label, LabelProb: p}
			byNoun[c.Noun] = t
			tags = append(tags, t)
		} else if p > t.LabelProb {
			t.Label, t.LabelProb = c.Label, p
		}
		t.Prob += p
	}
	// Stable, so ties keep class order and the result does not depend on map order.
	slices.SortStableFunc(tags, func(a, b *Tag) int {
		switch {
		case a.Prob > b.Prob:
			return -1
		case a.Prob < b.Prob:
			return 1
		}
		return 0
	})
	var out []Tag
	for _, t := range tags {
		if len(out) == k || t.Prob < threshold {
			break
		}
		out = append(out, *t)
	}
	return out, nil
}
