// Package fakedriver builds stand-ins for the NVIDIA driver library
// (libcuda.so.1) and cuBLAS (libcublas.so.11) from gpu/cuda/testdata/fakedriver,
// for tests on machines without a GPU: on LD_LIBRARY_PATH, they let the CUDA
// build of captioner start and run its kernels in gpu/cudaemu's emulator. See
// gpu/README.md.
package fakedriver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Stubs is where Debian's nvidia-cuda-dev puts the toolkit's stub libcuda.so,
// which the CUDA build links against on machines without a driver.
const Stubs = "/usr/lib/x86_64-linux-gnu/stubs"

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

// Build compiles libcuda.so.1 and libcublas.so.11 into dir; gpuDir is the
// repository's gpu folder.
func Build(dir, gpuDir string) error {
	src := filepath.Join(gpuDir, "cuda", "testdata", "fakedriver")
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	for _, args := range [][]string{
		{"-I" + filepath.Join(gpuDir, "cudaemu"), "-o", filepath.Join(dir, "libcuda.so.1"), "-Wl,-soname,libcuda.so.1",
			filepath.Join(src, "fakecuda.c"), "-lm"},
		{"-o", filepath.Join(dir, "libcublas.so.11"), "-Wl,-soname,libcublas.so.11",
			"-Wl,--version-script=" + filepath.Join(src, "cublas.map"), filepath.Join(src, "fakecublas.c")},
	} {
		cmd := exec.Command(cc, append([]string{"-shared", "-fPIC", "-O2", "-Wall"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %w\n%s", cmd, err, out)
		}
	}
	return nil
}
