//go:build cgo && !purecpu

// A chain of convolutions run by oneDNN (see convnet.h). Why oneDNN: on CPUs with
// AMX or AVX512-BF16 its bf16 convolutions run the 1x1 layers 3-4x faster than
// float32 GEMM, and keeping every activation in bf16 between layers avoids a
// float32 <-> bf16 conversion per layer, which costs more than the convolution
// itself on the early, wide layers (measured in gpu/README.md).
//
// Activations are NHWC throughout (oneDNN's brgemm convolutions take NHWC
// natively), in three ping-pong buffers shared by all layers: a residual layer
// adds into its source's buffer in place (a "sum" post-op), so the source stays
// live until then and every other layer (and every fused block, see
// fuse_blocks) picks a buffer that is neither its input nor a pending residual
// source. Weights are reordered once into the
// format each primitive asks for, and shared by every plan that asks for the
// same format and by every copy of the chain (cap_convnet_share).
//
// A run computes on the calling thread alone (an OpenMP team of one). The device
// runs one chain per thread on its own share of the images (convnet_dnnl.go):
// with oneDNN's own threads, every layer ends at a barrier, and on a machine
// shared with the HTTP handlers and the decoder a descheduled partner thread
// left the other waiting: the encoder ran at 16.8 ms per image inside the
// server against 3.5-10 ms alone. Even a single image was no faster on a team of
// two (5.6-5.9 ms against 5.9-8.3 at a load of 18), and its first run, which
// builds the primitives, took 275-600 ms against 23-46. A lone image is
// instead split into two halves of every layer's rows (a pointwise layer's
// pixels), each a chain of one-thread primitives that a second thread may take
// or leave (see split below).
//
// An int8 chain (CAP_INT8) stores every activation in 8 bits with a fixed step
// per layer: u8 after ReLU or ReLU6 (0 .. out_max), s8 otherwise (±out_max),
// the input s8 (±in_max), the last layer's output float32. Weights are s8 with
// one step per output channel, the largest magnitude at 127. oneDNN sums the
// products in int32, adds the bias (which quantize_layer therefore divides by
// input step x weight step), multiplies by the channel's output scale (input
// step x weight step / output step) and rounds into the output's type; a
// residual adds its source's steps times (source step / output step). Weights
// already on a grid (weight_step: dequantized from a file quantized per tensor)
// keep it where a channel fits in ±127 of its steps. Why int8: with VNNI (one
// instruction multiplies and sums four u8 x s8 pairs) the chain ran 1.75-2x as
// many images per CPU-second as the float32 one (gpu/README.md).
#include "convnet.h"
#include "fusedblock.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

enum { NBUF = 3, MAXW = 4 };

// A weight in one oneDNN format.
typedef struct {
	dnnl_memory_desc_t md;
	dnnl_memory_t mem;
} weight_fmt;

typedef struct {
	cap_conv_layer spec; // weight and bias pointers are not kept
	dnnl_memory_desc_t plain_md; // the caller's weight layout, f32 (s8 in an int8 chain)
	void *plain;                 // a copy of the caller's weight, until its first format is made
	dnnl_memory_t bias;          // f32 (OC)
	weight_fmt fmts[MAXW];
	int nfmts;
	int buf; // ping-pong buffer of the output, -1 for the last layer (the caller's)
	dnnl_data_type_t dst_dt; // the output's type
	// An int8 chain's scales (see quantize_layer): the real value of one step
	// of the output, the per-channel factors from the int32 sum to output
	// steps (OC), and the factor of the residual source's steps.
	float out_step;
	float *oscales;
	float sum_scale;
	// A float32 chain runs some inverted residual blocks fused (see
	// fuse_blocks): fused is set on the block's expansion layer, which computes
	// the whole block, and in_fused on its depthwise and projection layers,
	// which then have no primitives of their own.
	cap_fused_block *fused;
	int in_fused;
} layer;

// The primitives of one batch size.
typedef struct {
	dnnl_primitive_desc_t *pds;
	dnnl_primitive_t *prims;
	dnnl_memory_t *src, *dst, *wei; // per layer; wei is borrowed from the layer
	dnnl_primitive_t to_act;        // f32 input -> the chain's input type (not in an f32 chain)
	dnnl_memory_t in_f32, in_act;
	// The primitives' scratchpads (dnnl_scratchpad_mode_user), all views of one
	// buffer of this plan's: NULL where a primitive needs none. oneDNN's
	// default keeps them per thread, and a chain is built on one OS thread and
	// run on whichever the goroutine is on.
	dnnl_memory_t *pad, act_pad;
	void *scratch;
	int n, half;    // the batch, and the half (0, 1; -1 for whole images)
	float *fscratch; // the fused blocks' rows (see fusedblock.h), NULL without any
} plan;

// A lone image's split run (cap_convnet_run_split): each layer's output rows
// (a pointwise layer's pixels, see half_view) in two halves, upper and lower,
// each half a plan of its own whose memories
// point at its part of this copy's activation buffers. The layers form phases
// (split_phases): within one, neither half touches bytes the other half
// writes, so they may run in any order or at once; a 3x3 convolution, which
// reads a row beyond its half, starts a new one, and so does a pointwise layer
// after a depthwise one where the rows are odd (its pixel halves cut the
// middle row, which one depthwise half wrote whole). Both halves of a phase must
// finish before the next phase starts. A thread takes the
// halves of each phase that nobody has taken yet: two threads that arrive
// together run one half each, and a thread whose partner is late (descheduled,
// or still waking) runs both rather than wait for it. That is why the halves
// are tasks and not threads: a barrier between two threads would leave the
// first waiting for a partner vCPU that the hypervisor has not yet woken, which
// made a team of two threads lose to one thread in the server (gpu/README.md).
typedef struct {
	plan half[2];
	dnnl_stream_t strm[2];
	int *start;   // [nphases + 1]: each phase's first step (see run_steps), then nlayers + 1
	int nphases;
	atomic_int *taken, *done; // per phase: halves taken, halves finished
	atomic_int failed;
	// Which half the first taker of a phase gets: it alternates from run to
	// run, so that both orders of the halves run (one thread running both, as
	// the tests do, checks the phases in both directions).
	int order;
	char err[512]; // the failing half's message
} split;

// What the copies of a chain share (cap_convnet_share): the engine and the layers
// with their weights, read-only once reordered. mu guards each layer's list of
// formats, which a copy's first run may extend while another copy runs, and
// refs.
typedef struct {
	pthread_mutex_t mu;
	int refs;
} shared;

