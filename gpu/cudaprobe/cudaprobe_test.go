package cudaprobe

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu/cuda/fakedriver"
)

func TestProbeMissingLibrary(t *testing.T) {
	_, err := Probe("libcaptioner-no-such-lib.so.1")
	if err == nil || !strings.Contains(err.Error(), "libcaptioner-no-such-lib.so.1") {
		t.Fatalf("probe of a missing library: error %v, want one naming the library", err)
	}
}

// TestProbeErrorsUnderConcurrency probes a missing library from many goroutines
// at once, with more threads than cores, so goroutines move between threads all
// the time: every error must still carry the loader's own message. dlerror's
// message belongs to the thread that failed, so a probe that read it on
// another thread (purego calls dlopen and dlerror separately) got an empty or
// foreign one (about 1 in 1,000 single probes, more under this load).
func TestProbeErrorsUnderConcurrency(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(16))
	const goroutines, probes = 32, 300
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			lib := fmt.Sprintf("libcaptioner-no-such-lib-%d.so.1", g)
			want := lib + ": cannot open shared object file"
			for range probes {
				runtime.Gosched()
				if _, err := Probe(lib); err == nil || !strings.Contains(err.Error(), want) {
					errs <- fmt.Errorf("Probe(%s): error %v, want one containing %q", lib, err, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestProbeLibraryWithoutCUDA(t *testing.T) {
	_, err := Probe("libm.so.6")
	if err == nil || !strings.Contains(err.Error(), "libm.so.6: ") || !strings.Contains(err.Error(), "cuInit") {
		t.Fatalf("probe of libm: error %v, want one saying libm.so.6 has no cuInit", err)
	}
}

func TestProbeThisMachine(t *testing.T) {
	n, err := Probe(Driver)
	if err == nil {
		if n < 1 {
			t.Fatalf("Probe found %d GPUs without an error", n)
		}
		t.Logf("Probe found %d GPU(s)", n)
		return
	}
	if n != 0 || !strings.HasPrefix(err.Error(), "libcuda.so.1: ") {
		t.Fatalf("Probe = %d, %v; want 0 and an error about libcuda.so.1", n, err)
	}
	t.Logf("Probe: %v", err)
}

// TestProbeFakeDriver probes a driver with one device, which stays loaded
// after the probe: a driver initialized by cuInit may run threads in its code.
func TestProbeFakeDriver(t *testing.T) {
	lib := filepath.Join(fakedriver.ForTest(t, ".."), "libcuda.so.1")
	if n, err := Probe(lib); n != 1 || err != nil {
		t.Fatalf("probe of a driver with one device = %d, %v", n, err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	if !strings.Contains(string(maps), lib) {
		t.Errorf("%s is no longer mapped after the probe: the initialized driver was unloaded", lib)
	}
}

// stubDriver builds a libcuda.so.1 whose cuInit returns initResult and whose
// cuDeviceGetCount reports count devices and returns countResult.
func stubDriver(t *testing.T, initResult, count, countResult int) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "stub.c")
	code := fmt.Sprintf("int cuInit(unsigned f) { return %d; }\nint cuDeviceGetCount(int *n) { *n = %d; return %d; }\n", initResult, count, countResult)
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "libcuda.so.1")
	if err := fakedriver.CompileShared("-o", lib, src); err != nil {
		t.Fatalf("building the stub driver: %v", err)
	}
	return lib
}

// A driver that fails, or has no device, is no GPU, and the error says why
// in the driver's terms.
func TestProbeDriverResults(t *testing.T) {
	for _, tc := range []struct {
		init, count, countResult int
		want                     string // "" for success
	}{
		{0, 2, 0, ""},
		{100, 0, 0, "cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected (100)"},
		{7, 0, 0, "cuInit: CUresult 7"},
		{0, 1, 3, "cuDeviceGetCount: CUDA_ERROR_NOT_INITIALIZED (3)"},
		{0, 0, 0, "the driver reports 0 devices"},
	} {
		lib := stubDriver(t, tc.init, tc.count, tc.countResult)
		n, err := Probe(lib)
		if tc.want == "" {
			if n != tc.count || err != nil {
				t.Errorf("cuInit %d, %d devices: Probe = %d, %v", tc.init, tc.count, n, err)
			}
			continue
		}
		if want := lib + ": " + tc.want; n != 0 || err == nil || err.Error() != want {
			t.Errorf("cuInit %d, %d devices, cuDeviceGetCount %d: Probe = %d, %v; want 0, %q", tc.init, tc.count, tc.countResult, n, err, want)
		}
	}
}
