// Package gpu is captioner's device layer: device memory and the kernels that the
// encoder, the decoder and the trainer run, on the CPU or on an NVIDIA GPU.
//
// Conventions (see README.md for the full legend):
//   - All arrays are float32, row-major. A matrix with leading dimension ld stores
//     element {i, j} at a[i*ld+j].
//   - Kernels take outputs first, then inputs, then sizes (llm.c style).
//   - Backward kernels ADD into gradient buffers (callers zero them once per step),
//     except where a comment says "writes".
//   - Integer inputs (token ids, targets) are host slices: they are small, and the
//     CUDA backend uploads them to scratch memory itself.
//   - Results that the caller needs on the host (argmax, top-k, norms) come back as
//     host values; every such call synchronises.
//
// Kernels may run asynchronously on a device; Download and the host-returning
// kernels synchronise. A Device is not safe for concurrent use: one goroutine (the
// batcher, or the trainer) owns it.
package gpu

import "fmt"

// Buf is a float32 array in a device's memory. Views made by Slice share memory
// with their parent and must not outlive it.
type Buf interface {
	// Len is the number of float32 elements.
	Len() int
	// Slice returns the view of elements [off, off+n).
	Slice(off, n int) Buf
}

// AttentionExpClamp bounds pf and q in AttentionExp and AttentionScoresExp:
// exp(2·40) fits float32 (up to exp(88)), and a product of two that overflows to
// +Inf or underflows to 0 still gives tanh's 1 or -1. q needs no bound for
// that once pf has one, but the CPU's vector exp saturates at exp(88) where
// CUDA's overflows: one bound on both keeps the backends' scores alike.
const AttentionExpClamp = 40

// Act is an activation fused into a kernel.
type Act int

const (
	ActNone    Act = iota // identity
	ActReLU               // max(x, 0)
	ActReLU6              // min(max(x, 0), 6)
	ActTanh               // tanh(x)
	ActSigmoid            // 1 / (1 + exp(-x))
)

// ConvParams describes a 2-D convolution in NHWC layout.
//
//	in     is (N, H, W, C)
//	weight is (OC, KH, KW, C) for Conv2D (TFLite's OHWI layout) and
//	          (KH, KW, C)     for DepthwiseConv2D (OC == C, multiplier 1)
//	bias   is (OC)
//	out    is (N, OH, OW, OC)
//
// Padding is explicit: input row oh*StrideH - PadTop + kh is read for output row oh
// (rows outside [0, H) read as zero); the same for columns. TFLite's SAME padding for
// stride 2 puts the extra row at the bottom (PadTop = total/2), unlike PyTorch.
type ConvParams struct {
	N, H, W, C       int // input
	OC, KH, KW       int // output channels and kernel size
	StrideH, StrideW int
	PadTop, PadLeft  int
	OH, OW           int // output spatial size
}