struct cap_convnet {
	shared *sh;
	dnnl_engine_t eng; // the shared engine
	dnnl_stream_t strm;
	int type;            // CAP_F32, CAP_BF16 or CAP_INT8
	dnnl_data_type_t in; // the type layer 0 reads, and the weights' type
	float in_step;       // an int8 chain's input step
	layer *layers; // the shared layers
	int nlayers, max_batch;
	void *bufs[NBUF + 1]; // NBUF ping-pong buffers, then the converted input (not in an f32 chain)
	plan *plans;          // [max_batch + 1], built on first use
	split *split;         // built on the first split run
};

#define TRY(call)                                                                             \
	do {                                                                                      \
		dnnl_status_t st_ = (call);                                                           \
		if (st_ != dnnl_success) {                                                            \
			snprintf(err, errlen, "oneDNN %s failed: %s (%s:%d)", #call, status_name(st_), __FILE__, __LINE__); \
			goto fail;                                                                        \
		}                                                                                     \
	} while (0)

static const char *status_name(dnnl_status_t s) {
	switch (s) {
	case dnnl_out_of_memory: return "out of memory";
	case dnnl_invalid_arguments: return "invalid arguments";
	case dnnl_unimplemented: return "unimplemented (no kernel for these shapes and types on this CPU)";
	case dnnl_runtime_error: return "runtime error";
	default: return "error";
	}
}

static dnnl_status_t act_md(dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_data_type_t dt) {
	dnnl_dims_t d = {n, c, h, w};
	return dnnl_memory_desc_init_by_tag(md, 4, d, dt, dnnl_nhwc);
}

// weight_dims writes the logical oneDNN weight dims of l: (OC, C, KH, KW), or
// (G, 1, 1, KH, KW) for a depthwise layer, and returns their count.
static int weight_dims(const cap_conv_layer *l, dnnl_dims_t d) {
	if (l->depthwise) {
		d[0] = l->c, d[1] = 1, d[2] = 1, d[3] = l->kh, d[4] = l->kw;
		return 5;
	}
	d[0] = l->oc, d[1] = l->c, d[2] = l->kh, d[3] = l->kw;
	return 4;
}

// weights_per_output is how many weights each output channel of l has.
static size_t weights_per_output(const cap_conv_layer *l) {
	return (size_t)l->kh * l->kw * (l->depthwise ? 1 : l->c);
}

static size_t dt_size(dnnl_data_type_t dt) { return dt == dnnl_f32 ? 4 : dt == dnnl_bf16 ? 2 : 1; }

// row_bytes is the size of one row of an NHWC activation w wide with c
// channels of type dt: what a half's memories are offset by, and what
// split_phases measures the halves' reads and writes in.
static size_t row_bytes(int w, int c, dnnl_data_type_t dt) { return (size_t)w * c * dt_size(dt); }

static size_t act_bytes(const cap_conv_layer *l, int out, dnnl_data_type_t dt) {
	return out ? l->oh * row_bytes(l->ow, l->oc, dt) : l->h * row_bytes(l->w, l->c, dt);
}

// The rows of one layer a plan computes: output rows [r0, r1), from input rows
// [a, b) with pad_t and pad_b rows of zero padding above and below them.
typedef struct {
	int r0, r1, a, b, pad_t, pad_b;
} rows;

// rows_of gives half 0 (the upper (OH+1)/2 output rows), half 1 (the others)
// or, for half -1, all of layer s's rows. All rows read the whole input, even
// where the kernel never reaches its last rows (a negative pad_b): a batch's
// images lie H rows apart. A half reads only the rows it needs; a half with no
// output rows (of a one-row layer) reads none. For a half, s is its half_view:
// a pointwise layer's rows are then single pixels.
static rows rows_of(const cap_conv_layer *s, int half) {
	rows r = {0};
	int mid = (s->oh + 1) / 2;
	r.r0 = half == 1 ? mid : 0;
	r.r1 = half == 0 ? mid : s->oh;
	if (r.r0 == r.r1) return r;
	int top = r.r0 * s->stride_h - s->pad_top;              // the first input row read, maybe padding
	int end = (r.r1 - 1) * s->stride_h - s->pad_top + s->kh; // one past the last
	r.a = top > 0 ? top : 0;
	r.b = half < 0 || end > s->h ? s->h : end;
	r.pad_t = r.a - top;
	r.pad_b = end - r.b;
	return r;
}

// per_pixel reports whether s is a 1x1 layer of stride 1 without padding:
// each output pixel reads only the same input pixel.
static int per_pixel(const cap_conv_layer *s) {
	return s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
		s->oh == s->h && s->ow == s->w;
}

// half_view gives the shape a plan of half (0 or 1; -1 for a whole image)
// computes layer s in. A half sees a pointwise layer (1x1, stride 1, no
// padding) as one column of H x W pixels, the same NHWC bytes, so that its
// halves split the pixels rather than the rows: a 7x7 layer's halves are 25
// and 24 pixels, where rows gave 4 and 3, and one thread waited for the other
// through a seventh of the 7x7 stage (a quarter of the image's multiply-adds).
static cap_conv_layer half_view(const cap_conv_layer *s, int half) {
	cap_conv_layer v = *s;
	if (half >= 0 && per_pixel(s)) {
		v.h = v.oh = s->h * s->w;
		v.w = v.ow = 1;
	}
	return v;
}

// input_rows gives the rows of the chain's input that half converts to the
// chain's type before layer 0 (not in an f32 chain), the same rows in and out:
// half -1 all of them. Pixels, where first is a pointwise layer's half_view.
static rows input_rows(const cap_conv_layer *first, int half) {
	int mid = (first->h + 1) / 2;
	rows r = {0};
	r.r0 = r.a = half == 1 ? mid : 0;
	r.r1 = r.b = half == 0 ? mid : first->h;
	return r;
}

// reorder_once copies src into dst (converting format and type) and waits.
static dnnl_status_t reorder_once(cap_convnet *net, dnnl_memory_t src, dnnl_memory_t dst) {
	const dnnl_memory_desc_t *smd, *dmd;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_t p = NULL;
	dnnl_status_t s;
	if ((s = dnnl_memory_get_memory_desc(src, &smd)) != dnnl_success) return s;
	if ((s = dnnl_memory_get_memory_desc(dst, &dmd)) != dnnl_success) return s;
	if ((s = dnnl_reorder_primitive_desc_create(&pd, smd, net->eng, dmd, net->eng, NULL)) != dnnl_success) return s;
	if ((s = dnnl_primitive_create(&p, pd)) == dnnl_success) {
		dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
		if ((s = dnnl_primitive_execute(p, net->strm, 2, a)) == dnnl_success) s = dnnl_stream_wait(net->strm);
		dnnl_primitive_destroy(p);
	}
	dnnl_primitive_desc_destroy(pd);
	return s;
}

// weight_in returns l's weight in format md, reordering it the first time.
static dnnl_memory_t weight_in_locked(cap_convnet *net, layer *l, const dnnl_memory_desc_t *md, char *err, int errlen) {
	dnnl_memory_t plain = NULL, m = NULL;
	for (int i = 0; i < l->nfmts; i++)
		if (dnnl_memory_desc_equal(&l->fmts[i].md, md)) return l->fmts[i].mem;
	if (l->nfmts == MAXW) {
		snprintf(err, errlen, "oneDNN asked for more than %d weight formats of one layer", MAXW);
		return NULL;
	}
	TRY(dnnl_memory_create(&m, md, net->eng, DNNL_MEMORY_ALLOCATE));
	if (l->plain) {
		TRY(dnnl_memory_create(&plain, &l->plain_md, net->eng, l->plain));
		TRY(reorder_once(net, plain, m));
		dnnl_memory_destroy(plain);
		// A float chain's later formats are reordered from this one: every
		// format holds the same values in the chain's type, so the caller's
		// copy can go. An int8 chain keeps its s8 copy (a byte a weight): the
		// formats of layers that read s8 carry oneDNN's compensation for it,
		// which a reorder from them would not redo.
		if (net->type != CAP_INT8) {
			free(l->plain);
			l->plain = NULL;
		}
	} else {
		TRY(reorder_once(net, l->fmts[0].mem, m));
	}
	l->fmts[l->nfmts].md = *md;
	l->fmts[l->nfmts].mem = m;
	l->nfmts++;
	return m;
fail:
	if (plain) dnnl_memory_destroy(plain);
	if (m) dnnl_memory_destroy(m);
	return NULL;
}

static dnnl_memory_t weight_in(cap_convnet *net, layer *l, const dnnl_memory_desc_t *md, char *err, int errlen) {
	pthread_mutex_lock(&net->sh->mu);
	dnnl_memory_t m = weight_in_locked(net, l, md, err, errlen);
	pthread_mutex_unlock(&net->sh->mu);
	return m;
}

static void plan_destroy(cap_convnet *net, plan *p) {
	if (!p->prims) return;
	for (int i = 0; i < net->nlayers; i++) {
		if (p->prims[i]) dnnl_primitive_destroy(p->prims[i]);
		if (p->pds[i]) dnnl_primitive_desc_destroy(p->pds[i]);
		if (p->src[i]) dnnl_memory_destroy(p->src[i]);
		if (p->dst[i]) dnnl_memory_destroy(p->dst[i]);
	}
	if (p->to_act) dnnl_primitive_destroy(p->to_act);
	if (p->in_f32) dnnl_memory_destroy(p->in_f32);
	if (p->in_act) dnnl_memory_destroy(p->in_act);
	for (int i = 0; p->pad && i < net->nlayers; i++)
		if (p->pad[i]) dnnl_memory_destroy(p->pad[i]);
	if (p->act_pad) dnnl_memory_destroy(p->act_pad);
	free(p->scratch), free(p->pad), free(p->fscratch);
	free(p->pds), free(p->prims), free(p->src), free(p->dst), free(p->wei);
	memset(p, 0, sizeof *p);
}

// plan_build creates the primitives for batches of n images or, for half 0 or
// 1, those of one image's half (see split), into p.
static int plan_build(cap_convnet *net, plan *p, int n, int half, char *err, int errlen) {
	int L = net->nlayers;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_primitive_desc_t rpd = NULL;
	p->pds = calloc(L, sizeof *p->pds);
	p->prims = calloc(L, sizeof *p->prims);
	p->src = calloc(L, sizeof *p->src);
	p->dst = calloc(L, sizeof *p->dst);
	p->wei = calloc(L, sizeof *p->wei);
	p->pad = calloc(L, sizeof *p->pad);
	dnnl_memory_desc_t *pad_md = calloc(L + 1, sizeof *pad_md); // the layers', then to_act's
	if (!p->pds || !p->prims || !p->src || !p->dst || !p->wei || !p->pad || !pad_md) {
		snprintf(err, errlen, "out of memory planning a batch of %d", n);
		goto fail;
	}
	p->n = n, p->half = half;
	size_t fused_floats = 0; // the most rows a fused block of the chain needs
	for (int i = 0; i < L; i++)
		if (net->layers[i].fused && cap_fused_block_scratch(net->layers[i].fused) > fused_floats)
			fused_floats = cap_fused_block_scratch(net->layers[i].fused);
	if (fused_floats && !(p->fscratch = aligned_alloc(64, (fused_floats * sizeof(float) + 63) / 64 * 64))) {
		snprintf(err, errlen, "out of memory for the fused blocks' rows (%zu bytes)", fused_floats * sizeof(float));
		goto fail;
	}
	cap_conv_layer first_view = half_view(&net->layers[0].spec, half);
	const cap_conv_layer *first = &first_view;
	rows conv = input_rows(first, half); // the rows to_act converts (the layers' rows are r below)
	if (net->in != dnnl_f32 && conv.b > conv.a) { // the f32 input is converted first; an f32 chain reads it directly
		dnnl_memory_desc_t in_md, md;
		TRY(act_md(&in_md, n, first->c, conv.b - conv.a, first->w, dnnl_f32));
		TRY(dnnl_memory_create(&p->in_f32, &in_md, net->eng, DNNL_MEMORY_NONE));
		TRY(act_md(&md, n, first->c, conv.b - conv.a, first->w, net->in));
		TRY(dnnl_memory_create(&p->in_act, &md, net->eng,
			(char *)net->bufs[NBUF] + conv.a * row_bytes(first->w, first->c, net->in)));
		TRY(dnnl_primitive_attr_create(&attr));
		TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
		if (net->type == CAP_INT8) {
			float to_steps = 1.f / net->in_step;
			TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &to_steps));
		}
		TRY(dnnl_reorder_primitive_desc_create(&rpd, &in_md, net->eng, &md, net->eng, attr));
		TRY(dnnl_primitive_create(&p->to_act, rpd));
		pad_md[L] = *dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0);
		dnnl_primitive_desc_destroy(rpd);
		dnnl_primitive_attr_destroy(attr);
		rpd = NULL, attr = NULL;
	}
	for (int i = 0; i < L; i++) {
		layer *l = &net->layers[i];
		if (l->fused || l->in_fused) continue; // run by cap_fused_block_run
		cap_conv_layer view = half_view(&l->spec, half);
		const cap_conv_layer *s = &view;
		int last = i == L - 1;
		dnnl_data_type_t in_dt = i == 0 ? net->in : net->layers[i - 1].dst_dt;
		rows r = rows_of(s, half);
		if (r.r0 == r.r1) continue; // a half with no rows here has nothing to compute
		dnnl_memory_desc_t src_md, dst_md, wei_md, bias_md;
		dnnl_dims_t wd, strides = {s->stride_h, s->stride_w}, pad_l = {r.pad_t, s->pad_left};
		dnnl_dims_t pad_r = {r.pad_b, (s->ow - 1) * s->stride_w + s->kw - s->w - s->pad_left};
		dnnl_dims_t bd = {s->oc};
		TRY(act_md(&src_md, n, s->c, r.b - r.a, s->w, in_dt));
		TRY(act_md(&dst_md, n, s->oc, r.r1 - r.r0, s->ow, l->dst_dt));
		TRY(dnnl_memory_desc_init_by_tag(&wei_md, weight_dims(s, wd), wd, net->in, dnnl_format_tag_any));
		TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bd, dnnl_f32, dnnl_a));
		dnnl_convolution_desc_t cd;
		TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
			&src_md, &wei_md, &bias_md, &dst_md, strides, pad_l, pad_r));
		TRY(dnnl_primitive_attr_create(&attr));
		TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
		TRY(dnnl_post_ops_create(&po));
		// An int8 chain's post-ops see the output in steps: ReLU6 clips at 6 / step.
		if (s->act == 1) TRY(dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0.f, 0.f));
		if (s->act == 2) TRY(dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_clip, 0.f, 6.f / l->out_step));
		if (s->residual >= 0) TRY(dnnl_post_ops_append_sum(po, l->sum_scale));
		// One output scale per channel: dimension 1 of oneDNN's (N, C, H, W).
		if (l->oscales) TRY(dnnl_primitive_attr_set_output_scales(attr, s->oc, 1 << 1, l->oscales));
		TRY(dnnl_primitive_attr_set_post_ops(attr, po));
		TRY(dnnl_primitive_desc_create(&p->pds[i], &cd, attr, net->eng, NULL));
		dnnl_post_ops_destroy(po);
		dnnl_primitive_attr_destroy(attr);
		po = NULL, attr = NULL;
		const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(p->pds[i], dnnl_query_weights_md, 0);
		if (!(p->wei[i] = weight_in(net, l, want, err, errlen))) goto fail;
		// A half's memories start at its first rows.
		void *src = i == 0 ? (net->in == dnnl_f32 ? DNNL_MEMORY_NONE : net->bufs[NBUF])
		                   : net->bufs[net->layers[i - 1].buf];
		if (src != DNNL_MEMORY_NONE) src = (char *)src + r.a * row_bytes(s->w, s->c, in_dt);
		void *dst = last ? DNNL_MEMORY_NONE : (char *)net->bufs[l->buf] + r.r0 * row_bytes(s->ow, s->oc, l->dst_dt);
		TRY(dnnl_memory_create(&p->src[i], &src_md, net->eng, src));
		TRY(dnnl_memory_create(&p->dst[i], &dst_md, net->eng, dst));
		TRY(dnnl_primitive_create(&p->prims[i], p->pds[i]));
		pad_md[i] = *dnnl_primitive_desc_query_md(p->pds[i], dnnl_query_scratchpad_md, 0);
	}
	// One buffer for every scratchpad: the primitives run one after another.
	size_t most = 0;
	for (int i = 0; i <= L; i++) {
		size_t n = dnnl_memory_desc_get_size(&pad_md[i]);
		most = n > most ? n : most;
	}
	if (most > 0) {
		if (posix_memalign(&p->scratch, 64, most) != 0) {
			p->scratch = NULL;
			snprintf(err, errlen, "out of memory for a %zu-byte scratchpad", most);
			goto fail;
		}
		for (int i = 0; i <= L; i++) {
			dnnl_memory_t *m = i < L ? &p->pad[i] : &p->act_pad;
			if (dnnl_memory_desc_get_size(&pad_md[i]) > 0 && (i < L || p->to_act))
				TRY(dnnl_memory_create(m, &pad_md[i], net->eng, p->scratch));
		}
	}
	free(pad_md);
	return 0;
