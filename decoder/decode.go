package decoder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/captioner/captioner/gpu"
)

// DecodeOptions control caption generation.
type DecodeOptions struct {
	Start, End int32   // the <start> and <end> token ids
	MaxLen     int     // decoding steps: a caption has at most MaxLen words and is cut there
	Beam       int     // beam width K; 1 is greedy decoding
	Alpha      float64 // length normalisation: score = log-prob / len^Alpha
	NBest      int     // hypotheses returned per image (<= Beam; 0 means 1)
	// NoEarlyStop decodes exactly MaxLen tokens, treating <end> as an ordinary
	// word, so benchmarks do a fixed amount of work like the PyTorch reference.
	NoEarlyStop bool
	// Attention asks for each word's attention weights over the image regions
	// (Hypothesis.Attention); only an attention model has them.
	Attention bool
	// NoRepeat, when at least 2, keeps a caption from saying any sequence of
	// NoRepeat words twice (fairseq's no_repeat_ngram_size) and a word twice
	// in a row: at 2, beam search no longer ends "a man rides a bike on a
	// bike", nor writes "a red red car" instead. 0 allows repeats. Greedy
	// decoding and beam search (plain and constrained) follow it; Sample, which
	// draws from the model's own distribution, does not. With Coordination's
	// words it also keeps "X and X" out, and with Placement's a thing placed
	// in or on itself (below).
	NoRepeat int
	// Coordination names the vocabulary's "and" and articles for NoRepeat's
	// third ban: the word right before "and" may not follow it, directly or
	// after one article, since no caption says "a woman and woman", "a brown
	// and brown dog" or "a black hat and a hat" (the shipped models did, 15
	// and 23 times on the dev split). The zero value turns the ban off.
	Coordination Coordination
	// Placement names the vocabulary's place prepositions and reusable
	// words for NoRepeat's last ban, on a thing placed in or on itself
	// (Placement). The zero value turns the ban off.
	Placement Placement
	// Heads keeps constrained beam search from writing a guided noun, an
	// animal above all, where no caption would put it (Heads); it reads
	// Placement's tables to tell things. The zero value turns it off; Worn may not hold End.
	Heads Heads
}

// Placement is what NoRepeat's ban on placing a thing in or on itself reads:
// inside a place phrase (after one of Places, while at most two words follow
// it that are things, neither Places nor Reusable, and no thing is followed by
// Coordination's "and"), a caption may not say again a thing it said before
// the preposition, unless it said it there only as its subject (its first
// thing: "a dog jumps on a small dog"; not a run of things, since "two skiers
// lift on a ski lift" is no better) or as the modifier of the next thing
// ("air" in "a hot air balloon in the air"). Reusable marks the words that
// are no things: function words, colours, sizes, actions ("a man in a red
// shirt on a red bike", "wrestling in a wrestling match"). So no caption says
// "a man riding a bike on a dirt bike" or "a woman in a pink dress sitting on
// a dress", which the shipped attention model did 12 times on the dev split,
// every time wrongly; the references repeat things so mostly for two people
// dressed alike ("a man in a black jacket next to a man in a red jacket"),
// which the model hardly ever describes.
//
// Kinds extends the ban from a thing to its kind: groups of words that name
// one kind of thing ("bike", "bicycle", "motorcycle"), none of which follows
// in the place phrase once one was said before it. "A man is riding a
// bicycle on a bike." was 13 of the dev split's 1,000 captions (60 of the
// train split's 6,000), never right.
//
// Postures, Rests and Unperchable keep a body off what no one sits or
// stands on: right after one of Postures and one of Rests (a place word:
// "on"), with only reusable words since ("sitting on a small"), none of
// Unperchable comes. "A man in a blue shirt is sitting on a cellphone." was
// 24 of the dev and train splits' 7,000 captions. ("Standing in front of a
// sign" is no perch: "in" is no rest.)
type Placement struct {
	Places      []int32
	Reusable    []bool // by token id; ids past its end are not reusable
	Kinds       [][]int32
	Postures    []int32
	Rests       []int32
	Unperchable []int32
}

// extraBans is how many words Kinds and Unperchable hold: the most their
// bans add to a hypothesis' own words (DecodeOptions.forbidden).
func (p Placement) extraBans() int {
	n := len(p.Unperchable)
	for _, k := range p.Kinds {
		n += len(k)
	}
	return n
}

