//go:build cgo && !cuda

package selector

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu/cuda/fakedriver"
)

// These tests use gpu/cuda's stand-in driver (package gpu/cuda/fakedriver, see
// gpu/README.md): a libcuda.so.1 whose cuInit succeeds and which runs kernels in
// the host emulator, so the probe's success path and a complete hand-over into a
// real CUDA build run on machines without a GPU.

// TestHandoverToCUDABuild runs the whole hand-over with real binaries: a copy of
// this test binary as captioner, the cuda-tagged build of it as captioner-cuda,
// and the stand-in driver on LD_LIBRARY_PATH. captioner must find the "GPU" with
// the real probe and exec captioner-cuda, which must start (cu's init succeeds)
// and open the CUDA backend on it. Then, where the driver finds no GPU,
// captioner-cuda must exit before cu's init would, saying why and what to run
// instead (gpu/cuda/needgpu).
func TestHandoverToCUDABuild(t *testing.T) {
	dir := fakedriver.ForTest(t, "..")
	build := exec.Command("go", "test", "-tags", "cuda", "-c", "-o", filepath.Join(dir, CUDABinary), ".")
	build.Env = append(os.Environ(), "CGO_LDFLAGS="+os.Getenv("CGO_LDFLAGS")+" -L"+fakedriver.Stubs)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the CUDA test binary: %v\n%s", err, out)
	}
	exe := copySelf(t, dir)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=real", "LD_LIBRARY_PATH="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr: %s", exe, err, stderr.String())
	}
	name := "cuda (cudaemu fake GPU, sm_70, 1.1 GB, driver 13.0, cuBLAS 13.1.0 from " + filepath.Join(dir, fakedriver.CublasSoname) + ")"
	if want := "opened " + name + "\n"; string(out) != want {
		t.Fatalf("the hand-over printed %q, want %q; stderr: %s", out, want, stderr.String())
	}
	for _, want := range []string{
		`msg="device: handing over to the CUDA build" gpus=1 binary=` + filepath.Join(dir, CUDABinary),
		`msg="device: ` + name + `" why="handed over by the default binary, which found a GPU"`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}

	cuda := exec.Command(filepath.Join(dir, CUDABinary))
	cuda.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir, "FAKECUDA_NO_DEVICE=1")
	var cudaOut, cudaErr strings.Builder
	cuda.Stdout, cuda.Stderr = &cudaOut, &cudaErr
	err = cuda.Run()
	want := CUDABinary + ": no usable NVIDIA GPU (libcuda.so.1: cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected (100)): " +
		"this is the CUDA build, which runs on a GPU only; run captioner, the default build, which runs on the CPU here and hands over to the CUDA build where there is a GPU\n"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || cudaErr.String() != want || cudaOut.Len() != 0 {
		t.Errorf("%s without a GPU: %v, stdout %q, stderr %q; want exit status 1 and stderr %q", CUDABinary, err, cudaOut.String(), cudaErr.String(), want)
	}
}
