// Package cudaemu runs captioner's CUDA kernels (gpu/kernels/*.cu) as host C on
// an emulated grid, behind the same kernels.Device that drives a real GPU. It is
// how the CUDA code is executed and tested on machines without a GPU; it is slow
// (one OS thread, coroutines for GPU threads) and not meant for real work.
// See gpu/README.md for the design.
package cudaemu

/*
#cgo CFLAGS: -O2 -std=gnu11 -Wall -Wno-unused-function
#cgo LDFLAGS: -lm
#include "emu.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/captioner/captioner/gpu/kernels"
)

//go:generate go run gen.go

// New returns a kernels.Device whose kernels run in the emulator.
func New() (*kernels.Device, error) {
	sigs, err := kernels.Signatures()
	if err != nil {
		return nil, err
	}
	drv, err := newDriver(sigs)
	if err != nil {
		return nil, err
	}
	return kernels.New(drv, sigs)
}

// driver implements kernels.Driver on host memory.
type driver struct {
	ids   []C.int             // the emulator's index of each signature's kernel
	sizes map[kernels.Ptr]int // allocation sizes, which emu_free needs
	err   error               // first launch failure
}

func newDriver(sigs []kernels.Signature) (*driver, error) {
	have := map[string]C.int{}
	for i := C.int(0); C.emu_kernel_name(i) != nil; i++ {
		have[C.GoString(C.emu_kernel_name(i))] = i
	}
	d := &driver{sizes: map[kernels.Ptr]int{}}
	for _, s := range sigs {
		id, ok := have[s.Name]
		if !ok {
			return nil, fmt.Errorf("cudaemu: kernel %s is not in kernels_gen.c: run `go generate ./gpu/cudaemu`", s.Name)
		}
		d.ids = append(d.ids, id)
	}
	return d, nil
}

func (d *driver) Name() string { return "cudaemu (CUDA kernels emulated on the host)" }

func (d *driver) Alloc(bytes int) (kernels.Ptr, error) {
	p := kernels.Ptr(C.emu_alloc(C.size_t(bytes)))
	if p == 0 {
		return 0, fmt.Errorf("cudaemu: cannot map %d bytes", bytes)
	}
	d.sizes[p] = bytes
	return p, nil
}

func (d *driver) Free(p kernels.Ptr) {
	n, ok := d.sizes[p]
	if !ok {
		panic(fmt.Sprintf("cudaemu: Free of %#x, which Alloc did not return", p))
	}
	delete(d.sizes, p)
	C.emu_free(C.uintptr_t(p), C.size_t(n))
}

func (d *driver) HtoD(dst kernels.Ptr, src unsafe.Pointer, bytes int) {
	C.emu_htod(C.uintptr_t(dst), src, C.size_t(bytes))
}

func (d *driver) DtoH(dst unsafe.Pointer, src kernels.Ptr, bytes int) error {
	if d.err != nil {
		return d.err
	}
	C.emu_dtoh(dst, C.uintptr_t(src), C.size_t(bytes))
	return nil
}

func (d *driver) DtoD(dst, src kernels.Ptr, bytes int) {
	C.emu_dtod(C.uintptr_t(dst), C.uintptr_t(src), C.size_t(bytes))
}

func (d *driver) Zero(dst kernels.Ptr, bytes int) { C.emu_zero(C.uintptr_t(dst), C.size_t(bytes)) }

// launchErrors explains emu_launch's failures.
var launchErrors = map[C.int]string{
	C.EMU_DIVERGENT_BARRIER:  "some threads of a block exited while others waited at __syncthreads (a hang or undefined behaviour on a GPU)",
	C.EMU_BAD_LAUNCH:         fmt.Sprintf("empty grid or block larger than %d threads", C.EMU_MAX_THREADS),
	C.EMU_NO_MEMORY:          "cannot map the emulated threads' stacks",
	C.EMU_UNDECLARED_BARRIER: "the kernel calls __syncthreads but declares no __shared__ memory, so the emulator ran its threads without coroutines: declare the shared memory in the kernel's own body",
}

func (d *driver) Launch(k, gridX, gridY, blockX int, args []uint64) {
	if d.err != nil {
		return
	}
	var a *C.uint64_t
	if len(args) > 0 {
		a = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	if rc := C.emu_launch(d.ids[k], a, C.uint(gridX), C.uint(gridY), C.uint(blockX)); rc != C.EMU_OK {
		name := C.GoString(C.emu_kernel_name(d.ids[k]))
		d.err = fmt.Errorf("cudaemu: kernel %s on grid (%d, %d) x %d: %s", name, gridX, gridY, blockX, launchErrors[rc])
	}
}

func (d *driver) Sgemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Ptr, lda, strideA int, b kernels.Ptr, ldb, strideB int, beta float32, c kernels.Ptr, ldc, strideC int, batch int) {
	C.emu_sgemm(cbool(transA), cbool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(a), C.int(lda), C.longlong(strideA), C.uintptr_t(b), C.int(ldb), C.longlong(strideB),
		C.float(beta), C.uintptr_t(c), C.int(ldc), C.longlong(strideC), C.int(batch))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (d *driver) Sync() error { return d.err }

func (d *driver) Close() error {
	for p := range d.sizes {
		d.Free(p)
	}
	return d.err
}
