package decoder

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/captioner/captioner/gpu"
)

// Constraint is a word a caption must contain: any one of its token ids meets
// it (a noun's forms: "cat", "cats", "kitten").
type Constraint []int32

// MaxConstraints bounds the constraints of one image: constrained beam search
// keeps a beam for every subset of them, 2^C beams.
const MaxConstraints = 3

// GenerateConstrained captions the images at positions images of feats
// ((n, InputDim) on the device) by constrained beam search (Anderson et al.
// 2017, "Guided Open Vocabulary Image Captioning with Constrained Beam
// Search"): a finite-state machine whose state is the set of the constraints
// cons[b] of image images[b] met so far, with a beam of o.Beam hypotheses per
// state. A hypothesis that emits a token of an unmet constraint moves to the
// state with that constraint met; every other token keeps its state. All
// B × 2^C × K rows (B = len(images), C the most constraints of any image) run
// as one device batch, on the images' features gathered into a buffer the
// model keeps.
//
// avoid, when not nil, lists per image tokens its captions never say (guided
// decoding's nouns the classifier rules out), whatever their probability.
// loose, when not nil, marks per image those whose guided animals go
// anywhere: o.Heads' rules on animals skip them, its rule on Copulas holds.
// Errors name an image by its position in feats.
//
// It returns, per entry of images, up to NBest hypotheses that meet all of
// the image's constraints, best first; none when no such caption fits in
// MaxLen words. An image without constraints or tokens to avoid gets exactly
// Generate's beam search.
func (m *Model) GenerateConstrained(ctx context.Context, feats gpu.Buf, images []int32, o DecodeOptions, cons [][]Constraint, avoid [][]int32, loose []bool) ([][]Hypothesis, error) {
	if err := o.check(m.Cfg); err != nil {
		return nil, err
	}
	F, B := m.Cfg.InputDim(), len(images)
	n := feats.Len() / F
	if feats.Len() != n*F {
		return nil, fmt.Errorf("decoder: %d feature values are not a whole number of images of %d features", feats.Len(), F)
	}
	for _, i := range images {
		if i < 0 || int(i) >= n {
			return nil, fmt.Errorf("decoder: image position %d is outside the %d images of the features", i, n)
		}
	}
	if len(cons) != B {
		return nil, fmt.Errorf("decoder: constraints for %d images, want %d", len(cons), B)
	}
	if avoid != nil && len(avoid) != B {
		return nil, fmt.Errorf("decoder: tokens to avoid for %d images, want %d (or none: nil)", len(avoid), B)
	}
	if loose != nil && len(loose) != B {
		return nil, fmt.Errorf("decoder: loose flags for %d images, want %d (or none: nil)", len(loose), B)
	}
	for b, ts := range avoid {
		for _, t := range ts {
			switch {
			case t < 0 || int(t) >= m.Cfg.Vocab:
				return nil, fmt.Errorf("decoder: image %d: token %d to avoid is outside the vocabulary (0..%d)", images[b], t, m.Cfg.Vocab-1)
			case t == o.End:
				return nil, fmt.Errorf("decoder: image %d: token %d to avoid is <end>, which would keep every caption from ending", images[b], t)
			case slices.ContainsFunc(cons[b], func(c Constraint) bool { return slices.Contains(c, t) }):
				return nil, fmt.Errorf("decoder: image %d: token %d is both a constraint's and one to avoid", images[b], t)
			}
		}
	}
	C := 0
	for b, cs := range cons {
		if len(cs) > MaxConstraints {
			return nil, fmt.Errorf("decoder: image %d has %d constraints; at most %d (the search keeps 2^C beams)", images[b], len(cs), MaxConstraints)
		}
		for j, c := range cs {
			if len(c) == 0 {
				return nil, fmt.Errorf("decoder: image %d: constraint %d has no tokens", images[b], j)
			}
			for _, t := range c {
				if t < 0 || int(t) >= m.Cfg.Vocab || t == o.Start || t == o.End || slices.Contains(unspoken, t) {
					return nil, fmt.Errorf("decoder: image %d: constraint token %d is outside the vocabulary's words (0..%d, not <start>, <end>, <pad> or <unk>)", images[b], t, m.Cfg.Vocab-1)
				}
			}
		}
		C = max(C, len(cs))
	}
	S := 1 << C
	sub := gpu.Grow(m.dev, &m.guided.feats, B*F)
	m.dev.EmbeddingForward(sub, feats, images, F)
	return constrainedBeam(ctx, m.dev, m.stepper(sub, B, S*o.Beam), B, m.Cfg.Vocab, m.Cfg.Regions, o, cons, avoid, loose, S, &m.guided.logp)
}

