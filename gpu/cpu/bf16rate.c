//go:build cgo && !purecpu

// See bf16rate.h. Each loop keeps 12 independent accumulators, more than the
// FMA units' latency times their number on current x86 cores, so that the
// loops measure throughput, not a dependency chain. The two loops alternate
// five times and each keeps its fastest run, so that a neighbour's burst on a
// shared machine does not decide the ratio.
#include <time.h>
#include "bf16rate.h"

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10 || defined(__clang__))
#include <immintrin.h>

enum { ACC = 12, ITERS = 20000, ROUNDS = 5 };

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// The returned sums keep the compiler from dropping the loops.
__attribute__((target("avx512f"), noinline)) static float fma_loop(double *secs) {
	__m512 acc[ACC], a = _mm512_set1_ps(1e-3f), b = _mm512_set1_ps(1e-3f);
	for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
	double t0 = now();
	for (int n = 0; n < ITERS; n++) {
		for (int i = 0; i < ACC; i++) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
		__asm__ volatile("" : "+v"(a)); // a new a each iteration: no hoisting
	}
	*secs = now() - t0;
	float s = 0;
	for (int i = 0; i < ACC; i++) s += _mm512_reduce_add_ps(acc[i]);
	return s;
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static float dot_loop(double *secs) {
	__m512 acc[ACC];
	__m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f)), b = a;
	for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
	double t0 = now();
	for (int n = 0; n < ITERS; n++) {
		for (int i = 0; i < ACC; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
		__asm__ volatile("" : "+v"(a));
	}
	*secs = now() - t0;
	float s = 0;
	for (int i = 0; i < ACC; i++) s += _mm512_reduce_add_ps(acc[i]);
	return s;
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
