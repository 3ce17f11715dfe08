// Hot loops of the CPU backend in C, built only with cgo (kernels_c.go); the
// pure-Go build runs the same algorithms from kernels_go.go. Activation codes are
// gpu.Act's values.

// cap_bias_act writes out (rows, cols) = act(x + bias); bias may be NULL, out may be x.
void cap_bias_act(float *out, const float *x, const float *bias, long rows, long cols, int act);

// cap_dw_rows computes output rows [oh0, oh1) of one image of a depthwise
// convolution: in is (H, W, C), w is (KH, KW, C), bias (C) or NULL, out is
// (OH, OW, C). zeros holds at least W*C zeros (it stands in for padding rows).
void cap_dw_rows(float *out, const float *in, const float *w, const float *bias, const float *zeros,
	int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
	int OW, int oh0, int oh1, int act);

// cap_conv_rows computes output rows [oh0, oh1) of one image of a direct
// convolution for inputs with few channels (an image's RGB): in is (H, W, C),
// wt is the weight transposed to (KH*KW*C, OC), bias (OC) or NULL, out is (OH, OW, OC).
void cap_conv_rows(float *out, const float *in, const float *wt, const float *bias,
	int H, int W, int C, int OC, int KH, int KW, int sh, int sw, int pt, int pl,
	int OW, int oh0, int oh1, int act);
