package gpu

// Ones sets every element of b to 1. A vector of ones turns a Gemm into a sum
// along an axis or a broadcast over one.
func Ones(dev Device, b Buf) {
	ones := make([]float32, b.Len())
	for i := range ones {
		ones[i] = 1
	}
	dev.Upload(b, ones)
}