fail:
	if (po) dnnl_post_ops_destroy(po);
	if (attr) dnnl_primitive_attr_destroy(attr);
	if (rpd) dnnl_primitive_desc_destroy(rpd);
	free(pad_md);
	plan_destroy(net, p);
	return -1;
}

// assign_buffers gives every layer but the last an output buffer (see the file
// comment) and returns 0, or -1 if three buffers do not suffice or a residual
// source is not an earlier layer of the same shape. A fused block (see
// fuse_blocks) picks one buffer for its output as a layer would, its residual
// or not: it writes its output rows while a split run's other half may still
// read the input rows they would overwrite.
static int assign_buffers(cap_convnet *net, char *err, int errlen) {
	int L = net->nlayers;
	for (int i = 0; i < L; i++) {
		layer *l = &net->layers[i];
		int r = l->spec.residual;
		if (r >= 0) {
			const cap_conv_layer *src = &net->layers[r].spec;
			if (r >= i - 1 || i == L - 1 || src->oh != l->spec.oh || src->ow != l->spec.ow || src->oc != l->spec.oc) {
				snprintf(err, errlen, "layer %d adds layer %d's output, which is not an earlier, same-shaped, "
					"non-adjacent layer's (or layer %d is the last)", i, r, i);
				return -1;
			}
		}
		if (l->in_fused) continue; // given its block's buffer below
		if (r >= 0) {
			l->buf = net->layers[r].buf;
			continue;
		}
		if (i == L - 1) {
			l->buf = -1;
			continue;
		}
		int busy[NBUF] = {0};
		if (i > 0) busy[net->layers[i - 1].buf] = 1;
		for (int j = i + 1; j < L; j++) { // sources still to be added into
			int s = net->layers[j].spec.residual;
			if (s >= 0 && s < i) busy[net->layers[s].buf] = 1;
		}
		l->buf = -1;
		for (int b = 0; b < NBUF && l->buf < 0; b++)
			if (!busy[b]) l->buf = b;
		if (l->buf < 0) {
			snprintf(err, errlen, "layer %d: no free activation buffer (%d are in use)", i, NBUF);
			return -1;
		}
		if (l->fused) net->layers[i + 1].buf = net->layers[i + 2].buf = l->buf;
	}
	return 0;
}