// Coordination is the token ids NoRepeat's "X and X" ban reads; 0 (<pad>,
// never generated) stands for a word the vocabulary lacks.
type Coordination struct {
	And      int32
	Articles [3]int32 // "a", "an", "the"
}

// Hypothesis is one generated caption.
type Hypothesis struct {
	Tokens  []int32 // words, without <start> and <end>
	LogProb float64 // sum of the log-probabilities of the generated tokens, <end> included
	Score   float64 // LogProb / len^Alpha, len counting <end> when it was generated
	// Forced is the part of LogProb that constrained beam search imposed: the
	// log-probabilities of the tokens that met its constraints (0 elsewhere).
	Forced float64
	// Attention is, when DecodeOptions.Attention asks for it, each word's
	// weights over the L regions (len(Tokens), L), each row summing to 1: the
	// weights of the step that chose the word.
	Attention [][]float32
}

// stepper is one architecture's decoding step over R rows, which greedy
// decoding, beam search and sampling share: the images still decoding, one
// row each at the first step and then K each (their beams or samples).
type stepper interface {
	// step feeds the tokens toks (R) and returns the log-probabilities of the
	// next word (R, V). The new state is kept aside until advance.
	step(toks []int32) gpu.Buf
	// advance makes the new state current: row r continues from row src[r]'s
	// new state, or from its own when src is nil.
	advance(src []int32)
	// spread, in place of advance after the first step, makes the new state
	// current over k rows per image: a stepper starts with one row per image,
	// since every beam or sample of an image starts from the same state and
	// <start>, and spreads to its K (at most the K it was made for).
	spread(k int)
	// keep, after advance or spread, goes on with only the images at the ascending
	// positions images among the current ones, dropping the others' rows: a
	// batch's finished captions stop costing steps while the longest goes on.
	keep(images []int32)
}

// keepImages goes on, after a step, with only the images at the ascending
// positions keep among those of order: it drops the others from s and their
// n rows each from toks, and returns the kept images' order.
func keepImages(s stepper, keep []int32, order []int, toks []int32, n int) []int {
	if len(keep) == len(order) {
		return order
	}
	for j, i := range keep { // in place: keep ascends
		copy(toks[j*n:(j+1)*n], toks[int(i)*n:(int(i)+1)*n])
		order[j] = order[i]
	}
	if len(keep) > 0 {
		s.keep(keep)
	}
	return order[:len(keep)]
}

// keepBlocks moves, in each of bufs, the blocks of n floats at the ascending
// positions images to the front, in order, and cuts the buffer to them. In
// place: block i comes from images[i] >= i, which no earlier copy wrote and
// no later copy reads, and the device runs copies in order.
func keepBlocks(dev gpu.Device, images []int32, n int, bufs ...*gpu.Buf) {
	for _, buf := range bufs {
		b := *buf
		for i, j := range images {
			if int(j) != i {
				dev.Copy(b.Slice(i*n, n), b.Slice(int(j)*n, n))
			}
		}
		*buf = b.Slice(0, len(images)*n)
	}
}

// attender is a stepper that attends over image regions.
type attender interface {
	// attention downloads the last step's attention weights (R, L) into dst.
	attention(dst []float32) error
}

// ErrNoAttention is Generate's error when DecodeOptions.Attention is asked of a
// model without attention weights.
var ErrNoAttention = errors.New("decoder: attention weights were asked of a merge model; only an attention model (decoder.arch: attention) has them")

// stepper prepares decoding for B images (feats (B, InputDim) on the device)
// on one row each, with room to spread each over K rows (row b*K+k image b's).
func (m *Model) stepper(feats gpu.Buf, B, K int) stepper {
	m.prepare()
	if m.Cfg.Arch == ArchAttention {
		return m.attentionStepper(feats, B, K)
	}
	return m.mergeStepper(feats, B, K)
}

// workspace holds merge's decoding buffers for up to rows rows (B images × K beams).
type workspace struct {
	rows              int
	flat              gpu.Buf
	img, imgRep       gpu.Buf // (B, H), (R, H)
	gates, act        gpu.Buf // (R, 4H)
	h, c, h2, c2, sum gpu.Buf // (R, H)
	mid               gpu.Buf // (R, M)
	logp              gpu.Buf // (R, V)
}

func (w *workspace) free(dev gpu.Device) {
	if w != nil {
		dev.Free(w.flat)
	}
}

