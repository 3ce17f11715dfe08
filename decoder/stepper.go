package decoder

import "github.com/captioner/captioner/gpu"

// stepper is one decoding step over R rows (B images × K beams).
type stepper interface {
	// step feeds the tokens toks (R) and returns the log-probabilities of the
	// next word (R, V). The new state is kept aside until advance.
	step(toks []int32) gpu.Buf
	// advance makes the new state current: row r continues from row src[r]'s
	// new state, or from its own when src is nil.
	advance(src []int32)
}

// mergeSteps is merge's stepper over the decoding workspace.
type mergeSteps struct {
	m            *Model
	w            *workspace
	R            int
	first        bool
	imgRep       gpu.Buf
	h, c, h2, c2 gpu.Buf
}

// stepper prepares decoding for B images (feats (B, F) on the device), each
// repeated over K rows: row b*K+k is image b's.
func (m *Model) stepper(feats gpu.Buf, B, K int) stepper {
	m.prepare()
	R, H := B*K, m.Cfg.Hidden
	w := m.workspaceFor(R)
	s := &mergeSteps{m: m, w: w, R: R, first: true, imgRep: m.repeatedImageBranch(w, feats, B, K),
		h: w.h.Slice(0, R*H), c: w.c.Slice(0, R*H), h2: w.h2.Slice(0, R*H), c2: w.c2.Slice(0, R*H)}
	m.dev.Zero(s.c)
	return s
}

func (s *mergeSteps) step(toks []int32) gpu.Buf {
	s.m.step(s.w, toks, s.first, s.h, s.c, s.h2, s.c2, s.imgRep, s.R)
	return s.w.logp.Slice(0, s.R*s.m.Cfg.Vocab)
}

func (s *mergeSteps) advance(src []int32) {
	s.first = false
	if src == nil {
		s.h, s.c, s.h2, s.c2 = s.h2, s.c2, s.h, s.c
		return
	}
	s.m.dev.EmbeddingForward(s.h, s.h2, src, s.m.Cfg.Hidden)
	s.m.dev.EmbeddingForward(s.c, s.c2, src, s.m.Cfg.Hidden)
}
