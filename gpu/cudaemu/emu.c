// emu.c: runs CUDA kernels compiled as host C on an emulated grid.
//
// Blocks run one after another, and so do the threads of a block. A kernel
// without __shared__ memory (most of them) cannot observe the order of its
// threads, so each thread is a plain call. A cooperative kernel (one that
// declares __shared__ memory) runs each thread of a block as a coroutine
// (ucontext) on its own small stack: the scheduler resumes every runnable thread
// in turn; a thread runs until it finishes or calls __syncthreads, which parks
// it; when every thread of the block is parked the barrier opens and all resume.
// makecontext/setcontext start a thread; switches after that use _setjmp and
// _longjmp, which unlike swapcontext make no system call (no signal mask).
// So barrier code executes unchanged, with a GPU's ordering guarantees, and a
// barrier that some threads skip (a hang or undefined behaviour on a GPU) is
// reported instead. Shared memory is a static thread-local array: blocks run one
// at a time, and CUDA leaves shared memory undefined at block start anyway.
#define _GNU_SOURCE
// The fortified longjmp refuses jumps between stacks, which is what the
// coroutine switches are.
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "../kernels/common.cuh"
#include "emu.h"

__thread dim3 blockIdx, threadIdx, blockDim, gridDim;

// Each emulated thread's stack; kernels keep a few scalars and call libm.
#define EMU_STACK (64 << 10)

enum { RUNNABLE, PARKED, FINISHED };

struct emu_thread {
	ucontext_t ctx; // the thread's start, on its own stack
	jmp_buf resume; // where a parked thread continues
	int state;
	int started;
};

// The launch running on this OS thread, and its coroutines' stacks, kept for
// the next launch (mapping them costs more than most kernels).
static __thread struct {
	jmp_buf sched; // the scheduler, in run_block
	struct emu_thread *th;
	char *stacks;
	unsigned capacity; // threads that th and stacks hold
	int cur;
	int kernel;
	const uint64_t *args;
	int direct;          // running a thread as a plain call
	jmp_buf direct_exit; // where __syncthreads leaves a plain call
} E;

void __syncthreads(void) {
	if (E.direct) longjmp(E.direct_exit, 1);
	struct emu_thread *t = &E.th[E.cur];
	t->state = PARKED;
	if (!_setjmp(t->resume)) _longjmp(E.sched, 1);
}

