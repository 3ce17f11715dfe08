//go:build cgo && !cuda

package cuda

import (
	"os"
	"os/exec"
	"testing"

	"github.com/captioner/captioner/gpu/cuda/fakedriver"
	"github.com/captioner/captioner/gpu/selector"
)

// The cuda-tagged TestKernels cannot run inside this test binary: a binary that
// links gorgonia.org/cu exits in its package init when the driver finds no GPU.
// So the tests here build it with `go test -tags cuda` in a child process, against
// a real GPU when there is one, and against a fake driver always.

// runTagged runs this package's cuda-tagged tests (the kernel suite, the
// tensor-core option, and, on the stand-in driver only, sticky failures, the
// JIT's log, other GPUs and drivers) with extra environment.
func runTagged(t *testing.T, env ...string) {
	t.Helper()
	if err := fakedriver.Toolkit(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command("go", "test", "-tags", "cuda", "-count=1", "-run", "^(TestKernels|TestTF32|TestFailuresAreSticky|TestOpenRefuses|TestOpenSaysWhatTheJITSaid|TestFreeReleases|TestCublasForAnOlderDriver)$", ".")
	// The stub directory goes last: a real driver's libcuda.so found earlier wins.
	cmd.Env = append(os.Environ(), append(env, "CGO_LDFLAGS="+os.Getenv("CGO_LDFLAGS")+" -L"+fakedriver.Stubs)...)
	out, err := cmd.CombinedOutput()
	t.Logf("go test -tags cuda ./gpu/cuda:\n%s", out)
	if err != nil {
		t.Fatalf("the CUDA backend's kernel suite failed: %v", err)
	}
}

// TestSuiteOnGPU runs the kernel suite on the GPU when this machine has one.
func TestSuiteOnGPU(t *testing.T) {
	n, err := selector.Probe()
	if err != nil {
		t.Skipf("no GPU found (%v): the CUDA kernel suite did not run on a GPU (TestSuiteOnFakeDriver runs it on the emulator)", err)
	}
	t.Logf("%d GPU(s) found", n)
	runTagged(t)
}

// TestSuiteOnFakeDriver runs the kernel suite through this package's real code
// (gorgonia.org/cu calls, PTX module loading, parameter passing, the row-major
// cuBLAS calls) against the stand-ins for libcuda.so.1 and libcublas.so.13 of
// package fakedriver, which run the kernels in gpu/cudaemu's emulator and SGEMM
// by its column-major definition.
func TestSuiteOnFakeDriver(t *testing.T) {
	runTagged(t, "LD_LIBRARY_PATH="+fakedriver.ForTest(t, ".."))
}
