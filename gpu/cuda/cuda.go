//go:build cuda

package cuda

import (
	"bytes"
	"fmt"
	"strings"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cuda/cublas"
	_ "github.com/captioner/captioner/gpu/cuda/needgpu" // a clear exit before cu's init, when there is no GPU
	"github.com/captioner/captioner/gpu/kernels"
)

func init() {
	gpu.Register("cuda", func(o gpu.Options) (gpu.Device, error) { return Open(0, o) })
}

// Open returns GPU number ordinal as a gpu.Device. cuBLAS is loaded at run
// time from o.LibraryPath (extra folders), $CAPTIONER_CUDA_LIBRARY_PATH, the
// dynamic loader's path and the usual places (see package cublas); o.TF32
// puts its float32 GEMMs on tensor cores.
func Open(ordinal int, o gpu.Options) (gpu.Device, error) {
	sigs, err := kernels.Signatures()
	if err != nil {
		return nil, err
	}
	drv, err := newDriver(ordinal, sigs, cublas.DefaultSearch(cublas.SplitPath(o.LibraryPath)), o.TF32)
	if err != nil {
		return nil, err
	}
	dev, err := kernels.New(drv, sigs)
	if err != nil {
		drv.Close()
		return nil, err
	}
	return dev, nil
}

// driver implements kernels.Driver with the CUDA driver API. Every call runs on
// the OS thread that holds the context (cu.Ctx.Do). All work goes to the legacy
// default stream, which is also the stream of a new cuBLAS handle, so kernels,
// copies and GEMMs run in the order they were issued.
type driver struct {
	ctx    *cu.Ctx
	mod    cu.Module
	fns    []cu.Function // by signature index
	lib    *cublas.Library
	blas   *cublas.Handle
	name   string
	err    error              // first failure
	params [24]unsafe.Pointer // launch parameter pointers, reused
}