// workspaceFor returns buffers for R rows, growing them when needed.
func (m *Model) workspaceFor(R int) *workspace {
	if m.ws != nil && m.ws.rows >= R {
		return m.ws
	}
	m.ws.free(m.dev)
	c := m.Cfg
	H := c.Hidden
	w := &workspace{rows: R}
	w.flat = carve(m.dev, []view{{&w.img, R * H}, {&w.imgRep, R * H}, {&w.gates, R * 4 * H}, {&w.act, R * 4 * H},
		{&w.h, R * H}, {&w.c, R * H}, {&w.h2, R * H}, {&w.c2, R * H}, {&w.sum, R * H},
		{&w.mid, R * c.Mid}, {&w.logp, R * c.Vocab}})
	m.ws = w
	return w
}

// mergeSteps is merge's stepper: an LSTM from a zero state, its output added
// to the image branch of each row's image.
type mergeSteps struct {
	m      *Model
	w      *workspace
	R, K   int // rows, rows per image
	first  bool
	imgRep gpu.Buf // (R, H)
	lstmRows
}

// mergeStepper starts B images (feats (B, F)) on one row each, with room for K.
func (m *Model) mergeStepper(feats gpu.Buf, B, K int) *mergeSteps {
	H := m.Cfg.Hidden
	w := m.workspaceFor(B * K)
	img := w.img.Slice(0, B*H)
	m.imageBranch(&m.dw, img, feats, B)
	s := &mergeSteps{m: m, w: w, R: B, K: 1, first: true, imgRep: img, lstmRows: newLSTMRows(w.h, w.c, w.h2, w.c2, B, H)}
	m.dev.Zero(s.c)
	return s
}

// step: gates = proj[toks] + h·Whᵀ (the recurrent term skipped at the first
// step, whose state is zero), the LSTM cell into (h2, c2), the merge with the
// image rows and the head.
func (s *mergeSteps) step(toks []int32) gpu.Buf {
	m, w, R := s.m, s.w, s.R
	dev, H := m.dev, m.Cfg.Hidden
	gates := w.gates.Slice(0, R*4*H)
	dev.EmbeddingForward(gates, m.proj, toks, 4*H)
	if !s.first {
		m.dw.wh.MulT(R, s.h, H, 1, gates, 4*H)
	}
	dev.LSTMCellForward(s.h2, s.c2, w.act.Slice(0, R*4*H), gates, s.c, R, H)
	sum := w.sum.Slice(0, R*H)
	dev.Add(sum, s.h2, s.imgRep)
	logp := w.logp.Slice(0, R*m.Cfg.Vocab)
	m.head(&m.dw, logp, w.mid.Slice(0, R*m.Cfg.Mid), sum, m.outB, R)
	dev.LogSoftmax(logp, logp, R, m.Cfg.Vocab)
	return logp
}

func (s *mergeSteps) advance(src []int32) {
	s.first = false
	s.lstmRows.advance(s.m.dev, src, s.m.Cfg.Hidden)
}

func (s *mergeSteps) spread(k int) {
	s.first = false
	dev, H := s.m.dev, s.m.Cfg.Hidden
	rows := repeatRows(s.R, k)
	imgRep := s.w.imgRep.Slice(0, len(rows)*H)
	dev.EmbeddingForward(imgRep, s.imgRep, rows, H)
	s.imgRep = imgRep
	s.lstmRows.spread(dev, rows, H)
	s.R, s.K = len(rows), k
}

func (s *mergeSteps) keep(images []int32) {
	H := s.m.Cfg.Hidden
	keepBlocks(s.m.dev, images, s.K*H, &s.imgRep)
	s.lstmRows.keep(s.m.dev, images, s.K, H)
	s.R = len(images) * s.K
}

// lstmRows is a decoding LSTM's state over its rows: the current (h, c) and
// the new (h2, c2) that a step writes, views of a workspace's buffers (full).
type lstmRows struct {
	h, c, h2, c2 gpu.Buf
	full         [4]gpu.Buf // the workspace's h, c, h2, c2
}

func newLSTMRows(h, c, h2, c2 gpu.Buf, R, H int) lstmRows {
	return lstmRows{h: h.Slice(0, R*H), c: c.Slice(0, R*H), h2: h2.Slice(0, R*H), c2: c2.Slice(0, R*H), full: [4]gpu.Buf{h, c, h2, c2}}
}

// advance makes the new state (h2, c2) current: swapped in when src is nil,
// else gathered row by row from src.
func (s *lstmRows) advance(dev gpu.Device, src []int32, H int) {
	if src == nil {
		s.h, s.c, s.h2, s.c2 = s.h2, s.c2, s.h, s.c
		return
	}
	dev.EmbeddingForward(s.h, s.h2, src, H)
	dev.EmbeddingForward(s.c, s.c2, src, H)
}

