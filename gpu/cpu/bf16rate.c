//go:build cgo && !purecpu

// See bf16rate.h. Each loop keeps 12 independent accumulators in registers,
// more than the FMA units' latency times their number on current x86 cores,
// so that the loops measure throughput, not a dependency chain. The two loops alternate
// five times and each keeps its fastest run, so that a neighbour's burst on a
// shared machine does not decide the ratio.
#include <time.h>
#include "bf16rate.h"

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10 || defined(__clang__))
#include <immintrin.h>

enum { ITERS = 20000, ROUNDS = 5 };

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// The loops are written in assembly, 12 accumulators in zmm2..zmm13 zeroed
// first: in C the compiler decides, and at -O2 it kept an array of
// accumulators in memory (the loops then timed loads and stores, the same
// whatever the instruction) and merged accumulators that started equal into
// one dependency chain. a = b = 1e-3 keep the sums far from denormals, which
// some CPUs compute slowly. The "memory" clobber keeps the loop between the
// clock reads.
#define ZERO12 \
	"vxorps %%xmm2, %%xmm2, %%xmm2\n\tvxorps %%xmm3, %%xmm3, %%xmm3\n\tvxorps %%xmm4, %%xmm4, %%xmm4\n\t" \
	"vxorps %%xmm5, %%xmm5, %%xmm5\n\tvxorps %%xmm6, %%xmm6, %%xmm6\n\tvxorps %%xmm7, %%xmm7, %%xmm7\n\t" \
	"vxorps %%xmm8, %%xmm8, %%xmm8\n\tvxorps %%xmm9, %%xmm9, %%xmm9\n\tvxorps %%xmm10, %%xmm10, %%xmm10\n\t" \
	"vxorps %%xmm11, %%xmm11, %%xmm11\n\tvxorps %%xmm12, %%xmm12, %%xmm12\n\tvxorps %%xmm13, %%xmm13, %%xmm13\n\t"
#define ON12(op) \
	op " %[b], %[a], %%zmm2\n\t" op " %[b], %[a], %%zmm3\n\t" op " %[b], %[a], %%zmm4\n\t" \
	op " %[b], %[a], %%zmm5\n\t" op " %[b], %[a], %%zmm6\n\t" op " %[b], %[a], %%zmm7\n\t" \
	op " %[b], %[a], %%zmm8\n\t" op " %[b], %[a], %%zmm9\n\t" op " %[b], %[a], %%zmm10\n\t" \
	op " %[b], %[a], %%zmm11\n\t" op " %[b], %[a], %%zmm12\n\t" op " %[b], %[a], %%zmm13\n\t"
#define LOOP(op, a, b, n) \
	__asm__ volatile(ZERO12 "1:\n\t" ON12(op) "dec %[n]\n\tjnz 1b" \
		: [n] "+r"(n) : [a] "v"(a), [b] "v"(b) \
		: "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "cc", "memory")

__attribute__((target("avx512f"), noinline)) static double fma_loop(void) {
	__m512 a = _mm512_set1_ps(1e-3f), b = a;
	long n = ITERS;
	double t0 = now();
	LOOP("vfmadd231ps", a, b, n);
	return now() - t0;
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static double dot_loop(void) {
	__m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f)), b = a;
	long n = ITERS;
	double t0 = now();
	LOOP("vdpbf16ps", a, b, n);
	return now() - t0;
}

double cap_bf16_dot_speedup(void) {
	double best_fma = 1e9, best_dot = 1e9, t;
	for (int r = 0; r < ROUNDS; r++) {
		if ((t = fma_loop()) < best_fma) best_fma = t;
		if ((t = dot_loop()) < best_dot) best_dot = t;
	}
	// Per instruction the dot product does 32 multiply-adds, the FMA 16.
	return 2 * best_fma / best_dot;
}
#else
double cap_bf16_dot_speedup(void) { return 0; }
#endif