// Device is one compute device. Methods panic on programmer errors (mismatched
// sizes, a Buf from another device) with a "gpu: " message; runtime failures
// (out of memory, a lost GPU) surface from Sync and Download as errors.
type Device interface {
	// Name says which device and library this is, e.g. "cpu (oneDNN, 2 threads)".
	Name() string
	// Alloc returns a zeroed buffer of n elements.
	Alloc(n int) Buf
	// Free releases a buffer returned by Alloc (not a Slice view).
	Free(b Buf)
	// Upload copies host memory into dst; len(src) must equal dst.Len().
	Upload(dst Buf, src []float32)
	// Download copies src into host memory; len(dst) must equal src.Len(). It synchronises.
	Download(dst []float32, src Buf) error
	// Copy copies src into dst on the device; lengths must match.
	Copy(dst, src Buf)
	// Zero sets every element of b to 0.
	Zero(b Buf)
	// Sync waits for queued work and reports any asynchronous failure.
	Sync() error
	// ChunkFloats is the most elements one layer's activation should span in a
	// call: a model running a batch through a chain of layers splits it into
	// chunks of images below this. The CPU's keeps a chunk's chain in its
	// last-level cache; a GPU's is the most its kernels index, since a larger
	// launch only fills more of its cores and its memory holds the batch.
	ChunkFloats() int
	// Close releases the device; buffers must not be used afterwards.
	Close() error

	// Gemm computes C = alpha * op(A) * op(B) + beta * C with op(X) = X or X^T.
	// op(A) is (m, k), op(B) is (k, n), C is (m, n); lda, ldb, ldc are the row
	// strides of A, B, C as stored (A is (k, m) in memory when transA).
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buf, lda int, b Buf, ldb int, beta float32, c Buf, ldc int)
	// GemmStridedBatched runs batch Gemms; matrix i starts at i*strideA in a,
	// i*strideB in b and i*strideC in c. The products may run at once, so
	// strideC must be at least the elements one C spans ((m-1)*ldc + n, when
	// batch > 1); A and B are only read, and their matrices may overlap or
	// interleave, down to stride 0 for one matrix shared by the batch
	// (GemmSpans checks).
	GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a Buf, lda, strideA int, b Buf, ldb, strideB int, beta float32, c Buf, ldc, strideC int, batch int)

	// Conv2D writes out = act(conv(in, weight) + bias). See ConvParams for layouts.
	// A 1x1 stride-1 unpadded convolution is one Gemm.
	Conv2D(out, in, weight, bias Buf, p ConvParams, act Act)
	// DepthwiseConv2D writes out = act(depthwise(in, weight) + bias), channel multiplier 1.
	DepthwiseConv2D(out, in, weight, bias Buf, p ConvParams, act Act)
	// DepthwiseConv2DBackward is the backward of DepthwiseConv2D without its
	// activation: dout (N, OH, OW, C) is the gradient of depthwise(in, weight) + bias
	// (BiasActBackward turns the gradient of act's output into it). It writes
	// din (N, H, W, C) and adds into dweight (KH, KW, C) and dbias (C); any of the
	// three may be nil when its gradient is not needed.
	DepthwiseConv2DBackward(din, dweight, dbias, dout, in, weight Buf, p ConvParams)
	// GlobalAvgPool writes out (n, c) = mean over hw positions of in (n, hw, c).
	GlobalAvgPool(out, in Buf, n, hw, c int)

	// BiasAct writes out (rows, cols) = act(x + bias), bias (cols) broadcast over rows.
	// bias may be nil (no bias). out may be x.
	BiasAct(out, x, bias Buf, rows, cols int, act Act)
	// BiasActBackward writes dx = dout * act'(.) where y = act(...) is the forward
	// output (activations' derivatives are computed from y), and adds the column sums
	// of dx into dbias (rows, cols) -> (cols) when dbias is not nil. dx may be dout.
	// ReLU6's derivative is 1 where 0 < y < 6 and 0 elsewhere (at its kinks too).
	BiasActBackward(dx, dbias, dout, y Buf, rows, cols int, act Act)
	// Add writes out = a + b elementwise; out may alias a or b.
	Add(out, a, b Buf)
	// Mul writes out = a * b elementwise; out may alias a or b.
	Mul(out, a, b Buf)
	// Axpy adds alpha * x into y.
	Axpy(y, x Buf, alpha float32)
	// Scale multiplies x by alpha in place.
	Scale(x Buf, alpha float32)
	// SumSquares returns the sum of x[i]^2 (accumulated in float64); it synchronises.
	SumSquares(x Buf) (float64, error)

	// LSTMCellForward applies the LSTM cell nonlinearity for one time step.
	//   gates (B, 4H): preactivations x*Wx + h*Wh + b, blocks in order i, f, g, o
	//   cPrev (B, H):  previous cell state
	// It writes c (B, H), h (B, H), and act (B, 4H) = sigmoid(i), sigmoid(f), tanh(g),
	// sigmoid(o), which the backward pass needs:
	//   c = f*cPrev + i*g;  h = o*tanh(c)
	LSTMCellForward(h, c, act, gates, cPrev Buf, batch, hidden int)
	// LSTMCellBackward is the backward of LSTMCellForward for one time step.
	//   dh (B, H): gradient into h (from the output and from the next step)
	//   dc (B, H): gradient into c from the next step (zero at the last step)
	// It writes dgates (B, 4H) (gradients of the preactivations) and dcPrev (B, H).
	// dcPrev may alias dc.
	LSTMCellBackward(dgates, dcPrev, dh, dc, act, c, cPrev Buf, batch, hidden int)

	// Softmax writes out (rows, cols) = softmax of each row of x; out may be x.
	Softmax(out, x Buf, rows, cols int)
	// LogSoftmax writes out (rows, cols) = log-softmax of each row of x; out may be x.
	LogSoftmax(out, x Buf, rows, cols int)
	// SoftmaxBackward is the backward of Softmax given its output y (rows, cols):
	// it writes dx = y * (dy - Σ_j y_j dy_j), row by row. dx may alias dy.
	SoftmaxBackward(dx, dy, y Buf, rows, cols int)
	// CrossEntropy computes, for each row r with targets[r] >= 0,
	//   loss[r] = -log softmax(logits[r])[targets[r]]
	// and writes dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) * gradScale.
	// Rows with a negative target (padding) get loss 0 and zero gradient. dlogits
	// may be nil (evaluation only) or alias logits.
	CrossEntropy(loss, dlogits, logits Buf, targets []int32, rows, cols int, gradScale float32)

	// AttentionScores is soft attention's scoring MLP over regions for rows
	// rows, perImage consecutive rows per image (beams share their image's pf):
	//   e[r, l, :]   = tanh(pf[r/perImage, l, :] + q[r, :])   pf (rows/perImage, regions, dim), q (rows, dim)
	//   scores[r, l] = e[r, l, :] · v                          v (dim), scores (rows, regions)
	// e (rows, regions, dim) is written when not nil, for the backward pass.
	AttentionScores(scores, e, pf, q, v Buf, rows, perImage, regions, dim int)
	// AttentionScoresBackward adds the gradients of AttentionScores' pf and q
	// given its e and dscores (rows, regions), with de = dscores[r, l] * v * (1 - e²):
	//   dpf[r/perImage, l, :] += de[r, l, :];  dq[r, :] += Σ_l de[r, l, :]
	// (v's gradient, Σ dscores[r, l] e[r, l, :], is one Gemm.)
	AttentionScoresBackward(dpf, dq, dscores, e, v Buf, rows, perImage, regions, dim int)
	// AttentionExp writes ep (n) = exp(2·clamp(pf, ±AttentionExpClamp)), the
	// form of pf that AttentionScoresExp reads. ep may be pf.
	AttentionExp(ep, pf Buf, n int)
	// AttentionScoresExp is AttentionScores' scores, without e, from ep =
	// AttentionExp(pf), for decoding: with P = ep·exp(2·clamp(q, ±AttentionExpClamp)),
	//   tanh(pf + q) = (P - 1)/(P + 1) = 1 - 2/(P + 1)
	// is a product and a division an element where tanh is a dozen
	// multiply-adds, and a decoder computes ep once per image instead of
	// tanh's argument at every step. The scores are AttentionScores' (within
	// a few float32 roundings a term) wherever |pf| and |q| are at most
	// AttentionExpClamp: an attention MLP's preactivations are a few units.
	AttentionScoresExp(scores, ep, q, v Buf, rows, perImage, regions, dim int)

	// EmbeddingForward writes out (len(ids), dim) = rows ids of table (vocab, dim).
	EmbeddingForward(out, table Buf, ids []int32, dim int)
	// EmbeddingBackward adds row i of dout into row ids[i] of dtable (scatter-add).
	EmbeddingBackward(dtable, dout Buf, ids []int32, dim int)

	// Dropout writes mask[i] = 0 with probability p, else 1/(1-p), and out = x * mask.
	// The draw is DropoutUniform(seed, i) < p, identical on every backend.
	// Backward is Mul(dx, dout, mask). out may be x.
	Dropout(out, mask, x Buf, p float32, seed uint64)

	// AdamW updates param in place from grad with moment buffers m and v (all the
	// same length), step counting from 1 (bias correction):
	//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
	//   param -= lr * (mhat / (sqrt(vhat) + eps) + weightDecay * param)
	// weightDecay 0 is plain Adam.
	AdamW(param, grad, m, v Buf, lr, beta1, beta2, eps, weightDecay float32, step int)

	// Argmax writes out[r] = the index of the largest element of row r of x (rows, cols):
	// TopK's first. It synchronises.
	Argmax(out []int32, x Buf, rows, cols int) error
	// TopK writes the k largest elements of each row of x (rows, cols) in descending
	// order: idx and val are (rows, k); ties go to the lowest index, and NaN ranks
	// after every number (-Inf included), so a row of NaNs still yields k valid
	// indices, its first k. It synchronises.
	TopK(idx []int32, val []float32, x Buf, rows, cols, k int) error
}

