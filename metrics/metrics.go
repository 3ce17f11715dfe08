// Package metrics scores generated captions against reference captions with
// corpus BLEU-1..4, CIDEr-D and ROUGE-L, computed as the coco-caption toolkit
// (github.com/tylin/coco-caption, pycocoevalcap bleu_scorer.py,
// cider_scorer.py and rouge.py) computes them, on captions that are already tokenised.
//
// The numbers depend on tokenisation: coco-caption runs the PTB tokenizer,
// which keeps "a" and numbers, as the standard cleaning does and the seed
// notebook's does not; report which references were used beside any score.
// The standard cleaning deletes punctuation inside a word where the PTB
// tokenizer splits it off or keeps it ("man's" is mans, not man 's;
// "t-shirt" tshirt): 158 of the 5,000 dev references tokenise differently,
// which moves the shipped model's dev CIDEr-D by about 1e-4 and its BLEU and
// ROUGE-L by less than 1e-6 (2026-12-06).
package metrics

import (
	"fmt"
	"strings"
)

// Scores are corpus-level scores of one set of captions.
type Scores struct {
	BLEU   [4]float64 // BLEU-1..BLEU-4
	CIDErD float64
	ROUGEL float64
	// Distinct is how many different captions there are, Words how many
	// different words they use: a model that says "a dog runs through the
	// grass" of every photo scores some BLEU but few of these.
	Distinct, Words int
}

func (s Scores) String() string {
	return fmt.Sprintf("BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  CIDEr-D %.4f  ROUGE-L %.4f  distinct %d  words %d",
		s.BLEU[0], s.BLEU[1], s.BLEU[2], s.BLEU[3], s.CIDErD, s.ROUGEL, s.Distinct, s.Words)
}

// Evaluate computes every score: cands[i] is the generated caption for image i
// and refs[i] its reference captions, all as tokens. It also returns each
// caption's own CIDEr-D (see CIDErD).
func Evaluate(cands [][]string, refs [][][]string) (Scores, []float64) {
	cider, perCaption := CIDErD(cands, refs)
	s := Scores{BLEU: BLEU(cands, refs), CIDErD: cider, ROUGEL: ROUGEL(cands, refs)}
	s.Distinct, s.Words = diversity(cands)
	return s, perCaption
}

// diversity counts the distinct captions and the distinct words among them.
func diversity(cands [][]string) (captions, words int) {
	seenCaption, seenWord := map[string]bool{}, map[string]bool{}
	for _, c := range cands {
		seenCaption[strings.Join(c, " ")] = true
		for _, w := range c {
			seenWord[w] = true
		}
	}
	return len(seenCaption), len(seenWord)
}

// maxN is the longest n-gram both metrics use.
const maxN = 4

// ngrams counts the n-grams of tokens for n = 1..maxN (coco-caption's precook):
// counts[n-1][gram] with the tokens of a gram joined by a space.
func ngrams(tokens []string) [maxN]map[string]int {
	var counts [maxN]map[string]int
	for n := 1; n <= maxN; n++ {
		counts[n-1] = map[string]int{}
		for i := 0; i+n <= len(tokens); i++ {
			counts[n-1][strings.Join(tokens[i:i+n], " ")]++
		}
	}
	return counts
}

// checkCorpus panics on inputs no caller should build: mismatched lengths, an
// empty corpus, or an image without references.
func checkCorpus(cands [][]string, refs [][][]string) {
	if len(cands) != len(refs) {
		panic(fmt.Sprintf("metrics: %d candidate captions for %d reference sets", len(cands), len(refs)))
	}
	if len(cands) == 0 {
		panic("metrics: empty corpus")
	}
	for i, r := range refs {
		if len(r) == 0 {
			panic(fmt.Sprintf("metrics: image %d has no reference captions", i))
		}
	}
}
