//go:build cgo && !cuda

package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/gpu/selector"
)

// The cuda-tagged TestKernels cannot run inside this test binary: a binary that
// links gorgonia.org/cu exits in its package init when the driver finds no GPU.
// So the tests here build it with `go test -tags cuda` in a child process, against
// a real GPU when there is one, and against a fake driver always.

// stubs is where Debian's nvidia-cuda-dev puts the toolkit's stub libcuda.so,
// which the CUDA build links against on machines without a driver.
const stubs = "/usr/lib/x86_64-linux-gnu/stubs"

// runTagged runs this package's cuda-tagged TestKernels with extra environment.
func runTagged(t *testing.T, env ...string) {
	t.Helper()
	cmd := exec.Command("go", "test", "-tags", "cuda", "-count=1", "-run", "^TestKernels$", ".")
	cmd.Env = append(os.Environ(), env...)
	if os.Getenv("CGO_LDFLAGS") == "" {
		cmd.Env = append(cmd.Env, "CGO_LDFLAGS=-L"+stubs)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("go test -tags cuda ./gpu/cuda:\n%s", out)
	if err != nil {
		t.Fatalf("the CUDA backend's kernel suite failed: %v", err)
	}
}

// needToolkit skips the test when the CUDA toolkit (nvidia-cuda-dev) is missing.
func needToolkit(t *testing.T) {
	for _, f := range []string{"/usr/include/cuda.h", "/usr/include/cublas_v2.h", filepath.Join(stubs, "libcuda.so")} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("the CUDA toolkit is not installed (apt-get install nvidia-cuda-dev): %v", err)
		}
	}
}

// TestSuiteOnGPU runs the kernel suite on the GPU when this machine has one.
func TestSuiteOnGPU(t *testing.T) {
	n, err := selector.Probe()
	if err != nil {
		t.Skipf("no GPU found (%v): the CUDA kernel suite did not run on a GPU (TestSuiteOnFakeDriver runs it on the emulator)", err)
	}
	needToolkit(t)
	t.Logf("%d GPU(s) found", n)
	runTagged(t)
}

// TestSuiteOnFakeDriver runs the kernel suite through this package's real code
// (gorgonia.org/cu calls, PTX module loading, parameter passing, the row-major
// cuBLAS calls) against stand-ins for libcuda.so.1 and libcublas.so.11 built from
// testdata/fakedriver, which run the kernels in gpu/cudaemu's emulator and SGEMM
// by its column-major definition.
func TestSuiteOnFakeDriver(t *testing.T) {
	needToolkit(t)
	dir := t.TempDir()
	emu, err := filepath.Abs("../cudaemu")
	if err != nil {
		t.Fatal(err)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	for _, args := range [][]string{
		{"-I" + emu, "-o", filepath.Join(dir, "libcuda.so.1"), "-Wl,-soname,libcuda.so.1", "testdata/fakedriver/fakecuda.c", "-lm"},
		{"-o", filepath.Join(dir, "libcublas.so.11"), "-Wl,-soname,libcublas.so.11",
			"-Wl,--version-script=testdata/fakedriver/cublas.map", "testdata/fakedriver/fakecublas.c"},
	} {
		cmd := exec.Command(cc, append([]string{"-shared", "-fPIC", "-O2", "-Wall"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	runTagged(t, "LD_LIBRARY_PATH="+dir)
}