// FUSE_MIN_BYTES is the smallest expanded activation (one image, float32) of
// a block that fuse_blocks fuses: MobileNetV2's 112x112 and 56x56 blocks (4.8
// and 1.8 MB), whose expanded activations leave the cache between layers, but
// not the 28x28 ones (0.6 MB), which the L2 cache holds (fused, they ran
// slower; gpu/README.md, "Slow phases of the host").
enum { FUSE_MIN_BYTES = 1 << 20 };

// fusable reports whether layers i, i + 1 and i + 2 are an inverted residual
// block that cap_fused_block_run computes: a 1x1 expansion with ReLU6, a 3x3
// depthwise layer with ReLU6 (stride 1 or 2), a 1x1 projection without an
// activation, adding nothing or, at stride 1, the block's input, whose output
// rows are even (its pixel halves are then row halves). The block must not be
// the chain's first or last layers: it reads and writes the chain's buffers. No
// later layer may add the expansion's or the depthwise layer's output, which a
// fused block never stores.
static int fusable(const cap_convnet *net, int i) {
	if (i < 1 || i + 2 >= net->nlayers - 1) return 0;
	for (int j = i + 3; j < net->nlayers; j++)
		if (net->layers[j].spec.residual == i || net->layers[j].spec.residual == i + 1) return 0;
	const cap_conv_layer *e = &net->layers[i].spec, *d = &net->layers[i + 1].spec, *p = &net->layers[i + 2].spec;
	// The kernel adds input row o to output row o; that the shapes match is
	// assign_buffers' check of every residual, which fails the chain if not.
	int residual_ok = p->residual < 0 || (p->residual == i - 1 && d->stride_h == 1);
	return !e->depthwise && per_pixel(e) && e->act == 2 && e->residual < 0 && e->oc % 16 == 0 &&
		(size_t)e->h * e->w * e->oc * sizeof(float) >= FUSE_MIN_BYTES &&
		d->depthwise && d->kh == 3 && d->kw == 3 && d->stride_h == d->stride_w && d->stride_h <= 2 && d->act == 2 &&
		d->residual < 0 && d->c == e->oc && d->h == e->h && d->w == e->w &&
		!p->depthwise && per_pixel(p) && p->act == 0 && residual_ok && p->c == d->oc && p->oh % 2 == 0;
}