// DropoutUniform is the uniform number in [0, 1) that Dropout draws for element i
// under seed: the top 24 bits of splitmix64(seed + i*golden), so every backend and
// every test can reproduce a mask exactly.
func DropoutUniform(seed uint64, i int) float32 {
	z := seed + uint64(i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float32(z>>40) * (1.0 / (1 << 24))
}

// Precision is the number format a planned convolution chain computes in.
type Precision string

const (
	Float32  Precision = "float32"
	BFloat16 Precision = "bfloat16" // activations and weights; accumulation stays float32
	// Int8: activations in 8 bits with a fixed step per layer (ConvLayer's
	// InMax and OutMax), weights in 8 bits with a step per output channel;
	// accumulation in int32.
	Int8 Precision = "int8"
)

// ConvLayer is one layer of a chain planned by a ConvPlanner: a Conv2D (or a
// DepthwiseConv2D) with sizes P for one image (P.N is ignored), host weights in
// ConvParams' layouts, and act fused. When Residual >= 0 the output of layer
// Residual, an earlier layer of the same shape, is added after act. Layer 0 reads
// the chain's input; every other layer reads the previous layer's output.
// An Int8 chain also needs the ranges its activations are stored in: OutMax,
// the largest magnitude of the layer's output (after act and the residual;
// unused on the last layer, whose output is float32), and InMax, on layer 0,
// that of the chain's input. Values beyond them saturate. WeightStep, when
// set, is a grid the weights already lie on (they were dequantized from a file
// quantized per tensor): an output channel whose weights fit in ±127 of its
// steps keeps it, instead of being rounded to a second grid.
type ConvLayer struct {
	Depthwise     bool
	P             ConvParams
	Weight, Bias  []float32
	Act           Act
	Residual      int
	InMax, OutMax float32
	WeightStep    float32
}

// ConvPlanner is an optional Device capability: a whole chain of convolutions
// planned once and run as one call, so that activations stay in the device's own
// layout and precision between layers (the CPU device plans with oneDNN).
type ConvPlanner interface {
	// PlanConvChain prepares layers for batches of up to maxBatch images in precision p.
	PlanConvChain(layers []ConvLayer, maxBatch int, p Precision) (ConvChain, error)
	// NativeBFloat16 reports whether this device computes bfloat16 in hardware
	// (rather than emulating it).
	NativeBFloat16() bool
	// FastBFloat16 reports whether a BFloat16 chain runs faster here than a
	// Float32 one: bfloat16 in hardware is not always enough.
	FastBFloat16() bool
}

// Forker is an optional Device capability: a second device on the same hardware
// that shares nothing with the first, cheap enough that two stages of a model
// (the image encoder and the caption decoder) can each own one and run at the
// same time from two goroutines. The CPU device offers it: a second one costs a
// worker pool and scratch memory. A GPU backend does not, because a second
// context would cost device memory for little gain.
type Forker interface {
	// Fork opens the second device; the caller closes it.
	Fork() (Device, error)
}

// ConvChain is a planned chain of convolutions.
type ConvChain interface {
	// Run writes out (n, OH, OW, OC) of the last layer from in (n, H, W, C) of the
	// first, both float32 NHWC; the first run at each n prepares that batch size.
	// Like the device's kernels, runs must not overlap each other or other work
	// on the device: a run may use every thread of the device.
	Run(out, in Buf, n int) error
	// Describe names the library and the kernels chosen, for logs.
	Describe() string
	Close()
}

// PackedWeight is a layer's weight W (n, k) prepared once for many products
// A·Wᵀ, in a precision of its own: a decoder step multiplies a few rows by each
// of its weights, a dozen times or more a caption, and a weight in bfloat16 is
// half the bytes to stream and, with AVX512-BF16, twice the multiply-adds an
// instruction.
type PackedWeight interface {
	// MulT computes C (m, n) = A (m, k)·Wᵀ + beta·C, A and C at row strides
	// lda and ldc; with beta 0, C is only written. A is rounded to the
	// weight's precision; the sums are float32.
	MulT(m int, a Buf, lda int, beta float32, c Buf, ldc int)
	// Update packs W again after it changed (a packed copy does not follow W).
	Update()
	// Free releases the packed copy; W itself is the caller's.
	Free()
}

// WeightPacker is an optional Device capability: weights packed in a
// precision other than float32 (the CPU device: bfloat16 with AVX512-BF16,
// int8 with AVX512-VNNI).
type WeightPacker interface {
	// PackWeight packs w (n, k), row stride ldw, in precision p.
	PackWeight(w Buf, n, k, ldw int, p Precision) (PackedWeight, error)
	// Packs reports whether PackWeight takes precision p here.
	Packs(p Precision) bool
}

// Packs reports whether PackWeight prepares weights in precision p on dev:
// float32 everywhere, others where the device packs them.
func Packs(dev Device, p Precision) bool {
	if p == Float32 {
		return true
	}
	wp, ok := dev.(WeightPacker)
	return ok && wp.Packs(p)
}

// PackWeight prepares w (n, k), row stride ldw, on dev for products in
// precision p. Float32 keeps w itself, read by Gemm, on every device: the
// products then see later changes to w. Other precisions copy w, on devices
// that offer them (WeightPacker).
func PackWeight(dev Device, w Buf, n, k, ldw int, p Precision) (PackedWeight, error) {
	if p == Float32 {
		return float32Weight{dev, w, n, k, ldw}, nil
	}
	if wp, ok := dev.(WeightPacker); ok {
		return wp.PackWeight(w, n, k, ldw, p)
	}
	return nil, fmt.Errorf("gpu: %s cannot keep weights in %s; use float32", dev.Name(), p)
}

// float32Weight is a weight used where it is: its products are dev's Gemm.
type float32Weight struct {
	dev       Device
	w         Buf
	n, k, ldw int
}

func (w float32Weight) MulT(m int, a Buf, lda int, beta float32, c Buf, ldc int) {
	w.dev.Gemm(false, true, m, w.n, w.k, 1, a, lda, w.w, w.ldw, beta, c, ldc)
}

func (float32Weight) Update() {} // it reads W itself
func (float32Weight) Free()   {}

// NativeBFloat16 reports whether dev plans convolution chains and computes
// bfloat16 in hardware.
func NativeBFloat16(dev Device) bool {
	p, ok := dev.(ConvPlanner)
	return ok && p.NativeBFloat16()
}

// BFloat16Why says, for logs, why FastBFloat16 holds on dev or not; empty
// where the device does not say (it plans no chains, or has one answer).
func BFloat16Why(dev Device) string {
	w, ok := dev.(interface{ BFloat16Why() string })
	if !ok {
		return ""
	}
	return w.BFloat16Why()
}

// FastBFloat16 reports whether dev plans convolution chains that run faster in
// bfloat16 than in float32: where precision auto picks bfloat16.
func FastBFloat16(dev Device) bool {
	p, ok := dev.(ConvPlanner)
	return ok && p.FastBFloat16()
}
