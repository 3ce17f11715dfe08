// Package numdiff measures how far one vector of numbers is from another, for
// the tests that compare a computation with its reference (the encoder's
// reduced precisions, the GPU against the CPU).
package numdiff

import "math"

// RelL2 is |a - b| / |b| (Euclidean norms), the distance of a from the
// reference b relative to b's size; a and b have the same length.
func RelL2(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / max(den, 1e-30))
}
