// common.cuh: definitions shared by every kernel file.
//
// The kernels are written in the subset of CUDA C that is also C99, so that
// gpu/cudaemu can compile the same bodies as host code and run them on an
// emulated grid (the only execution they get on machines without a GPU):
//   - kernels are declared `KERNEL name(params)` on one line: the parameter lists
//     are parsed by gpu/kernels (launch checks) and gpu/cudaemu (dispatch);
//   - parameters are float*, int*, double*, int, float or unsigned long long;
//   - no templates, references, classes, warp intrinsics or dynamic shared memory;
//     block-wide cooperation uses __shared__ arrays of BLOCK elements and
//     __syncthreads(), which the emulator implements with one coroutine per thread.
#ifndef CAPTIONER_COMMON_CUH
#define CAPTIONER_COMMON_CUH

// BLOCK is the block size of every launch that uses shared memory, a power of
// two (tree reductions halve it). gpu/kernels.Block must equal it.
#define BLOCK 256

// Activation codes: the values of gpu.Act.
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_RELU6 2
#define ACT_TANH 3
#define ACT_SIGMOID 4

#ifdef __CUDACC__

#define KERNEL extern "C" __global__ void
#define DEVICE static __device__ __forceinline__

#else // host emulation (gpu/cudaemu)

#include <math.h>
#include <stddef.h>

typedef struct {
	unsigned int x, y, z;
} dim3;

// The emulator sets these before it runs each emulated thread; they are
// thread-local so that independent emulated devices may run on several OS threads.
extern __thread dim3 blockIdx, threadIdx, blockDim, gridDim;

// __syncthreads suspends the calling emulated thread until every thread of its
// block has reached a barrier (gpu/cudaemu/emu.c).
void __syncthreads(void);

#define KERNEL static void
#define DEVICE static inline
#define __shared__ static __thread

// Emulated threads run one at a time, so a plain read-modify-write is atomic.
static inline float atomicAdd(float *p, float v) {
	float old = *p;
	*p = old + v;
	return old;
}

#endif // __CUDACC__

// GRID_STRIDE runs the loop body for every i in [0, n) across the whole grid
// (x dimension), whatever the grid size.
#define GRID_STRIDE(i, n) \
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// activate applies activation act to x.
DEVICE float activate(float x, int act) {
	switch (act) {
	case ACT_RELU:
		return fmaxf(x, 0.0f);
	case ACT_RELU6:
		return fminf(fmaxf(x, 0.0f), 6.0f);
	case ACT_TANH:
		return tanhf(x);
	case ACT_SIGMOID:
		return 1.0f / (1.0f + expf(-x));
	default:
		return x;
	}
}

// sigmoidf is the logistic function.
DEVICE float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// block_sum returns the sum of v over the block to every thread; sh has BLOCK
// elements and blockDim.x is a power of two <= BLOCK. Reductions run in double:
// they are a few steps per block, and SumSquares needs the precision.
DEVICE double block_sum(double v, double *sh) {
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (t < s) sh[t] += sh[t + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads(); // sh is reused by the caller's next reduction
	return r;
}

// block_max returns the maximum of v over the block to every thread (as block_sum).
DEVICE double block_max(double v, double *sh) {
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (t < s) sh[t] = fmax(sh[t], sh[t + s]);
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

// row_stats returns in *m the maximum of row xr (cols) and in *s the sum of
// exp(xr[j] - *m), to every thread of the block: the stable softmax denominator.
DEVICE void row_stats(const float *xr, int cols, double *sh, float *m, float *s) {
	float mx = -INFINITY;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, xr[j]);
	mx = (float)block_max(mx, sh);
	float sum = 0.0f;
	for (int j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(xr[j] - mx);
	*m = mx;
	*s = (float)block_sum(sum, sh);
}

#endif // CAPTIONER_COMMON_CUH
