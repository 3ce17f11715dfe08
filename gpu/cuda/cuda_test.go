//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cuda/cublas"
	"github.com/captioner/captioner/gpu/cuda/fakedriver"
	"github.com/captioner/captioner/gpu/gputest"
	"github.com/captioner/captioner/gpu/kernels"
)

// TestKernels runs the shared kernel suite on GPU 0. The test binary can only
// start on a machine with a GPU (see the package comment); elsewhere the
// untagged TestSuiteOnGPU reports the suite as skipped.
func TestKernels(t *testing.T) {
	dev, err := Open(0, gpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	t.Logf("device: %s", dev.Name())
	gputest.Run(t, dev)
}

// TestTF32 opens the GPU with its float32 GEMMs on tensor cores: the device
// says so (or that its GPU has none), and a product still comes out right (to TF32's precision on a GPU;
// exactly under the stand-in cuBLAS).
func TestTF32(t *testing.T) {
	dev, err := Open(0, gpu.Options{TF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	// Tensor cores do TF32 from sm_80 (Ampere) on; the emulator is an sm_70.
	var major, minor int
	if _, err := fmt.Sscanf(dev.Name()[strings.Index(dev.Name(), ", sm_")+2:], "sm_%1d%1d", &major, &minor); err != nil {
		t.Fatalf("device %q: no sm_XY in its name: %v", dev.Name(), err)
	}
	suffix := ", TF32 tensor-core GEMMs)"
	if major < 8 {
		suffix = ", cuda.tf32 without effect: no TF32 before sm_80)"
	}
	if !strings.HasSuffix(dev.Name(), suffix) {
		t.Errorf("device %q (sm_%d%d) does not end with %q", dev.Name(), major, minor, suffix)
	}
	// The handle computes in TF32 only when asked to.
	for _, tf32 := range []bool{false, true} {
		d, _ := openDriver(t, gpu.Options{TF32: tf32})
		want := cublas.DefaultMath
		if tf32 {
			want = cublas.TF32Math
		}
		if m, err := d.blas.MathMode(); err != nil || m != want {
			t.Errorf("cuda.tf32 %v: cuBLAS math mode %d, %v; want %d", tf32, m, err, want)
		}
	}
	// C (2, 3) = A (2, 4) B (3, 4)ᵀ.
	a := []float32{1, 2, 3, 4, -1, 0.5, 0, 2}
	b := []float32{1, 0, 0, 1, 0, 1, 1, 0, 2, 2, 2, 2}
	want := []float32{5, 5, 20, 1, 0.5, 3}
	ab, bb, cb := dev.Alloc(len(a)), dev.Alloc(len(b)), dev.Alloc(len(want))
	dev.Upload(ab, a)
	dev.Upload(bb, b)
	dev.Gemm(false, true, 2, 3, 4, 1, ab, 4, bb, 4, 0, cb, 3)
	got := make([]float32, len(want))
	if err := dev.Download(got, cb); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-2*max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("A·Bᵀ = %v, want %v", got, want)
		}
	}
}

// openDriver opens GPU 0's driver as Open does, closed when the test ends, and
// returns it with the kernels' signatures.
func openDriver(t *testing.T, o gpu.Options) (*driver, []kernels.Signature) {
	t.Helper()
	sigs, err := kernels.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDriver(0, sigs, cublas.DefaultSearch(cublas.SplitPath(o.LibraryPath)), o.TF32)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, sigs
}

// fakeOnly skips t unless GPU 0 is the stand-in driver's (package fakedriver),
// whose environment hooks and errors the test relies on.
func fakeOnly(t *testing.T) {
	t.Helper()
	if name, err := cu.Device(0).Name(); err != nil || name != "cudaemu fake GPU" {
		t.Skipf("GPU 0 is %q (%v), not the stand-in driver", name, err)
	}
}

// TestFailuresAreSticky: after the first failure no work reaches the driver,
// and DtoH and Sync report that failure, not a later one.
func TestFailuresAreSticky(t *testing.T) {
	fakeOnly(t)
	d, sigs := openDriver(t, gpu.Options{})
	p, err := d.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	d.Free(p + 4) // not an allocation: InvalidValue
	scale := slices.IndexFunc(sigs, func(s kernels.Signature) bool { return s.Name == "scale" })
	d.Launch(scale, 1, 1, 2048, []uint64{uint64(p), uint64(math.Float32bits(2)), 4}) // blocks too large: LaunchFailed, if it ran
	x := [4]float32{1, 1, 1, 1}
	if err := d.DtoH(unsafe.Pointer(&x[0]), p, 16); !errors.Is(err, cu.InvalidValue) {
		t.Errorf("DtoH after a failed Free: %v, want the Free's %v", err, cu.InvalidValue)
	}
	if err := d.Sync(); !errors.Is(err, cu.InvalidValue) {
		t.Errorf("Sync after a failed Free: %v, want the Free's %v", err, cu.InvalidValue)
	}
	if x != [4]float32{1, 1, 1, 1} {
		t.Errorf("DtoH copied %v after the failure", x)
	}
}

// TestOpenRefuses: GPUs the backend cannot use are refused, saying why.
func TestOpenRefuses(t *testing.T) {
	fakeOnly(t)
	for _, c := range []struct {
		what, ccMajor string
		ordinal       int
		want          string
	}{
		{"a GPU below Volta", "6", 0, "gpu: cudaemu fake GPU has compute capability 6.0; captioner's kernels need 7.0 (Volta) or newer: use device: cpu"},
		{"a GPU that is not there", "", 1, "gpu: no CUDA device 1 (found 1)"},
	} {
		t.Setenv("FAKECUDA_CC_MAJOR", c.ccMajor)
		if _, err := Open(c.ordinal, gpu.Options{}); err == nil || err.Error() != c.want {
			t.Errorf("%s: Open: %v, want %s", c.what, err, c.want)
		}
	}
}

// TestOpenSaysWhatTheJITSaid: a PTX the driver cannot compile is refused
// with the JIT compiler's own log, which names the cause (a driver older
// than the PTX's ISA); cuModuleLoadData gave the error code alone.
func TestOpenSaysWhatTheJITSaid(t *testing.T) {
	fakeOnly(t)
	t.Setenv("FAKECUDA_JIT_ERROR", "ptxas application ptx input, line 5; fatal   : Unsupported .version 7.8; current version is '7.4'\n")
	_, err := Open(0, gpu.Options{})
	want := "(the JIT compiler: ptxas application ptx input, line 5; fatal   : Unsupported .version 7.8; current version is '7.4'); the NVIDIA driver must support CUDA 11.8 (R520 or newer)"
	if err == nil || !strings.HasPrefix(err.Error(), "gpu: loading the kernels' PTX") || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Open: %v, want an error ending %q", err, want)
	}
}