// spread makes the first step's new state current over more rows, row r
// from rows[r]: into the workspace's h and c, which the first step only read.
func (s *lstmRows) spread(dev gpu.Device, rows []int32, H int) {
	n := len(rows) * H
	h, c := s.full[0].Slice(0, n), s.full[1].Slice(0, n)
	dev.EmbeddingForward(h, s.h2, rows, H)
	dev.EmbeddingForward(c, s.c2, rows, H)
	s.h, s.c, s.h2, s.c2 = h, c, s.full[2].Slice(0, n), s.full[3].Slice(0, n)
}

// keep goes on with only the rows of the images at the ascending positions
// images, k rows each (stepper.keep).
func (s *lstmRows) keep(dev gpu.Device, images []int32, k, H int) {
	keepBlocks(dev, images, k*H, &s.h, &s.c)
	n := len(images) * k * H
	s.h2, s.c2 = s.h2.Slice(0, n), s.c2.Slice(0, n)
}

// MaxBeam is the widest beam a model of vocab ids decodes with: half of them.
func MaxBeam(vocab int) int { return vocab / 2 }

func (o DecodeOptions) check(c Config) error {
	if o.MaxLen < 1 {
		return fmt.Errorf("decoder: max length %d must be at least 1", o.MaxLen)
	}
	if o.Beam < 1 || o.Beam > MaxBeam(c.Vocab) {
		return fmt.Errorf("decoder: beam width %d is outside 1..%d (half the model's vocabulary of %d ids, special tokens included); use a narrower beam", o.Beam, MaxBeam(c.Vocab), c.Vocab)
	}
	if o.NBest > o.Beam {
		return fmt.Errorf("decoder: %d alternatives asked for with beam width %d; use a beam at least as wide", o.NBest, o.Beam)
	}
	if o.Attention && c.Arch != ArchAttention {
		return ErrNoAttention
	}
	if o.NoRepeat < 0 || o.NoRepeat == 1 {
		return fmt.Errorf("decoder: no-repeat n-gram size %d must be 0 (repeats allowed) or at least 2 (1 would forbid any word twice, \"a\" included)", o.NoRepeat)
	}
	for _, id := range []int32{o.Start, o.End} {
		if id < 0 || int(id) >= c.Vocab {
			return fmt.Errorf("decoder: special token id %d is outside the vocabulary (0..%d)", id, c.Vocab-1)
		}
	}
	if slices.Contains(o.Heads.Worn, o.End) {
		return fmt.Errorf("decoder: Heads.Worn holds <end> (token %d), which would keep a caption about a guided animal from ending; list only words", o.End)
	}
	if slices.Contains(o.Placement.Unperchable, o.End) || slices.ContainsFunc(o.Placement.Kinds, func(k []int32) bool { return slices.Contains(k, o.End) }) {
		return fmt.Errorf("decoder: Placement.Kinds or Unperchable holds <end> (token %d), which would keep a caption that placed a thing from ending; list only words", o.End)
	}
	return nil
}

// Generate captions B images: feats is (B, F) on the device. It returns, per
// image, up to NBest hypotheses, best first: greedy decoding when Beam is 1,
// else beam search with the B×K beams run as one device batch.
func (m *Model) Generate(ctx context.Context, feats gpu.Buf, B int, o DecodeOptions) ([][]Hypothesis, error) {
	if err := m.checkInputs(feats, B, o); err != nil {
		return nil, err
	}
	if o.Beam == 1 {
		return greedy(ctx, m.dev, m.stepper(feats, B, 1), B, m.Cfg.Vocab, m.Cfg.Regions, o)
	}
	return beam(ctx, m.dev, m.stepper(feats, B, o.Beam), B, m.Cfg.Vocab, m.Cfg.Regions, o)
}

// checkInputs checks o and that feats holds B images' inputs.
func (m *Model) checkInputs(feats gpu.Buf, B int, o DecodeOptions) error {
	if err := o.check(m.Cfg); err != nil {
		return err
	}
	if feats.Len() != B*m.Cfg.InputDim() {
		return fmt.Errorf("decoder: %d feature values for %d images of %d features", feats.Len(), B, m.Cfg.InputDim())
	}
	return nil
}

func (o DecodeOptions) score(logProb float64, n int) float64 {
	return logProb / math.Pow(float64(n), o.Alpha)
}

