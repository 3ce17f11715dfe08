package decoder

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/text"
)

// refDecoder is a naive float64 decoder over host parameters: one image, one
// hypothesis at a time, for checking the device's batched greedy and beam search.
type refDecoder struct {
	c    Config
	p    map[string][]float64
	flat []float32
}

// refStep feeds a token and returns the next state, log-probabilities (V) and,
// for attention, the step's attention weights (L).
type refStep func(s refState, tok int32) (refState, []float64, []float64)

// begin returns an image's step function and initial state; feat is (InputDim).
func (r *refDecoder) begin(feat []float32) (refStep, refState) {
	if r.c.Arch == ArchAttention {
		rp := newRefParams(r.c, toF64(r.flat))
		im, s := rp.attStart(feat)
		return func(s refState, tok int32) (refState, []float64, []float64) {
			n, alpha, logits := rp.attStep(im, s, int(tok), func(int) float64 { return 1 })
			lp := softmax64(silence(logits))
			for j := range lp {
				lp[j] = math.Log(lp[j])
			}
			return n, lp, alpha
		}, s
	}
	img := r.image(feat)
	H := r.c.Hidden
	return func(s refState, tok int32) (refState, []float64, []float64) {
			n, lp := r.step(img, s, tok)
			return n, lp, nil
		},
		refState{h: make([]float64, H), c: make([]float64, H)}
}

type refState struct{ h, c []float64 }

// silence makes the words decoding never emits (<pad>, <start>, <unk>)
// impossible: their logits become -Inf, written independently of the
// device's -1e30 bias.
func silence(logits []float64) []float64 {
	for _, id := range []int{text.PadID, text.StartID, text.UnkID} {
		if id < len(logits) {
			logits[id] = math.Inf(-1)
		}
	}
	return logits
}

func newRefDecoder(c Config, flat []float32) *refDecoder {
	r := &refDecoder{c: c, p: map[string][]float64{}, flat: flat}
	for _, t := range c.Tensors() {
		r.p[t.Name] = toF64(flat[t.Off : t.Off+t.Len])
	}
	return r
}

func (r *refDecoder) dense(w, b string, x []float64, out int) []float64 {
	y := make([]float64, out)
	for o := range y {
		s := 0.0
		if b != "" {
			s = r.p[b][o]
		}
		for i, v := range x {
			s += r.p[w][o*len(x)+i] * v
		}
		y[o] = s
	}
	return y
}

func (r *refDecoder) image(feat []float32) []float64 {
	v := r.dense("img.weight", "img.bias", toF64(feat), r.c.Hidden)
	for i := range v {
		v[i] = math.Max(v[i], 0)
	}
	return v
}

// step feeds token tok and returns the next state and log-probabilities (V).
func (r *refDecoder) step(img []float64, s refState, tok int32) (refState, []float64) {
	H, E := r.c.Hidden, r.c.Embed
	e := r.p["embed.weight"][int(tok)*E : int(tok+1)*E]
	g := r.dense("lstm.weight_ih", "lstm.bias", e, 4*H)
	n := refCell(g, r.dense("lstm.weight_hh", "", s.h, 4*H), s)
	sum := make([]float64, H)
	for j := range sum {
		sum[j] = n.h[j] + img[j]
	}
	mid := r.dense("dec.weight", "dec.bias", sum, r.c.Mid)
	for j := range mid {
		mid[j] = math.Max(mid[j], 0)
	}
	lg := silence(r.dense("out.weight", "out.bias", mid, r.c.Vocab))
	mx := slices.Max(lg)
	z := 0.0
	for _, v := range lg {
		z += math.Exp(v - mx)
	}
	for j := range lg {
		lg[j] -= mx + math.Log(z)
	}
	return n, lg
}

// beam is textbook beam search for one image: constrained with no
// constraints (refDecoder.constrained), one state.
func (r *refDecoder) beam(feat []float32, o DecodeOptions) []Hypothesis {
	return r.constrained(feat, o, nil, nil)
}