static void fused_destroy(cap_fused_block *b) {
	if (!b) return;
	free(b->we), free(b->be), free(b->wd), free(b->bd), free(b->wp), free(b->bp);
	free(b);
}

// fuse_blocks marks the fusable blocks of a float32 chain (see fusable) and
// copies their weights into cap_fused_block's layouts from the caller's:
// (OC, 1, 1, C) transposed for the 1x1 layers, (3, 3, C) as it is for the
// depthwise one.
static int fuse_blocks(cap_convnet *net, const cap_conv_layer *layers, char *err, int errlen) {
	if (net->type != CAP_F32 || !cap_fused_block_usable()) return 0;
	for (int i = 1; i + 2 < net->nlayers; i++) {
		if (!fusable(net, i)) continue;
		const cap_conv_layer *e = &layers[i], *d = &layers[i + 1], *p = &layers[i + 2];
		cap_fused_block *b = calloc(1, sizeof *b);
		if (!b) goto oom;
		net->layers[i].fused = b;
		*b = (cap_fused_block){.h = e->h, .w = e->w, .ci = e->c, .ce = e->oc, .co = p->oc, .stride = d->stride_h,
			.pad_top = d->pad_top, .pad_left = d->pad_left, .oh = d->oh, .ow = d->ow, .residual = p->residual >= 0};
		size_t ce = b->ce;
		if (!(b->we = malloc(b->ci * ce * sizeof(float))) || !(b->be = malloc(ce * sizeof(float))) ||
			!(b->wd = malloc(9 * ce * sizeof(float))) || !(b->bd = malloc(ce * sizeof(float))) ||
			!(b->wp = malloc(ce * b->co * sizeof(float))) || !(b->bp = malloc(b->co * sizeof(float))))
			goto oom;
		for (size_t n = 0; n < ce; n++)
			for (int k = 0; k < b->ci; k++) b->we[k * ce + n] = e->weight[n * b->ci + k];
		for (size_t k = 0; k < ce; k++)
			for (int m = 0; m < b->co; m++) b->wp[k * b->co + m] = p->weight[m * ce + k];
		memcpy(b->be, e->bias, ce * sizeof(float));
		memcpy(b->wd, d->weight, 9 * ce * sizeof(float));
		memcpy(b->bd, d->bias, ce * sizeof(float));
		memcpy(b->bp, p->bias, b->co * sizeof(float));
		net->layers[i + 1].in_fused = net->layers[i + 2].in_fused = 1;
		i += 2;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

// own_state makes what each copy of a chain has to itself: a stream, the
// activation buffers (see assign_buffers) and the table of plans.
static int own_state(cap_convnet *net, char *err, int errlen) {
	long most = 0;
	for (int i = 0; i < net->nlayers; i++) {
		long b = (long)act_bytes(&net->layers[i].spec, 1, net->layers[i].dst_dt);
		most = b > most ? b : most;
	}
	TRY(dnnl_stream_create(&net->strm, net->eng, dnnl_stream_default_flags));
	if (!(net->plans = calloc((size_t)net->max_batch + 1, sizeof *net->plans))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t in = act_bytes(&net->layers[0].spec, 0, net->in);
	for (int b = 0; b < NBUF + (net->in != dnnl_f32); b++) {
		size_t bytes = (b == NBUF ? in : (size_t)most) * net->max_batch;
		if (!(net->bufs[b] = aligned_alloc(64, (bytes + 63) / 64 * 64))) {
			snprintf(err, errlen, "out of memory for activations (%zu bytes)", bytes);
			return -1;
		}
	}
	return 0;
fail:
	return -1;
}

// quantize_layer sets layer i of an int8 chain from its caller's weight w (see
// the file comment): its output's step, its weight in s8 steps into l->plain
// (allocated for it), bias (oneDNN's copy, float32) in the int32 sum's units,
// its output scales and its residual's factor. Layers before i, and this
// layer's output type, are set.
static int quantize_layer(cap_convnet *net, int i, const float *w, float *bias, char *err, int errlen) {
	layer *l = &net->layers[i];
	const cap_conv_layer *s = &l->spec;
	float in_step = i == 0 ? net->in_step : net->layers[i - 1].out_step;
	if (i == net->nlayers - 1) {
		l->out_step = 1; // float32 out: the steps are real values
	} else if (!(s->out_max > 0)) {
		snprintf(err, errlen, "layer %d has no output range (out_max %g); an int8 chain needs one on every layer but the last", i, s->out_max);
		return -1;
	} else {
		l->out_step = s->out_max / (s->act ? 255.f : 127.f);
	}
	size_t per = weights_per_output(s);
	size_t wn = per * s->oc;
	signed char *q = malloc(wn);
	l->oscales = malloc((size_t)s->oc * sizeof(float));
	l->plain = q;
	if (!q || !l->oscales) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	// Channel o's weights: OHWI holds them together; a depthwise (KH, KW, C)
	// one holds them s->c apart.
	size_t stride = s->depthwise ? (size_t)s->c : 1;
	for (int o = 0; o < s->oc; o++) {
		size_t first = s->depthwise ? (size_t)o : (size_t)o * per;
		float most = 0;
		for (size_t k = 0; k < per; k++) {
			float a = w[first + k * stride];
			most = a > most ? a : -a > most ? -a : most;
		}
		float step = most > 0 ? most / 127.f : 1.f;
		if (s->weight_step > 0 && most <= 127.f * s->weight_step) step = s->weight_step; // already on a grid
		for (size_t k = 0; k < per; k++) {
			float v = w[first + k * stride] / step;
			q[first + k * stride] = (signed char)(v < 0 ? v - 0.5f : v + 0.5f);
		}
		bias[o] /= in_step * step;
		l->oscales[o] = in_step * step / l->out_step;
	}
	if (s->residual >= 0) {
		const layer *src = &net->layers[s->residual];
		if (src->dst_dt != l->dst_dt) {
			snprintf(err, errlen, "layer %d adds layer %d's output, which is stored in another type (one is after a ReLU, the other not): "
				"an int8 chain cannot add them in place; use float32 or bfloat16", i, s->residual);
			return -1;
		}
		l->sum_scale = src->out_step / l->out_step;
	}
	return 0;
}

cap_convnet *cap_convnet_create(const cap_conv_layer *layers, int nlayers, int type, int max_batch,
		char *err, int errlen) {
	cap_convnet *net = calloc(1, sizeof *net);
	if (!net || nlayers <= 0 || max_batch <= 0) {
		snprintf(err, errlen, net ? "a chain needs layers and a positive batch" : "out of memory");
		free(net);
		return NULL;
	}
	net->type = type;
	net->in = type == CAP_INT8 ? dnnl_s8 : type == CAP_BF16 ? dnnl_bf16 : dnnl_f32;
	if (type == CAP_INT8 && !(layers[0].in_max > 0)) {
		snprintf(err, errlen, "layer 0 has no input range (in_max %g); an int8 chain needs one", layers[0].in_max);
		free(net);
		return NULL;
	}
	net->in_step = layers[0].in_max / 127.f;
	net->nlayers = nlayers;
	net->max_batch = max_batch;
	if (!(net->sh = calloc(1, sizeof *net->sh))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&net->sh->mu, NULL);
	net->sh->refs = 1;
	TRY(dnnl_engine_create(&net->eng, dnnl_cpu, 0));
	net->layers = calloc(nlayers, sizeof *net->layers);
	if (!net->layers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < nlayers; i++) {
		layer *l = &net->layers[i];
		l->spec = layers[i];
		l->spec.weight = l->spec.bias = NULL;
		const cap_conv_layer *s = &layers[i];
		if (s->depthwise && s->oc != s->c) {
			snprintf(err, errlen, "layer %d: depthwise with %d inputs and %d outputs", i, s->c, s->oc);
			goto fail;
		}
		int last = i == nlayers - 1;
		l->dst_dt = last ? dnnl_f32 : type == CAP_INT8 ? (s->act ? dnnl_u8 : dnnl_s8) : net->in;
		l->out_step = l->sum_scale = 1; // float outputs: steps are real values
		dnnl_dims_t wd, bd = {s->oc};
		dnnl_memory_desc_t bmd;
		TRY(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a));
		TRY(dnnl_memory_create(&l->bias, &bmd, net->eng, DNNL_MEMORY_ALLOCATE));
		void *bp;
		TRY(dnnl_memory_get_data_handle(l->bias, &bp));
		memcpy(bp, s->bias, (size_t)s->oc * sizeof(float));
		// Our layouts: OHWI for a convolution, (KH, KW, C) = hwigo with i = o = 1 for a depthwise one.
		TRY(dnnl_memory_desc_init_by_tag(&l->plain_md, weight_dims(s, wd), wd, type == CAP_INT8 ? dnnl_s8 : dnnl_f32,
			s->depthwise ? dnnl_hwigo : dnnl_ohwi));
	}
	// The residuals are checked before an int8 chain's quantization reads their
	// sources; the blocks are fused first, as they take buffers of their own.
	if (fuse_blocks(net, layers, err, errlen) < 0 || assign_buffers(net, err, errlen) < 0) goto fail;
	for (int i = 0; i < nlayers; i++) {
		layer *l = &net->layers[i];
		const cap_conv_layer *s = &layers[i];
		if (l->fused || l->in_fused) continue; // no oneDNN weights
		if (type == CAP_INT8) {
			void *bp;
			TRY(dnnl_memory_get_data_handle(l->bias, &bp));
			if (quantize_layer(net, i, s->weight, bp, err, errlen) != 0) goto fail;
			continue;
		}
		size_t bytes = weights_per_output(s) * s->oc * sizeof(float);
		if (!(l->plain = malloc(bytes))) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		memcpy(l->plain, s->weight, bytes);
	}
	if (own_state(net, err, errlen) != 0) goto fail;
	return net;
fail:
	cap_convnet_destroy(net);
	return NULL;
}

cap_convnet *cap_convnet_share(cap_convnet *first, char *err, int errlen) {
	cap_convnet *net = calloc(1, sizeof *net);
	if (!net) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_lock(&first->sh->mu);
	first->sh->refs++;
	pthread_mutex_unlock(&first->sh->mu);
	net->sh = first->sh, net->eng = first->eng, net->layers = first->layers;
	net->type = first->type, net->in = first->in, net->in_step = first->in_step;
	net->nlayers = first->nlayers, net->max_batch = first->max_batch;
	if (own_state(net, err, errlen) != 0) {
		cap_convnet_destroy(net);
		return NULL;
	}
	return net;
}

// set_io points plan p (of half, or -1) at the caller's input and output.
static int set_io(cap_convnet *net, plan *p, int half, float *out, const float *in, char *err, int errlen) {
	cap_conv_layer first_view = half_view(&net->layers[0].spec, half), last_view = half_view(&net->layers[net->nlayers - 1].spec, half);
	const cap_conv_layer *first = &first_view, *last = &last_view;
	// A half may have no rows of the input or of the output, and no memory for them.
	if (p->in_f32)
		TRY(dnnl_memory_set_data_handle(p->in_f32, (void *)(in + (size_t)input_rows(first, half).a * first->w * first->c)));
	if (net->in == dnnl_f32 && p->src[0])
		TRY(dnnl_memory_set_data_handle(p->src[0], (void *)(in + (size_t)rows_of(first, half).a * first->w * first->c)));
	if (p->dst[net->nlayers - 1])
		TRY(dnnl_memory_set_data_handle(p->dst[net->nlayers - 1], out + (size_t)rows_of(last, half).r0 * last->ow * last->oc));
	return 0;
fail:
	return -1;
}

// run_fused runs plan p's rows of the fused block starting at layer i, image
// by image.
static void run_fused(cap_convnet *net, plan *p, int i) {
	const cap_fused_block *b = net->layers[i].fused;
	// The block's rows are its depthwise layer's: the projection's pixel
	// halves are row halves (fusable asks for an even number of rows).
	rows r = rows_of(&net->layers[i + 1].spec, p->half);
	const float *in = net->bufs[net->layers[i - 1].buf];
	float *out = net->bufs[net->layers[i + 2].buf];
	for (int k = 0; k < p->n; k++)
		cap_fused_block_run(b, in + (size_t)k * b->h * b->w * b->ci, out + (size_t)k * b->oh * b->ow * b->co, r.r0, r.r1,
			p->fscratch);
}

// run_steps runs steps [lo, hi) of plan p on strm: step 0 converts the input
// to the chain's type (nothing in an f32 chain), step i + 1 is layer i.
static int run_steps(cap_convnet *net, plan *p, dnnl_stream_t strm, int lo, int hi, char *err, int errlen) {
	if (lo == 0 && p->to_act) {
		dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, p->in_f32}, {DNNL_ARG_TO, p->in_act}, {DNNL_ARG_SCRATCHPAD, p->act_pad}};
		TRY(dnnl_primitive_execute(p->to_act, strm, p->act_pad ? 3 : 2, a));
	}
	for (int i = lo > 0 ? lo - 1 : 0; i < hi - 1; i++) {
		if (net->layers[i].fused) {
			TRY(dnnl_stream_wait(strm)); // the layers before it have written its input
			run_fused(net, p, i);
			continue;
		}
		if (!p->prims[i]) continue; // a half with no rows of this layer, or a fused layer
		dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, p->src[i]}, {DNNL_ARG_WEIGHTS, p->wei[i]},
			{DNNL_ARG_BIAS, net->layers[i].bias}, {DNNL_ARG_DST, p->dst[i]}, {DNNL_ARG_SCRATCHPAD, p->pad[i]}};
		TRY(dnnl_primitive_execute(p->prims[i], strm, p->pad[i] ? 5 : 4, a));
	}
	TRY(dnnl_stream_wait(strm));
	return 0;
