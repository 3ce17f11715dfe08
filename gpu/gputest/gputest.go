// Package gputest is the kernel test suite every gpu.Device backend runs: each
// kernel against a plain float64 reference loop in ref.go, each backward kernel
// against central finite differences of the device's own forward kernel.
//
// Every buffer a kernel sees is a Slice view at an odd offset inside a larger
// allocation whose guard elements must survive, every input must come back
// unchanged, and every write-only output starts as NaN so a kernel that reads
// it instead of writing it fails.
package gputest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// Run runs the whole suite against dev.
func Run(t *testing.T, dev gpu.Device) {
	t.Logf("device: %s", dev.Name())
	tests := []struct {
		name string
		fn   func(*testing.T, gpu.Device)
	}{
		{"Memory", testMemory},
		{"Panics", testPanics},
		{"Gemm", testGemm},
		{"GemmNoInner", testGemmNoInner},
		{"GemmStridedBatched", testGemmStridedBatched},
		{"PackWeight", testPackWeight},
		{"Conv2D", testConv2D},
		{"DepthwiseConv2D", testDepthwiseConv2D},
		{"DepthwiseConv2DBackward", testDepthwiseConv2DBackward},
		{"ConvChainInt8", testConvChainInt8},
		{"GlobalAvgPool", testGlobalAvgPool},
		{"BiasAct", testBiasAct},
		{"BiasActBackward", testBiasActBackward},
		{"Elementwise", testElementwise},
		{"SumSquares", testSumSquares},
		{"LSTMCellForward", testLSTMCellForward},
		{"LSTMCellBackward", testLSTMCellBackward},
		{"Softmax", testSoftmax},
		{"SoftmaxBackward", testSoftmaxBackward},
		{"CrossEntropy", testCrossEntropy},
		{"CrossEntropyGradient", testCrossEntropyGradient},
		{"Embedding", testEmbedding},
		{"EmbeddingBackward", testEmbeddingBackward},
		{"AttentionScores", testAttentionScores},
		{"AttentionScoresBackward", testAttentionScoresBackward},
		{"AttentionExp", testAttentionExp},
		{"AttentionScoresExp", testAttentionScoresExp},
		{"Dropout", testDropout},
		{"AdamW", testAdamW},
		{"Argmax", testArgmax},
		{"TopK", testTopK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, dev) })
	}
}

// guard is the number of elements around every view, odd so views are misaligned.
const guard = 5

// sentinel fills the guard elements.
const sentinel = -777.25

// harness hands out guarded views and checks guards and inputs in done.
type harness struct {
	t       *testing.T
	dev     gpu.Device
	rng     *rand.Rand
	parents []gpu.Buf
	inputs  []input
}

type input struct {
	view gpu.Buf
	host []float32
}

func newHarness(t *testing.T, dev gpu.Device, seed uint64) *harness {
	t.Helper()
	h := &harness{t: t, dev: dev, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	t.Cleanup(h.done)
	return h
}

// buf returns a view holding host inside a guarded allocation.
func (h *harness) buf(host []float32) gpu.Buf {
	n := len(host)
	all := make([]float32, n+2*guard)
	for i := range all {
		all[i] = sentinel
	}
	copy(all[guard:], host)
	p := h.dev.Alloc(len(all))
	h.dev.Upload(p, all)
	h.parents = append(h.parents, p)
	return p.Slice(guard, n)
}

// in returns a view of host that done checks is unchanged.
func (h *harness) in(host []float32) gpu.Buf {
	b := h.buf(host)
	h.inputs = append(h.inputs, input{b, append([]float32(nil), host...)})
	return b
}

// out returns a view of n NaNs for a write-only output.
func (h *harness) out(n int) gpu.Buf { return h.buf(nans(n)) }

// get downloads b.
func (h *harness) get(b gpu.Buf) []float32 {
	h.t.Helper()
	s := make([]float32, b.Len())
	if err := h.dev.Download(s, b); err != nil {
		h.t.Fatalf("Download: %v", err)
	}
	return s
}

// done checks the guards of every allocation and that inputs are unchanged.
func (h *harness) done() {
	t := h.t
	for i, in := range h.inputs {
		got := h.get(in.view)
		for j := range got {
			if !same(got[j], in.host[j]) {
				t.Errorf("input %d was modified: element %d is %v, was %v", i, j, got[j], in.host[j])
				break
			}
		}
	}
	for i, p := range h.parents {
		all := h.get(p)
		for j := range all {
			if (j < guard || j >= len(all)-guard) && all[j] != sentinel {
				t.Errorf("buffer %d: guard element %d of %d overwritten with %v: a kernel wrote outside its view", i, j, len(all), all[j])
				break
			}
		}
		h.dev.Free(p)
	}
	h.parents, h.inputs = nil, nil
}

// same reports whether a and b are equal or both NaN.
func same(a, b float32) bool { return a == b || a != a && b != b }

// uniform returns n numbers uniform in [lo, hi).
func (h *harness) uniform(n int, lo, hi float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(lo + (hi-lo)*h.rng.Float64())
	}
	return s
}

func nans(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

// tolerance returns atol + rtol*|want[i]| for each element.
func tolerance(want []float64, atol, rtol float64) []float64 {
	tol := make([]float64, len(want))
	for i, w := range want {
		tol[i] = atol + rtol*math.Abs(w)
	}
	return tol
}

// near fails t unless |got[i] - want[i]| <= tol[i] for all i (NaN equals NaN),
// reporting the max abs diff and the worst element.
func near(t *testing.T, what string, got []float32, want, tol []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d elements, want %d", what, len(got), len(want))
	}
	maxDiff, worst, bad := 0.0, -1, 0
	for i := range got {
		g, w := float64(got[i]), want[i]
		if math.IsNaN(g) && math.IsNaN(w) {
			continue
		}
		diff := math.Abs(g - w)
		if math.IsNaN(diff) {
			diff = math.Inf(1)
		}
		if diff > maxDiff {
			maxDiff = diff
		}
		if !(diff <= tol[i]) {
			bad++
			if worst < 0 || diff-tol[i] > math.Abs(float64(got[worst])-want[worst])-tol[worst] {
				worst = i
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements off, max abs diff %.3g; worst [%d] got %v want %v (tol %.3g)",
			what, bad, len(got), maxDiff, worst, got[worst], want[worst], tol[worst])
	}
}

// mustPanic fails t unless fn panics.
func mustPanic(t *testing.T, what string, fn func()) { mustPanicWith(t, what, "", fn) }

// mustPanicWith fails t unless fn panics with a value that says want: a
// guard's own panic, not another check's that happens to come first.
func mustPanicWith(t *testing.T, what, want string, fn func()) {
	t.Helper()
	defer func() {
		r := recover()
		switch {
		case r == nil:
			t.Errorf("%s did not panic", what)
		case !strings.Contains(fmt.Sprint(r), want):
			t.Errorf("%s panicked with %q, which does not say %q", what, fmt.Sprint(r), want)
		}
	}()
	fn()
}

func actName(a gpu.Act) string {
	return [...]string{"none", "relu", "relu6", "tanh", "sigmoid"}[a]
}

var allActs = []gpu.Act{gpu.ActNone, gpu.ActReLU, gpu.ActReLU6, gpu.ActTanh, gpu.ActSigmoid}

// trainActs are the activations with a backward: all of them.
var trainActs = allActs

func name(format string, args ...any) string { return fmt.Sprintf(format, args...) }