func newDriver(ordinal int, sigs []kernels.Signature, search cublas.Search, tf32 bool) (d *driver, err error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("gpu: counting CUDA devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("gpu: no CUDA device %d (found %d)", ordinal, n)
	}
	dev := cu.Device(ordinal)
	name, err := dev.Name()
	if err != nil {
		return nil, fmt.Errorf("gpu: CUDA device %d: %w", ordinal, err)
	}
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return nil, fmt.Errorf("gpu: CUDA device %d (%s): %w", ordinal, name, err)
	}
	if major < 7 {
		return nil, fmt.Errorf("gpu: %s has compute capability %d.%d; captioner's kernels need 7.0 (Volta) or newer: use device: cpu", name, major, minor)
	}
	mem, err := dev.TotalMem()
	if err != nil {
		return nil, fmt.Errorf("gpu: CUDA device %d (%s): %w", ordinal, name, err)
	}
	// A cuBLAS newer than the driver's CUDA version cannot create a handle.
	search.Sonames = cublas.ForDriver(search.Sonames, cu.Version()/1000)
	lib, err := cublas.Load(search)
	if err != nil {
		return nil, fmt.Errorf("gpu: %s: %w", name, err)
	}
	d = &driver{lib: lib}
	// cu.NewContext panics on failure.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gpu: creating a CUDA context on %s: %v", name, r)
		}
		if err != nil {
			lib.Close()
		}
	}()
	d.ctx = cu.NewContext(dev, cu.SchedAuto)
	var blasVersion string
	err = d.ctx.Do(func() error {
		// The JIT's own words say why it failed (an ISA or target the driver
		// lacks, a register limit): the error code alone often does not.
		jitLog := make([]byte, 4096)
		mod, err := cu.LoadDataEx(kernels.PTX, &cu.JITErrorLogBuffer{Buffer: jitLog})
		if err != nil {
			said := ""
			if end := bytes.IndexByte(jitLog, 0); end > 0 {
				said = fmt.Sprintf(" (the JIT compiler: %s)", strings.TrimSpace(string(jitLog[:end])))
			}
			return fmt.Errorf("gpu: loading the kernels' PTX (%s) on %s (sm_%d%d) with driver %s: %w%s; the NVIDIA driver must support CUDA 11.8 (R520 or newer)",
				kernels.PTXTarget(), name, major, minor, driverVersion(), err, said)
		}
		d.mod = mod
		for _, s := range sigs {
			fn, err := mod.Function(s.Name)
			if err != nil {
				return fmt.Errorf("gpu: kernel %s is not in the PTX module: %w; run `make ptx`", s.Name, err)
			}
			d.fns = append(d.fns, fn)
		}
		if d.blas, err = lib.NewHandle(); err != nil {
			return fmt.Errorf("gpu: %s: %w", name, err)
		}
		if blasVersion, err = d.blas.Version(); err != nil {
			d.blas.Destroy()
			return fmt.Errorf("gpu: %s: %w", name, err)
		}
		if tf32 {
			if err := d.blas.SetMathMode(cublas.TF32Math); err != nil {
				d.blas.Destroy()
				return fmt.Errorf("gpu: %s: cuda.tf32: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		d.ctx.Close()
		return nil, err
	}
	math := ""
	switch {
	case tf32 && major >= 8:
		math = ", TF32 tensor-core GEMMs"
	case tf32: // the mode is set, and cuBLAS computes in float32 anyway
		math = ", cuda.tf32 without effect: no TF32 before sm_80"
	}
	d.name = fmt.Sprintf("cuda (%s, sm_%d%d, %.1f GB, driver %s, cuBLAS %s from %s%s)",
		name, major, minor, float64(mem)/1e9, driverVersion(), blasVersion, lib.Path(), math)
	return d, nil
}

// driverVersion is the CUDA version the driver supports, as major.minor.
func driverVersion() string {
	v := cu.Version()
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

func (d *driver) Name() string { return d.name }

// do runs f on the context's thread unless an earlier call failed, and
// remembers the first failure.
func (d *driver) do(f func() error) {
	if d.err != nil {
		return
	}
	if err := d.ctx.Do(f); err != nil {
		d.err = fmt.Errorf("gpu: %s: %w", d.name, err)
	}
}

func (d *driver) Alloc(bytes int) (kernels.Ptr, error) {
	var p cu.DevicePtr
	err := d.ctx.Do(func() error {
		var err error
		if p, err = cu.MemAlloc(int64(bytes)); err != nil {
			return err
		}
		return cu.MemsetD8(p, 0, int64(bytes))
	})
	if err != nil {
		return 0, err
	}
	return kernels.Ptr(p), nil
}

func (d *driver) Free(p kernels.Ptr) {
	d.do(func() error { return cu.MemFree(cu.DevicePtr(p)) })
}

func (d *driver) HtoD(dst kernels.Ptr, src unsafe.Pointer, bytes int) {
	d.do(func() error { return cu.MemcpyHtoD(cu.DevicePtr(dst), src, int64(bytes)) })
}

func (d *driver) DtoH(dst unsafe.Pointer, src kernels.Ptr, bytes int) error {
	d.do(func() error { return cu.MemcpyDtoH(dst, cu.DevicePtr(src), int64(bytes)) })
	return d.err
}

func (d *driver) DtoD(dst, src kernels.Ptr, bytes int) {
	d.do(func() error { return cu.MemcpyDtoD(cu.DevicePtr(dst), cu.DevicePtr(src), int64(bytes)) })
}

func (d *driver) Zero(dst kernels.Ptr, bytes int) {
	d.do(func() error { return cu.MemsetD32(cu.DevicePtr(dst), 0, int64(bytes/4)) })
}

func (d *driver) Launch(k, gridX, gridY, blockX int, args []uint64) {
	// cu copies 8 bytes from each parameter pointer; the driver reads as many
	// bytes as the kernel's parameter has (the low ones: little-endian).
	params := d.params[:len(args)]
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	fn := d.fns[k]
	d.do(func() error { return fn.Launch(gridX, gridY, 1, blockX, 1, 1, 0, cu.NoStream, params) })
}

func trans(t bool) cublas.Op {
	if t {
		return cublas.Trans
	}
	return cublas.NoTrans
}

// Sgemm computes the row-major product with column-major cuBLAS by the usual
// swap: row-major C (m, n) is column-major C^T, and C^T = op(B)^T * op(A)^T, where
// op(B)^T is what cuBLAS sees when handed B's memory with B's own transpose flag.
// A batch is one cublasSgemmStridedBatched call: one launch where a loop of
// cublasSgemm would make batch (the attention decoder's context: one per image
// and step).
func (d *driver) Sgemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Ptr, lda, strideA int, b kernels.Ptr, ldb, strideB int, beta float32, c kernels.Ptr, ldc, strideC int, batch int) {
	d.do(func() error {
		if batch == 1 {
			return d.blas.Sgemm(trans(transB), trans(transA), n, m, k, alpha, uintptr(b), ldb, uintptr(a), lda, beta, uintptr(c), ldc)
		}
		return d.blas.SgemmStridedBatched(trans(transB), trans(transA), n, m, k, alpha, uintptr(b), ldb, strideB,
			uintptr(a), lda, strideA, beta, uintptr(c), ldc, strideC, batch)
	})
}

func (d *driver) Sync() error {
	d.do(cu.Synchronize)
	return d.err
}

func (d *driver) Close() error {
	err := d.ctx.Do(func() error {
		if err := d.blas.Destroy(); err != nil {
			return err
		}
		return d.mod.Unload()
	})
	if cerr := d.ctx.Close(); err == nil {
		err = cerr
	}
	d.lib.Close()
	return err
}
