// An inverted residual block of MobileNetV2 computed a row at a time
// (fusedblock.c): 1x1 expansion + ReLU6, 3x3 depthwise + ReLU6, 1x1 projection
// (plus the block's input where residual is set), float32, NHWC. Used by the float32 chain (convnet.c) for the early blocks,
// whose expanded activations are too large to stay in cache between layers.
#include <stddef.h>

typedef struct {
	int h, w, ci, ce, co;       // input size and channels, expanded and output channels
	int stride, pad_top, pad_left; // the depthwise layer's (TensorFlow's SAME padding)
	int oh, ow;
	int residual; // the projection adds the block's input (stride 1, ci == co)
	float *we, *be; // expansion: (ci, ce), the input channel major; bias (ce)
	float *wd, *bd; // depthwise: (3, 3, ce); bias (ce)
	float *wp, *bp; // projection: (ce, co), the expanded channel major; bias (co)
} cap_fused_block;

// cap_fused_block_usable reports whether this CPU runs the fused kernel
// (AVX-512F).
int cap_fused_block_usable(void);

// cap_fused_block_scratch is the number of floats of scratch a run needs.
size_t cap_fused_block_scratch(const cap_fused_block *b);

// cap_fused_block_run computes output rows [r0, r1) of one image: in is the
// block's (h, w, ci) input, out its (oh, ow, co) output, which must not overlap
// in: a split run's other half may still read the input rows these output rows
// would overwrite. It reads only the input rows those output rows need, and
// writes only their output rows.
void cap_fused_block_run(const cap_fused_block *b, const float *in, float *out, int r0, int r1, float *scratch);
