//go:build cgo && !purecpu

package cpu

/*
#cgo CFLAGS: -O2 -std=gnu11
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdlib.h>
#include <malloc.h>
#include <oneapi/dnnl/dnnl.h>
#include "convnet.h"
#include "fusedblock.h"
#include "bf16rate.h"

// cap_has_isa is nonzero when oneDNN runs the instructions of want on this CPU.
static int cap_has_isa(dnnl_cpu_isa_t want) {
	unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
	return (isa & (unsigned)want) == (unsigned)want;
}
*/
import "C"

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/captioner/captioner/gpu"
)

// errLen is the size of the buffer the C side writes its error messages into.
const errLen = 512

// NativeBFloat16 reports whether oneDNN computes bfloat16 in hardware here
// (AVX512-BF16 or AMX) rather than emulating it.
func (d *Device) NativeBFloat16() bool { return C.cap_has_isa(C.dnnl_cpu_isa_avx512_core_bf16) != 0 }

// FastBFloat16 reports whether the encoder's chain runs faster in bfloat16
// than in float32 here: with AMX, whose tile multiplies ran it 2-3x faster, or
// where AVX512-BF16's dot product does at least minBF16DotSpeedup times the
// multiply-adds a second of float32 FMAs. Having the instruction is not
// enough: on an Intel Xeon without AMX it does as many as FMAs, and the
// bfloat16 chain ran slower than float32's (82-100 against 141-152 images per
// CPU-second, batch 1, 2 threads); on AMD's Zen 4 it does twice as many, and
// the chain ran 1.9x float32's (264 against 140).
func (d *Device) FastBFloat16() bool {
	fast, _ := d.bfloat16Verdict()
	return fast
}

// BFloat16Why says, for logs, why FastBFloat16 holds here or not.
func (d *Device) BFloat16Why() string {
	_, why := d.bfloat16Verdict()
	return why
}

// bfloat16Verdict is FastBFloat16's answer and its reason, decided in one place.
func (d *Device) bfloat16Verdict() (fast bool, why string) {
	switch {
	case C.cap_has_isa(C.dnnl_cpu_isa_avx512_core_amx) != 0:
		return true, "AMX"
	case !d.NativeBFloat16():
		return false, "no AVX512-BF16"
	}
	rate := bf16DotSpeedup()
	return rate >= minBF16DotSpeedup, fmt.Sprintf("AVX512-BF16 dot products do %.2fx the multiply-adds a second of float32 FMAs (bfloat16 from %.1fx)",
		rate, minBF16DotSpeedup)
}

// minBF16DotSpeedup is the least bf16DotSpeedup at which bfloat16 is worth
// its rounding: halfway between the CPUs measured (1x and 2x).
const minBF16DotSpeedup = 1.5

// bf16DotSpeedup measures, once a process (about a millisecond), how many
// more multiply-adds a second AVX512-BF16's dot product does than float32
// FMAs. Call it only where NativeBFloat16 holds.
var bf16DotSpeedup = sync.OnceValue(func() float64 { return float64(C.cap_bf16_dot_speedup()) })

// convChain is a chain of convolutions planned by oneDNN (convnet.c): one copy
// per device thread, each computing its share of a batch's images on its own
// thread, so that no thread waits for another inside a layer (see convnet.c).
// The copies share one set of weights.
type convChain struct {
	dev       *Device
	parts     []*C.cap_convnet
	layers    []gpu.ConvLayer
	precision gpu.Precision
	maxBatch  int
	ran       bool // whether a run has made the plans whose kernels Describe names
	// splitErr says why a lone image's halves (runSplit) could not be
	// planned; the chain then runs it whole, on one thread.
	splitErr error
}

// chainImages is how many images a chain copy runs through the network at a
// time: one. A larger share is run image by image, so that a copy's activations
// (three buffers of the largest layer output, 112x112x96: 4.8 MB each in
// float32) stay the same whatever the batch, and so do its plans: one, instead
// of one per batch size. Batch size did not change the speed: 111-122
// images per CPU-second at batch 32 whether run 1, 2, 4 or 16 images at a time.
const chainImages = 1