// stepAttention returns the last step's attention weights (R, L) of s when o
// asks for them, else nil.
func stepAttention(s stepper, R, L int, o DecodeOptions) ([]float32, error) {
	if !o.Attention {
		return nil, nil
	}
	alpha := make([]float32, R*L)
	return alpha, s.(attender).attention(alpha)
}

// greedy decodes the B rows of s, taking the most likely word at every step
// that the step allows (DecodeOptions.forbidden: no <end> before a word, no
// repeat NoRepeat forbids);
// L is the regions attended over (DecodeOptions.Attention). Images whose
// caption has ended leave the batch (stepper.keep).
func greedy(ctx context.Context, dev gpu.Device, s stepper, B, V, L int, o DecodeOptions) ([][]Hypothesis, error) {
	hyps := make([]Hypothesis, B)
	lens := make([]int, B)
	order := make([]int, B) // the image of each row still decoding
	toks := make([]int32, B)
	for b := range toks {
		order[b], toks[b] = b, o.Start
	}
	// Each row's best word, or with NoRepeat its best few: the best that
	// repeats nothing is among the first 1 + (the words it may not say).
	most := min(1+o.MaxLen+o.Placement.extraBans(), V)
	idx, val := make([]int32, B*most), make([]float32, B*most)
	bans := make([][]int32, B)
	keep := make([]int32, 0, B)
	for t := 0; t < o.MaxLen && len(order) > 0; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		R := len(order)
		kk := 1
		for i, b := range order {
			bans[i] = o.forbidden(hyps[b].Tokens)
			kk = max(kk, min(1+len(bans[i]), V))
		}
		logp := s.step(toks[:R])
		s.advance(nil)
		if err := dev.TopK(idx[:R*kk], val[:R*kk], logp, R, V, kk); err != nil {
			return nil, err
		}
		for i := range R { // each row's first allowed word to the front
			j := 0
			for slices.Contains(bans[i], idx[i*kk+j]) {
				j++
			}
			idx[i], val[i] = idx[i*kk+j], val[i*kk+j]
		}
		alpha, err := stepAttention(s, R, L, o)
		if err != nil {
			return nil, err
		}
		keep = keep[:0]
		for i, b := range order {
			hyps[b].LogProb += float64(val[i])
			lens[b]++
			if idx[i] == o.End && !o.NoEarlyStop {
				continue
			}
			hyps[b].Tokens = append(hyps[b].Tokens, idx[i])
			if alpha != nil {
				hyps[b].Attention = append(hyps[b].Attention, alpha[i*L:(i+1)*L:(i+1)*L])
			}
			keep = append(keep, int32(i))
		}
		copy(toks, idx[:R])
		order = keepImages(s, keep, order, toks, 1)
	}
	out := make([][]Hypothesis, B)
	for b := range hyps {
		hyps[b].Score = o.score(hyps[b].LogProb, lens[b])
		out[b] = []Hypothesis{hyps[b]}
	}
	return out, nil
}

// forbidden lists the tokens a hypothesis of tokens may not say next: <end>
// before its first word, since a caption without words tells the user nothing
// (a model trained on little data ranks <end> first for some photos), and the
// words DecodeOptions.NoRepeat forbids (repeated, coordinated, placed). With
// NoEarlyStop, <end> is an ordinary word. Every word it lists is one tokens
// says or one of Placement.Kinds or Unperchable, so it lists at most MaxLen
// tokens and Placement.extraBans more: greedy and constrainedBeam size their
// top-k buffers by that.
func (o DecodeOptions) forbidden(tokens []int32) []int32 {
	if len(tokens) == 0 && !o.NoEarlyStop {
		return []int32{o.End}
	}
	out := repeated(tokens, o.NoRepeat)
	if o.NoRepeat >= 2 {
		if w, ok := o.Coordination.joined(tokens, o.Placement.free); ok {
			out = appendNew(out, w)
		}
		out = appendNew(out, o.Placement.placed(tokens, o.Coordination.And)...)
	}
	return out
}

