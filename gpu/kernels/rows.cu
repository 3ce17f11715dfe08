// rows.cu: row-wise and whole-array reductions. Every kernel here uses shared
// memory: launch with BLOCK threads (a power of two); the row kernels take one block
// per row (a grid of fewer blocks loops over rows).
#include "common.cuh"

// sum_squares writes partial[blockIdx.x] = the sum of x[i]^2 over the elements this
// block visits, accumulated in double; the host adds the gridDim.x partials.
KERNEL sum_squares(double *partial, const float *x, int n) {
	__shared__ double sh[BLOCK];
	double s = 0.0;
	GRID_STRIDE(i, n) { s += (double)x[i] * (double)x[i]; }
	s = block_sum(s, sh);
	if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// softmax writes out (rows, cols) = softmax of each row of x, or its logarithm when
// logp != 0, computed as x - max - log(sum(exp(x - max))) so that large logits do
// not overflow; out may be x.
KERNEL softmax(float *out, const float *x, int rows, int cols, int logp) {
	__shared__ double sh[BLOCK];
	for (int r = blockIdx.x; r < rows; r += gridDim.x) {
		const float *xr = x + r * cols;
		float *or_ = out + r * cols;
		float m, s;
		row_stats(xr, cols, sh, &m, &s);
		float ls = logf(s);
		for (int j = threadIdx.x; j < cols; j += blockDim.x) or_[j] = logp ? xr[j] - m - ls : expf(xr[j] - m) / s;
	}
}

// softmax_backward writes dx = y * (dy - sum_j y_j dy_j) for each row of the softmax
// output y (rows, cols); dx may be dy: every thread reads its own columns of dy
// before the dot product's barriers and writes only them after.
KERNEL softmax_backward(float *dx, const float *dy, const float *y, int rows, int cols) {
	__shared__ double sh[BLOCK];
	for (int r = blockIdx.x; r < rows; r += gridDim.x) {
		const float *yr = y + r * cols, *gr = dy + r * cols;
		float *dr = dx + r * cols;
		double dot = 0.0;
		for (int j = threadIdx.x; j < cols; j += blockDim.x) dot += (double)yr[j] * (double)gr[j];
		float d = (float)block_sum(dot, sh);
		for (int j = threadIdx.x; j < cols; j += blockDim.x) dr[j] = yr[j] * (gr[j] - d);
	}
}

// cross_entropy writes loss[r] = -log softmax(logits[r])[targets[r]] and, when dlogits
// is not NULL, dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) * gradScale;
// rows with a negative target get loss 0 and zero gradient. dlogits may be logits:
// the target logit is read before the first barrier, and every thread then reads
// and writes only its own columns.
KERNEL cross_entropy(float *loss, float *dlogits, const float *logits, const int *targets, int rows, int cols, float gradScale) {
	__shared__ double sh[BLOCK];
	for (int r = blockIdx.x; r < rows; r += gridDim.x) {
		const float *xr = logits + r * cols;
		float *dr = dlogits ? dlogits + r * cols : 0;
		int tgt = targets[r];
		if (tgt < 0) {
			if (threadIdx.x == 0) loss[r] = 0.0f;
			if (dr)
				for (int j = threadIdx.x; j < cols; j += blockDim.x) dr[j] = 0.0f;
			continue;
		}
		float xt = xr[tgt];
		float m, s;
		row_stats(xr, cols, sh, &m, &s);
		if (threadIdx.x == 0) loss[r] = logf(s) + m - xt;
		if (dr)
			for (int j = threadIdx.x; j < cols; j += blockDim.x) {
				float p = expf(xr[j] - m) / s;
				dr[j] = (p - (j == tgt ? 1.0f : 0.0f)) * gradScale;
			}
	}
}

// ranks_before says whether element (v, i) comes before (w, j) in top-k order:
// value descending, NaN after every number (-inf included), then index ascending.
// A total order, so every round below finds a winner and a row of NaNs still
// yields k valid indices.
DEVICE int ranks_before(float v, int i, float w, int j) {
	int vnan = v != v, wnan = w != w;
	if (vnan != wnan) return wnan;
	if (!vnan && v != w) return v > w;
	return i < j;
}

// topk writes the k largest elements of each row of x (rows, cols) in descending
// order into idx and val (rows, k), ties to the lowest index, NaN last
// (ranks_before). Round q finds the best element ranked after the one found in
// round q-1, so no element is marked and k is only bounded by cols; it costs k
// block reductions per row, meant for small k (beam widths, argmax).
KERNEL topk(int *idx, float *val, const float *x, int rows, int cols, int k) {
	__shared__ float sv[BLOCK];
	__shared__ int si[BLOCK];
	int t = threadIdx.x;
	for (int r = blockIdx.x; r < rows; r += gridDim.x) {
		const float *xr = x + r * cols;
		float lastV = 0;
		int lastI = -1; // -1: no round yet, every element is after it
		for (int q = 0; q < k; q++) {
			float bv = 0;
			int bi = -1; // -1: none yet, every element beats it
			for (int j = t; j < cols; j += blockDim.x) {
				float v = xr[j];
				int after = lastI < 0 || ranks_before(lastV, lastI, v, j);
				if (after && (bi < 0 || ranks_before(v, j, bv, bi))) {
					bv = v;
					bi = j;
				}
			}
			sv[t] = bv;
			si[t] = bi;
			__syncthreads();
			for (int s = blockDim.x / 2; s > 0; s >>= 1) {
				if (t < s) {
					float ov = sv[t + s];
					int oi = si[t + s];
					if (oi >= 0 && (si[t] < 0 || ranks_before(ov, oi, sv[t], si[t]))) {
						sv[t] = ov;
						si[t] = oi;
					}
				}
				__syncthreads();
			}
			lastV = sv[0];
			lastI = si[0];
			__syncthreads(); // every thread has read the winner before sv is reused
			if (t == 0) {
				idx[r * k + q] = lastI;
				val[r * k + q] = lastV;
			}
		}
	}
}