// peakedModel has weights large enough that captions end at different lengths.
func peakedModel(t *testing.T, c Config) (*Model, []float32, []float32) {
	dev := openCPU(t)
	m, host := randomModel(t, dev, c, 12, 0.9)
	// The attention model's random weights rarely pick <end> (id 2): make it
	// likelier. The merge model's pick it first for some images, which then
	// (a caption has a word) all end at their second step: make it less likely.
	endBias := float32(1.5)
	if c.Arch != ArchAttention {
		endBias = -1.5
	}
	for _, tn := range c.Tensors() {
		if tn.Name == "out.bias" {
			host[tn.Off+2] += endBias
		}
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(12, 34))
	const B = 5
	feats := make([]float32, B*c.InputDim())
	for i := range feats {
		feats[i] = float32(rng.NormFloat64())
	}
	return m, host, feats
}

func generate(t *testing.T, m *Model, feats []float32, o DecodeOptions) [][]Hypothesis {
	t.Helper()
	dev := m.Device()
	B := len(feats) / m.Cfg.InputDim()
	buf := dev.Alloc(len(feats))
	defer dev.Free(buf)
	dev.Upload(buf, feats)
	hyps, err := m.Generate(context.Background(), buf, B, o)
	if err != nil {
		t.Fatal(err)
	}
	return hyps
}

func toF32(v []float64) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func sameHyp(a, b Hypothesis) bool {
	return slices.Equal(a.Tokens, b.Tokens) && math.Abs(a.LogProb-b.LogProb) < 1e-4 && math.Abs(a.Score-b.Score) < 1e-4
}

// bothArchs runs a test for merge and for attention.
func bothArchs(t *testing.T, test func(t *testing.T, c Config)) {
	t.Run(ArchMerge, func(t *testing.T) { test(t, tinyConfig()) })
	t.Run(ArchAttention, func(t *testing.T) { test(t, tinyAttentionConfig()) })
}

func TestBeamSearchMatchesNaiveReference(t *testing.T) { bothArchs(t, testBeamSearch) }

func testBeamSearch(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	ref := newRefDecoder(m.Cfg, host)
	F := m.Cfg.InputDim()
	lengths := map[int]bool{}
	repeats := map[int]int{} // by NoRepeat: hypotheses that say a bigram twice
	for _, k := range []int{1, 2, 3, 4} {
		for _, alpha := range []float64{0, 0.7} {
			for _, noRepeat := range []int{0, 2, 3} {
				o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: k, Alpha: alpha, NBest: k, NoRepeat: noRepeat}
				got := generate(t, m, feats, o)
				for b := range got {
					want := ref.beam(feats[b*F:(b+1)*F], o)
					if len(got[b]) != min(len(want), k) {
						t.Fatalf("K=%d alpha=%g no-repeat %d image %d: %d hypotheses, reference %d", k, alpha, noRepeat, b, len(got[b]), len(want))
					}
					for i, h := range got[b] {
						if !sameHyp(h, want[i]) {
							t.Errorf("K=%d alpha=%g no-repeat %d image %d hypothesis %d: got %v, reference %v", k, alpha, noRepeat, b, i, h, want[i])
						}
						// The reference scores with o.score itself: Score's
						// definition, for a caption that ended, is checked here.
						if n := len(h.Tokens) + 1; n <= o.MaxLen && math.Abs(h.Score-h.LogProb/math.Pow(float64(n), alpha)) > 1e-9 {
							t.Errorf("K=%d alpha=%g: score %g of log-probability %g over %d tokens and <end>", k, alpha, h.Score, h.LogProb, n-1)
						}
						lengths[len(h.Tokens)] = true
						if saysABigramTwice(h.Tokens) {
							repeats[noRepeat]++
						}
					}
				}
			}
		}
	}
	if len(lengths) < 3 {
		t.Errorf("hypotheses had only lengths %v; the test model should end captions at different steps", lengths)
	}
	if repeats[0] == 0 || repeats[3] == 0 || repeats[2] != 0 {
		t.Errorf("hypotheses saying a bigram twice, by no-repeat size: %v; want some at 0 and 3 (the test model repeats itself), none at 2", repeats)
	}
	// Fewer alternatives than beams: the best NBest of the same search.
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: 3, Alpha: 0.7, NBest: 3}
	all := generate(t, m, feats, o)
	for _, n := range []int{1, 2} {
		o.NBest = n
		for b, hs := range generate(t, m, feats, o) {
			want := all[b][:min(n, len(all[b]))]
			if len(hs) != len(want) {
				t.Fatalf("NBest %d of beam 3, image %d: %d hypotheses, want %d", n, b, len(hs), len(want))
			}
			for i := range hs {
				if !sameHyp(hs[i], want[i]) {
					t.Errorf("NBest %d of beam 3, image %d hypothesis %d: %v, want %v", n, b, i, hs[i], want[i])
				}
			}
		}
	}
}