// appendNew appends to out the words of ws it does not hold yet.
func appendNew(out []int32, ws ...int32) []int32 {
	for _, w := range ws {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// placed lists the words that may not follow tokens by Placement's ban: those
// said before the last place preposition, bar free words, the subject and
// modifiers (there only: a modifier said after the preposition, "soccer" in
// "playing soccer on a soccer field", cannot be told from a thing yet); none
// when more than two things follow the preposition, or a thing and "and" do
// (the place phrase has ended); with them, every word of their Kinds; and
// Unperchable right after a posture and a rest.
func (p Placement) placed(tokens []int32, and int32) []int32 {
	at := p.phrase(tokens, and)
	if at < 0 {
		return nil
	}
	var out []int32
	subject := true
	for j, w := range tokens[:at] {
		switch {
		case p.free(w):
		case subject:
			subject = false
		case !p.free(tokens[j+1]): // a modifier: "dirt" in "dirt bike"
		case !slices.Contains(out, w):
			out = append(out, w)
		}
	}
	for _, kind := range p.Kinds {
		if slices.ContainsFunc(kind, func(w int32) bool { return slices.Contains(out, w) }) {
			out = appendNew(out, kind...)
		}
	}
	if at > 0 && slices.Contains(p.Rests, tokens[at]) && slices.Contains(p.Postures, tokens[at-1]) && !slices.ContainsFunc(tokens[at+1:], func(w int32) bool { return !p.free(w) }) {
		out = appendNew(out, p.Unperchable...)
	}
	return out
}

// phrase is the position in tokens of the preposition that starts the place
// phrase tokens end in, or -1 when they end in none: no place preposition, or
// more than two things after the last one, or a thing and "and" after it.
func (p Placement) phrase(tokens []int32, and int32) int {
	things := 0
	for i := len(tokens) - 1; i >= 0; i-- {
		switch w := tokens[i]; {
		case slices.Contains(p.Places, w):
			return i
		case w == and && i > 0 && !p.free(tokens[i-1]):
			return -1
		case !p.free(w):
			if things++; things > 2 {
				return -1
			}
		}
	}
	return -1
}

// free says whether w is a place word or a reusable one: no thing.
func (p Placement) free(w int32) bool {
	return has(p.Reusable, w) || slices.Contains(p.Places, w)
}

// joined is the word that tokens' trailing "X and" or "X and a" may not be
// followed by: X; and, when X is a thing (not free), "X and a black": one
// person "in a red shirt and a black shirt" (27 of the 7,000 dev and train
// captions wore two shirts or two hats so). ok is false when tokens end
// otherwise.
func (c Coordination) joined(tokens []int32, free func(int32) bool) (int32, bool) {
	n := len(tokens)
	if c.And == 0 || n < 2 {
		return 0, false
	}
	article := func(w int32) bool { return w != 0 && slices.Contains(c.Articles[:], w) }
	i := n - 1 // back over the words since "and": articles and free words
	for i >= 0 && tokens[i] != c.And && (article(tokens[i]) || free(tokens[i])) {
		i--
	}
	if i < 1 || tokens[i] != c.And {
		return 0, false
	}
	x, since := tokens[i-1], tokens[i+1:]
	if len(since) == 0 || len(since) == 1 && article(since[0]) || !free(x) && !article(x) {
		return x, true
	}
	return 0, false
}

// repeated lists the words that DecodeOptions.NoRepeat n forbids after
// tokens (none when n is 0): the last word again, and each word that would
// complete an n-gram that tokens already contain.
func repeated(tokens []int32, n int) []int32 {
	if n < 2 || len(tokens) == 0 {
		return nil
	}
	out := []int32{tokens[len(tokens)-1]}
	if len(tokens) < n-1 {
		return out
	}
	tail := tokens[len(tokens)-(n-1):]
	for i := 0; i+n <= len(tokens); i++ {
		if slices.Equal(tokens[i:i+n-1], tail) && !slices.Contains(out, tokens[i+n-1]) {
			out = append(out, tokens[i+n-1])
		}
	}
	return out
}

// beamRow is one live beam on the host.
type beamRow struct {
	tokens    []int32
	logProb   float64
	forced    float64     // see Hypothesis.Forced
	attention [][]float32 // per token, when DecodeOptions.Attention asks
}

type candidate struct {
	src     int // row whose state the candidate extends
	tok     int32
	logProb float64
	forced  float64 // see Hypothesis.Forced
}

// beam runs beam search over B images of s (made for K = o.Beam rows per
// image), one device batch: constrained beam search without constraints,
// whose one state's beam is the plain search's. L is the regions attended over (DecodeOptions.Attention).
func beam(ctx context.Context, dev gpu.Device, s stepper, B, V, L int, o DecodeOptions) ([][]Hypothesis, error) {
	return constrainedBeam(ctx, dev, s, B, V, L, o, make([][]Constraint, B), nil, nil, 1, nil)
}
