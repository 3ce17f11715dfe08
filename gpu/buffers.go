package gpu

// Grow returns the first n elements of *b, first replacing *b with a buffer of
// n elements when it is nil or shorter. A caller that keeps its scratch this
// way allocates at the largest size it meets, once, instead of a buffer a call:
// freeing one waits for the device on CUDA (cuMemFree synchronises).
func Grow(dev Device, b *Buf, n int) Buf {
	if *b == nil || (*b).Len() < n {
		if *b != nil {
			dev.Free(*b)
		}
		*b = dev.Alloc(n)
	}
	return (*b).Slice(0, n)
}

// FreeAll frees the buffers of bufs that were allocated, leaving out the nil
// ones: a Close frees what a partial setup, or lazy allocation, got to.
func FreeAll(dev Device, bufs ...Buf) {
	for _, b := range bufs {
		if b != nil {
			dev.Free(b)
		}
	}
}

// Ones sets every element of b to 1. A vector of ones turns a Gemm into a sum
// along an axis or a broadcast over one.
func Ones(dev Device, b Buf) {
	ones := make([]float32, b.Len())
	for i := range ones {
		ones[i] = 1
	}
	dev.Upload(b, ones)
}
