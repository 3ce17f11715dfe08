//go:build cgo && !purecpu

package encoder

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/numdiff"
)

// chainImages returns the two reference photos and a noise image.
func chainImages(t *testing.T) []float32 {
	images := append(photo(t, "grace_hopper.bmp"), photo(t, "cat_720p.jpg")...)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 224 * 224 * 3 {
		images = append(images, rng.Float32()*2-1)
	}
	return images
}

// TestFloat32ChainMatchesKernels compares the encoder running as one oneDNN
// chain in float32 (what float32 runs on the CPU device) with the per-layer
// kernels on the same images: equal up to summation order, so every layout,
// padding, stride and residual of chainLayers and convnet.c is right, and
// features cached by extract do not depend on which of the two computed them.
// It runs a batch of 3 (over two threads) and a batch of 1.
func TestFloat32ChainMatchesKernels(t *testing.T) {
	ref, _ := newKernelEncoder(t, quantModel, 3)
	e, _ := newEncoder(t, quantModel, 3)
	images := chainImages(t)
	wantGrid, wantPooled, wantProbs := encodeAll(t, ref, images, 3)
	for _, n := range []int{3, 1} {
		grid, pooled, probs := encodeAll(t, e, images[:n*e.ImageLen()], n)
		gd := maxDiff(grid, wantGrid[:len(grid)])
		pd := maxDiff(pooled, wantPooled[:len(pooled)])
		qd := maxDiff(probs, wantProbs[:len(probs)])
		t.Logf("batch %d: max diff grid %.2g, pooled %.2g, probs %.2g", n, gd, pd, qd)
		if gd > 5e-5 || pd > 1.2e-5 || qd > 1e-6 {
			t.Errorf("batch %d: float32 chain differs from the per-layer kernels: grid %.2g, pooled %.2g, probs %.2g", n, gd, pd, qd)
		}
	}
	if d := e.Describe(); !strings.Contains(d, "oneDNN") || !strings.Contains(d, "float32") {
		t.Errorf("Describe() = %q, want it to name oneDNN and float32", d)
	}
	t.Log(e.Describe())
}

// TestBFloat16Encoder checks what bfloat16 costs in accuracy on the reference
// photos and a noise image: the pooled features (what the caption model reads)
// stay within 6% of float32's (measured: 2.9-4.2%; the shipped caption model's dev
// BLEU-4 is the same, 0.1578), and the photos' ImageNet top-1 class and its
// probability hold.
func TestBFloat16Encoder(t *testing.T) {
	if !gpu.NativeBFloat16(cpu.New(1)) {
		t.Skip("this CPU has neither AMX nor AVX512-BF16; oneDNN would not run bfloat16 here")
	}
	checkReducedPrecision(t, quantModel, gpu.BFloat16, 0.06, 0.03)
}

// TestInt8Encoder is TestBFloat16Encoder for int8, with the activation ranges
// of both quantized files: the uint8 one trained with quantization and the
// int8 one quantized after training. Measured: pooled features 4.9-7.5% from
// float32's, the photos' top-1 probability within 0.032. Rounding the uint8
// file's weights to a second grid instead of keeping theirs doubled the first
// (12.6-17%).
func TestInt8Encoder(t *testing.T) {
	for _, model := range []string{quantModel, ptqModel} {
		t.Run(model, func(t *testing.T) { checkReducedPrecision(t, model, gpu.Int8, 0.1, 0.05) })
	}
}

// checkReducedPrecision compares model's encoder in precision p with float32's
// on the reference photos and a noise image: pooled features within maxRel
// (relative L2) and, for the photos, the same top-1 class with a probability
// within maxProb.
func checkReducedPrecision(t *testing.T, model string, p gpu.Precision, maxRel, maxProb float64) {
	ref, _ := newEncoder(t, model, 3)
	e, _ := newEncoderIn(t, model, 3, p)
	if e.Precision() != p {
		t.Fatalf("precision %s, want %s", e.Precision(), p)
	}
	images := chainImages(t)
	_, pooledRef, probsRef := encodeAll(t, ref, images, 3)
	for _, n := range []int{3, 1} { // both threads' chain copies, then one
		_, pooled, probs := encodeAll(t, e, images[:n*e.ImageLen()], n)
		for i := range n {
			a, b := pooled[i*1280:(i+1)*1280], pooledRef[i*1280:(i+1)*1280]
			d := numdiff.RelL2(a, b)
			p, q := probs[i*1001:(i+1)*1001], probsRef[i*1001:(i+1)*1001]
			top, topRef := topK(p, 1)[0], topK(q, 1)[0]
			t.Logf("batch %d, image %d: pooled relative L2 %.3g; top-1 %d p=%.3f (float32: %d p=%.3f)", n, i, d, top, p[top], topRef, q[topRef])
			if d > maxRel {
				t.Errorf("batch %d, image %d: %s pooled features are %.3g from float32's (relative L2), want <= %g", n, i, e.Precision(), d, maxRel)
			}
			if i < 2 && (top != topRef || math.Abs(float64(p[top]-q[topRef])) > maxProb) {
				t.Errorf("batch %d, image %d: %s top-1 %d p=%.3f, float32 %d p=%.3f", n, i, e.Precision(), top, p[top], topRef, q[topRef])
			}
		}
	}
	if d := e.Describe(); !strings.Contains(d, "oneDNN") || !strings.Contains(d, string(p)) {
		t.Errorf("Describe() = %q, want it to name oneDNN and %s", d, p)
	}
	t.Log(e.Describe())
}

