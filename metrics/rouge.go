package metrics

// rougeBeta weighs recall against precision in ROUGE-L's F-measure, as
// coco-caption's rouge.py does (beta = 1.2).
const rougeBeta = 1.2

// ROUGEL is coco-caption's ROUGE-L (pycocoevalcap rouge.py): per image, the
// longest common subsequence with each reference gives a precision (LCS over
// the candidate's length) and a recall (over the reference's); the best of each
// over the references combine into an F-measure with beta 1.2; the corpus score
// is the mean over images.
func ROUGEL(cands [][]string, refs [][][]string) float64 {
	checkCorpus(cands, refs)
	var sum float64
	for i, cand := range cands {
		sum += rougeL(cand, refs[i])
	}
	return sum / float64(len(cands))
}

func rougeL(cand []string, refs [][]string) float64 {
	if len(cand) == 0 {
		return 0
	}
	var precMax, recMax float64
	for _, ref := range refs {
		if len(ref) == 0 {
			continue
		}
		l := float64(lcs(cand, ref))
		precMax = max(precMax, l/float64(len(cand)))
		recMax = max(recMax, l/float64(len(ref)))
	}
	if precMax == 0 || recMax == 0 {
		return 0
	}
	b2 := rougeBeta * rougeBeta
	return (1 + b2) * precMax * recMax / (recMax + b2*precMax)
}

// lcs is the length of the longest common subsequence of a and b, by the
// textbook dynamic programme over one row.
func lcs(a, b []string) int {
	row := make([]int, len(b)+1)
	for i := range a {
		diag := 0 // row[j] of the previous i
		for j := range b {
			up := row[j+1]
			if a[i] == b[j] {
				row[j+1] = diag + 1
			} else {
				row[j+1] = max(up, row[j])
			}
			diag = up
		}
	}
	return row[len(b)]
}
