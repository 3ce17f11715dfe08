package kernels

import "unsafe"

// Ptr is an address in a Driver's memory (a CUdeviceptr on a GPU).
type Ptr uintptr

// Driver is what Device needs from a backend: memory, kernel launches and a
// row-major SGEMM. Work may run asynchronously and in order; a Driver remembers
// the first asynchronous failure and returns it from Sync and DtoH (after which
// it may skip further work). Device never calls a Driver from two goroutines at once.
type Driver interface {
	// Name describes the device, e.g. "cuda (NVIDIA A10G, sm_86, 23 GB)".
	Name() string
	// Alloc returns zeroed memory of the given size; bytes > 0.
	Alloc(bytes int) (Ptr, error)
	// Free releases memory from Alloc.
	Free(p Ptr)
	// HtoD copies host memory to the device; src may be reused when it returns.
	HtoD(dst Ptr, src unsafe.Pointer, bytes int)
	// DtoH copies device memory to the host after all queued work; it synchronises.
	DtoH(dst unsafe.Pointer, src Ptr, bytes int) error
	// DtoD copies device memory in order with the queued work.
	DtoD(dst, src Ptr, bytes int)
	// Zero clears bytes (a multiple of 4) at dst.
	Zero(dst Ptr, bytes int)
	// Launch runs kernel k (an index into the Signatures the driver was made
	// with) on a (gridX, gridY) grid of blocks of blockX threads. args holds one
	// value per parameter in its low bytes: pointers and uint64 as is, int and
	// float as their 32-bit patterns.
	Launch(k int, gridX, gridY, blockX int, args []uint64)
	// Sgemm computes batch row-major products C = alpha * op(A) * op(B) + beta * C,
	// with the meaning of gpu.Device.GemmStridedBatched (strides in elements;
	// batch 1: gpu.Device.Gemm, strides unused); beta == 0 means C is not read.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda, strideA int, b Ptr, ldb, strideB int, beta float32, c Ptr, ldc, strideC int, batch int)
	// Sync waits for queued work and returns the first failure.
	Sync() error
	// Close releases the driver.
	Close() error
}