// TestNoRepeatSearchStaysExact: over long captions a row may not say many
// words, more than beam search's usual 2K candidates spare, and the search
// widens its candidates by them: it still finds the naive search's captions.
func TestNoRepeatSearchStaysExact(t *testing.T) {
	c := tinyConfig()
	c.Vocab = 10
	m, ref, feats := smallVocabModel(t, c, 56)
	F := c.InputDim()
	for _, k := range []int{2, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 14, Beam: k, Alpha: 0.7, NBest: k, NoRepeat: 2}
		got := generate(t, m, feats, o)
		for b := range got {
			want := ref.beam(feats[b*F:(b+1)*F], o)
			for i, h := range got[b] {
				if i >= len(want) || !sameHyp(h, want[i]) {
					t.Fatalf("K=%d image %d hypothesis %d: got %v, reference %v", k, b, i, h, want)
				}
			}
		}
	}
}

// smallVocabModel is a random model of c, whose few words it repeats, with
// its reference decoder and 40 images' random features from seed.
func smallVocabModel(t *testing.T, c Config, seed uint64) (*Model, *refDecoder, []float32) {
	m, host := randomModel(t, openCPU(t), c, 5, 0.9)
	rng := rand.New(rand.NewPCG(seed, seed+22))
	feats := make([]float32, 40*c.InputDim())
	for i := range feats {
		feats[i] = float32(rng.NormFloat64())
	}
	return m, newRefDecoder(m.Cfg, host), feats
}

// saysABigramTwice says whether some two consecutive tokens occur twice in
// toks, or one token twice in a row.
func saysABigramTwice(toks []int32) bool {
	for i := 1; i < len(toks); i++ {
		if repeatsAnNGram(toks[:i+1], 2) {
			return true
		}
	}
	return false
}

func TestGreedyIsBeamOneAndBatchIndependent(t *testing.T) { bothArchs(t, testGreedy) }

func testGreedy(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	ref := newRefDecoder(m.Cfg, host)
	F := m.Cfg.InputDim()
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: 1, Alpha: 0.5}
	all := generate(t, m, feats, o)
	for b := range all {
		one := generate(t, m, feats[b*F:(b+1)*F], o)
		want := ref.beam(feats[b*F:(b+1)*F], o)[0]
		if !sameHyp(all[b][0], one[0][0]) || !sameHyp(all[b][0], want) {
			t.Errorf("image %d: batched %v, alone %v, reference greedy %v", b, all[b][0], one[0][0], want)
		}
	}
}

// TestCaptionsHaveAWord: a model whose <end> outweighs every word from the
// first step (one trained on little data does this for some photos) still
// captions each image with a word, in greedy, beam and constrained search,
// as the reference search that never ends before a word does.
func TestCaptionsHaveAWord(t *testing.T) { bothArchs(t, testCaptionsHaveAWord) }

