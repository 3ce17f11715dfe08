// emu.h: the host emulator of the CUDA grid that runs gpu/kernels/*.cu as C.
#ifndef CAPTIONER_EMU_H
#define CAPTIONER_EMU_H

#include <stddef.h>
#include <stdint.h>

// Launch results other than EMU_OK.
enum {
	EMU_OK = 0,
	EMU_DIVERGENT_BARRIER = 1, // some threads of a block exited while others waited at __syncthreads
	EMU_BAD_LAUNCH = 2,        // empty grid, or a block larger than EMU_MAX_THREADS
	EMU_NO_MEMORY = 3,         // the emulated threads' stacks could not be mapped
	EMU_UNDECLARED_BARRIER = 4, // a kernel without __shared__ memory called __syncthreads
};

#define EMU_MAX_THREADS 1024

// emu_launch runs kernel k (an index into emu_kernel_names) over a (gx, gy) grid of
// blocks of bx threads with the given arguments (see kernels.Driver.Launch).
int emu_launch(int k, const uint64_t *args, unsigned gx, unsigned gy, unsigned bx);

// emu_alloc returns zeroed memory whose last byte is followed by an inaccessible
// page, so that a kernel writing or reading past the end of a buffer faults at once.
uintptr_t emu_alloc(size_t bytes);
void emu_free(uintptr_t p, size_t bytes);

void emu_htod(uintptr_t dst, const void *src, size_t bytes);
void emu_dtoh(void *dst, uintptr_t src, size_t bytes);
void emu_dtod(uintptr_t dst, uintptr_t src, size_t bytes);
void emu_zero(uintptr_t dst, size_t bytes);

// emu_sgemm is the reference row-major C = alpha * op(A) * op(B) + beta * C, batch
// times, matrix q of each at q times its stride (in elements).
void emu_sgemm(int transA, int transB, int m, int n, int k, float alpha, uintptr_t a, int lda, long long strideA,
               uintptr_t b, int ldb, long long strideB, float beta, uintptr_t c, int ldc, long long strideC,
               int batch);

// emu_kernel_name returns the name of kernel k, or NULL past the last one.
const char *emu_kernel_name(int k);

// Generated into kernels_gen.c from the kernel signatures: the NULL-terminated
// kernel names, whether each is cooperative (declares __shared__ memory, so its
// threads run as coroutines), their parameters' kinds, and the call of kernel k
// with its arguments.
extern const char *const emu_kernel_names[];
extern const unsigned char emu_kernel_cooperative[];
// emu_kernel_kinds[k] has one letter per parameter of kernel k: p pointer,
// u unsigned long long (8 bytes), i int, f float (4 bytes); see kernels.Kind.
extern const char *const emu_kernel_kinds[];
void emu_dispatch(int k, const uint64_t *args);

#endif