// TestChainErrors checks the messages of a bad precision, a weight of the wrong
// size, a residual from the adjacent layer and a batch above the planned one.
func TestChainErrors(t *testing.T) {
	w, err := ImportFile(modelFile(t, quantModel))
	if err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(1)
	defer dev.Close()
	if _, err := New(dev, w, 1, "fp16"); err == nil || err.Error() != `encoder: precision "fp16": want auto, float32, bfloat16 or int8` {
		t.Errorf("precision fp16: %v", err)
	}
	layers, _ := chainLayers(w, len(w.Config.Blocks))
	float := *w
	float.Quant = nil
	if _, err := New(dev, &float, 1, "int8"); err == nil || err.Error() != "encoder: precision int8 needs the activation range of every layer, which only weights imported from a quantized TFLite file carry (not a float file's, nor fine-tuned layers'); these weights have none for input, stem, blocks.0.dw and 50 more; use precision float32 or bfloat16" {
		t.Errorf("int8 without ranges: %v", err)
	}
	// One layer without its range is enough to refuse int8.
	one := *w
	one.Quant = maps.Clone(w.Quant)
	delete(one.Quant, "blocks.3.dw")
	if _, err := New(dev, &one, 1, "int8"); err == nil || !strings.Contains(err.Error(), "these weights have none for blocks.3.dw;") {
		t.Errorf("int8 with one layer's range missing: %v", err)
	}
	bad := slices.Clone(layers[:2])
	bad[0].OutMax = 0
	if _, err := dev.PlanConvChain(bad, 1, gpu.Int8); err == nil || err.Error() != "gpu/cpu: planning 2 convolutions in int8: layer 0 has no output range (out_max 0); an int8 chain needs one on every layer but the last" {
		t.Errorf("int8 layer without a range: %v", err)
	}
	bad[0].InMax = 0
	if _, err := dev.PlanConvChain(bad, 1, gpu.Int8); err == nil || err.Error() != "gpu/cpu: planning 2 convolutions in int8: layer 0 has no input range (in_max 0); an int8 chain needs one" {
		t.Errorf("int8 chain without an input range: %v", err)
	}
	bad = slices.Clone(layers)
	bad[1].Weight = bad[1].Weight[1:]
	if _, err := dev.PlanConvChain(bad, 1, gpu.Float32); err == nil || err.Error() != "gpu/cpu: chain layer 1: weight 287 and bias 32 values, want 288 and 32" {
		t.Errorf("short weight: %v", err)
	}
	bad = slices.Clone(layers[:4])
	for _, p := range []gpu.Precision{gpu.Float32, gpu.Int8} {
		for _, r := range []int{1, 3, 7} { // adjacent, later, beyond the chain
			bad[2].Residual = r
			want := fmt.Sprintf("gpu/cpu: planning 4 convolutions in %s: layer 2 adds layer %d's output, which is not an earlier, same-shaped, non-adjacent layer's (or layer 2 is the last)", p, r)
			if _, err := dev.PlanConvChain(bad, 1, p); err == nil || err.Error() != want {
				t.Errorf("%s, residual from layer %d: %v", p, r, err)
			}
		}
	}
	chain, err := dev.PlanConvChain(layers, 1, gpu.Float32)
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	p := layers[0].P
	in, out := dev.Alloc(2*p.H*p.W*p.C), dev.Alloc(2*7*7*1280)
	if err := chain.Run(out, in, 2); err == nil || err.Error() != "gpu/cpu: batch of 2 images; this chain takes 1 to 1" {
		t.Errorf("batch of 2: %v", err)
	}
}

// fastness is a CPU device that says whether bfloat16 is fast as told.
type fastness struct {
	*cpu.Device
	fast bool
}

func (d fastness) FastBFloat16() bool { return d.fast }

// Precision auto is bfloat16 on a device that computes it fast, float32
// elsewhere.
func TestAutoPrecisionFollowsTheDevice(t *testing.T) {
	w, err := ImportFile(modelFile(t, quantModel))
	if err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(1)
	defer dev.Close()
	for _, fast := range []bool{false, true} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			if fast && !gpu.NativeBFloat16(dev) {
				t.Skip("this CPU has neither AMX nor AVX512-BF16: bfloat16 is not planned here")
			}
			e, err := New(fastness{dev, fast}, w, 1, PrecisionAuto)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if want := map[bool]gpu.Precision{false: gpu.Float32, true: gpu.BFloat16}[fast]; e.Precision() != want {
				t.Errorf("auto on a device fast at bfloat16 %v: %s, want %s", fast, e.Precision(), want)
			}
		})
	}
}