// PlanConvChain copies the layers' weights into oneDNN's formats, once for the
// chain's copies (one per device thread), for batches of up to maxBatch images.
func (d *Device) PlanConvChain(layers []gpu.ConvLayer, maxBatch int, p gpu.Precision) (gpu.ConvChain, error) {
	types := map[gpu.Precision]C.int{gpu.Float32: C.CAP_F32, gpu.BFloat16: C.CAP_BF16, gpu.Int8: C.CAP_INT8}
	typ, ok := types[p]
	if !ok {
		return nil, fmt.Errorf("gpu/cpu: precision %q: want %s, %s or %s", p, gpu.Float32, gpu.BFloat16, gpu.Int8)
	}
	// The layer table and the weights it points to are in C memory: cgo forbids
	// passing Go memory that holds Go pointers.
	specs := unsafe.Slice((*C.cap_conv_layer)(C.calloc(C.size_t(max(len(layers), 1)), C.sizeof_cap_conv_layer)), len(layers))
	defer C.free(unsafe.Pointer(unsafe.SliceData(specs)))
	var pinner runtime.Pinner
	defer pinner.Unpin()
	for i, l := range layers {
		q := l.P
		oc := q.OC
		want := q.KH * q.KW * q.C * oc
		if l.Depthwise {
			want = q.KH * q.KW * q.C
		}
		if len(l.Weight) != want || len(l.Bias) != oc {
			return nil, fmt.Errorf("gpu/cpu: chain layer %d: weight %d and bias %d values, want %d and %d", i, len(l.Weight), len(l.Bias), want, oc)
		}
		pinner.Pin(&l.Weight[0])
		pinner.Pin(&l.Bias[0])
		specs[i] = C.cap_conv_layer{
			depthwise: cBool(l.Depthwise),
			h:         C.int(q.H), w: C.int(q.W), c: C.int(q.C), oc: C.int(oc), kh: C.int(q.KH), kw: C.int(q.KW),
			stride_h: C.int(q.StrideH), stride_w: C.int(q.StrideW), pad_top: C.int(q.PadTop), pad_left: C.int(q.PadLeft),
			oh: C.int(q.OH), ow: C.int(q.OW), act: C.int(l.Act), residual: C.int(l.Residual),
			weight: ptr(l.Weight), bias: ptr(l.Bias), in_max: C.float(l.InMax), out_max: C.float(l.OutMax), weight_step: C.float(l.WeightStep),
		}
	}
	// The chain keeps the layers' shapes only: oneDNN copies the weights when
	// the chain is created, and a served encoder should not hold a second
	// float32 copy of them (about 9 MB for MobileNetV2) for its lifetime.
	shapes := make([]gpu.ConvLayer, len(layers))
	for i, l := range layers {
		l.Weight, l.Bias = nil, nil
		shapes[i] = l
	}
	c := &convChain{dev: d, layers: shapes, precision: p}
	if maxBatch <= 0 {
		return nil, fmt.Errorf("gpu/cpu: chain for a batch of %d images; want at least 1", maxBatch)
	}
	c.maxBatch = maxBatch
	for i := range min(d.threads, maxBatch) {
		var msg [errLen]C.char
		var net *C.cap_convnet
		if i == 0 {
			net = C.cap_convnet_create(&specs[0], C.int(len(layers)), typ, chainImages, &msg[0], errLen)
		} else {
			net = C.cap_convnet_share(c.parts[0], &msg[0], errLen)
		}
		if net == nil {
			c.Close()
			return nil, fmt.Errorf("gpu/cpu: planning %d convolutions in %s: %s", len(layers), p, C.GoString(&msg[0]))
		}
		c.parts = append(c.parts, net)
	}
	return c, nil
}

func cBool(b bool) C.int { return C.int(btoi(b)) }

