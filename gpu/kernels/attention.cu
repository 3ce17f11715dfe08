// attention.cu: soft attention's scoring MLP over image regions (decoder/attention.go),
// one kernel for what the broadcast, the add, the tanh and the product with v
// would otherwise do as four passes over (rows, regions, dim).
#include "common.cuh"

// attention_scores writes, for each (row, region) pair i = r*regions + l,
// e = tanh(pf[r/perImage, l, :] + q[r, :]) (dim), stored at e + i*dim when e
// is not NULL, and scores[i] = e · v. Launch: one block per pair (a grid of
// fewer blocks loops over pairs), threads over dim, a power of two <= BLOCK.
KERNEL attention_scores(float *scores, float *e, const float *pf, const float *q, const float *v, int rows, int perImage, int regions, int dim) {
	__shared__ double sh[BLOCK];
	for (int i = blockIdx.x; i < rows * regions; i += gridDim.x) {
		int r = i / regions, l = i % regions;
		const float *p = pf + ((r / perImage) * regions + l) * dim, *qr = q + r * dim;
		double s = 0.0;
		for (int a = threadIdx.x; a < dim; a += blockDim.x) {
			float t = tanhf(p[a] + qr[a]);
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
