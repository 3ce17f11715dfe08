// emutest.c: the emulator (emu.c) with kernels written to exercise it, each
// checking one property of the emulated grid.
#include "../../emu.c"

// grid_ids writes each thread's coordinates at its global index.
KERNEL grid_ids(int *out) {
	int i = (blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
	out[i] = blockIdx.y * 1000000 + blockIdx.x * 1000 + threadIdx.x;
}

// rotate makes each thread read its right neighbour's shared slot: correct only
// if every write happened before any read, which only the barrier guarantees
// when threads run in index order.
KERNEL rotate(int *out) {
	__shared__ int sh[BLOCK];
	int t = threadIdx.x;
	sh[t] = blockIdx.x * 100 + t;
	__syncthreads();
	int v = sh[(t + 1) % blockDim.x];
	__syncthreads(); // the next block's threads overwrite sh
	out[blockIdx.x * blockDim.x + t] = v;
}

// divergent lets thread 0 leave before the barrier the others wait at.
KERNEL divergent(int *out) {
	__shared__ int sh[BLOCK];
	if (threadIdx.x == 0) return;
	sh[threadIdx.x] = 1;
	__syncthreads();
	out[threadIdx.x] = sh[threadIdx.x];
}

// undeclared synchronises without declaring shared memory.
KERNEL undeclared(int *out) {
	out[threadIdx.x] = 1;
	__syncthreads();
}

// overrun writes one element past the end of a buffer of blockDim.x elements.
KERNEL overrun(int *out) { out[threadIdx.x + 1] = 1; }

const char *const emu_kernel_names[] = {"grid_ids", "rotate", "divergent", "undeclared", "overrun", NULL};
const unsigned char emu_kernel_cooperative[] = {0, 1, 1, 0, 0};

void emu_dispatch(int k, const uint64_t *a) {
	int *out = (int *)(uintptr_t)a[0];
	switch (k) {
	case 0:
		grid_ids(out);
		return;
	case 1:
		rotate(out);
		return;
	case 2:
		divergent(out);
		return;
	case 3:
		undeclared(out);
		return;
	case 4:
		overrun(out);
		return;
	}
}
