package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"strings"
)

// Example is one training pair: an image and one of its captions.
type Example struct {
	Image int     // row of the split's feature matrix
	Words []int32 // caption token ids, without <start> and <end>
}

// examplesDigest is the SHA-256 of examples, images and words in order: a
// checkpoint records it, so that a resumed run trains on the captions it
// started on.
func examplesDigest(examples []Example) string {
	h := sha256.New()
	var b [4]byte
	for _, e := range examples {
		binary.LittleEndian.PutUint32(b[:], uint32(e.Image))
		h.Write(b[:])
		binary.LittleEndian.PutUint32(b[:], uint32(len(e.Words)))
		h.Write(b[:])
		for _, w := range e.Words {
			binary.LittleEndian.PutUint32(b[:], uint32(w))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// devDigest is a digest of the dev split's captions: as word ids (the dev
// loss's) and as words (the references of its BLEU, which keep words outside
// the vocabulary).
func devDigest(dv *Split) string {
	h := sha256.New()
	h.Write([]byte(examplesDigest(dv.Examples)))
	for _, refs := range dv.Refs {
		for _, ref := range refs {
			h.Write([]byte(strings.Join(ref, " ") + "\n"))
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Batch is a mini-batch laid out time-major for decoder.TrainState.Forward.
type Batch struct {
	B, T    int
	Images  []int32 // (B) feature rows
	IDs     []int32 // (T*B) <start> w1 .. wn, then <pad>
	Targets []int32 // (T*B) w1 .. wn <end>, then -1
}

// bucketChunk is how many batches' worth of examples are sorted by length
// together: batches then hold captions of similar length (little padding) while
// their composition and order still change every epoch.
const bucketChunk = 50

// epochOrder returns the batches of one epoch as lists of example indices. The
// order depends only on (seed, epoch), so a resumed run repeats it exactly.
func epochOrder(examples []Example, batch int, seed int64, epoch int) [][]int {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(epoch)+1))
	perm := rng.Perm(len(examples))
	var batches [][]int
	for lo := 0; lo < len(perm); lo += batch * bucketChunk {
		chunk := perm[lo:min(lo+batch*bucketChunk, len(perm))]
		sort.SliceStable(chunk, func(i, j int) bool { return len(examples[chunk[i]].Words) < len(examples[chunk[j]].Words) })
		for b := 0; b < len(chunk); b += batch {
			batches = append(batches, chunk[b:min(b+batch, len(chunk))])
		}
	}
	rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
	return batches
}

// makeBatch lays out examples idx time-major with the special token ids.
func makeBatch(examples []Example, idx []int, start, end, pad int32) Batch {
	B := len(idx)
	T := 0
	for _, i := range idx {
		T = max(T, len(examples[i].Words)+1)
	}
	bt := Batch{B: B, T: T, Images: make([]int32, B), IDs: make([]int32, T*B), Targets: make([]int32, T*B)}
	for b, i := range idx {
		ex := examples[i]
		bt.Images[b] = int32(ex.Image)
		n := len(ex.Words)
		for t := 0; t < T; t++ {
			switch {
			case t == 0:
				bt.IDs[b] = start
			case t <= n:
				bt.IDs[t*B+b] = ex.Words[t-1]
			default:
				bt.IDs[t*B+b] = pad
			}
			switch {
			case t < n:
				bt.Targets[t*B+b] = ex.Words[t]
			case t == n:
				bt.Targets[t*B+b] = end
			default:
				bt.Targets[t*B+b] = -1
			}
		}
	}
	return bt
}
