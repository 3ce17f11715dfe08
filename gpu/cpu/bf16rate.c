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

// OP12 applies op to the 12 accumulators c0..c11, named one by one: in an
// array they stayed in memory at -O2, and the loops measured loads and
// stores, the same time an instruction whatever the instruction. Each starts
// at its own value: from equal starts the compiler merged the 12 into one
// dependency chain.
#define OP12(op) \
	op(c0); op(c1); op(c2); op(c3); op(c4); op(c5); op(c6); op(c7); op(c8); op(c9); op(c10); op(c11)
#define SUM12(s) \
	(s(c0) + s(c1) + s(c2) + s(c3) + s(c4) + s(c5) + s(c6) + s(c7) + s(c8) + s(c9) + s(c10) + s(c11))

// The returned sums keep the compiler from dropping the loops.
__attribute__((target("avx512f"), noinline)) static float fma_loop(double *secs) {
	__m512 a = _mm512_set1_ps(1e-3f), b = a;
	__m512 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
#define INIT(c) c = _mm512_set1_ps((float)init++)
#define FMA(c) c = _mm512_fmadd_ps(a, b, c)
	float init = 0;
	OP12(INIT);
	double t0 = now();
	for (int n = 0; n < ITERS; n++) {
		OP12(FMA);
		__asm__ volatile("" : "+v"(a)); // a new a each iteration: no hoisting
	}
	*secs = now() - t0;
	return SUM12(_mm512_reduce_add_ps);
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static float dot_loop(double *secs) {
	__m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f)), b = a;
	__m512 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
#define DOT(c) c = _mm512_dpbf16_ps(c, a, b)
	float init = 0;
	OP12(INIT);
	double t0 = now();
	for (int n = 0; n < ITERS; n++) {
		OP12(DOT);
		__asm__ volatile("" : "+v"(a));
	}
	*secs = now() - t0;
	return SUM12(_mm512_reduce_add_ps);
}

double cap_bf16_dot_speedup(void) {
	double best_fma = 1e9, best_dot = 1e9, t;
	volatile float sink = 0;
	for (int r = 0; r < ROUNDS; r++) {
		sink += fma_loop(&t);
		if (t < best_fma) best_fma = t;
		sink += dot_loop(&t);
		if (t < best_dot) best_dot = t;
	}
	(void)sink;
	// Per instruction the dot product does 32 multiply-adds, the FMA 16.
	return 2 * best_fma / best_dot;
}
#else
double cap_bf16_dot_speedup(void) { return 0; }
#endif
