package encoder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/captioner/captioner/tflite"
)

// ImportFile reads a MobileNetV2 TFLite file and returns its dequantized weights.
func ImportFile(path string) (*Weights, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encoder: %w", err)
	}
	m, err := tflite.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	sum := sha256.Sum256(data)
	w, err := Import(m)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	w.Config.Source = filepath.Base(path)
	w.Config.SourceSHA = hex.EncodeToString(sum[:])
	return w, nil
}

// Import maps the operator graph of a MobileNetV2 TFLite model (uint8 or int8,
// per-tensor or per-channel quantized, or float) onto the encoder's architecture:
//
//	[QUANTIZE] CONV_2D 3x3/2 RELU6                                         stem
//	{ [CONV_2D 1x1 RELU6] DEPTHWISE_CONV_2D 3x3 RELU6 CONV_2D 1x1 [ADD] }  blocks
//	CONV_2D 1x1 RELU6                                                       head: the grid
//	AVERAGE_POOL_2D or MEAN over H, W                                       pooled features
//	CONV_2D 1x1 or FULLY_CONNECTED, [RESHAPE|SQUEEZE], SOFTMAX, [QUANTIZE|DEQUANTIZE]
//
// Every operator's wiring, kernel size, stride, padding, activation and tensor
// shapes are checked; anything else fails with the operator's index and tensors.
// The dequantized network runs in float32, so QUANTIZE and DEQUANTIZE are
// identities. A quantized file's activation ranges and weight scales are kept
// in Weights.Quant, for the int8 chain.
func Import(m *tflite.Model) (*Weights, error) {
	g := &m.Subgraphs[0]
	if len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return nil, fmt.Errorf("encoder: the graph has %d inputs and %d outputs; MobileNetV2 has one image in and one prediction out", len(g.Inputs), len(g.Outputs))
	}
	in := &g.Tensors[g.Inputs[0]]
	if len(in.Shape) != 4 || in.Shape[0] != 1 || in.Shape[1] != in.Shape[2] || in.Shape[3] != 3 {
		return nil, fmt.Errorf("encoder: input %v: want a (1, S, S, 3) image", in)
	}
	k := &walker{g: g, cur: in.Index, h: in.Shape[1], w: in.Shape[2], c: 3,
		out: &Weights{Config: Config{Input: in.Shape[1]}, Tensors: map[string][]float32{}, Quant: map[string]LayerQuant{}}}
	cfg := &k.out.Config
	var err error
	k.next() // past a QUANTIZE of the image: the stem reads its output
	k.keepQuant("input", k.cur, nil)
	if cfg.Stem, _, err = k.conv(tflite.OpConv2D, "stem", 3, 2, tflite.ActRelu6); err != nil {
		return nil, err
	}
	for k.startsBlock() {
		b := Block{In: k.c}
		blockIn := k.cur
		p := fmt.Sprintf("blocks.%d.", len(cfg.Blocks))
		if k.next().Op == tflite.OpConv2D {
			b.Expand = true
			if _, _, err = k.conv(tflite.OpConv2D, p+"expand", 1, 1, tflite.ActRelu6); err != nil {
				return nil, err
			}
		}
		if b.Hidden, b.Stride, err = k.conv(tflite.OpDepthwiseConv2D, p+"dw", 3, 0, tflite.ActRelu6); err != nil {
			return nil, err
		}
		if b.Out, _, err = k.conv(tflite.OpConv2D, p+"project", 1, 1, tflite.ActNone); err != nil {
			return nil, err
		}
		if b.Residual, err = k.residual(blockIn, p+"project"); err != nil {
			return nil, err
		}
		cfg.Blocks = append(cfg.Blocks, b)
	}
	if len(cfg.Blocks) == 0 {
		return nil, k.errf(k.next(), "expected the first inverted residual block (DEPTHWISE_CONV_2D, or CONV_2D then DEPTHWISE_CONV_2D)")
	}
	if cfg.Head, _, err = k.conv(tflite.OpConv2D, "head", 1, 1, tflite.ActRelu6); err != nil {
		return nil, err
	}
	if k.h != cfg.GridSize() || k.w != k.h {
		return nil, fmt.Errorf("encoder: feature grid is %dx%d, the architecture gives %dx%d", k.h, k.w, cfg.GridSize(), cfg.GridSize())
	}
	if err := k.pool(); err != nil {
		return nil, err
	}
	if cfg.Classes, err = k.classifier(); err != nil {
		return nil, err
	}
	if err := k.tail(cfg.Classes); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return k.out, nil
}