const char *emu_kernel_name(int k) {
	for (int i = 0; i < k; i++)
		if (!emu_kernel_names[i]) return NULL;
	return emu_kernel_names[k];
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void emu_thread_main(void) {
	emu_dispatch(E.kernel, E.args);
	E.th[E.cur].state = FINISHED;
	_longjmp(E.sched, 1);
}

// reserve makes room for the coroutines of a block of n threads: for each, a
// guard page (stacks grow down) and then its stack.
static int reserve(unsigned n) {
	if (n <= E.capacity) return EMU_OK;
	size_t page = page_size(), slot = EMU_STACK + page;
	char *stacks = mmap(NULL, slot * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stacks == MAP_FAILED) return EMU_NO_MEMORY;
	struct emu_thread *th = mmap(NULL, sizeof *th * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (th == MAP_FAILED) {
		munmap(stacks, slot * n);
		return EMU_NO_MEMORY;
	}
	for (unsigned t = 0; t < n; t++) {
		mprotect(stacks + t * slot, page, PROT_NONE);
		getcontext(&th[t].ctx); // once: makecontext reuses it for every block
	}
	if (E.capacity > 0) {
		munmap(E.stacks, slot * E.capacity);
		munmap(E.th, sizeof *E.th * E.capacity);
	}
	E.stacks = stacks;
	E.th = th;
	E.capacity = n;
	return EMU_OK;
}

// run_block runs the current block as coroutines.
static int run_block(unsigned bx) {
	size_t page = page_size(), slot = EMU_STACK + page;
	struct emu_thread *th = E.th;
	for (unsigned t = 0; t < bx; t++) {
		th[t].ctx.uc_stack.ss_sp = E.stacks + t * slot + page;
		th[t].ctx.uc_stack.ss_size = EMU_STACK;
		th[t].ctx.uc_link = NULL; // emu_thread_main never returns
		makecontext(&th[t].ctx, emu_thread_main, 0);
		th[t].state = RUNNABLE;
		th[t].started = 0;
	}
	for (;;) {
		unsigned parked = 0, finished = 0;
		for (unsigned t = 0; t < bx; t++) {
			if (th[t].state == RUNNABLE) {
				E.cur = (int)t;
				threadIdx = (dim3){t, 0, 0};
				if (!_setjmp(E.sched)) {
					if (th[t].started) _longjmp(th[t].resume, 1);
					th[t].started = 1;
					setcontext(&th[t].ctx);
				}
			}
			parked += th[t].state == PARKED;
			finished += th[t].state == FINISHED;
		}
		if (finished == bx) return EMU_OK;
		if (parked != bx) return EMU_DIVERGENT_BARRIER;
		for (unsigned t = 0; t < bx; t++) th[t].state = RUNNABLE;
	}
}

int emu_launch(int k, const uint64_t *args, unsigned gx, unsigned gy, unsigned bx) {
	if (gx == 0 || gy == 0 || bx == 0 || bx > EMU_MAX_THREADS) return EMU_BAD_LAUNCH;
	int coop = emu_kernel_cooperative[k];
	if (coop && reserve(bx) != EMU_OK) return EMU_NO_MEMORY;
	E.kernel = k;
	E.args = args;
	gridDim = (dim3){gx, gy, 1};
	blockDim = (dim3){bx, 1, 1};
	for (unsigned by = 0; by < gy; by++) {
		for (unsigned bxi = 0; bxi < gx; bxi++) {
			blockIdx = (dim3){bxi, by, 0};
			if (coop) {
				int rc = run_block(bx);
				if (rc != EMU_OK) return rc;
				continue;
			}
			E.direct = 1;
			if (setjmp(E.direct_exit)) {
				E.direct = 0;
				return EMU_UNDECLARED_BARRIER;
			}
			for (unsigned t = 0; t < bx; t++) {
				threadIdx = (dim3){t, 0, 0};
				emu_dispatch(k, args);
			}
			E.direct = 0;
		}
	}
	return EMU_OK;
}

// emu_alloc places the buffer at the end of its pages, against a PROT_NONE page.
uintptr_t emu_alloc(size_t bytes) {
	size_t page = page_size(), data = (bytes + page - 1) / page * page;
	char *p = mmap(NULL, data + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return 0;
	if (mprotect(p + data, page, PROT_NONE) != 0) {
		munmap(p, data + page);
		return 0;
	}
	return (uintptr_t)(p + data - bytes);
}

void emu_free(uintptr_t p, size_t bytes) {
	size_t page = page_size(), data = (bytes + page - 1) / page * page;
	munmap((char *)(p + bytes - data), data + page);
}

void emu_htod(uintptr_t dst, const void *src, size_t bytes) { memcpy((void *)dst, src, bytes); }
void emu_dtoh(void *dst, uintptr_t src, size_t bytes) { memcpy(dst, (const void *)src, bytes); }
void emu_dtod(uintptr_t dst, uintptr_t src, size_t bytes) { memmove((void *)dst, (const void *)src, bytes); }
void emu_zero(uintptr_t dst, size_t bytes) { memset((void *)dst, 0, bytes); }

void emu_sgemm(int transA, int transB, int m, int n, int k, float alpha, uintptr_t a, int lda, long long strideA,
               uintptr_t b, int ldb, long long strideB, float beta, uintptr_t c, int ldc, long long strideC,
               int batch) {
	for (int q = 0; q < batch; q++) {
		const float *A = (const float *)a + q * strideA, *B = (const float *)b + q * strideB;
		float *C = (float *)c + q * strideC;
		for (int i = 0; i < m; i++) {
			for (int j = 0; j < n; j++) {
				float s = 0.0f;
				for (int p = 0; p < k; p++) {
					float x = transA ? A[p * lda + i] : A[i * lda + p];
					float y = transB ? B[j * ldb + p] : B[p * ldb + j];
					s += x * y;
				}
				C[i * ldc + j] = alpha * s + (beta == 0.0f ? 0.0f : beta * C[i * ldc + j]);
			}
		}
	}
}
