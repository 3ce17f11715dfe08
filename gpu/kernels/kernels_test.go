package kernels

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
)

// TestPTXMatchesSources checks that the committed PTX has exactly the kernels
// declared in the .cu sources, each with parameters of the sizes Device passes.
// Without a GPU, this is what ties the emulator-tested launches to the GPU's
// module: a kernel whose parameters changed without `make ptx` fails here.
func TestPTXMatchesSources(t *testing.T) {
	sigs, err := Signatures()
	if err != nil {
		t.Fatal(err)
	}
	entryRe := regexp.MustCompile(`(?s)\.visible \.entry (\w+)\((.*?)\)`)
	paramRe := regexp.MustCompile(`\.param \.(\w+) `)
	ptx := map[string]string{}
	for _, m := range entryRe.FindAllStringSubmatch(PTX, -1) {
		var kinds []string
		for _, p := range paramRe.FindAllStringSubmatch(m[2], -1) {
			kinds = append(kinds, p[1])
		}
		ptx[m[1]] = strings.Join(kinds, " ")
	}
	ptxType := map[Kind]string{Pointer: "u64", Uint64: "u64", Int: "u32", Float: "f32"}
	for _, s := range sigs {
		var want []string
		for _, p := range s.Params {
			want = append(want, ptxType[p.Kind])
		}
		got, ok := ptx[s.Name]
		if !ok {
			t.Errorf("kernel %s is not in kernels.ptx: run `make ptx`", s.Name)
			continue
		}
		if got != strings.Join(want, " ") {
			t.Errorf("kernel %s: PTX parameters %q, sources declare %q: run `make ptx`", s.Name, got, strings.Join(want, " "))
		}
		delete(ptx, s.Name)
	}
	for name := range ptx {
		t.Errorf("kernels.ptx has kernel %s, which the sources no longer declare: run `make ptx`", name)
	}
	if len(sigs) < 20 {
		t.Errorf("parsed only %d kernels from the sources", len(sigs))
	}
}

// TestConstantsMatchCommon checks the constants shared by Go and common.cuh.
func TestConstantsMatchCommon(t *testing.T) {
	src, err := Source("common.cuh")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"BLOCK":       Block,
		"ACT_NONE":    int(gpu.ActNone),
		"ACT_RELU":    int(gpu.ActReLU),
		"ACT_RELU6":   int(gpu.ActReLU6),
		"ACT_TANH":    int(gpu.ActTanh),
		"ACT_SIGMOID": int(gpu.ActSigmoid),
	}
	for name, v := range want {
		m := regexp.MustCompile(`(?m)^#define ` + name + ` (\d+)$`).FindStringSubmatch(src)
		if m == nil {
			t.Errorf("common.cuh does not #define %s", name)
			continue
		}
		if got, _ := strconv.Atoi(m[1]); got != v {
			t.Errorf("common.cuh defines %s as %d, Go uses %d", name, got, v)
		}
	}
	if Block&(Block-1) != 0 {
		t.Errorf("Block %d is not a power of two", Block)
	}
}

// TestSignatures checks the parse of a few declarations by hand.
func TestSignatures(t *testing.T) {
	sigs, err := Signatures()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range sigs {
		var ps []string
		for _, p := range s.Params {
			ps = append(ps, fmt.Sprintf("%s %s %c", p.Type, p.Name, p.Kind))
		}
		got[s.Name] = fmt.Sprintf("%v: %s", s.Cooperative, strings.Join(ps, ", "))
	}
	for name, want := range map[string]string{
		"dropout":     "false: float * out p, float * mask p, const float * x p, int n i, float p f, float keep f, unsigned long long seed u",
		"sum_squares": "true: double * partial p, const float * x p, int n i",
		"topk":        "true: int * idx p, float * val p, const float * x p, int rows i, int cols i, int k i",
	} {
		if got[name] != want {
			t.Errorf("%s parsed as\n%q, want\n%q", name, got[name], want)
		}
	}
}

// TestPTXLoadsOnEveryDriverAndGPU checks what the driver's JIT needs of the
// module: an ISA version that the oldest supported driver (R520, CUDA 11.8:
// ISA 7.8) reads, so every newer one (driver 580, CUDA 13: up to ISA 9.0) does
// too, and a target no newer than Volta, which the JIT compiles forward to
// every later GPU (Hopper's sm_90 included).
func TestPTXLoadsOnEveryDriverAndGPU(t *testing.T) {
	major, minor, target, err := PTXVersion()
	if err != nil {
		t.Fatal(err)
	}
	if major*10+minor > 78 {
		t.Errorf("kernels.ptx is PTX ISA %d.%d: drivers older than its CUDA version refuse it; generate it with CUDA 11.8's nvcc", major, minor)
	}
	if target != 70 {
		t.Errorf("kernels.ptx targets sm_%d, want sm_70 (ptx.mk's compute_70): GPUs below the target cannot load it", target)
	}
	if line := fmt.Sprintf("\n.version %d.%d\n", major, minor); !strings.Contains(PTX, line) {
		t.Errorf("PTXVersion() = %d.%d, but kernels.ptx has no line %q", major, minor, strings.TrimSpace(line))
	}
	if got := PTXTarget(); got != fmt.Sprintf("PTX ISA %d.%d for sm_%d", major, minor, target) {
		t.Errorf("PTXTarget() = %q", got)
	}
}
