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
	c := NewCIDErDScorer(refs)
	scores := make([]float64, len(cands))
	var total float64
	for i, cand := range cands {
		scores[i] = c.Score(i, cand)
		total += scores[i]
	}
	return total / float64(len(cands)), scores
}

// CIDErDScorer scores captions of a fixed corpus of images, one at a time: the
// document frequencies and reference vectors are computed once. Self-critical
// training uses it as the reward of sampled captions, with the training split's
// references as the corpus (as coco-caption's CIDEr-D with df from the corpus).
type CIDErDScorer struct {
	df      map[string]int
	logN    float64
	refVecs [][]tfidf
}

// NewCIDErDScorer prepares CIDEr-D against refs (per image, its references).
func NewCIDErDScorer(refs [][][]string) *CIDErDScorer {
	s := &CIDErDScorer{df: map[string]int{}, logN: math.Log(float64(len(refs))), refVecs: make([][]tfidf, len(refs))}
	for _, rs := range refs {
		seen := map[string]bool{}
		for _, r := range rs {
			for _, counts := range ngrams(r) {
				for g := range counts {
					if !seen[g] {
						seen[g] = true
						s.df[g]++
					}
				}
			}
		}
	}
	for i, rs := range refs {
		for _, r := range rs {
			s.refVecs[i] = append(s.refVecs[i], newTFIDF(r, s.df, s.logN))
		}
	}
	return s
}

// Score is CIDEr-D of cand against the references of image i.
func (s *CIDErDScorer) Score(i int, cand []string) float64 {
	c := newTFIDF(cand, s.df, s.logN)
	var sum [maxN]float64
	for _, r := range s.refVecs[i] {
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
	for _, v := range sum {
		mean += v
	}
	return 10 * mean / maxN / float64(len(s.refVecs[i]))
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
