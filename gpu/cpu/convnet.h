// A chain of convolutions planned once and run by oneDNN (convnet.c, built with
// cgo; see convnet_dnnl.go). Activation codes are gpu.Act's values.

// cap_conv_layer is one convolution of the chain. Its input is the previous
// layer's output (layer 0 reads the network input); when residual >= 0, the
// output of layer residual is added to its result. Sizes are those of
// gpu.ConvParams for one image; weight is (OC, KH, KW, C), or (KH, KW, C) for a
// depthwise layer; bias is (OC). An int8 chain also needs out_max, the largest
// magnitude of the layer's output (the last layer's is unused), and, on layer
// 0, in_max, the largest magnitude of the chain's input.
typedef struct {
	int depthwise;
	int h, w, c, oc, kh, kw, stride_h, stride_w, pad_top, pad_left, oh, ow;
	int act;
	int residual;
	const float *weight, *bias;
	float in_max, out_max;
	float weight_step; // a grid the weights lie on, or 0 (gpu.ConvLayer.WeightStep)
} cap_conv_layer;

// What a chain's activations and weights are stored in; sums are float32, or
// int32 for CAP_INT8.
enum { CAP_F32, CAP_BF16, CAP_INT8 };

typedef struct cap_convnet cap_convnet;

// cap_convnet_create copies the layers' weights into oneDNN's formats for
// computing in type (CAP_F32, CAP_BF16 or CAP_INT8) and returns the plan, or NULL
// with a message in err (errlen bytes). Batches up to max_batch images can be run.
cap_convnet *cap_convnet_create(const cap_conv_layer *layers, int nlayers, int type, int max_batch,
	char *err, int errlen);

// cap_convnet_share returns another copy of the chain first, for another thread:
// it shares first's engine and weights (each reordered once for all copies) and
// has its own stream, activations and plans. Copies may run at the same time and
// be destroyed in any order. NULL with a message in err on failure.
cap_convnet *cap_convnet_share(cap_convnet *first, char *err, int errlen);

// cap_convnet_run runs n images: in is (n, H, W, C) float32 NHWC of the first
// layer, out is (n, OH, OW, OC) float32 NHWC of the last, computed on the calling
// thread alone. The first run at each n builds that batch size's primitives. It
// returns 0, or -1 with a message in err. Runs of one copy must not overlap.
int cap_convnet_run(cap_convnet *net, int n, float *out, const float *in, char *err, int errlen);

// cap_convnet_split_begin readies net to run one image split in two halves
// (see split in convnet.c), building their primitives the first time: in
// and out as for cap_convnet_run with n = 1. Then call cap_convnet_run_split
// on one or more threads at the same time: they share the work, and each
// returns when the image is done. Returns 0, or -1 with a message in err.
// Split runs and cap_convnet_run of one copy must not overlap.
int cap_convnet_split_begin(cap_convnet *net, float *out, const float *in, char *err, int errlen);
int cap_convnet_run_split(cap_convnet *net, char *err, int errlen);

// cap_convnet_impl writes the oneDNN implementation of layer i at batch n (after a
// run at n, or for n = 1 after a split run: its upper half's) into buf, for logs
// and benchmarks.
void cap_convnet_impl(cap_convnet *net, int n, int i, char *buf, int len);

void cap_convnet_destroy(cap_convnet *net);
