// Package cudaprobe asks the NVIDIA driver whether there is a GPU, without
// cgo and without linking the driver: it loads libcuda.so.1 at run time
// (purego) and calls cuInit(0), as gorgonia.org/cu's package init does (and
// exits the process when it fails), and cuDeviceGetCount. The default binary
// probes to decide whether to hand over to the CUDA build (gpu/selector); the
// CUDA build probes before cu's init to say what is missing and what to run
// instead (gpu/cuda/needgpu).
package cudaprobe

import (
	"fmt"
	"runtime"

	"github.com/ebitengine/purego"
)

// Driver is the NVIDIA driver library's soname.
const Driver = "libcuda.so.1"

// Probe returns the number of usable NVIDIA GPUs of the driver library lib
// (Driver, or a path), or the reason there are none.
func Probe(lib string) (int, error) {
	// dlerror's message is per thread, and purego reads it in a call of its own
	// after a failed dlopen or dlsym: a goroutine that moved to another thread in
	// between would read another thread's message, often none. So every dl call
	// here runs on one locked thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return 0, err
	}
	// The library may go until cuInit runs; after it, the driver can have
	// threads of its own running its code, which an unload would pull from
	// under them, so it stays loaded (once a process: the CPU binary goes on
	// without a GPU, or hands over to the CUDA build).
	initialized := false
	defer func() {
		if !initialized {
			purego.Dlclose(h)
		}
	}()
	var cuInit func(flags uint32) int32
	var cuDeviceGetCount func(count *int32) int32
	for _, f := range []struct {
		name string
		fn   any
	}{{"cuInit", &cuInit}, {"cuDeviceGetCount", &cuDeviceGetCount}} {
		sym, err := purego.Dlsym(h, f.name)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", lib, err)
		}
		purego.RegisterFunc(f.fn, sym)
	}
	initialized = true
	if r := cuInit(0); r != 0 {
		return 0, fmt.Errorf("%s: cuInit: %s", lib, cuResult(r))
	}
	var n int32
	if r := cuDeviceGetCount(&n); r != 0 {
		return 0, fmt.Errorf("%s: cuDeviceGetCount: %s", lib, cuResult(r))
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: the driver reports 0 devices", lib)
	}
	return int(n), nil
}

func cuResult(r int32) string {
	if s, ok := cuResults[r]; ok {
		return fmt.Sprintf("%s (%d)", s, r)
	}
	return fmt.Sprintf("CUresult %d", r)
}

// CUDA driver API results that Probe explains by name.
var cuResults = map[int32]string{
	3:   "CUDA_ERROR_NOT_INITIALIZED",
	34:  "CUDA_ERROR_STUB_LIBRARY: libcuda.so.1 is the toolkit's stub, not a driver",
	35:  "CUDA_ERROR_INSUFFICIENT_DRIVER: the NVIDIA driver is older than the CUDA runtime",
	100: "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected",
	101: "CUDA_ERROR_INVALID_DEVICE",
	304: "CUDA_ERROR_OPERATING_SYSTEM: the driver could not talk to the kernel module",
	999: "CUDA_ERROR_UNKNOWN",
}