// walker consumes the operators of the main subgraph in order, following the
// activation tensor cur of shape (1, h, w, c).
type walker struct {
	g       *tflite.Subgraph
	i       int // next operator
	cur     int // tensor index
	h, w, c int
	out     *Weights
}

// end stands for "past the last operator" in messages.
var end = &tflite.Operator{Index: -1, Op: -1}

// next returns the next operator that is not a QUANTIZE or DEQUANTIZE of cur,
// stepping over those (identities in float).
func (k *walker) next() *tflite.Operator {
	for k.i < len(k.g.Operators) {
		op := &k.g.Operators[k.i]
		if (op.Op != tflite.OpQuantize && op.Op != tflite.OpDequantize) || len(op.Inputs) != 1 || len(op.Outputs) != 1 || op.Inputs[0] != k.cur {
			return op
		}
		k.cur = op.Outputs[0]
		k.i++
	}
	return end
}

// take consumes op (the one next returned), checking that its first input is cur,
// and makes its output the current tensor.
func (k *walker) take(op *tflite.Operator, want tflite.Op) error {
	if op == end {
		return fmt.Errorf("encoder: the graph ends where %s was expected", want)
	}
	if op.Op != want {
		return k.errf(op, "expected %s", want)
	}
	if len(op.Inputs) == 0 || op.Inputs[0] != k.cur || len(op.Outputs) != 1 {
		return k.errf(op, "expected it to read tensor %d (the previous layer's output) and write one tensor", k.cur)
	}
	k.i++
	k.cur = op.Outputs[0]
	return nil
}

func (k *walker) errf(op *tflite.Operator, format string, args ...any) error {
	if op == end {
		return fmt.Errorf("encoder: at the end of the graph: "+format, args...)
	}
	var ts string
	for _, i := range append(append([]int(nil), op.Inputs...), op.Outputs...) {
		if i >= 0 {
			ts += "\n  " + k.g.Tensors[i].String()
		}
	}
	return fmt.Errorf("encoder: operator %d (%s): %s; its tensors:%s", op.Index, op.Op, fmt.Sprintf(format, args...), ts)
}

// startsBlock reports whether the next operators open an inverted residual block.
func (k *walker) startsBlock() bool {
	op := k.next()
	if op.Op == tflite.OpDepthwiseConv2D {
		return true
	}
	return op.Op == tflite.OpConv2D && k.i+1 < len(k.g.Operators) && k.g.Operators[k.i+1].Op == tflite.OpDepthwiseConv2D
}