// guidedScratch is GenerateConstrained's device memory, kept between calls
// (gpu.Grow) until Close: the images' gathered features (for an attention
// model, a batch of 64 grids is 16 MB), and the constraint tokens'
// log-probabilities that each step gathers for the host.
type guidedScratch struct{ feats, logp gpu.Buf }

// tokenBits is a token that meets constraints: bit j of bits is constraint j.
type tokenBits struct {
	tok  int32
	bits uint
}

// constrainedBeam runs the search over s's B images, S × K rows each: row
// b*S*K + st*K + k of the host's beams is beam k of image b's state st (a bit
// set of met constraints); the device runs the images still searching, one
// row each at the first step. With S = 1
// and no constraints it is plain beam search (beam). L is the regions attended
// over, for the weights DecodeOptions.Attention asks for; avoid (nil, or per
// image) the tokens an image's captions never say; loose (nil, or per image)
// the images Heads' rules on animals skip. gathered is the caller's
// buffer for the constraint tokens' log-probabilities (gpu.Grow), nil when
// cons holds none.
func constrainedBeam(ctx context.Context, dev gpu.Device, s stepper, B, V, L int, o DecodeOptions, cons [][]Constraint, avoid [][]int32, loose []bool, S int, gathered *gpu.Buf) ([][]Hypothesis, error) {
	K := o.Beam
	SK := S * K
	R := B * SK
	// Per image: the tokens that meet constraints (sorted, so the search does
	// not depend on map order) and the state with all of them met.
	meets := make([][]tokenBits, B)
	full := make([]uint, B)
	maxTok := 0
	for b, cs := range cons {
		bits := map[int32]uint{}
		for j, c := range cs {
			for _, t := range c {
				bits[t] |= 1 << j
			}
		}
		for t, bs := range bits {
			meets[b] = append(meets[b], tokenBits{t, bs})
		}
		slices.SortFunc(meets[b], func(x, y tokenBits) int { return int(x.tok) - int(y.tok) })
		full[b] = 1<<len(cs) - 1
		maxTok = max(maxTok, len(meets[b]))
	}
	bitsOf := func(b int, tok int32) uint {
		if i, ok := slices.BinarySearchFunc(meets[b], tok, func(x tokenBits, t int32) int { return int(x.tok) - int(t) }); ok {
			return meets[b][i].bits
		}
		return 0
	}

	// Every image starts with one live beam, state 0's row 0; the rest are
	// dead (-Inf) until candidates fill them. rows and next are indexed by
	// image (row b*SK+k); the device's rows by position among the images
	// still searching, order (row i*SK+k), as images that are done leave the
	// batch (stepper.keep).
	rows := make([]beamRow, R)
	for r := range rows {
		if r%SK != 0 {
			rows[r].logProb = math.Inf(-1)
		}
	}
	order := make([]int, B)
	for b := range order {
		order[b] = b
	}
	toks := make([]int32, R)
	for r := range toks {
		toks[r] = o.Start
	}
	finished := make([][]Hypothesis, B) // in the all-met state
	done := make([]bool, B)
	// Per row, 2K candidates that keep its state after leaving out the
	// constraint tokens among them, as beam has after K finish, and the
	// tokens it may not say next (bans: DecodeOptions.forbidden, at most
	// MaxLen of them and Placement.extraBans, the image's tokens to avoid
	// and Heads.Worn).
	maxAvoid := 0
	for _, ts := range avoid {
		maxAvoid = max(maxAvoid, len(ts))
	}
	most := min(2*K+maxTok+o.MaxLen+o.Placement.extraBans()+maxAvoid+len(o.Heads.Worn), V)
	idx, val := make([]int32, R*most), make([]float32, R*most)
	bans := make([][]int32, R)
	src := make([]int32, R)
	next := make([]beamRow, R)
	buckets := make([][]candidate, S)
	keep := make([]int32, 0, B)
	// The constraint tokens' log-probabilities are read for every row whether
	// or not they rank in its top kk: a constraint word is usually unlikely,
	// which is why the caption lacks it.
	var gatheredLogp gpu.Buf
	if maxTok > 0 {
		gatheredLogp = gpu.Grow(dev, gathered, R*maxTok)
	}
	gIdx := make([]int32, 0, R*maxTok)
	gRef := make([]candidate, 0, R*maxTok)
	gVal := make([]float32, R*maxTok)
	// guided[b] says whether a token meets one of image b's constraints, for
	// Heads' rules on animals: none does for a loose image.
	guided := make([]func(int32) bool, B)
	for b := range guided {
		guided[b] = func(w int32) bool { return (loose == nil || !loose[b]) && bitsOf(b, w) != 0 }
	}
	// A hypothesis that ends in a guided animal may say no thing next
	// (Heads); the words it ranks first are mostly things ("a monkey toy"),
	// so its candidates come from its whole row of log-probabilities, on the
	// host, rather than from TopK's few.
	var whole []float32 // one row of log-probabilities
	per := 1            // device rows per image: one, the start, until the first step spreads it over SK
	for t := 0; t < o.MaxLen && len(order) > 0; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		DR := len(order) * per
		banned := 0
		for _, b := range order {
			for k := 0; k < per; k++ {
				r := b*SK + k
				bans[r] = o.forbidden(rows[r].tokens)
				if avoid != nil {
					bans[r] = append(bans[r], avoid[b]...)
				}
				if o.undressed(rows[r].tokens, guided[b]) {
					bans[r] = append(bans[r], o.Heads.Worn...)
				}
				banned = max(banned, len(bans[r]))
			}
		}
		kk := min(2*K+maxTok+banned, V)
		logp := s.step(toks[:DR])
		if err := dev.TopK(idx[:DR*kk], val[:DR*kk], logp, DR, V, kk); err != nil {
			return nil, err
		}
		alpha, err := stepAttention(s, DR, L, o)
		if err != nil {
			return nil, err
		}
		gIdx, gRef = gIdx[:0], gRef[:0]
		for i, b := range order {
			for k := 0; k < per; k++ {
				r, st := b*SK+k, uint(k/K)
				if math.IsInf(rows[r].logProb, -1) {
					continue
				}
				if o.endsInGuidedAnimal(rows[r].tokens, guided[b]) {
					if whole == nil {
						whole = make([]float32, V)
					}
					dr := i*per + k
					if err := dev.Download(whole, logp.Slice(dr*V, V)); err != nil {
						return nil, err
					}
					topNoThings(idx[dr*kk:(dr+1)*kk], val[dr*kk:(dr+1)*kk], whole, o.thing)
				}
				for _, tb := range meets[b] {
					if tb.bits&^st != 0 && o.mayMeet(rows[r].tokens, tb.tok, guided[b]) && !slices.Contains(bans[r], tb.tok) {
						gIdx = append(gIdx, int32((i*per+k)*V)+tb.tok)
						gRef = append(gRef, candidate{src: r, tok: tb.tok})
					}
				}
			}
		}
		if len(gIdx) > 0 {
			// logp as (DR*V, 1): gathering rows of width one reads single entries.
			g := gatheredLogp.Slice(0, len(gIdx))
			dev.EmbeddingForward(g, logp, gIdx, 1)
			if err := dev.Download(gVal[:len(gIdx)], g); err != nil {
				return nil, err
			}
		}
		keep = keep[:0]
		gi := 0
		for i, b := range order {
			// The image's first device row now (s0) and after the step (d0):
			// host row b*SK+k is device row s0+k, and becomes d0+k.
			s0, d0 := i*per, i*SK
			for st := range buckets {
				buckets[st] = buckets[st][:0]
			}
			for k := 0; k < per; k++ {
				r := b*SK + k
				if math.IsInf(rows[r].logProb, -1) {
					continue
				}
				st := uint(k / K)
				for j := 0; j < kk; j++ {
					if val[(s0+k)*kk+j] <= unspeakable {
						break // TopK ranks the rest lower still
					}
					tok := idx[(s0+k)*kk+j]
					if bitsOf(b, tok)&^st != 0 {
						continue // it changes state: it comes from the gathered values
					}
					if slices.Contains(bans[r], tok) {
						continue
					}
					buckets[st] = append(buckets[st], candidate{src: r, tok: tok, logProb: rows[r].logProb + float64(val[(s0+k)*kk+j]), forced: rows[r].forced})
				}
			}
			for ; gi < len(gRef) && gRef[gi].src/SK == b; gi++ {
				cd := gRef[gi]
				st := uint(cd.src%SK/K) | bitsOf(b, cd.tok)
				cd.logProb = rows[cd.src].logProb + float64(gVal[gi])
				cd.forced = rows[cd.src].forced + float64(gVal[gi])
				buckets[st] = append(buckets[st], cd)
			}
			for st, cands := range buckets {
				sort.SliceStable(cands, func(i, j int) bool { return cands[i].logProb > cands[j].logProb })
				n := 0
				for rank, cd := range cands {
					if cd.tok == o.End && !o.NoEarlyStop {
						// A finished caption counts only if it ranks among its
						// state's K best, so a poor <end> never displaces a
						// better live beam; only the all-met state's are answers.
						if rank < K && uint(st) == full[b] {
							toks := append([]int32(nil), rows[cd.src].tokens...)
							finished[b] = append(finished[b], Hypothesis{Tokens: toks, LogProb: cd.logProb, Score: o.score(cd.logProb, len(toks)+1), Forced: cd.forced,
								Attention: rows[cd.src].attention})
						}
						continue
					}
					k := st*K + n
					ds := s0 + cd.src%SK // the source's device row
					src[d0+k] = int32(ds)
					next[b*SK+k] = beamRow{tokens: append(append([]int32(nil), rows[cd.src].tokens...), cd.tok), logProb: cd.logProb, forced: cd.forced}
					if alpha != nil { // the source's weights, then this step's: a full slice expression keeps beams from sharing
						att := rows[cd.src].attention
						next[b*SK+k].attention = append(att[:len(att):len(att)], alpha[ds*L:(ds+1)*L:(ds+1)*L])
					}
					toks[d0+k] = cd.tok
					n++
					if n == K {
						break
					}
				}
				for ; n < K; n++ {
					k := st*K + n
					src[d0+k], toks[d0+k] = int32(d0+k), o.End
					next[b*SK+k] = beamRow{logProb: math.Inf(-1)}
				}
			}
			if len(finished[b]) >= K {
				done[b] = true
			} else {
				keep = append(keep, int32(i))
			}
		}
		rows, next = next, rows
		if t == 0 {
			s.spread(SK) // every row of an image continues from its first
			per = SK
		} else {
			s.advance(src[:DR])
		}
		order = keepImages(s, keep, order, toks, SK)
	}
	out := make([][]Hypothesis, B)
	for b := 0; b < B; b++ {
		if !done[b] { // ran out of length: the all-met state's live beams count too
			for k := 0; k < K; k++ {
				r := rows[b*SK+int(full[b])*K+k]
				if !math.IsInf(r.logProb, -1) {
					finished[b] = append(finished[b], Hypothesis{Tokens: r.tokens, LogProb: r.logProb, Score: o.score(r.logProb, len(r.tokens)), Forced: r.forced,
						Attention: r.attention})
				}
			}
		}
		hs := finished[b]
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].Score > hs[j].Score })
		out[b] = hs[:min(len(hs), max(o.NBest, 1))]
	}
	return out, nil
}

// topNoThings writes into idx and val the len(idx) most probable words of
// logp, one row of log-probabilities, that are no things, best first (ties:
// the lower id first), and unspeakable words after them when too few are.
// It keeps them sorted as it reads the row, once: len(idx) is a few dozen,
// the row thousands.
func topNoThings(idx []int32, val, logp []float32, thing func(int32) bool) {
	n := 0 // filled
	for w, lp := range logp {
		if n == len(idx) && lp <= val[n-1] || thing(int32(w)) {
			continue
		}
		j := min(n, len(idx)-1) // the new word's place, the last one's when full
		for ; j > 0 && val[j-1] < lp; j-- {
			idx[j], val[j] = idx[j-1], val[j-1]
		}
		idx[j], val[j] = int32(w), lp
		n = min(n+1, len(idx))
	}
	for j := n; j < len(idx); j++ {
		idx[j], val[j] = 0, neverEmitted
	}
}