// Run implements gpu.ConvChain: the n images are split evenly over the parts,
// which run at the same time, part 0 on the calling goroutine. Each part runs
// its images chainImages at a time. A lone image runs on two threads in halves
// (runSplit), or whole where its halves could not be planned.
func (c *convChain) Run(out, in gpu.Buf, n int) error {
	if n <= 0 || n > c.maxBatch {
		return fmt.Errorf("gpu/cpu: batch of %d images; this chain takes 1 to %d", n, c.maxBatch)
	}
	first, last := c.layers[0].P, c.layers[len(c.layers)-1].P
	inLen, outLen := first.H*first.W*first.C, last.OH*last.OW*last.OC
	o := c.dev.need(out, n*outLen, "chain output")
	x := c.dev.need(in, n*inLen, "chain input")
	if n == 1 && c.dev.threads >= 2 && c.splitErr == nil {
		err := c.runSplit(o, x, 2)
		pe, ok := err.(splitPlanError)
		if !ok {
			return err
		}
		c.splitErr = pe.error // Describe reports it too
		slog.Warn("gpu/cpu: a lone image runs whole, on one thread", "why", pe.error)
	}
	k := min(len(c.parts), n)
	errs := make([]error, k)
	run := func(i int) {
		var msg [errLen]C.char
		for lo, end := i*n/k, (i+1)*n/k; lo < end; lo += chainImages {
			hi := min(end, lo+chainImages)
			if C.cap_convnet_run(c.parts[i], C.int(hi-lo), ptr(o[lo*outLen:hi*outLen]), ptr(x[lo*inLen:hi*inLen]), &msg[0], errLen) != 0 {
				errs[i] = errors.New("gpu/cpu: " + C.GoString(&msg[0]))
				return
			}
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < k; i++ {
		wg.Go(func() { run(i) })
	}
	run(0)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.ran = true
	return nil
}

// runSplit runs one image on threads (1 or 2) of the device's threads, each
// layer's output rows (a pointwise layer's pixels) in two halves (see split in
// convnet.c): a lone image is
// the server's batch at light load, and the latency of a single caption. On
// one thread the halves run one after the other, as they do when the second
// thread comes late.
func (c *convChain) runSplit(out, in []float32, threads int) error {
	var pinner runtime.Pinner // the C side keeps both pointers until the halves are done
	defer pinner.Unpin()
	pinner.Pin(&out[0])
	pinner.Pin(&in[0])
	var msg [errLen]C.char
	if C.cap_convnet_split_begin(c.parts[0], ptr(out), ptr(in), &msg[0], errLen) != 0 {
		return splitPlanError{errors.New("gpu/cpu: planning a lone image's halves: " + C.GoString(&msg[0]))}
	}
	var errs [2]error
	c.dev.parallel(threads, 1, func(lo, _ int) {
		var msg [errLen]C.char
		if C.cap_convnet_run_split(c.parts[0], &msg[0], errLen) != 0 {
			errs[lo] = errors.New("gpu/cpu: " + C.GoString(&msg[0]))
		}
	})
	if err := cmp.Or(errs[0], errs[1]); err != nil {
		return err
	}
	c.ran = true
	return nil
}

// splitPlanError is runSplit's error when the halves could not be planned,
// which the whole-image path does not need.
type splitPlanError struct{ error }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fusedBlocksUsable reports whether this build and CPU fuse a float32 chain's
// widest blocks (convnet.c's fuse_blocks): GCC 10 or later on x86-64, and AVX-512F.
func fusedBlocksUsable() bool { return C.cap_fused_block_usable() != 0 }

// Describe names oneDNN, the precision and the distinct kernels of the last run
// (none before the first run).
func (c *convChain) Describe() string {
	v := C.dnnl_version()
	seen := map[string]bool{}
	var impls []string
	var buf [128]C.char
	for i := range c.layers {
		if !c.ran {
			break
		}
		C.cap_convnet_impl(c.parts[0], chainImages, C.int(i), &buf[0], C.int(len(buf)))
		if s := C.GoString(&buf[0]); s != "" && !seen[s] {
			seen[s] = true
			impls = append(impls, s)
		}
	}
	threads, lone := len(c.parts), ""
	switch {
	case c.splitErr != nil:
		lone = fmt.Sprintf("; a lone image on one thread (%v)", c.splitErr)
	case c.dev.threads >= 2:
		threads = max(threads, 2) // a lone image's halves (runSplit)
	}
	return fmt.Sprintf("oneDNN %d.%d.%d %s, %d threads [%s]%s", v.major, v.minor, v.patch, c.precision, threads, strings.Join(impls, " "), lone)
}

// Close frees the plans and hands the freed memory back to the system.
func (c *convChain) Close() {
	for _, net := range c.parts {
		C.cap_convnet_destroy(net)
	}
	c.parts = nil
	// The plans' weights and activations were allocated by oneDNN from whichever
	// threads planned and ran them, so they lie in several glibc malloc arenas,
	// which keep freed memory for reuse: without a trim a server's RSS more than
	// doubled over 100 model reloads (169 MB to 362 MB) while nothing leaked.
	C.malloc_trim(0)
}