// conv consumes a CONV_2D or DEPTHWISE_CONV_2D with a kernel x kernel filter,
// the given stride (0: 1 or 2, read from the file) and activation, and SAME
// padding (TFLite's rule, which the device's explicit PadTop reproduces). It
// stores the dequantized weight and bias under name and returns the output
// channels and the stride.
func (k *walker) conv(want tflite.Op, name string, kernel, stride int, act tflite.Activation) (int, int, error) {
	op := k.next()
	if err := k.take(op, want); err != nil {
		return 0, 0, err
	}
	if len(op.Inputs) != 3 || op.Inputs[2] < 0 {
		return 0, 0, k.errf(op, "expected inputs (activation, weight, bias)")
	}
	var pad tflite.Padding
	var sh, sw, dh, dw int
	var a tflite.Activation
	switch o := op.Options.(type) {
	case *tflite.Conv2DOptions:
		pad, sh, sw, dh, dw, a = o.Padding, o.StrideH, o.StrideW, o.DilationH, o.DilationW, o.Activation
	case *tflite.DepthwiseConv2DOptions:
		if o.DepthMultiplier != 1 {
			return 0, 0, k.errf(op, "depth multiplier %d; only 1 is supported", o.DepthMultiplier)
		}
		pad, sh, sw, dh, dw, a = o.Padding, o.StrideH, o.StrideW, o.DilationH, o.DilationW, o.Activation
	default:
		return 0, 0, k.errf(op, "missing convolution options")
	}
	switch {
	case sh != sw || (stride != 0 && sh != stride) || (stride == 0 && sh != 1 && sh != 2):
		return 0, 0, k.errf(op, "stride %dx%d, expected %dx%d (0: 1 or 2)", sh, sw, stride, stride)
	case dh != 1 || dw != 1:
		return 0, 0, k.errf(op, "dilation %dx%d; only 1 is supported", dh, dw)
	case a != act:
		return 0, 0, k.errf(op, "fused activation %s, expected %s", a, act)
	case pad != tflite.Same && kernel > 1:
		return 0, 0, k.errf(op, "padding %s; MobileNetV2's 3x3 convolutions use SAME", pad)
	}
	in, wt, bt, out := &k.g.Tensors[op.Inputs[0]], &k.g.Tensors[op.Inputs[1]], &k.g.Tensors[op.Inputs[2]], &k.g.Tensors[op.Outputs[0]]
	oc := 0
	if want == tflite.OpConv2D {
		if len(wt.Shape) == 4 {
			oc = wt.Shape[0]
		}
		if !slices.Equal(wt.Shape, []int{oc, kernel, kernel, k.c}) {
			return 0, 0, k.errf(op, "weight shape %v, expected (OC, %d, %d, %d)", wt.Shape, kernel, kernel, k.c)
		}
	} else {
		oc = k.c
		if !slices.Equal(wt.Shape, []int{1, kernel, kernel, k.c}) {
			return 0, 0, k.errf(op, "weight shape %v, expected (1, %d, %d, %d)", wt.Shape, kernel, kernel, k.c)
		}
	}
	oh, ow := ceilDiv(k.h, sh), ceilDiv(k.w, sw)
	if !slices.Equal(out.Shape, []int{1, oh, ow, oc}) || !slices.Equal(bt.Shape, []int{oc}) {
		return 0, 0, k.errf(op, "output shape %v and bias shape %v, expected (1, %d, %d, %d) and (%d)", out.Shape, bt.Shape, oh, ow, oc, oc)
	}
	wv, err := wt.Float32s()
	if err != nil {
		return 0, 0, k.errf(op, "weight: %v", err)
	}
	bv, err := tflite.Bias(bt, in, wt)
	if err != nil {
		return 0, 0, k.errf(op, "bias: %v", err)
	}
	k.out.Tensors[name+".weight"] = wv
	k.out.Tensors[name+".bias"] = bv
	k.keepQuant(name, op.Outputs[0], wt)
	k.h, k.w, k.c = oh, ow, oc
	return oc, sh, nil
}

// keepQuant records under name the range of output tensor i, when the file
// quantizes it, with the per-tensor scale of weight (nil: none).
func (k *walker) keepQuant(name string, i int, weight *tflite.Tensor) {
	lo, hi, ok := k.g.Tensors[i].Range()
	if !ok {
		return
	}
	q := LayerQuant{Out: [2]float32{lo, hi}}
	if weight != nil && weight.Quant != nil && len(weight.Quant.Scale) == 1 {
		q.WeightStep = weight.Quant.Scale[0]
	}
	k.out.Quant[name] = q
}

// residual consumes the ADD that closes a block, if there is one: it must add
// the block's input to the projection's output, with no activation. The sum's
// range replaces the projection's (under project), since the int8 chain adds
// in place and stores only the sum.
func (k *walker) residual(blockIn int, project string) (bool, error) {
	op := k.next()
	if op.Op != tflite.OpAdd {
		return false, nil
	}
	if len(op.Inputs) != 2 || len(op.Outputs) != 1 ||
		!(op.Inputs[0] == k.cur && op.Inputs[1] == blockIn || op.Inputs[1] == k.cur && op.Inputs[0] == blockIn) {
		return false, k.errf(op, "a residual ADD must add tensors %d (block input) and %d (projection)", blockIn, k.cur)
	}
	if o, ok := op.Options.(*tflite.AddOptions); ok && o.Activation != tflite.ActNone {
		return false, k.errf(op, "residual ADD with fused %s; MobileNetV2's is linear", o.Activation)
	}
	if in := &k.g.Tensors[blockIn]; !slices.Equal(in.Shape, []int{1, k.h, k.w, k.c}) {
		return false, k.errf(op, "block input %v and projection (1, %d, %d, %d) differ in shape", in, k.h, k.w, k.c)
	}
	k.i++
	k.cur = op.Outputs[0]
	if lo, hi, ok := k.g.Tensors[k.cur].Range(); ok {
		q := k.out.Quant[project]
		q.Out = [2]float32{lo, hi}
		k.out.Quant[project] = q
	} else {
		delete(k.out.Quant, project)
	}
	return true, nil
}