func testCaptionsHaveAWord(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	for _, tn := range m.Cfg.Tensors() {
		if tn.Name == "out.bias" {
			host[tn.Off+2] += 8 // <end> (id 2)
		}
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	ref := newRefDecoder(m.Cfg, host)
	F := m.Cfg.InputDim()
	for b := range len(feats) / F { // the premise: <end> is every image's likeliest first token
		step, s0 := ref.begin(feats[b*F : (b+1)*F])
		if _, lp, _ := step(s0, 1); slices.Index(lp, slices.Max(lp)) != 2 {
			t.Fatalf("image %d: the likeliest first token is %d, not <end>", b, slices.Index(lp, slices.Max(lp)))
		}
	}
	for _, k := range []int{1, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: k, Alpha: 0.7, NBest: k, NoRepeat: 2}
		cons := make([][]Constraint, len(feats)/F)
		for b := range cons {
			cons[b] = []Constraint{{int32(4 + b%5)}}
		}
		for _, search := range []struct {
			name string
			got  [][]Hypothesis
			cons func(b int) []Constraint
		}{
			{"plain", generate(t, m, feats, o), func(int) []Constraint { return nil }},
			{"constrained", generateConstrained(t, m, feats, nil, o, cons, nil), func(b int) []Constraint { return cons[b] }},
		} {
			for b, hs := range search.got {
				want := ref.constrained(feats[b*F:(b+1)*F], o, search.cons(b), nil)
				if len(hs) == 0 || len(want) == 0 {
					t.Fatalf("K=%d %s image %d: %d hypotheses, reference %d", k, search.name, b, len(hs), len(want))
				}
				for i, h := range hs {
					if len(h.Tokens) == 0 {
						t.Errorf("K=%d %s image %d hypothesis %d: no words (log-prob %.3f)", k, search.name, b, i, h.LogProb)
					}
					// Hypotheses of equal score may come in either order: this
					// model's words can swap places at no cost.
					tied := slices.ContainsFunc(want, func(w Hypothesis) bool {
						return sameHyp(h, w) && math.Abs(w.Score-want[min(i, len(want)-1)].Score) < 1e-6
					})
					if i >= len(want) || !sameHyp(h, want[i]) && !tied {
						t.Errorf("K=%d %s image %d hypothesis %d: got %v, reference %v", k, search.name, b, i, h, want)
					}
				}
			}
		}
	}
	// A caption of one word at most still has its word: greedy's top-k
	// holds the banned <end> and the word after it.
	for _, k := range []int{1, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 1, Beam: k, Alpha: 0.7, NBest: 1, NoRepeat: 2}
		for b, hs := range generate(t, m, feats, o) {
			if len(hs) == 0 || len(hs[0].Tokens) != 1 || hs[0].Tokens[0] == 2 {
				t.Errorf("K=%d MaxLen 1 image %d: %v, want one word", k, b, hs)
			}
		}
	}
	// With NoEarlyStop <end> is an ordinary word, the first one too.
	for _, k := range []int{1, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 3, Beam: k, NBest: 1, NoEarlyStop: true}
		for b, hs := range generate(t, m, feats, o) {
			if len(hs) == 0 || len(hs[0].Tokens) == 0 || hs[0].Tokens[0] != 2 {
				t.Errorf("K=%d NoEarlyStop image %d: %v, want <end> first, the model's likeliest", k, b, hs)
			}
		}
	}
}

func TestNoEarlyStopDecodesMaxLen(t *testing.T) {
	m, _, feats := peakedModel(t, tinyAttentionConfig())
	for _, k := range []int{1, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 9, Beam: k, NoEarlyStop: true}
		for b, h := range generate(t, m, feats, o) {
			if len(h[0].Tokens) != 9 {
				t.Errorf("K=%d image %d: %d tokens, want 9", k, b, len(h[0].Tokens))
			}
		}
	}
}

