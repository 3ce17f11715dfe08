//go:build cgo

// The RGBA path of ToTensor (tensor.go: scratch.rgba, hpassRGBA, vpassRGB) in C,
// computing bit for bit the same float32 operations in the same order: the
// committed encoder references hash the tensor (encoder/testdata/armnn_*.json).
// Hence no fused multiply-add, which rounds once where Go rounds twice: GCC
// does not contract in ISO C mode (-std=c11 in resize_c.go; cgo refuses
// -ffp-contract), clang obeys the pragma below.
//
// The speed (4 ms -> 0.85 ms for a 500x375 photo) comes from the layout alone:
// a pixel's four bytes are one 4-lane vector, the horizontal pass works on four
// output pixels at a time with a fixed number of taps each (zero-padded, see
// filterWeights.fixed), and the vertical pass keeps 8 columns in a register
// across its taps.

#include <string.h>
#include "resize.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

// As in gpu/cpu/kernels.c: one clone per x86-64 level, picked at load time.
// Measured for a 500x375 photo: v4 and v3 0.85 ms, v2 1.6 ms (SSE4.1 widens
// bytes in one instruction), baseline SSE2 2.5 ms.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "arch=x86-64-v2", "default")))
#else
#define CLONES
#endif

// fN: N floats, iN: N int32s, b4: the 4 bytes of a pixel.
typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
typedef uint8_t b4 __attribute__((vector_size(4)));

#define INLINE static inline __attribute__((always_inline))

// pixel loads the RGBA bytes at p as floats, alpha turned into the white
// showing through: 255 - a, which is a ^ 255 for a byte. Through int32: GCC
// converts bytes straight to floats one at a time.
INLINE f4 pixel(const uint8_t *p) {
	const b4 white = {0, 0, 0, 255};
	b4 px;
	memcpy(&px, p, 4);
	return __builtin_convertvector(__builtin_convertvector(px ^ white, i4), f4);
}

// put stores a filtered pixel: the white (lane 3, hpassRGBA's bg) added to R, G, B.
INLINE void put(float *out, f4 acc) {
	acc += acc[3];
	memcpy(out, &acc, sizeof acc);
}

// hrow filters one row of premultiplied RGBA bytes into size (R, G, B, -)
// floats composited onto white. Four outputs at a time: one output's sum is a
// chain of dependent additions, four chains keep the adder busy.
INLINE void hrow(float *restrict out, const uint8_t *restrict row,
		const intptr_t *restrict start, const float *restrict w, intptr_t taps, intptr_t size) {
	intptr_t i = 0;
	for (; i + 4 <= size; i += 4) {
		const uint8_t *p0 = row + 4 * start[i], *p1 = row + 4 * start[i + 1],
			*p2 = row + 4 * start[i + 2], *p3 = row + 4 * start[i + 3];
		const float *w0 = w + i * taps, *w1 = w0 + taps, *w2 = w1 + taps, *w3 = w2 + taps;
		f4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
		for (intptr_t k = 0; k < taps; k++) {
			a0 += w0[k] * pixel(p0 + 4 * k);
			a1 += w1[k] * pixel(p1 + 4 * k);
			a2 += w2[k] * pixel(p2 + 4 * k);
			a3 += w3[k] * pixel(p3 + 4 * k);
		}
		put(out + 4 * i, a0);
		put(out + 4 * i + 4, a1);
		put(out + 4 * i + 8, a2);
		put(out + 4 * i + 12, a3);
	}
	for (; i < size; i++) {
		const uint8_t *p = row + 4 * start[i];
		const float *wi = w + i * taps;
		f4 acc = {0};
		for (intptr_t k = 0; k < taps; k++) acc += wi[k] * pixel(p + 4 * k);
		put(out + 4 * i, acc);
	}
}

// clamp_scale is vpassRGB's clamp255(v)/127.5 - 1: float rounding of weights
// that sum to 1 can overshoot by an ulp.
INLINE float clamp_scale(float v) {
	v = v < 0 ? 0 : v;
	return (v > 255 ? 255 : v) / 127.5f - 1.0f;
}

// vrow is one output row of vpass over rows of n floats, clamped and scaled:
// out = clamp_scale(sum_k w[k] * rows[k]), the sum accumulated from 0 tap by
// tap. Eight columns at a time, kept in a register across the taps rather than
// going through out once per tap.
INLINE void vrow(float *restrict out, const float *restrict rows,
		const float *restrict w, intptr_t taps, intptr_t n) {
	const f8 zero = {0}, top = zero + 255.0f;
	intptr_t x = 0;
	for (; x + 8 <= n; x += 8) {
		f8 acc = zero;
		for (intptr_t k = 0; k < taps; k++) {
			f8 v;
			memcpy(&v, rows + k * n + x, sizeof v);
			acc += w[k] * v;
		}
		// clamp_scale, as vector selects: C has no ?: on vectors.
		i8 neg = acc < zero;
		acc = (f8)((i8)acc & ~neg);
		i8 over = acc > top;
		acc = (f8)(((i8)acc & ~over) | ((i8)top & over));
		acc = acc / 127.5f - 1.0f;
		memcpy(out + x, &acc, sizeof acc);
	}
	for (; x < n; x++) {
		float acc = 0;
		for (intptr_t k = 0; k < taps; k++) acc += w[k] * rows[k * n + x];
		out[x] = clamp_scale(acc);
	}
}

// cap_resize_rgba writes the (size, size, 3) tensor of the h rows of RGBA bytes
// at pix (stride bytes apart). The horizontal taps are xtaps per output pixel:
// output i reads pixels xstart[i].. with weights xw[i*xtaps..]; the vertical
// ones are filterWeights' own (ystart, yoff, yw). tmp holds (h+1)*size*4
// floats: the horizontally filtered rows, then one output row.
CLONES void cap_resize_rgba(float *dst, const uint8_t *pix, intptr_t stride, intptr_t h,
		const intptr_t *xstart, const float *xw, intptr_t xtaps,
		const intptr_t *ystart, const intptr_t *yoff, const float *yw,
		intptr_t size, float *tmp) {
	intptr_t n = 4 * size;
	for (intptr_t y = 0; y < h; y++) hrow(tmp + y * n, pix + y * stride, xstart, xw, xtaps, size);
	float *out = tmp + h * n;
	for (intptr_t i = 0; i < size; i++) {
		vrow(out, tmp + ystart[i] * n, yw + yoff[i], yoff[i + 1] - yoff[i], n);
		float *d = dst + i * 3 * size;
		for (intptr_t x = 0; x < size; x++) {
			d[3 * x] = out[4 * x];
			d[3 * x + 1] = out[4 * x + 1];
			d[3 * x + 2] = out[4 * x + 2];
		}
	}
}
