// Package fakedriver builds stand-ins for the NVIDIA driver library
// (libcuda.so.1) and cuBLAS (libcublas.so.N) from gpu/cuda/testdata/fakedriver,
// for tests on machines without a GPU: found by the loader (LD_LIBRARY_PATH,
// cuda.library_path), they let the CUDA build of captioner start and run its
// kernels in gpu/cudaemu's emulator. See gpu/README.md.
package fakedriver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Stubs is where Debian's nvidia-cuda-dev puts the toolkit's stub libcuda.so,
// which the CUDA build links against on machines without a driver.
const Stubs = "/usr/lib/x86_64-linux-gnu/stubs"

// CublasSoname and CublasVersion are the cuBLAS that Build makes: the newest
// the backend loads, so that it is preferred over a real older one on the
// machine.
const (
	CublasSoname  = "libcublas.so.13"
	CublasVersion = 130100
)

// Toolkit returns nil when the CUDA toolkit's headers and stub library, which the
// CUDA build and the stand-ins need, are installed.
func Toolkit() error {
	for _, f := range []string{"/usr/include/cuda.h", "/usr/include/cublas_v2.h", filepath.Join(Stubs, "libcuda.so")} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("the CUDA toolkit is not installed (apt-get install nvidia-cuda-dev): %w", err)
		}
	}
	return nil
}

// ForTest builds the stand-ins into a new temporary folder of t and returns
// it, or skips t where the CUDA toolkit is missing; gpuDir is the
// repository's gpu folder, relative to the test's package.
func ForTest(t testing.TB, gpuDir string) string {
	t.Helper()
	if err := Toolkit(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := Build(dir, gpuDir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Build compiles libcuda.so.1 and CublasSoname into dir; gpuDir is the
// repository's gpu folder.
func Build(dir, gpuDir string) error {
	src := filepath.Join(gpuDir, "cuda", "testdata", "fakedriver")
	if err := CompileShared("-I"+filepath.Join(gpuDir, "cudaemu"), "-o", filepath.Join(dir, "libcuda.so.1"), "-Wl,-soname,libcuda.so.1",
		filepath.Join(src, "fakecuda.c"), "-lm"); err != nil {
		return err
	}
	return BuildCublas(dir, gpuDir, CublasSoname, CublasVersion)
}

// BuildCublas compiles a stand-in cuBLAS into dir/soname that reports version
// (cuBLAS's number: major*10000 + minor*100 + patch).
func BuildCublas(dir, gpuDir, soname string, version int) error {
	src := filepath.Join(gpuDir, "cuda", "testdata", "fakedriver", "fakecublas.c")
	return CompileShared(fmt.Sprintf("-DFAKE_CUBLAS_VERSION=%d", version), "-o", filepath.Join(dir, soname), "-Wl,-soname,"+soname, src)
}

// CompileShared builds a shared library with $CC (else cc); args name the
// sources, the output and any other flags.
func CompileShared(args ...string) error {
	compiler := os.Getenv("CC")
	if compiler == "" {
		compiler = "cc"
	}
	cmd := exec.Command(compiler, append([]string{"-shared", "-fPIC", "-O2", "-Wall"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %w\n%s", cmd, err, out)
	}
	return nil
}
