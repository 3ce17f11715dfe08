// elementwise.cu: kernels that treat their arrays as flat vectors of n elements.
// Launch: 1-D grid of any size, BLOCK threads (grid-stride loops).
#include "common.cuh"

// bias_act writes out (rows, cols) = act(x + bias); bias (cols) may be NULL; out may be x.
KERNEL bias_act(float *out, const float *x, const float *bias, int rows, int cols, int act) {
	GRID_STRIDE(i, rows * cols) {
		float v = x[i];
		if (bias) v += bias[i % cols];
		out[i] = activate(v, act);
	}
}

// act_backward writes dx (n) = dout * act'(.), the derivative taken from the forward
// output y; dx may be dout. ReLU6 passes the gradient where 0 < y < 6.
KERNEL act_backward(float *dx, const float *dout, const float *y, int n, int act) {
	GRID_STRIDE(i, n) {
		float g = dout[i], v = y[i];
		switch (act) {
		case ACT_RELU:
			g = v > 0.0f ? g : 0.0f;
			break;
		case ACT_RELU6:
			g = v > 0.0f && v < 6.0f ? g : 0.0f;
			break;
		case ACT_TANH:
			g *= 1.0f - v * v;
			break;
		case ACT_SIGMOID:
			g *= v * (1.0f - v);
			break;
		}
		dx[i] = g;
	}
}

// col_sum adds the column sums of x (rows, cols) into sum (cols).
// Launch: grid (ceil(cols/BLOCK), ceil(rows/rowsPerBlock)); each thread sums
// rowsPerBlock rows of one column, so tall matrices still fill the GPU.
KERNEL col_sum(float *sum, const float *x, int rows, int cols, int rowsPerBlock) {
	int col = blockIdx.x * blockDim.x + threadIdx.x;
	if (col >= cols) return;
	int r0 = blockIdx.y * rowsPerBlock;
	int r1 = r0 + rowsPerBlock < rows ? r0 + rowsPerBlock : rows;
	float s = 0.0f;
	for (int r = r0; r < r1; r++) s += x[r * cols + col];
	atomicAdd(&sum[col], s);
}

// add writes out = a + b; out may be a or b.
KERNEL add(float *out, const float *a, const float *b, int n) {
	GRID_STRIDE(i, n) { out[i] = a[i] + b[i]; }
}

// mul writes out = a * b; out may be a or b.
KERNEL mul(float *out, const float *a, const float *b, int n) {
	GRID_STRIDE(i, n) { out[i] = a[i] * b[i]; }
}

// axpy adds alpha * x into y.
KERNEL axpy(float *y, const float *x, float alpha, int n) {
	GRID_STRIDE(i, n) { y[i] += alpha * x[i]; }
}

// scale multiplies x by alpha in place.
KERNEL scale(float *x, float alpha, int n) {
	GRID_STRIDE(i, n) { x[i] *= alpha; }
}

// dropout writes mask[i] = 0 with probability p, else keep (= 1/(1-p), computed by
// the host so every backend multiplies by the same float), and out = x * mask.
// The draw is gpu.DropoutUniform: the top 24 bits of splitmix64(seed + (i+1)*golden).
KERNEL dropout(float *out, float *mask, const float *x, int n, float p, float keep, unsigned long long seed) {
	GRID_STRIDE(i, n) {
		unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		z ^= z >> 31;
		float u = (float)(z >> 40) * (1.0f / 16777216.0f);
		float m = u < p ? 0.0f : keep;
		mask[i] = m;
		out[i] = x[i] * m;
	}
}

// adamw updates param in place (n); bc1 = 1/(1-beta1^step), bc2 = 1/(1-beta2^step).
KERNEL adamw(float *param, const float *grad, float *m, float *v, int n, float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2) {
	GRID_STRIDE(i, n) {
		float g = grad[i];
		float mi = beta1 * m[i] + (1.0f - beta1) * g;
		float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
		m[i] = mi;
		v[i] = vi;
		param[i] -= lr * (mi * bc1 / (sqrtf(vi * bc2) + eps) + wd * param[i]);
	}
}

// lstm_forward applies the LSTM cell for one step; see gpu.Device.LSTMCellForward.
// gates, act (B, 4H) in blocks i, f, g, o; h, c, cPrev (B, H); n = B*H.
KERNEL lstm_forward(float *h, float *c, float *act, const float *gates, const float *cPrev, int batch, int hidden) {
	GRID_STRIDE(idx, batch * hidden) {
		int b = idx / hidden, j = idx % hidden;
		int g0 = b * 4 * hidden + j;
		float ig = sigmoidf(gates[g0]);
		float fg = sigmoidf(gates[g0 + hidden]);
		float gg = tanhf(gates[g0 + 2 * hidden]);
		float og = sigmoidf(gates[g0 + 3 * hidden]);
		float ct = fg * cPrev[idx] + ig * gg;
		act[g0] = ig;
		act[g0 + hidden] = fg;
		act[g0 + 2 * hidden] = gg;
		act[g0 + 3 * hidden] = og;
		c[idx] = ct;
		h[idx] = og * tanhf(ct);
	}
}

// lstm_backward is the backward of lstm_forward for one step: it writes dgates
// (B, 4H) and dcPrev (B, H), which may be dc.
KERNEL lstm_backward(float *dgates, float *dcPrev, const float *dh, const float *dc, const float *act, const float *c, const float *cPrev, int batch, int hidden) {
	GRID_STRIDE(idx, batch * hidden) {
		int b = idx / hidden, j = idx % hidden;
		int g0 = b * 4 * hidden + j;
		float ig = act[g0], fg = act[g0 + hidden], gg = act[g0 + 2 * hidden], og = act[g0 + 3 * hidden];
		float tc = tanhf(c[idx]);
		float dct = dc[idx] + dh[idx] * og * (1.0f - tc * tc);
		dgates[g0] = dct * gg * ig * (1.0f - ig);
		dgates[g0 + hidden] = dct * cPrev[idx] * fg * (1.0f - fg);
		dgates[g0 + 2 * hidden] = dct * ig * (1.0f - gg * gg);
		dgates[g0 + 3 * hidden] = dh[idx] * tc * og * (1.0f - og);
		dcPrev[idx] = dct * fg;
	}
}

// embedding_forward writes out (n, dim) = rows ids (n) of table (vocab, dim).
KERNEL embedding_forward(float *out, const float *table, const int *ids, int n, int dim) {
	GRID_STRIDE(i, n * dim) { out[i] = table[ids[i / dim] * dim + i % dim]; }
}

// embedding_backward adds row i of dout (n, dim) into row ids[i] of dtable; ids may
// repeat, hence the atomic add.
KERNEL embedding_backward(float *dtable, const float *dout, const int *ids, int n, int dim) {
	GRID_STRIDE(i, n * dim) { atomicAdd(&dtable[ids[i / dim] * dim + i % dim], dout[i]); }
}
