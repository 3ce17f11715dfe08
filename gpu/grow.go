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