fail:
	return -1;
}

int cap_convnet_run(cap_convnet *net, int n, float *out, const float *in, char *err, int errlen) {
	if (n <= 0 || n > net->max_batch) {
		snprintf(err, errlen, "batch of %d images; this chain takes 1 to %d", n, net->max_batch);
		return -1;
	}
	omp_set_num_threads(1); // this thread's own setting: other threads' runs are unaffected
	plan *p = &net->plans[n];
	if (!p->prims && plan_build(net, p, n, -1, err, errlen) != 0) return -1;
	if (set_io(net, p, -1, out, in, err, errlen) != 0) return -1;
	return run_steps(net, p, net->strm, 0, net->nlayers + 1, err, errlen);
}

static void split_destroy(split *sp, cap_convnet *net) {
	if (!sp) return;
	for (int h = 0; h < 2; h++) {
		plan_destroy(net, &sp->half[h]);
		if (sp->strm[h]) dnnl_stream_destroy(sp->strm[h]);
	}
	free(sp->start), free(sp->taken), free(sp->done);
	free(sp);
}

// A span of bytes [lo, hi) of one activation buffer; empty when lo >= hi.
typedef struct {
	size_t lo, hi;
} span;

static int overlap(span a, span b) { return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi; }

static span join(span a, span b) {
	if (a.lo >= a.hi) return b;
	if (b.lo >= b.hi) return a;
	return (span){a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi};
}

