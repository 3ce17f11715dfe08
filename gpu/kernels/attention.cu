// attention.cu: soft attention's scoring MLP over image regions (decoder/attention.go),
// one kernel for what the broadcast, the add, the tanh and the product with v
// would otherwise do as four passes over (rows, regions, dim).
#include "common.cuh"

// keep_within returns x clamped to [-c, c], keeping a NaN.
DEVICE float keep_within(float x, float c) { return x < -c ? -c : x > c ? c : x; }

// attention_scores writes, for each (row, region) pair i = r*regions + l,
// e = tanh(pf[r/perImage, l, :] + q[r, :]) (dim), stored at e + i*dim when e
// is not NULL, and scores[i] = e · v. With expForm, pf holds exp(2·pf)
// (attention_exp) and tanh(pf + q) is 1 - 2/(pf·exp(2·clamp(q, ±c)) + 1).
// Launch: one block per pair (a grid of fewer blocks loops over pairs),
// threads over dim, a power of two <= BLOCK.
KERNEL attention_scores(float *scores, float *e, const float *pf, const float *q, const float *v, int rows, int perImage, int regions, int dim, int expForm, float c) {
	__shared__ double sh[BLOCK];
	for (int i = blockIdx.x; i < rows * regions; i += gridDim.x) {
		int r = i / regions, l = i % regions;
		const float *p = pf + ((r / perImage) * regions + l) * dim, *qr = q + r * dim;
		double s = 0.0;
		for (int a = threadIdx.x; a < dim; a += blockDim.x) {
			float t = expForm ? 1.0f - 2.0f / (p[a] * expf(2.0f * keep_within(qr[a], c)) + 1.0f) : tanhf(p[a] + qr[a]);
			if (e) e[i * dim + a] = t;
			s += (double)(t * v[a]);
		}
		s = block_sum(s, sh);
		if (threadIdx.x == 0) scores[i] = (float)s;
	}
}

// attention_scores_backward adds, for every element (b, a) of images x dim,
// de = dscores[r, l] * v[a] * (1 - e[r, l, a]^2) into dpf[b, l, a] and dq[r, a]
// for image b's rows r and every region l: one thread owns those elements, so
// no atomics. Launch: 1-D grid of any size (grid-stride).
KERNEL attention_scores_backward(float *dpf, float *dq, const float *dscores, const float *e, const float *v, int images, int perImage, int regions, int dim) {
	GRID_STRIDE(j, images * dim) {
		int b = j / dim, a = j % dim;
		for (int r = b * perImage; r < (b + 1) * perImage; r++) {
			float dqa = 0.0f;
			for (int l = 0; l < regions; l++) {
				float ea = e[(r * regions + l) * dim + a];
				float de = dscores[r * regions + l] * v[a] * (1.0f - ea * ea);
				dpf[(b * regions + l) * dim + a] += de;
				dqa += de;
			}
			dq[r * dim + a] += dqa;
		}
	}
}

// attention_exp writes ep[i] = exp(2·clamp(pf[i], ±c)), the form of pf that
// attention_scores reads with expForm; ep may be pf. Launch: 1-D grid of any size
// (grid-stride).
KERNEL attention_exp(float *ep, const float *pf, int n, float c) {
	GRID_STRIDE(i, n) { ep[i] = expf(2.0f * keep_within(pf[i], c)); }
}
