// Package benchinput makes the synthetic inputs that benchmarks feed the encoder
// and the decoder, so that every package measuring them (encoder, decoder, the
// GPU check in gpu/gpucheck) times the same work. Speed does not depend on the
// values; fixed seeds keep runs comparable.
package benchinput

import (
	"math/rand/v2"

	"github.com/captioner/captioner/gpu"
)

// Images returns n encoder inputs (224x224x3 NHWC), uniform in [-1, 1).
func Images(n int) []float32 {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n*224*224*3)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	return x
}

// Features returns n standard-normal feature vectors of f values on dev.
func Features(dev gpu.Device, n, f int) gpu.Buf {
	rng := rand.New(rand.NewPCG(1, 2))
	host := make([]float32, n*f)
	for i := range host {
		host[i] = float32(rng.NormFloat64())
	}
	buf := dev.Alloc(n * f)
	dev.Upload(buf, host)
	return buf
}

// Tokens returns n input ids and n targets, uniform over the words of a vocabulary
// of vocab ids (ids 0-2 are padding, start and end).
func Tokens(n, vocab int) (ids, targets []int32) {
	rng := rand.New(rand.NewPCG(3, 4))
	ids, targets = make([]int32, n), make([]int32, n)
	for i := range ids {
		ids[i], targets[i] = int32(3+rng.IntN(vocab-3)), int32(3+rng.IntN(vocab-3))
	}
	return ids, targets
}
