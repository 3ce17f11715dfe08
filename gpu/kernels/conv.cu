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

// depthwise_backward_input writes din (N, H, W, C), the input gradient of
// depthwise_conv given dout (N, OH, OW, C), the gradient of its output before the
// activation: din[n, ih, iw, c] sums dout[n, oh, ow, c] * w[kh, kw, c] over the
// taps with ih = oh * strideH - padTop + kh (the same for columns). One thread
// per input element, channels fastest.
KERNEL depthwise_backward_input(float *din, const float *dout, const float *w, int N, int H, int W, int C, int KH, int KW, int strideH, int strideW, int padTop, int padLeft, int OH, int OW) {
	GRID_STRIDE(i, N * H * W * C) {
		int c = i % C, t = i / C;
		int iw = t % W;
		t /= W;
		int ih = t % H, n = t / H;
		float s = 0.0f;
		for (int kh = 0; kh < KH; kh++) {
			int th = ih + padTop - kh;
			if (th < 0 || th % strideH != 0 || th / strideH >= OH) continue;
			int oh = th / strideH;
			for (int kw = 0; kw < KW; kw++) {
				int tw = iw + padLeft - kw;
				if (tw < 0 || tw % strideW != 0 || tw / strideW >= OW) continue;
				s += dout[((n * OH + oh) * OW + tw / strideW) * C + c] * w[(kh * KW + kw) * C + c];
			}
		}
		din[i] = s;
	}
}

// depthwise_backward_weight adds into dw (KH, KW, C) the weight gradient of
// depthwise_conv: for each tap and channel, the sum over output pixels of
// dout[n, oh, ow, c] * in[n, ih, iw, c].
// Launch: grid (ceil(KH*KW*C/BLOCK), ceil(N*OH*OW/pixelsPerBlock)); each thread
// sums pixelsPerBlock output pixels of one (tap, channel), as col_sum does rows,
// so that neighbouring threads read neighbouring channels.
KERNEL depthwise_backward_weight(float *dw, const float *dout, const float *in, int N, int H, int W, int C, int KH, int KW, int strideH, int strideW, int padTop, int padLeft, int OH, int OW, int pixelsPerBlock) {
	int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= KH * KW * C) return;
	int c = j % C, tap = j / C;
	int kh = tap / KW, kw = tap % KW;
	int pixels = N * OH * OW;
	int p0 = blockIdx.y * pixelsPerBlock;
	int p1 = p0 + pixelsPerBlock < pixels ? p0 + pixelsPerBlock : pixels;
	float s = 0.0f;
	for (int p = p0; p < p1; p++) {
		int ow = p % OW, t = p / OW;
		int oh = t % OH, n = t / OH;
		int ih = oh * strideH - padTop + kh, iw = ow * strideW - padLeft + kw;
		if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
		s += dout[p * C + c] * in[((n * H + ih) * W + iw) * C + c];
	}
	atomicAdd(&dw[j], s);
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