// pool consumes the global average pooling: AVERAGE_POOL_2D over the whole grid
// (VALID) or MEAN over axes 1 and 2.
func (k *walker) pool() error {
	op := k.next()
	switch op.Op {
	case tflite.OpAveragePool2D:
		o, ok := op.Options.(*tflite.Pool2DOptions)
		if !ok || o.FilterHeight != k.h || o.FilterWidth != k.w || o.Padding != tflite.Valid || o.Activation != tflite.ActNone {
			return k.errf(op, "expected a %dx%d VALID average pool over the whole grid, got %+v", k.h, k.w, op.Options)
		}
	case tflite.OpMean:
		if len(op.Inputs) != 2 || op.Inputs[1] < 0 {
			return k.errf(op, "MEAN needs (input, axes)")
		}
		axes, err := k.g.Tensors[op.Inputs[1]].Int32s()
		if err != nil || !(slices.Equal(axes, []int32{1, 2}) || slices.Equal(axes, []int32{2, 1})) {
			return k.errf(op, "MEAN over axes %v (%v); global pooling is over [1, 2]", axes, err)
		}
	default:
		return k.errf(op, "expected global average pooling (AVERAGE_POOL_2D or MEAN)")
	}
	if err := k.take(op, op.Op); err != nil {
		return err
	}
	if out := &k.g.Tensors[op.Outputs[0]]; out.NumElements() != k.c {
		return k.errf(op, "pooled output has %d elements, expected %d", out.NumElements(), k.c)
	}
	k.h, k.w = 1, 1
	return nil
}

// classifier consumes the final 1x1 CONV_2D or FULLY_CONNECTED and returns the
// number of classes.
func (k *walker) classifier() (int, error) {
	op := k.next()
	if op.Op == tflite.OpConv2D {
		// The pooled tensor is (1, 1, 1, C): a 1x1 convolution on it is the classifier.
		oc, _, err := k.conv(tflite.OpConv2D, "classifier", 1, 1, tflite.ActNone)
		return oc, err
	}
	if err := k.take(op, tflite.OpFullyConnected); err != nil {
		return 0, k.errf(op, "expected the classifier (CONV_2D 1x1 or FULLY_CONNECTED)")
	}
	o, ok := op.Options.(*tflite.FullyConnectedOptions)
	if !ok || o.Activation != tflite.ActNone || o.WeightsFormat != 0 {
		return 0, k.errf(op, "expected a linear FULLY_CONNECTED with plain weights, got options %+v", op.Options)
	}
	if len(op.Inputs) != 3 || op.Inputs[2] < 0 {
		return 0, k.errf(op, "expected inputs (activation, weight, bias)")
	}
	in, wt, bt := &k.g.Tensors[op.Inputs[0]], &k.g.Tensors[op.Inputs[1]], &k.g.Tensors[op.Inputs[2]]
	if len(wt.Shape) != 2 || wt.Shape[1] != k.c || !slices.Equal(bt.Shape, []int{wt.Shape[0]}) {
		return 0, k.errf(op, "weight %v and bias %v, expected (classes, %d) and (classes)", wt.Shape, bt.Shape, k.c)
	}
	wv, err := wt.Float32s()
	if err != nil {
		return 0, k.errf(op, "weight: %v", err)
	}
	bv, err := tflite.Bias(bt, in, wt)
	if err != nil {
		return 0, k.errf(op, "bias: %v", err)
	}
	k.out.Tensors["classifier.weight"], k.out.Tensors["classifier.bias"] = wv, bv
	k.c = wt.Shape[0]
	return k.c, nil
}

// tail consumes the reshape to (1, classes) and the softmax, and checks that the
// graph ends there.
func (k *walker) tail(classes int) error {
	if op := k.next(); op.Op == tflite.OpReshape || op.Op == tflite.OpSqueeze {
		if err := k.take(op, op.Op); err != nil {
			return err
		}
		if out := &k.g.Tensors[op.Outputs[0]]; out.NumElements() != classes {
			return k.errf(op, "reshaped logits have %d elements, expected %d", out.NumElements(), classes)
		}
	}
	op := k.next()
	if err := k.take(op, tflite.OpSoftmax); err != nil {
		return err
	}
	if o, ok := op.Options.(*tflite.SoftmaxOptions); !ok || o.Beta != 1 {
		return k.errf(op, "softmax with options %+v; beta 1 expected", op.Options)
	}
	if op := k.next(); op != end {
		return k.errf(op, "unexpected operator after the softmax")
	}
	if k.cur != k.g.Outputs[0] {
		return fmt.Errorf("encoder: the softmax output (tensor %d) is not the graph output (tensor %d)", k.cur, k.g.Outputs[0])
	}
	return nil
}
