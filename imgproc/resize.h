// The C part of ToTensor (resize.c, resize_c.go).
#include <stdint.h>

void cap_resize_rgba(float *dst, const uint8_t *pix, intptr_t stride, intptr_t h,
	const intptr_t *xstart, const float *xw, intptr_t xtaps,
	const intptr_t *ystart, const intptr_t *yoff, const float *yw,
	intptr_t size, float *tmp);
