package train

import "math/rand/v2"

// mirroring is train.mirror's data augmentation: each caption of a step uses
// its photo flipped left to right with probability 1/2, its words "left" and
// "right" swapped. The mirrored photos' features are rows offset.. of the
// training features, after the originals.
type mirroring struct {
	offset int32           // the number of training images: where the mirrored rows start
	words  map[int32]int32 // word id -> its mirror's (Split.MirrorWords)
	seed   int64
}

// mirrorStream keeps the flips' random numbers apart from the other draws of
// the same (seed, step): dropout and self-critical sampling.
const mirrorStream = 0x6d6972726f72 // "mirror"

// flips draws which of n captions of optimiser step step use the mirrored
// photo; it depends on (seed, step) alone, so a resumed run draws the same.
func (m *mirroring) flips(step, n int) []bool {
	rng := rand.New(rand.NewPCG(uint64(m.seed)^mirrorStream, uint64(step)))
	f := make([]bool, n)
	for i := range f {
		f[i] = rng.IntN(2) == 1
	}
	return f
}

// word is w as the mirrored photo's caption says it.
func (m *mirroring) word(w int32) int32 {
	if s, ok := m.words[w]; ok {
		return s
	}
	return w
}

// caption is words as the mirrored photo's caption says them.
func (m *mirroring) caption(words []int32) []int32 {
	out := make([]int32, len(words))
	for i, w := range words {
		out[i] = m.word(w)
	}
	return out
}

// apply mirrors the flipped captions of bt, a batch of step: their feature
// rows become the mirrored photos' and their words swap.
func (m *mirroring) apply(bt *Batch, step int) {
	for b, flip := range m.flips(step, bt.B) {
		if !flip {
			continue
		}
		bt.Images[b] += m.offset
		for t := 0; t < bt.T; t++ {
			bt.IDs[t*bt.B+b] = m.word(bt.IDs[t*bt.B+b])
			bt.Targets[t*bt.B+b] = m.word(bt.Targets[t*bt.B+b])
		}
	}
}
