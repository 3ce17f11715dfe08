// conv.cu: NHWC convolution helpers. Shapes as in gpu.ConvParams:
// in (N, H, W, C), out (N, OH, OW, OC). Launch: 1-D grid, BLOCK threads.
#include "common.cuh"

// im2col writes col (N*OH*OW, KH*KW*C): row (n, oh, ow) holds the input patch that
// output pixel reads, in the (kh, kw, c) order of an OHWI weight row, so that
// out = col * weight^T is one GEMM. Padding reads as zero.
KERNEL im2col(float *col, const float *in, int N, int H, int W, int C, int KH, int KW, int strideH, int strideW, int padTop, int padLeft, int OH, int OW) {
	GRID_STRIDE(i, N * OH * OW * KH * KW * C) {
		int c = i % C, t = i / C;
		int kw = t % KW;
		t /= KW;
		int kh = t % KH;
		t /= KH;
		int ow = t % OW;
		t /= OW;
		int oh = t % OH, n = t / OH;
		int ih = oh * strideH - padTop + kh, iw = ow * strideW - padLeft + kw;
		col[i] = ih >= 0 && ih < H && iw >= 0 && iw < W ? in[((n * H + ih) * W + iw) * C + c] : 0.0f;
	}
}

// depthwise_conv writes out (N, OH, OW, C) = act(depthwise(in, w) + bias) with
// w (KH, KW, C) and bias (C) (NULL: none); one thread per output element, channels
// fastest so neighbouring threads read neighbouring addresses.
KERNEL depthwise_conv(float *out, const float *in, const float *w, const float *bias, int N, int H, int W, int C, int KH, int KW, int strideH, int strideW, int padTop, int padLeft, int OH, int OW, int act) {
	GRID_STRIDE(i, N * OH * OW * C) {
		int c = i % C, t = i / C;
		int ow = t % OW;
		t /= OW;
		int oh = t % OH, n = t / OH;
		float s = bias ? bias[c] : 0.0f;
		for (int kh = 0; kh < KH; kh++) {
			int ih = oh * strideH - padTop + kh;
			if (ih < 0 || ih >= H) continue;
			for (int kw = 0; kw < KW; kw++) {
				int iw = ow * strideW - padLeft + kw;
				if (iw < 0 || iw >= W) continue;
				s += in[((n * H + ih) * W + iw) * C + c] * w[(kh * KW + kw) * C + c];
			}
		}
		out[i] = activate(s, act);
	}
}

// global_avg_pool writes out (n, c) = mean over hw of in (n, hw, c).
KERNEL global_avg_pool(float *out, const float *in, int n, int hw, int c) {
	GRID_STRIDE(i, n * c) {
		const float *p = in + (i / c) * hw * c + i % c;
		float s = 0.0f;
		for (int k = 0; k < hw; k++) s += p[k * c];
		out[i] = s / (float)hw;
	}
}