// split_phases divides the steps (see run_steps) into phases (see split). It
// follows the bytes of each buffer that each half has read and written in the
// current phase: not rows, since a buffer holds layers of different widths,
// and a half's rows of one layer can be the other half's bytes of the next.
// A step starts a new phase when a half of it would read bytes that the other
// half wrote in this phase, or write bytes that the other half read or wrote.
static void split_phases(cap_convnet *net, split *sp) {
	int L = net->nlayers;
	span reads[2][NBUF + 1], writes[2][NBUF + 1];
	memset(reads, 0, sizeof reads), memset(writes, 0, sizeof writes);
	sp->nphases = 0;
	sp->start[sp->nphases++] = 0;
	for (int step = net->in == dnnl_f32; step <= L; step++) { // an f32 chain converts nothing
		// What each half of this step reads and writes. Buffer -1 is the
		// caller's input (read at step 0, or by an f32 chain's layer 0) or
		// output (written by the last layer): the other half neither writes
		// nor reads it.
		int i = step - 1;
		if (i >= 0 && net->layers[i].in_fused) continue; // computed with the block's expansion layer
		const cap_fused_block *fb = i >= 0 ? net->layers[i].fused : NULL;
		cap_conv_layer view = half_view(&net->layers[step > 0 ? i : 0].spec, 0); // both halves' view
		const cap_conv_layer *s = &view;
		int in_buf = step == 0 ? -1 : i > 0 ? net->layers[i - 1].buf : net->in == dnnl_f32 ? -1 : NBUF;
		int out_buf = step == 0 ? NBUF : net->layers[fb ? i + 2 : i].buf; // a residual layer's, read where it is written
		dnnl_data_type_t in_dt = step == 0 ? dnnl_f32 : i == 0 ? net->in : net->layers[i - 1].dst_dt;
		dnnl_data_type_t out_dt = step == 0 ? net->in : net->layers[i].dst_dt;
		size_t in_row = row_bytes(s->w, s->c, in_dt);
		size_t out_row = step == 0 ? row_bytes(s->w, s->c, out_dt) : row_bytes(s->ow, s->oc, out_dt);
		if (fb) // a fused block reads its input's rows and writes its projection's
			in_row = row_bytes(fb->w, fb->ci, dnnl_f32), out_row = row_bytes(fb->ow, fb->co, dnnl_f32);
		span r[2], w[2];
		for (int h = 0; h < 2; h++) {
			rows x = step == 0 ? input_rows(s, h) : rows_of(fb ? &net->layers[i + 1].spec : s, h);
			r[h] = (span){x.a * in_row, x.b * in_row};
			w[h] = (span){x.r0 * out_row, x.r1 * out_row};
		}
		int conflict = 0;
		for (int h = 0; h < 2; h++) {
			int o = 1 - h;
			if (in_buf >= 0) conflict |= overlap(r[h], writes[o][in_buf]);
			// Nor may a half write bytes the other half wrote: a residual
			// layer reads the bytes it writes (it adds into them), and of two
			// writes later readers would find whichever came last.
			if (out_buf >= 0) conflict |= overlap(w[h], join(reads[o][out_buf], writes[o][out_buf]));
		}
		if (conflict) {
			sp->start[sp->nphases++] = step;
			memset(reads, 0, sizeof reads), memset(writes, 0, sizeof writes);
		}
		for (int h = 0; h < 2; h++) {
			if (in_buf >= 0) reads[h][in_buf] = join(reads[h][in_buf], r[h]);
			if (out_buf >= 0) writes[h][out_buf] = join(writes[h][out_buf], w[h]);
		}
	}
	sp->start[sp->nphases] = L + 1;
}

