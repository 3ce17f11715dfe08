// Hot loops of the CPU backend in C, built only with cgo (kernels_c.go); the
// pure-Go build runs the same algorithms from kernels_go.go. Activation codes are
// gpu.Act's values.

#include <stdint.h>

// cap_bias_act writes out (rows, cols) = act(x + bias); bias may be NULL, out may be x.
void cap_bias_act(float *out, const float *x, const float *bias, long rows, long cols, int act);

// cap_dw_rows computes output rows [oh0, oh1) of one image of a depthwise
// convolution: in is (H, W, C), w is (KH, KW, C), bias (C) or NULL, out is
// (OH, OW, C). zeros holds at least W*C zeros (it stands in for padding rows).
void cap_dw_rows(float *out, const float *in, const float *w, const float *bias, const float *zeros,
	int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
	int OW, int oh0, int oh1, int act);

// cap_dw_backward_input writes the input gradient rows [r0, r1) (flattened
// over N, H) of a depthwise convolution, dx (N, H, W, C): the sum, over the taps
// (kh, kw) that read each input pixel, of dout (N, OH, OW, C) times w (KH, KW, C).
void cap_dw_backward_input(float *dx, const float *dout, const float *w,
	int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
	int OH, int OW, long r0, long r1);

// cap_dw_backward_weight writes acc (KH, KW, hi-lo): for channels [lo, hi) of
// each tap, the sum over every output pixel of dout times the input pixel the
// tap reads, in double.
void cap_dw_backward_weight(double *acc, const float *dout, const float *in,
	int N, int H, int W, int C, int KH, int KW, int sh, int sw, int pt, int pl,
	int OH, int OW, int lo, int hi);

// cap_conv_rows computes output rows [oh0, oh1) of one image of a direct
// convolution for inputs with few channels (an image's RGB): in is (H, W, C),
// wt is the weight transposed to (KH*KW*C, OC), bias (OC) or NULL, out is (OH, OW, OC).
void cap_conv_rows(float *out, const float *in, const float *wt, const float *bias,
	int H, int W, int C, int OC, int KH, int KW, int sh, int sw, int pt, int pl,
	int OW, int oh0, int oh1, int act);

// cap_pw_rows writes out (rows, N) = act(x (rows, K) * wt (K, N) + bias (N)): the
// pointwise (1x1) convolution with the weight transposed. bias must not be NULL.
void cap_pw_rows(float *out, const float *x, const float *wt, const float *bias, long rows, long K, long N, int act);

// cap_mean_rows writes out (n, c) = the mean of the hw rows of each block of x
// (n, hw, c), summed in order of the rows.
void cap_mean_rows(float *out, const float *x, long n, long hw, long c);

// cap_transpose writes dst (cols, rows) = src (rows, cols)^T.
void cap_transpose(float *dst, const float *src, long rows, long cols);

// cap_softmax_rows writes out (rows, cols) = softmax, or with logp log-softmax, of
// each row of x; out may be x.
void cap_softmax_rows(float *out, const float *x, long rows, long cols, int logp);

// cap_topk_rows writes the k largest elements of each row of x (rows, cols),
// descending, ties to the lowest index, into idx and val (rows, k).
void cap_topk_rows(int *idx, float *val, const float *x, long rows, long cols, long k);

// cap_cross_entropy_rows writes loss[r] = -log softmax(x[r])[t[r]] and, when dl is
// not NULL, dl[r] = (softmax(x[r]) - onehot(t[r])) * scale; rows with t[r] < 0 get
// zeros. dl may be x.
void cap_cross_entropy_rows(float *loss, float *dl, const float *x, const int *t, long rows, long cols, float scale);

// cap_lstm_forward is one LSTM cell step for rows [0, B): gates (B, 4H) in blocks
// i, f, g, o; writes act (B, 4H) = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o),
// c = f*cPrev + i*g and h = o*tanh(c) (B, H).
void cap_lstm_forward(float *h, float *c, float *act, const float *gates, const float *cPrev, long B, long H);

// cap_lstm_backward writes dgates (B, 4H) and dcPrev (B, H) of one step from dh,
// dc (B, H) and the forward's act, c, cPrev. dcPrev may be dc.
void cap_lstm_backward(float *dgates, float *dcPrev, const float *dh, const float *dc, const float *act,
	const float *c, const float *cPrev, long B, long H);

// cap_gemm_nt computes C (m, n) = alpha * A B^T + beta * C for row-major A (m, k)
// and B (n, k): the GEMM of a layer applied to a few rows (a decoder step), where
// BLAS would copy (pack) all of the weight B on every call. With beta 0, C is
// only written.
void cap_gemm_nt(long m, long n, long k, float alpha, const float *a, long lda,
	const float *b, long ldb, float beta, float *c, long ldc);

// cap_att_scores computes soft attention's scores for the (row, region) pairs
// [i0, i1), pair i = r*L + l: e = tanh(pf[r/K, l] + q[r]) (A), scores[i] = e · v;
// e is also stored at e[i*A] when e is not NULL. pf is (rows/K, L, A), q (rows, A).
void cap_att_scores(float *scores, float *e, const float *pf, const float *q, const float *v,
	long i0, long i1, long K, long L, long A);

// cap_att_scores_backward adds, for images [b0, b1) and their K rows r each,
// de = dscores[r, l] * v * (1 - e[r, l]^2) into dpf[b, l] and dq[r] (A), every l.
void cap_att_scores_backward(float *dpf, float *dq, const float *dscores, const float *e, const float *v,
	long b0, long b1, long K, long L, long A);

// cap_add writes out = a + b and cap_mul out = a * b (n); out may be a or b.
void cap_add(float *out, const float *a, const float *b, long n);
void cap_mul(float *out, const float *a, const float *b, long n);

// cap_att_exp writes ep = exp(2·clamp(x, ±c)) (n), keeping a NaN.
void cap_att_exp(float *ep, const float *x, long n, float c);

// cap_att_scores_exp computes cap_att_scores' scores of pairs [i0, i1) from
// ep = exp(2·pf) (rows/K, L, A) and eq = exp(2·q) (rows, A) (cap_att_exp):
// scores[i] = sv - 2·Σ v/(ep·eq + 1), sv = Σv.
void cap_att_scores_exp(float *scores, const float *ep, const float *eq, const float *v, float sv,
	long i0, long i1, long K, long L, long A);

// cap_add_col_sums adds the sums of columns [lo, hi) of x (rows, cols) into sum,
// summing each in double in acc[lo:hi], row after row.
void cap_add_col_sums(float *sum, double *acc, const float *x, long rows, long cols, long lo, long hi);

// cap_sum_squares is the sum of x's n squares in double.
double cap_sum_squares(const float *x, long n);

// cap_dropout writes elements [lo, hi) of Dropout: mask[i] = 0 if
// gpu.DropoutUniform(seed, i) < p else keep, out[i] = x[i] * mask[i]. out may be x.
void cap_dropout(float *out, float *mask, const float *x, long lo, long hi, float p, float keep, uint64_t seed);

// cap_vec_isa is the widest instruction set of the hand-vectorized loops
// (cap_adamw's) this CPU runs: 2 AVX-512, 1 AVX2 with FMA, 0 none (plain C).
int cap_vec_isa(void);

// cap_adamw is AdamW's update of the n parameters p from their gradient g with
// moments m and v, bc1 and bc2 the step's bias corrections (gpu.Device.AdamW),
// in the loops of instruction set isa (cap_vec_isa's codes, at most its value).
void cap_adamw(int isa, float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2,
	float eps, float weight_decay, float bc1, float bc2);