// TestFreeReleases: Free returns the memory to the driver, so freeing it again
// is the driver's error.
func TestFreeReleases(t *testing.T) {
	fakeOnly(t)
	d, _ := openDriver(t, gpu.Options{})
	p, err := d.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	d.Free(p)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Free(p)
	if err := d.Sync(); !errors.Is(err, cu.InvalidValue) {
		t.Errorf("Sync after freeing twice: %v, want %v", err, cu.InvalidValue)
	}
}

// TestCublasForAnOlderDriver: with a CUDA 12.4 driver, cuBLAS 13 (which cannot
// make a handle there) is passed over for cuBLAS 12 in the same folder.
func TestCublasForAnOlderDriver(t *testing.T) {
	fakeOnly(t)
	t.Setenv("FAKECUDA_DRIVER_VERSION", "12040")
	dir := t.TempDir()
	for soname, v := range map[string]int{"libcublas.so.13": 130100, "libcublas.so.12": 120403} {
		if err := fakedriver.BuildCublas(dir, "..", soname, v); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := openDriver(t, gpu.Options{LibraryPath: dir})
	if want := "driver 12.4, cuBLAS 12.4.3 from " + filepath.Join(dir, "libcublas.so.12") + ")"; !strings.HasSuffix(d.Name(), want) {
		t.Errorf("device %q does not end with %q", d.Name(), want)
	}
}