static int split_build(cap_convnet *net, char *err, int errlen) {
	int L = net->nlayers;
	split *sp = calloc(1, sizeof *sp);
	if (!sp || !(sp->start = calloc(L + 2, sizeof *sp->start)) || !(sp->taken = calloc(L + 1, sizeof *sp->taken)) ||
		!(sp->done = calloc(L + 1, sizeof *sp->done))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (int h = 0; h < 2; h++) {
		TRY(dnnl_stream_create(&sp->strm[h], net->eng, dnnl_stream_default_flags));
		if (plan_build(net, &sp->half[h], 1, h, err, errlen) != 0) goto fail;
	}
	split_phases(net, sp);
	net->split = sp;
	return 0;
fail:
	split_destroy(sp, net);
	return -1;
}

int cap_convnet_split_begin(cap_convnet *net, float *out, const float *in, char *err, int errlen) {
	omp_set_num_threads(1); // the plans are made for one thread each
	if (!net->split && split_build(net, err, errlen) != 0) return -1;
	split *sp = net->split;
	for (int h = 0; h < 2; h++)
		if (set_io(net, &sp->half[h], h, out, in, err, errlen) != 0) return -1;
	for (int k = 0; k < sp->nphases; k++) {
		atomic_store(&sp->taken[k], 0);
		atomic_store(&sp->done[k], 0);
	}
	atomic_store(&sp->failed, 0);
	sp->order ^= 1;
	return 0;
}

// cpu_relax tells the core that this thread is polling.
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

int cap_convnet_run_split(cap_convnet *net, char *err, int errlen) {
	split *sp = net->split;
	if (!sp) {
		snprintf(err, errlen, "a split run needs cap_convnet_split_begin first");
		return -1;
	}
	omp_set_num_threads(1);
	for (int k = 0; k < sp->nphases; k++) {
		int h;
		while ((h = atomic_fetch_add(&sp->taken[k], 1)) < 2) {
			h ^= sp->order;
			char msg[sizeof sp->err];
			if (!atomic_load(&sp->failed) &&
				run_steps(net, &sp->half[h], sp->strm[h], sp->start[k], sp->start[k + 1], msg, sizeof msg) != 0 &&
				atomic_exchange(&sp->failed, 1) == 0)
				memcpy(sp->err, msg, sizeof msg);
			atomic_fetch_add(&sp->done[k], 1);
		}
		// The other half runs on a thread that took it: wait for it, briefly
		// polling, then letting other threads run.
		for (int spins = 0; atomic_load(&sp->done[k]) < 2; spins++) {
			if (spins < 4096)
				cpu_relax();
			else
				sched_yield();
		}
	}
	if (atomic_load(&sp->failed)) {
		snprintf(err, errlen, "%s", sp->err);
		return -1;
	}
	return 0;
}

void cap_convnet_impl(cap_convnet *net, int n, int i, char *buf, int len) {
	const char *s = NULL;
	buf[0] = 0;
	if (n < 1 || n > net->max_batch || i < 0 || i >= net->nlayers) return;
	if (net->layers[i].fused) { // this layer and the next two
		snprintf(buf, len, "fused_block:avx512");
		return;
	}
	plan *p = &net->plans[n];
	if (!p->pds && n == 1 && net->split) p = &net->split->half[0]; // only split runs so far
	if (!p->pds || !p->pds[i]) return;
	if (dnnl_primitive_desc_query(p->pds[i], dnnl_query_impl_info_str, 0, &s) == dnnl_success && s)
		snprintf(buf, len, "%s", s);
}

void cap_convnet_destroy(cap_convnet *net) {
	if (!net) return;
	if (net->plans)
		for (int n = 0; n <= net->max_batch; n++) plan_destroy(net, &net->plans[n]);
	split_destroy(net->split, net);
	for (int b = 0; b <= NBUF; b++) free(net->bufs[b]);
	if (net->strm) dnnl_stream_destroy(net->strm);
	free(net->plans);
	int last = 1;
	if (net->sh) {
		pthread_mutex_lock(&net->sh->mu);
		last = --net->sh->refs == 0;
		pthread_mutex_unlock(&net->sh->mu);
	}
	if (last) { // the shared part goes with the last copy
		if (net->layers)
			for (int i = 0; i < net->nlayers; i++) {
				layer *l = &net->layers[i];
				for (int f = 0; f < l->nfmts; f++) dnnl_memory_destroy(l->fmts[f].mem);
				if (l->bias) dnnl_memory_destroy(l->bias);
				free(l->plain), free(l->oscales);
				fused_destroy(l->fused);
			}
		if (net->eng) dnnl_engine_destroy(net->eng);
		if (net->sh) pthread_mutex_destroy(&net->sh->mu);
		free(net->layers), free(net->sh);
	}
	free(net);
}