func TestDecodeOptionErrors(t *testing.T) {
	m, _, feats := peakedModel(t, tinyConfig())
	buf := m.Device().Alloc(len(feats))
	defer m.Device().Free(buf)
	for _, tc := range []struct {
		o    DecodeOptions
		want string
	}{
		{DecodeOptions{Start: 1, End: 2, MaxLen: 0, Beam: 1}, "decoder: max length 0 must be at least 1"},
		{DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 5}, "decoder: beam width 5 is outside 1..4 (half the model's vocabulary of 9 ids, special tokens included); use a narrower beam"},
		{DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 2, NBest: 3}, "decoder: 3 alternatives asked for with beam width 2; use a beam at least as wide"},
		{DecodeOptions{Start: 1, End: 9, MaxLen: 5, Beam: 1}, "decoder: special token id 9 is outside the vocabulary (0..8)"},
		{DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 1, Attention: true}, ErrNoAttention.Error()},
		{DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 1, NoRepeat: 1}, `decoder: no-repeat n-gram size 1 must be 0 (repeats allowed) or at least 2 (1 would forbid any word twice, "a" included)`},
		{DecodeOptions{Start: 1, End: 2, MaxLen: 5, Beam: 1, NoRepeat: -1}, `decoder: no-repeat n-gram size -1 must be 0 (repeats allowed) or at least 2 (1 would forbid any word twice, "a" included)`},
	} {
		_, err := m.Generate(context.Background(), buf, 5, tc.o)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%+v: got error %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestDecodingNeverEmitsUnspokenWords(t *testing.T) { bothArchs(t, testUnspoken) }

// testUnspoken: a model whose output bias makes <unk> (and <pad>, <start>)
// by far the likeliest words (+50 on logits of order 1) still never says
// them, greedy or in beam search.
func testUnspoken(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	for _, tn := range c.Tensors() {
		if tn.Name == "out.bias" {
			for _, id := range unspoken {
				host[tn.Off+int(id)] += 50
			}
		}
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	check := func(what string, tokens []int32) {
		for _, tok := range tokens {
			if slices.Contains(unspoken, tok) {
				t.Fatalf("%s emitted unspoken word %d: %v", what, tok, tokens)
			}
		}
	}
	for _, k := range []int{1, 3} {
		for b, h := range generate(t, m, feats, DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: k, NBest: k}) {
			for _, hyp := range h {
				check(fmt.Sprintf("beam %d image %d", k, b), hyp.Tokens)
			}
		}
	}
	// A beam wider than the words a step may say: of 6 ids, the first step
	// may say 2 (not the three unspoken ids, nor <end>). The third beam stays empty
	// rather than hold an unspoken word at a log-probability of -1e30.
	c.Vocab = 6
	m, _, feats = peakedModel(t, c)
	for _, maxLen := range []int{1, 2} {
		for b, h := range generate(t, m, feats, DecodeOptions{Start: 1, End: 2, MaxLen: maxLen, Beam: 3, NBest: 3}) {
			for _, hyp := range h {
				check(fmt.Sprintf("vocabulary 6, beam 3, max length %d, image %d", maxLen, b), hyp.Tokens)
			}
			if maxLen == 1 && len(h) != 2 {
				t.Errorf("vocabulary 6, beam 3, one word, image %d: %d captions, want the 2 words it may say", b, len(h))
			}
		}
	}
}

// rowRecorder is a stepper that records how many rows each step runs.
type rowRecorder struct {
	stepper
	rows []int
}

func (r *rowRecorder) step(toks []int32) gpu.Buf {
	r.rows = append(r.rows, len(toks))
	return r.stepper.step(toks)
}

// stepsTaken is how many steps a caption of n words took to decode: one per
// word and one for <end>, unless it was cut at maxLen words.
func stepsTaken(n int, ended bool, maxLen int) int {
	if ended {
		return n + 1
	}
	return min(n+1, maxLen)
}

// TestFinishedImagesLeaveTheBatch checks that an image costs steps only while
// its caption is undecided, and one row at the first step: greedy decoding
// and sampling run, at each step, exactly the rows of the images still
// decoding (what the captions' lengths say), beam search one row per image
// and then a shrinking multiple of the beam; the captions themselves are
// checked against the reference by the tests above.
func TestFinishedImagesLeaveTheBatch(t *testing.T) { bothArchs(t, testFinishedLeave) }

func testFinishedLeave(t *testing.T, c Config) {
	m, host, feats := peakedModel(t, c)
	// Most of its greedy captions would run to MaxLen: make <end> likelier still.
	for _, tn := range c.Tensors() {
		if tn.Name == "out.bias" {
			host[tn.Off+2] += 1
		}
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	dev, V, L := m.Device(), c.Vocab, c.Regions
	B := len(feats) / c.InputDim()
	buf := dev.Alloc(len(feats))
	defer dev.Free(buf)
	dev.Upload(buf, feats)
	ctx := context.Background()
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 20, Beam: 1}

	// want is the rows of each step when image b takes steps[b] steps: one
	// row at the first, K rows each after it.
	want := func(steps []int, K int) []int {
		var rows []int
		for t := 0; ; t++ {
			n := 0
			for _, s := range steps {
				if s > t && t == 0 {
					n++
				} else if s > t {
					n += K
				}
			}
			if n == 0 {
				return rows
			}
			rows = append(rows, n)
		}
	}

	rec := &rowRecorder{stepper: m.stepper(buf, B, 1)}
	hyps, err := greedy(ctx, dev, rec, B, V, L, o)
	if err != nil {
		t.Fatal(err)
	}
	steps := make([]int, B)
	for b, h := range hyps {
		steps[b] = stepsTaken(len(h[0].Tokens), len(h[0].Tokens) < o.MaxLen, o.MaxLen)
	}
	if w := want(steps, 1); !slices.Equal(rec.rows, w) || !leaves(w, B, 1) {
		t.Errorf("greedy: rows per step %v, want %v (captions of %v steps), an image leaving", rec.rows, w, steps)
	}
	sameAlone(t, m, feats, o, hyps)

	const K = 3
	rec = &rowRecorder{stepper: m.stepper(buf, B, K)}
	samples, err := sample(ctx, dev, rec, B, K, V, o, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	clear(steps)
	for r, s := range samples {
		steps[r/K] = max(steps[r/K], stepsTaken(len(s.Tokens), s.Ended, o.MaxLen))
	}
	if w := want(steps, K); !slices.Equal(rec.rows, w) || !leaves(w, B, K) {
		t.Errorf("sample: rows per step %v, want %v (images of %v steps), an image leaving", rec.rows, w, steps)
	}

	o.Beam = K
	rec = &rowRecorder{stepper: m.stepper(buf, B, K)}
	if hyps, err = beam(ctx, dev, rec, B, V, L, o); err != nil {
		t.Fatal(err)
	}
	sameAlone(t, m, feats, o, hyps)
	if rec.rows[0] != B || rec.rows[1] != B*K {
		t.Fatalf("beam: rows per step %v, want %d (one per image) then %d", rec.rows, B, B*K)
	}
	for i, n := range rec.rows[2:] {
		if n%K != 0 || n > rec.rows[i+1] {
			t.Fatalf("beam: rows per step %v, want a non-increasing multiple of %d after the first", rec.rows, K)
		}
	}
	if !leaves(rec.rows, B, K) {
		t.Errorf("beam: rows per step %v: no image left the batch", rec.rows)
	}
}

// leaves says whether, by the last of the rows per step, fewer than B images
// were decoding (one row each at the first step, K after it).
func leaves(rows []int, B, K int) bool {
	if len(rows) == 1 {
		return rows[0] < B
	}
	return rows[len(rows)-1]/K < B
}

// sameAlone checks that each image's batched hypotheses are those of the image
// decoded alone: what is left of a batch, moved to its front, decodes on as it
// would have in place.
func sameAlone(t *testing.T, m *Model, feats []float32, o DecodeOptions, batched [][]Hypothesis) {
	t.Helper()
	F := m.Cfg.InputDim()
	for b := range batched {
		alone := generate(t, m, feats[b*F:(b+1)*F], o)[0]
		if !sameHyp(batched[b][0], alone[0]) {
			t.Errorf("beam %d, image %d: batched %v, alone %v", o.Beam, b, batched[b][0], alone[0])
		}
	}
}

// TestNoRepeatKeepsThingsOutOfThemselves: with Placement's place words and
// reusable words, no caption says a word again after a place word that it
// said before it ("riding a bike on a dirt bike"), bar reusable words, the
// subject and modifiers, nor, with Kinds, a word of its kind ("riding a
// bicycle on a bike"), and the searches still find the naive reference's
// captions under that ban. Without it the test model says such things (the
// premise).
func TestNoRepeatKeepsThingsOutOfThemselves(t *testing.T) {
	for _, tc := range []struct {
		what  string
		place Placement // Places 4 and 5, Reusable 6, and these
		vocab int       // one whose captions, with and without NoRepeat, show the premise
	}{
		{"placing a word in itself", Placement{}, 9},
		{"placing a word in its kind", Placement{Kinds: [][]int32{{7, 9}}}, 10},
		{"sitting on the unperchable", Placement{Postures: []int32{6}, Rests: []int32{4}, Unperchable: []int32{7}}, 9},
	} {
		bothArchs(t, func(t *testing.T, c Config) {
			place := tc.place
			place.Places, place.Reusable = []int32{4, 5}, []bool{6: true}
			and := int32(8)
			c.Vocab = tc.vocab
			checkBan(t, c, 2, tc.what,
				func(o *DecodeOptions, on bool) {
					o.Coordination.And = and
					if on {
						o.Placement = place
					}
				},
				func(seq []int32) bool { return placesItself(seq, place, and) })
		})
	}
}

// checkBan decodes the small-vocabulary model's images greedily and with a
// beam of 3 in three states: the ban's options unset (set's on false), set
// but NoRepeat 0, and set with NoRepeat 2. It checks every hypothesis against
// the naive reference's and counts the captions with a prefix that banned says
// the ban forbids: some in the first two states (the premise, and NoRepeat 0
// lifting every ban), none in the last. (TestConstrainedMatchesNaiveReference
// checks the bans in guided search, on a model without this one's ties.)
func checkBan(t *testing.T, c Config, seed uint64, what string, set func(o *DecodeOptions, on bool), banned func(seq []int32) bool) {
	t.Helper()
	m, ref, feats := smallVocabModel(t, c, seed)
	F := c.InputDim()
	says := map[string]int{}
	states := []string{"unset", "no_repeat 0", "on"}
	for _, state := range states {
		for _, k := range []int{1, 3} {
			o := DecodeOptions{Start: 1, End: 2, MaxLen: 12, Beam: k, Alpha: 0.7, NBest: k, NoRepeat: 2}
			set(&o, state != "unset")
			if state == "no_repeat 0" {
				o.NoRepeat = 0
			}
			got := generate(t, m, feats, o)
			for b := range got {
				want := ref.beam(feats[b*F:(b+1)*F], o)
				for i, h := range got[b] {
					if i >= len(want) || !sameHyp(h, want[i]) {
						t.Fatalf("%s K=%d image %d hypothesis %d: got %v, reference %v", state, k, b, i, h, want)
					}
					for j := range h.Tokens {
						if banned(h.Tokens[:j+1]) {
							says[state]++
							break
						}
					}
				}
			}
		}
	}
	if says["unset"] == 0 || says["no_repeat 0"] == 0 || says["on"] != 0 {
		t.Errorf("captions %s with the ban %s: %d, %d, %d; want some, some, then none", what, strings.Join(states, ", "), says["unset"], says["no_repeat 0"], says["on"])
	}
}

// TestPlacementBansByExample: Placement.placed on hand-made sentences.
func TestPlacementBansByExample(t *testing.T) {
	words := strings.Fields("<pad> <start> <end> <unk> a man riding bike on dirt road track dog jumps small in red shirt and wrestling sitting cellphone bench")
	id := wordIDs(words)
	reusable := make([]bool, len(words))
	for _, w := range id("a small red and wrestling riding jumps sitting") {
		reusable[w] = true
	}
	p := Placement{Places: id("on in"), Reusable: reusable}
	and := id("and")[0]
	for _, tc := range []struct{ said, banned string }{
		{"a man riding a bike on a dirt", "bike"}, // the subject may come again, not the bike
		{"a man riding a bike on", "bike"},
		{"a man riding a bike", ""},                      // no place word
		{"a man riding a bike on a small red", "bike"},   // reusable words do not close the phrase
		{"a man riding a bike on a dirt road", "bike"},   // two things after the place word
		{"a man riding a bike on a dirt road track", ""}, // three: the phrase is over
		{"a man riding a bike on a dirt and", ""},        // a thing and "and": another thing comes
		{"a man riding a bike on a red and", "bike"},     // "red and white": the same thing
		{"a man riding a dirt bike on a", "bike"},        // dirt, a modifier, may come again
		{"a dog jumps on a small", ""},                   // the subject dog may be said again
		{"a man in a red shirt on a", "shirt"},           // red is reusable
		{"a man wrestling in a", ""},                     // an action is reusable
		{"man in bike man on", "man"},                    // the subject's second time is no subject
	} {
		got := p.placed(id(tc.said), and)
		if want := id(tc.banned); !slices.Equal(got, want) {
			t.Errorf("after %q: banned %q, want %q", tc.said, wordsOf(words, got), tc.banned)
		}
		for _, w := range id("riding bike dirt road man dog jumps shirt") {
			if ref := placesItself(append(id(tc.said), w), p, and); ref != slices.Contains(got, w) {
				t.Errorf("after %q: placed says %q is banned: %v; the test's reference: %v", tc.said, words[w], !ref, ref)
			}
		}
	}
	// With kinds, a thing's whole kind is banned with it; a subject's kind
	// is not, nor anything once the phrase is over.
	p.Kinds = [][]int32{id("bike road"), id("dog shirt")}
	for _, tc := range []struct{ said, banned string }{
		{"a man riding a bike on a", "bike road"},
		{"a man riding a road on a", "road bike"},
		{"a man riding a dirt bike on a", "bike road"},
		{"a bike riding on a", ""},
		{"a man riding a bike on a dirt road track", ""},
		{"a man in a red shirt on a", "shirt dog"},
	} {
		if got := p.placed(id(tc.said), and); !slices.Equal(got, id(tc.banned)) {
			t.Errorf("with kinds, after %q: banned %q, want %q", tc.said, wordsOf(words, got), tc.banned)
		}
	}
	// With postures, what no one sits on is banned right after one and its
	// place word, free words between; not once a thing has come, nor after
	// another word.
	p.Kinds, p.Postures, p.Rests, p.Unperchable = nil, id("sitting"), id("on"), id("cellphone")
	for _, tc := range []struct{ said, banned string }{
		{"a man sitting on a", "cellphone"},
		{"a man sitting on a small red", "cellphone"},
		{"a man sitting on a bench", ""},
		{"a man riding on a", ""},
		{"a man sitting in", ""}, // in is no rest ("standing in front of a sign")
		{"a man sitting", ""},
		{"a man sitting on a bench on a", "bench"}, // the bench's own ban
	} {
		got := p.placed(id(tc.said), and)
		if want := id(tc.banned); !slices.Equal(got, want) {
			t.Errorf("with postures, after %q: banned %q, want %q", tc.said, wordsOf(words, got), tc.banned)
		}
		if ref := placesItself(append(id(tc.said), id("cellphone")...), p, and); ref != slices.Contains(got, id("cellphone")[0]) {
			t.Errorf("with postures, after %q: placed bans cellphone: %v; the test's reference: %v", tc.said, !ref, ref)
		}
	}
}

// wordIDs turns a sentence into the ids of its words in words, a made-up
// vocabulary.
func wordIDs(words []string) func(sentence string) []int32 {
	return func(sentence string) []int32 {
		var out []int32
		for _, w := range strings.Fields(sentence) {
			out = append(out, int32(slices.Index(words, w)))
		}
		return out
	}
}

// marked is a table of n words with ids marked.
func marked(n int, ids ...int32) []bool {
	tab := make([]bool, n)
	for _, w := range ids {
		tab[w] = true
	}
	return tab
}

func wordsOf(words []string, ids []int32) string {
	var out []string
	for _, i := range ids {
		out = append(out, words[i])
	}
	return strings.Join(out, " ")
}

// TestNoRepeatKeepsXAndXOut: with the vocabulary's "and" and articles in
// Coordination, no caption says "X and X" or "X and A X", and the searches
// still find the naive reference's captions under that ban. Without them the
// test model says such things (the premise), as the shipped models did.
func TestNoRepeatKeepsXAndXOut(t *testing.T) { bothArchs(t, testNoRepeatKeepsXAndXOut) }

func testNoRepeatKeepsXAndXOut(t *testing.T, c Config) {
	coord := Coordination{And: 4, Articles: [3]int32{5, 6, 0}}
	c.Vocab = 8
	checkBan(t, c, 3, "saying X and X",
		func(o *DecodeOptions, on bool) {
			if on {
				o.Coordination = coord
			}
		},
		func(seq []int32) bool { return coordinatesItself(seq, coord, Placement{}) })
	// With Placement's reusable words, a thing does not come back after
	// "and", an article and reusable words either ("a red shirt and a
	// black shirt").
	place := Placement{Reusable: []bool{7: true}}
	c.Vocab = coordVocab
	checkBan(t, c, 3, "saying X and a M X",
		func(o *DecodeOptions, on bool) {
			o.Placement = place
			if on {
				o.Coordination = coord
			}
		},
		func(seq []int32) bool { return coordinatesItself(seq, coord, place) })
}

// coordVocab is a vocabulary size whose test-model captions show "X and a M
// X" without the ban (the premise of testNoRepeatKeepsXAndXOut's second part).
const coordVocab = 9

// TestJoinedByExample: Coordination.joined on hand-made sentences.
func TestJoinedByExample(t *testing.T) {
	words := strings.Fields("<pad> <start> <end> <unk> a man in red shirt and black woman young the")
	id := wordIDs(words)
	reusable := make([]bool, len(words))
	for _, w := range id("a red black young the in") {
		reusable[w] = true
	}
	free := func(w int32) bool { return reusable[w] }
	c := Coordination{And: id("and")[0], Articles: [3]int32{id("a")[0], 0, id("the")[0]}}
	for _, tc := range []struct{ said, banned string }{
		{"a man in a red shirt and", "shirt"},
		{"a man in a red shirt and a", "shirt"},
		{"a man in a red shirt and a black", "shirt"},
		{"a man in a red shirt and the black", "shirt"},
		{"a man in a red shirt and a woman", ""},
		{"a red and", "red"},
		{"a red and black", ""}, // a colour is no thing: "red and black" goes on
		{"a man and a young", "man"},
		{"a man in a red shirt", ""},
	} {
		w, ok := c.joined(id(tc.said), free)
		got := ""
		if ok {
			got = words[w]
		}
		if got != tc.banned {
			t.Errorf("after %q: banned %q, want %q", tc.said, got, tc.banned)
		}
	}
}
