package metrics

import "math"

// sigma is CIDEr-D's length-penalty width, in tokens.
const sigma = 6.0

// CIDErD returns the corpus CIDEr-D score (the mean over images) and each
// image's score, as coco-caption's CiderScorer computes them:
//
//   - document frequency df(g) = the number of images whose references contain
//     n-gram g; with N images, an n-gram's weight is tf * (log N - log max(1, df));
//   - for each order n = 1..4, candidate and reference are such weight vectors;
//     their similarity is sum_g min(c_g, r_g) * r_g / (|c| |r|) (the candidate
//     clipped by the reference, the "-D" of CIDEr-D; 0 when a norm is 0), times
//     exp(-(lc - lr)^2 / (2 sigma^2)) with sigma = 6;
//   - an image's score is 10 * the mean over n of the mean over its references.
//
// As in coco-caption, the lengths lc and lr in the penalty are bigram counts,
// max(0, tokens-1); their difference is the token-length difference whenever
// both captions are non-empty, and an empty caption scores 0 regardless. With a
// single image every weight is 0 (log 1 = 0) and so is the score.
func CIDErD(cands [][]string, refs [][][]string) (float64, []float64) {
	checkCorpus(cands, refs)
	df := map[string]int{}
	refVecs := make([][]tfidf, len(refs))
	for _, rs := range refs {
		seen := map[string]bool{}
		for _, r := range rs {
			for _, counts := range ngrams(r) {
				for g := range counts {
					if !seen[g] {
						seen[g] = true
						df[g]++
					}
				}
			}
		}
	}
	logN := math.Log(float64(len(cands)))
	for i, rs := range refs {
		for _, r := range rs {
			refVecs[i] = append(refVecs[i], newTFIDF(r, df, logN))
		}
	}
	scores := make([]float64, len(cands))
	var total float64
	for i, cand := range cands {
		c := newTFIDF(cand, df, logN)
		var sum [maxN]float64
		for _, r := range refVecs[i] {
			delta := float64(c.length - r.length)
			penalty := math.Exp(-delta * delta / (2 * sigma * sigma))
			for n := range maxN {
				var dot float64
				for g, cw := range c.w[n] {
					rw := r.w[n][g]
					dot += min(cw, rw) * rw
				}
				if c.norm[n] != 0 && r.norm[n] != 0 {
					dot /= c.norm[n] * r.norm[n]
				}
				sum[n] += dot * penalty
			}
		}
		var mean float64
		for _, s := range sum {
			mean += s
		}
		scores[i] = 10 * mean / maxN / float64(len(refVecs[i]))
		total += scores[i]
	}
	return total / float64(len(cands)), scores
}

// tfidf is one caption's n-gram weights per order, their norms, and its length
// as CIDEr-D measures it (the number of bigrams).
type tfidf struct {
	w      [maxN]map[string]float64
	norm   [maxN]float64
	length int
}

func newTFIDF(tokens []string, df map[string]int, logN float64) tfidf {
	var v tfidf
	for n, counts := range ngrams(tokens) {
		v.w[n] = make(map[string]float64, len(counts))
		var sq float64
		for g, tf := range counts {
			// An n-gram in no reference has df 0 and gets the largest weight, log N.
			w := float64(tf) * (logN - math.Log(max(1, float64(df[g]))))
			v.w[n][g] = w
			sq += w * w
			if n == 1 {
				v.length += tf
			}
		}
		v.norm[n] = math.Sqrt(sq)
	}
	return v
}
