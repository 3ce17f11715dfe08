package metrics

import (
	"math"
	"strings"
	"testing"
)

func toks(s string) []string { return strings.Fields(s) }

func refsOf(sets ...[]string) [][][]string {
	out := make([][][]string, len(sets))
	for i, set := range sets {
		for _, r := range set {
			out[i] = append(out[i], toks(r))
		}
	}
	return out
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestBLEUSingleImage(t *testing.T) {
	// cand "the cat sat on the mat" (6 tokens);
	// refs "the cat is on the mat" (6), "there is a cat on the mat" (7).
	// 1-grams: the x2 (ref1 has 2) cat on mat match, sat does not: 5/6.
	// 2-grams: the cat, on the, the mat match; cat sat, sat on do not: 3/5.
	// 3-grams: on the mat matches; the cat sat, cat sat on, sat on the do not: 1/4.
	// 4-grams: none of 3 match: (0 + 1e-15)/(3 + 1e-9).
	// Closest reference length 6 = candidate length: no brevity penalty.
	cands := [][]string{toks("the cat sat on the mat")}
	refs := refsOf([]string{"the cat is on the mat", "there is a cat on the mat"})
	got, matched := BLEUMatches(cands, refs)
	if matched != [4]int{5, 3, 1, 0} {
		t.Errorf("matched n-grams %v, want [5 3 1 0]", matched)
	}
	p4 := 1e-15 / (3 + 1e-9)
	want := [4]float64{
		5.0 / 6,                            // 0.8333
		math.Sqrt(5.0 / 6 * 3 / 5),         // sqrt(0.5) = 0.7071
		math.Cbrt(5.0 / 6 * 3 / 5 * 1 / 4), // cbrt(0.125) = 0.5
		math.Pow(0.125*p4, 0.25),           // (4.17e-17)^(1/4) = 8.03e-5
	}
	for k := range want {
		if !near(got[k], want[k], 1e-9) {
			t.Errorf("BLEU-%d = %.10g, want %.10g", k+1, got[k], want[k])
		}
	}
}

func TestBLEUCorpusBrevity(t *testing.T) {
	// Image A: cand "a b c" (3); refs of length 4 and 2 are equally close: the
	// shorter, 2, counts. All 1-, 2-, 3-grams of "a b c" are in "a b c d": 3/3,
	// 2/2, 1/1; no 4-grams (guess max(0, 3-4+1) = 0).
	// Image B: cand "x y" (2), ref length 5: 2/2, 1/1, 0/0, 0/0.
	// Corpus: matches = guesses = [5 3 1 0]; C = 3+2 = 5, R = 2+5 = 7.
	// p1 = p2 = p3 = 1, p4 = 1e-15/1e-9 = 1e-6; BP = exp(1 - 7/5) = exp(-0.4) = 0.67032.
	// (Taking the longer tied reference would give R = 9 and BP = exp(-0.8) = 0.4493.)
	// The tied references in both orders: the shorter wins wherever it is.
	for _, tied := range [][]string{{"a b c d", "a b"}, {"a b", "a b c d"}} {
		cands := [][]string{toks("a b c"), toks("x y")}
		refs := refsOf(tied, []string{"x y z w v"})
		got, matched := BLEUMatches(cands, refs)
		if matched != [4]int{5, 3, 1, 0} {
			t.Errorf("references %q: matched n-grams %v, want [5 3 1 0]", tied, matched)
		}
		bp := math.Exp(-0.4)
		want := [4]float64{bp, bp, bp, math.Pow(1e-6, 0.25) * bp} // 0.67032 x3, 0.021197
		for k := range want {
			if !near(got[k], want[k], 1e-9) {
				t.Errorf("references %q: BLEU-%d = %.10g, want %.10g", tied, k+1, got[k], want[k])
			}
		}
	}
}

// An n-gram is its words, not their letters: "ab c" shares no bigram with
// "a bc", though both spell "abc".
func TestNGramsKeepWordBoundaries(t *testing.T) {
	if _, matched := BLEUMatches([][]string{{"ab", "c"}}, [][][]string{{{"a", "bc"}}}); matched != [4]int{0, 0, 0, 0} {
		t.Errorf("matched n-grams %v of \"ab c\" against \"a bc\", want none", matched)
	}
}

func TestBLEUEdgeCases(t *testing.T) {
	// A candidate equal to a reference scores 1 (up to coco's 1e-9 smoothing).
	perfect := BLEU([][]string{toks("a dog runs on the grass")}, refsOf([]string{"a cat sleeps", "a dog runs on the grass"}))
	for k, b := range perfect {
		if !near(b, 1, 1e-9) {
			t.Errorf("perfect match BLEU-%d = %.12g, want 1", k+1, b)
		}
	}
	// An empty candidate scores 0: the brevity penalty is exp(1 - R/1e-15) = 0.
	empty := BLEU([][]string{nil}, refsOf([]string{"a dog runs"}))
	if empty != [4]float64{} {
		t.Errorf("empty candidate BLEU = %v, want all 0", empty)
	}
	// Clipping: "the the the the" against "the cat": 1 of 4 unigrams counts.
	clip := BLEU([][]string{toks("the the the the")}, refsOf([]string{"the cat on the mat here"}))
	// Matches: the x2 (ref has 2) of 4 -> 0.5; C = 4 < R = 6: BP = exp(1 - 6/4) = exp(-0.5).
	if want := 0.5 * math.Exp(-0.5); !near(clip[0], want, 1e-9) {
		t.Errorf("clipped BLEU-1 = %.10g, want %.10g", clip[0], want)
	}
}

// The brevity penalty takes the reference closest in length, not the
// shortest, and clipping takes an n-gram's most frequent reference count, not
// the sum over references: both would raise every reported score.
func TestBLEUClosestReferenceAndMaxClipping(t *testing.T) {
	// cand "a b c d e" (5); refs of 2 and 6 words: 6 is closest, so
	// BP = exp(1 - 6/5) = 0.8187; every n-gram of the candidate is in the
	// longer reference, so every precision is 1. (The shortest, 2, would leave
	// no penalty: 1.)
	closest := BLEU([][]string{toks("a b c d e")}, refsOf([]string{"a b", "a b c d e f"}))
	for k, b := range closest {
		if want := math.Exp(-0.2); !near(b, want, 1e-9) {
			t.Errorf("BLEU-%d = %.10g, want %.10g", k+1, b, want)
		}
	}
	// cand "the the the"; each reference has one "the": 1 of 3 unigrams counts
	// (summing the references' counts would let 2). C = 3 > R = 2: no penalty.
	clip := BLEU([][]string{toks("the the the")}, refsOf([]string{"the cat", "the dog"}))
	if !near(clip[0], 1.0/3, 1e-9) {
		t.Errorf("BLEU-1 = %.10g, want 1/3", clip[0])
	}
}

func TestCIDErD(t *testing.T) {
	// Two images, so log N = log 2 =: L. Reference n-grams by image:
	//   image 1 refs "a b c", "a b d": a b c d, "a b" "b c" "b d", "a b c" "a b d"
	//   image 2 ref  "a e":            a e, "a e"
	// df(a) = 2, so a's weight is L - log 2 = 0; every other n-gram, seen or
	// unseen (df 0 -> max(1, 0) = 1), weighs tf * L.
	//
	// Image 1, cand "a b b": 1-grams a:0 b:2L (norm 2L); 2-grams "a b":L "b b":L
	// (norm sqrt2 L); 3-gram "a b b":L (norm L); no 4-grams; bigram length 2.
	//   vs "a b c" (1-grams a:0 b:L c:L, norm sqrt2 L; 2-grams "a b":L "b c":L,
	//   norm sqrt2 L; 3-gram "a b c"; length 2, so no penalty):
	//     n=1: min(2L, L)*L / (2L * sqrt2 L) = 1/(2 sqrt2)   (clipping: 2L -> L)
	//     n=2: min(L, L)*L / (sqrt2 L * sqrt2 L) = 1/2;  n=3: 0;  n=4: 0
	//   vs "a b d": the same by symmetry.
	//   score = 10 * (2/(2 sqrt2) + 2/2) / 4 / 2 refs = 10 (1/sqrt2 + 1)/8 = 2.1338835
	// Image 2, cand "a e" = its reference: n=1 and n=2 give 1, n=3 and n=4 have
	// no n-grams and give 0: score = 10 * 2/4 = 5.
	cands := [][]string{toks("a b b"), toks("a e")}
	refs := refsOf([]string{"a b c", "a b d"}, []string{"a e"})
	mean, per := CIDErD(cands, refs)
	want1 := 10 * (1/math.Sqrt2 + 1) / 8
	if !near(per[0], want1, 1e-12) || !near(per[1], 5, 1e-12) || !near(mean, (want1+5)/2, 1e-12) {
		t.Errorf("CIDEr-D = %.10g %v, want %.10g [%.10g 5]", mean, per, (want1+5)/2, want1)
	}

	// Length penalty: image 2's candidate "a e f" has 2 bigrams, the reference 1:
	// delta 1, penalty exp(-1/72) = 0.98621. 1-grams a:0 e:L f:L (norm sqrt2 L)
	// vs a:0 e:L (norm L): L^2/(sqrt2 L^2) = 1/sqrt2; 2-grams "a e":L "e f":L
	// vs "a e":L: 1/sqrt2 as well; 3-gram "a e f" unmatched.
	// score = 10 * 2/sqrt2 * exp(-1/72) / 4 = 3.4867671
	cands[1] = toks("a e f")
	_, per = CIDErD(cands, refs)
	if want := 10 * math.Sqrt2 * math.Exp(-1.0/72) / 4; !near(per[1], want, 1e-12) {
		t.Errorf("penalised CIDEr-D = %.10g, want %.10g", per[1], want)
	}
	if !near(per[0], want1, 1e-12) {
		t.Errorf("image 1 changed to %.10g when only image 2's candidate changed", per[0])
	}
}

// Two cases the test above leaves open: a reference that repeats an n-gram
// more often than the candidate (the clipped product is min(c, r)·r, not
// min(c, r)²), and lengths two bigrams apart (the penalty is exp(-δ²/72), not
// exp(-|δ|/72)). Both corpora have two images whose words are all distinct,
// so every document frequency is 1 and every weight is tf·log 2 =: tf·L.
func TestCIDErDRepeatsAndLengthPenalty(t *testing.T) {
	// Image 1, cand "a b" against ref "a a b":
	//   1-grams a:L b:L (norm √2 L) vs a:2L b:L (norm √5 L):
	//     (min(L, 2L)·2L + L·L) / (√2 L · √5 L) = 3/√10;
	//   2-grams "a b" (norm L) vs "a a" "a b" (norm √2 L): 1/√2;
	//   no 3- or 4-grams; 1 bigram against 2: δ = -1.
	//   score = 10/4 · (3/√10 + 1/√2) · exp(-1/72) = 4.0823799
	_, per := CIDErD([][]string{toks("a b"), toks("c")}, refsOf([]string{"a a b"}, []string{"c"}))
	if want := 2.5 * (3/math.Sqrt(10) + 1/math.Sqrt2) * math.Exp(-1.0/72); !near(per[0], want, 1e-9) {
		t.Errorf("a reference repeating a word: CIDEr-D %.10g, want %.10g", per[0], want)
	}
	// Image 1, cand "a b x y" against ref "a b":
	//   1-grams (norm 2L) vs a b (norm √2 L): 2L²/(2√2 L²) = 1/√2;
	//   2-grams "a b" "b x" "x y" (norm √3 L) vs "a b": 1/√3;
	//   the reference has no 3- or 4-grams; 3 bigrams against 1: δ = 2.
	//   score = 10/4 · (1/√2 + 1/√3) · exp(-4/72) = 3.0376108
	_, per = CIDErD([][]string{toks("a b x y"), toks("c d")}, refsOf([]string{"a b"}, []string{"c d"}))
	if want := 2.5 * (1/math.Sqrt2 + 1/math.Sqrt(3)) * math.Exp(-4.0/72); !near(per[0], want, 1e-9) {
		t.Errorf("two bigrams longer: CIDEr-D %.10g, want %.10g", per[0], want)
	}
}

func TestCIDErDEdgeCases(t *testing.T) {
	refs := refsOf([]string{"a dog runs on the grass", "a dog is running"}, []string{"a cat sleeps on a sofa"})
	// An empty candidate scores 0.
	_, per := CIDErD([][]string{nil, toks("a cat sleeps on a sofa")}, refs)
	if per[0] != 0 || per[1] <= 0 {
		t.Errorf("empty candidate: %v, want 0 and a positive score", per)
	}
	// With one image every n-gram has df = N = 1: all weights log 1 - log 1 = 0.
	if mean, _ := CIDErD([][]string{toks("a dog runs")}, refsOf([]string{"a dog runs"})); mean != 0 {
		t.Errorf("single-image corpus CIDEr-D = %v, want 0 (coco-caption behaviour)", mean)
	}
	// Matching every reference beats matching one, which beats matching none.
	good, _ := CIDErD([][]string{toks("a dog runs on the grass"), toks("a cat sleeps on a sofa")}, refs)
	bad, _ := CIDErD([][]string{toks("a car drives fast"), toks("a cat sleeps on a sofa")}, refs)
	if !(good > bad) {
		t.Errorf("CIDEr-D good %v <= bad %v", good, bad)
	}
}

func TestEvaluateAndPanics(t *testing.T) {
	cands := [][]string{toks("the cat sat on the mat")}
	refs := refsOf([]string{"the cat is on the mat", "there is a cat on the mat"})
	s, per := Evaluate(cands, refs)
	if s.BLEU != BLEU(cands, refs) || s.CIDErD != 0 || len(per) != 1 || s.ROUGEL != ROUGEL(cands, refs) { // one image: CIDEr-D 0
		t.Errorf("Evaluate = %+v, %v", s, per)
	}
	// ROUGE-L: LCS "the cat on the mat" = 5 with both references: P = 5/6,
	// R = max(5/6, 5/7) = 5/6, F = P (they are equal) = 0.8333.
	if got := s.String(); got != "BLEU-1 0.8333  BLEU-2 0.7071  BLEU-3 0.5000  BLEU-4 0.0001  CIDEr-D 0.0000  ROUGE-L 0.8333  distinct 1  words 5" {
		t.Errorf("String() = %q", got)
	}
	for _, tc := range []struct {
		name  string
		cands [][]string
		refs  [][][]string
		msg   string
	}{
		{"lengths", cands, nil, "1 candidate captions for 0 reference sets"},
		{"empty", nil, nil, "empty corpus"},
		{"no refs", [][]string{nil, nil}, [][][]string{{{"a"}}, {}}, "image 1 has no reference captions"},
	} {
		func() {
			defer func() {
				if p, _ := recover().(string); !strings.Contains(p, tc.msg) {
					t.Errorf("%s: panic %q, want %q", tc.name, p, tc.msg)
				}
			}()
			BLEU(tc.cands, tc.refs)
		}()
	}
}

func TestCIDErDScorerMatchesCorpusScores(t *testing.T) {
	// The scorer keeps the corpus's document frequencies: scoring one image's
	// caption alone gives the same number as the whole-corpus call.
	refs := refsOf([]string{"a dog runs on the grass", "a dog is running"}, []string{"a cat sleeps on a sofa"}, []string{"two men ride bikes"})
	cands := [][]string{toks("a dog runs"), toks("a cat on a sofa"), toks("men ride bikes on the grass")}
	_, per := CIDErD(cands, refs)
	s := NewCIDErDScorer(refs)
	for i := len(cands) - 1; i >= 0; i-- {
		if got := s.Score(i, cands[i]); got != per[i] || got <= 0 {
			t.Errorf("Score(%d) = %v, corpus CIDEr-D gave %v (want equal and positive)", i, got, per[i])
		}
	}
}

func TestROUGEL(t *testing.T) {
	// Image A: cand "a b c d" (4), ref "a c d e f" (5): LCS "a c d" = 3,
	// P = 3/4, R = 3/5; F = (1+1.44)·0.75·0.6 / (0.6 + 1.44·0.75) = 1.098/1.68.
	// Ref "d c b a" has LCS 1 and changes neither maximum.
	// Image B: cand "x y" against "z": no common word, 0.
	// Image C: best precision and best recall from different references, as
	// rouge.py takes them: cand "p q r" (3); ref "p q" gives P 2/3, R 1;
	// ref "p q r s t u" gives P 1, R 1/2; so P = 1, R = 1:
	// F = 2.44/2.44 = 1.
	cands := [][]string{toks("a b c d"), toks("x y"), toks("p q r")}
	refs := refsOf([]string{"a c d e f", "d c b a"}, []string{"z"}, []string{"p q", "p q r s t u"})
	want := (1.098/1.68 + 0 + 1) / 3
	if got := ROUGEL(cands, refs); !near(got, want, 1e-12) {
		t.Errorf("ROUGE-L = %.12f, want %.12f", got, want)
	}
	if got := ROUGEL([][]string{nil}, refsOf([]string{"a"})); got != 0 {
		t.Errorf("ROUGE-L of an empty caption = %v, want 0", got)
	}
	// An empty reference (a caption that cleaned to nothing, ".") is skipped,
	// not a division by zero that makes the corpus score NaN.
	if got := ROUGEL([][]string{toks("a b")}, [][][]string{{nil, toks("a b")}}); got != 1 {
		t.Errorf("ROUGE-L beside an empty reference = %v, want 1", got)
	}
}

func TestLCS(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"a b c d", "a c d e f", 3},
		{"a b c b d a b", "b d c a b a", 4}, // CLRS's example: "b c b a"
		{"", "a b", 0},
		{"a a a", "a a", 2},
	} {
		if got := lcs(toks(tc.a), toks(tc.b)); got != tc.want {
			t.Errorf("lcs(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := lcs(toks(tc.b), toks(tc.a)); got != tc.want {
			t.Errorf("lcs(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestDiversity(t *testing.T) {
	s, _ := Evaluate([][]string{toks("a dog runs"), toks("a dog runs"), toks("a cat sits")}, refsOf([]string{"x"}, []string{"x"}, []string{"x"}))
	if s.Distinct != 2 || s.Words != 5 {
		t.Errorf("distinct %d words %d, want 2 and 5", s.Distinct, s.Words)
	}
}

// Captions are told apart by their words: "a b" and "ab" are two.
func TestDiversityKeepsWordBoundaries(t *testing.T) {
	s, _ := Evaluate([][]string{{"a", "b"}, {"ab"}}, refsOf([]string{"x"}, []string{"x"}))
	if s.Distinct != 2 || s.Words != 3 {
		t.Errorf("distinct %d words %d, want 2 and 3", s.Distinct, s.Words)
	}
}
