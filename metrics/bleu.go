package metrics

import "math"

// BLEU returns corpus BLEU-1..4 as coco-caption's BleuScorer with
// option="closest":
//
//   - for each image, clipped n-gram matches: each candidate n-gram counts at
//     most as often as it occurs in any single reference; guesses are the
//     candidate's n-grams, max(0, len-n+1);
//   - matches, guesses, candidate lengths and reference lengths are summed over
//     the corpus, the reference length of an image being the one closest to its
//     candidate's length (the shorter on a tie);
//   - BLEU-n = (prod_{k<=n} (match_k + 1e-15)/(guess_k + 1e-9))^(1/n), times the
//     brevity penalty exp(1 - R/C) when the total candidate length C is below the
//     total reference length R.
//
// The 1e-15 and 1e-9 are coco-caption's: an order with no match gives a tiny
// positive precision, not zero.
func BLEU(cands [][]string, refs [][][]string) [4]float64 {
	bleu, _ := BLEUMatches(cands, refs)
	return bleu
}

// BLEUMatches is BLEU with the clipped matches of each order that it counted
// over the corpus. An order with none scores the smoothing's value alone: from
// about 1e-23 up to 0.03 when no caption is 4 words long, which is no measure
// of the captions (training ranks such epochs by dev loss instead).
func BLEUMatches(cands [][]string, refs [][][]string) (bleu [4]float64, matched [4]int) {
	checkCorpus(cands, refs)
	const tiny, small = 1e-15, 1e-9
	var correct, guess [maxN]float64
	var testLen, refLen float64
	for i, cand := range cands {
		var maxRef [maxN]map[string]int
		for k := range maxRef {
			maxRef[k] = map[string]int{}
		}
		closest := -1
		for _, ref := range refs[i] {
			for k, counts := range ngrams(ref) {
				for g, c := range counts {
					maxRef[k][g] = max(maxRef[k][g], c)
				}
			}
			d, best := abs(len(ref)-len(cand)), abs(closest-len(cand))
			if closest < 0 || d < best || (d == best && len(ref) < closest) {
				closest = len(ref)
			}
		}
		testLen += float64(len(cand))
		refLen += float64(closest)
		for k, counts := range ngrams(cand) {
			guess[k] += float64(max(0, len(cand)-k))
			for g, c := range counts {
				correct[k] += float64(min(c, maxRef[k][g]))
			}
		}
	}
	prod := 1.0
	for k := range maxN {
		prod *= (correct[k] + tiny) / (guess[k] + small)
		bleu[k] = math.Pow(prod, 1/float64(k+1))
		matched[k] = int(correct[k])
	}
	if ratio := (testLen + tiny) / (refLen + small); ratio < 1 {
		for k := range bleu {
			bleu[k] *= math.Exp(1 - 1/ratio)
		}
	}
	return bleu, matched
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
