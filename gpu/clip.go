package gpu

import (
	"errors"
	"math"
)

// ErrDiverged is ClipGradNorm's error when the gradients' norm is not finite
// (NaN or infinity): the loss diverged, and the step that would have written
// NaN into every weight should not be taken.
var ErrDiverged = errors.New("the gradients' norm is not finite (the loss diverged)")

// ClipGradNorm scales the gradients grad so their L2 norm is at most maxNorm
// (maxNorm <= 0 disables clipping) and returns the norm before clipping, or
// ErrDiverged when that norm is NaN or infinite (grad is then left as it is).
func ClipGradNorm(dev Device, grad Buf, maxNorm float64) (float64, error) {
	ss, err := dev.SumSquares(grad)
	if err != nil {
		return 0, err
	}
	norm := math.Sqrt(ss)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, ErrDiverged
	}
	if maxNorm > 0 && norm > maxNorm {
		dev.Scale(grad, float32(maxNorm/(norm+1e-6)))
	}
	return norm, nil
}
