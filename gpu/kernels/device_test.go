package kernels

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"unsafe"

	"github.com/captioner/captioner/gpu"
)

// recorder is a Driver that runs nothing and holds no memory: it checks every
// call against what a GPU allows (grid and block limits; copies, kernel
// pointers and products inside live allocations) and records the launches, so
// Device's host side can be tested at sizes the emulator could not run. Its
// addresses are never dereferenced.
type recorder struct {
	t        *testing.T
	sigs     []Signature
	allocs   map[Ptr]int // live allocations: address -> bytes
	next     Ptr
	maxAlloc int   // Alloc fails above this many bytes (0: never)
	failed   bool  // an Alloc has failed
	err      error // what Sync and DtoH return
	launches []string
}

// newRecorder returns a Device on a recorder.
func newRecorder(t *testing.T) (*Device, *recorder) {
	t.Helper()
	sigs, err := Signatures()
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{t: t, sigs: sigs, allocs: map[Ptr]int{}, next: 1 << 40}
	d, err := New(r, sigs)
	if err != nil {
		t.Fatal(err)
	}
	return d, r
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Alloc(bytes int) (Ptr, error) {
	if bytes <= 0 {
		r.t.Errorf("Alloc(%d)", bytes)
	}
	if r.maxAlloc > 0 && bytes > r.maxAlloc {
		r.failed = true
		return 0, errors.New("out of memory")
	}
	p := r.next
	r.allocs[p] = bytes
	r.next += Ptr(bytes + 1<<20)
	return p, nil
}

func (r *recorder) Free(p Ptr) {
	if _, ok := r.allocs[p]; !ok {
		r.t.Errorf("Free(%#x), which Alloc did not return", p)
	}
	delete(r.allocs, p)
}

// work fails the test when a failed allocation was not the end of the work.
func (r *recorder) work(what string) {
	if r.failed {
		r.t.Errorf("%s after a failed allocation", what)
	}
}

// inside checks that [p, p+bytes) lies in one live allocation.
func (r *recorder) inside(what string, p Ptr, bytes int) {
	for base, n := range r.allocs {
		if p >= base && int(p-base)+bytes <= n {
			return
		}
	}
	r.t.Errorf("%s: %d bytes at %#x are outside every allocation", what, bytes, p)
}

func (r *recorder) HtoD(dst Ptr, src unsafe.Pointer, bytes int) {
	r.work("HtoD")
	r.inside("HtoD", dst, bytes)
}

func (r *recorder) DtoH(dst unsafe.Pointer, src Ptr, bytes int) error {
	r.inside("DtoH", src, bytes)
	return r.err
}

func (r *recorder) DtoD(dst, src Ptr, bytes int) {
	r.work("DtoD")
	r.inside("DtoD's destination", dst, bytes)
	r.inside("DtoD's source", src, bytes)
}

func (r *recorder) Zero(dst Ptr, bytes int) {
	r.work("Zero")
	r.inside("Zero", dst, bytes)
}

func (r *recorder) Launch(k, gridX, gridY, blockX int, args []uint64) {
	s := r.sigs[k]
	r.work("launch of " + s.Name)
	r.launches = append(r.launches, s.Name)
	if gridX < 1 || gridX > math.MaxInt32 || gridY < 1 || gridY > 65535 || blockX < 1 || blockX > 1024 {
		r.t.Errorf("%s launched on a (%d, %d) grid of %d threads: outside CUDA's limits", s.Name, gridX, gridY, blockX)
	}
	if s.Cooperative && (blockX > Block || blockX&(blockX-1) != 0) {
		r.t.Errorf("%s (shared arrays of %d) launched with blocks of %d threads", s.Name, Block, blockX)
	}
	for i, p := range s.Params {
		if p.Kind == Pointer && args[i] != 0 {
			r.inside(s.Name+"'s "+p.Name, Ptr(args[i]), 4)
		}
	}
}

func (r *recorder) Sgemm(transA, transB bool, m, n, k int, alpha float32, a Ptr, lda, strideA int, b Ptr, ldb, strideB int, beta float32, c Ptr, ldc, strideC int, batch int) {
	r.work("Sgemm")
	la, lb, lc := gpu.GemmSpans(transA, transB, m, n, k, lda, strideA, ldb, strideB, ldc, strideC, batch)
	r.inside("Sgemm's A", a, 4*la)
	r.inside("Sgemm's B", b, 4*lb)
	r.inside("Sgemm's C", c, 4*lc)
}

func (r *recorder) Sync() error  { return r.err }
func (r *recorder) Close() error { return nil }

// TestLaunchesFitTheGPU runs methods at sizes beyond what the emulator runs
// (which launches any grid): every launch within CUDA's grid and block limits,
// every scratch copy inside the scratch buffer.
func TestLaunchesFitTheGPU(t *testing.T) {
	for _, c := range []struct {
		name string
		run  func(d *Device)
	}{
		{"BiasActBackward of 5M rows into dbias", func(d *Device) {
			const rows = 5_000_000
			x := d.Alloc(rows)
			d.BiasActBackward(x, d.Alloc(1), x, x, rows, 1, gpu.ActReLU)
		}},
		{"DepthwiseConv2DBackward over 2100x2100 pixels into dweight", func(d *Device) {
			p := gpu.ConvParams{N: 1, H: 2100, W: 2100, C: 1, OC: 1, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 2100, OW: 2100}
			x := d.Alloc(2100 * 2100)
			d.DepthwiseConv2DBackward(nil, d.Alloc(1), nil, x, x, d.Alloc(1), p)
		}},
		{"TopK of 200000 rows, k=2", func(d *Device) {
			const rows = 200_000
			if err := d.TopK(make([]int32, 2*rows), make([]float32, 2*rows), d.Alloc(2*rows), rows, 2, 2); err != nil {
				t.Error(err)
			}
		}},
		{"Softmax of 1000 columns", func(d *Device) {
			x := d.Alloc(3 * 1000)
			d.Softmax(x, x, 3, 1000)
		}},
		{"Conv2D 3x3 with 4 MB of columns", func(d *Device) {
			p := gpu.ConvParams{N: 1, H: 112, W: 112, C: 8, OC: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 112, OW: 112}
			d.Conv2D(d.Alloc(112*112*4), d.Alloc(112*112*8), d.Alloc(4*9*8), nil, p, gpu.ActNone)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, r := newRecorder(t)
			c.run(d)
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			if len(r.launches) == 0 {
				t.Errorf("nothing launched")
			}
		})
	}
}

// TestConv2DIm2colOnlyWhenNeeded: only an unpadded 1x1 stride-1 convolution
// reads its input as the column matrix.
func TestConv2DIm2colOnlyWhenNeeded(t *testing.T) {
	for _, c := range []struct {
		name string
		p    gpu.ConvParams
		want []string
	}{
		{"1x1", gpu.ConvParams{N: 1, H: 3, W: 3, C: 2, OC: 2, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 3, OW: 3}, []string{"bias_act"}},
		{"1x1 padded left", gpu.ConvParams{N: 1, H: 3, W: 3, C: 2, OC: 2, KH: 1, KW: 1, StrideH: 1, StrideW: 1, PadLeft: 1, OH: 3, OW: 3}, []string{"im2col", "bias_act"}},
		{"1x1 padded top", gpu.ConvParams{N: 1, H: 3, W: 3, C: 2, OC: 2, KH: 1, KW: 1, StrideH: 1, StrideW: 1, PadTop: 1, OH: 3, OW: 3}, []string{"im2col", "bias_act"}},
		{"1x1 stride 2", gpu.ConvParams{N: 1, H: 3, W: 3, C: 2, OC: 2, KH: 1, KW: 1, StrideH: 2, StrideW: 2, OH: 2, OW: 2}, []string{"im2col", "bias_act"}},
	} {
		d, r := newRecorder(t)
		p := c.p
		d.Conv2D(d.Alloc(p.N*p.OH*p.OW*p.OC), d.Alloc(p.N*p.H*p.W*p.C), d.Alloc(p.OC*p.C), nil, p, gpu.ActNone)
		if !slices.Equal(r.launches, c.want) {
			t.Errorf("%s: launched %q, want %q", c.name, r.launches, c.want)
		}
	}
}

// TestNoWorkAfterAllocationFailure: once scratch memory cannot be had, no
// kernel, copy or product reaches the driver (their pointers would be null),
// and Sync and Download report the failure.
func TestNoWorkAfterAllocationFailure(t *testing.T) {
	d, r := newRecorder(t)
	r.maxAlloc = 1 << 19 // scratch is at least 1 MiB
	p := gpu.ConvParams{N: 1, H: 4, W: 4, C: 2, OC: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, OH: 4, OW: 4}
	out, in, w := d.Alloc(4*4*3), d.Alloc(4*4*2), d.Alloc(3*9*2)
	d.Conv2D(out, in, w, nil, p, gpu.ActReLU)
	d.CrossEntropy(d.Alloc(2), nil, in.Slice(0, 6), []int32{0, 2}, 2, 3, 1)
	d.Add(out, out, out)
	const want = "gpu: allocating 1048576 bytes of scratch memory: out of memory"
	if err := d.Sync(); err == nil || err.Error() != want {
		t.Errorf("Sync: %v, want %s", err, want)
	}
	if err := d.Download(make([]float32, out.Len()), out); err == nil || err.Error() != want {
		t.Errorf("Download: %v, want %s", err, want)
	}
	if len(r.launches) != 0 {
		t.Errorf("launched %q after the failure", r.launches)
	}
}

// TestDownloadReportsTheDriversFailure: an empty Download still synchronises
// and returns the driver's sticky failure.
func TestDownloadReportsTheDriversFailure(t *testing.T) {
	d, r := newRecorder(t)
	r.err = errors.New("lost the GPU")
	if err := d.Download(nil, d.Alloc(0)); err != r.err {
		t.Errorf("Download of nothing: %v, want %v", err, r.err)
	}
}

// TestDeviceChecks: the checks that keep wrong calls from reaching a GPU,
// which would read or write past a buffer or decode the arguments as garbage.
func TestDeviceChecks(t *testing.T) {
	d, _ := newRecorder(t)
	huge := d.Alloc(maxElems + 1)
	small := d.Alloc(6)
	for _, c := range []struct {
		what string
		fn   func()
		want string
	}{
		{"Add past the limit", func() { d.Add(huge, huge, huge) },
			fmt.Sprintf("gpu: %d elements exceed the CUDA kernels' limit of %d per array", maxElems+1, maxElems)},
		{"GlobalAvgPool past the limit", func() { d.GlobalAvgPool(small.Slice(0, 1), huge, 1, maxElems+1, 1) },
			fmt.Sprintf("gpu: %d elements exceed the CUDA kernels' limit of %d per array", maxElems+1, maxElems)},
		{"EmbeddingForward with a negative id", func() { d.EmbeddingForward(small.Slice(0, 4), small, []int32{0, -1}, 2) },
			"gpu: EmbeddingForward: id -1 at 1 is out of range [0, 3)"},
		{"Free of a Slice view", func() { d.Free(small.Slice(1, 2)) },
			"gpu: Free of a Slice view; free the buffer it came from"},
		{"a launch with an argument of the wrong kind", func() { d.launch(d.k.scale, 1, 1, Block, argP(d.ptr(small, 6, "x")), argI(2), argI(6)) },
			"gpu: kernel scale: argument 1 (float alpha) launched as kind i"},
		{"a launch with too few arguments", func() { d.launch(d.k.scale, 1, 1, Block, argP(d.ptr(small, 6, "x")), argF(2)) },
			"gpu: kernel scale takes 3 arguments, launched with 2"},
		{"an int argument past 32 bits", func() { argI(math.MaxInt32 + 1) },
			"gpu: 2147483648 does not fit the kernels' 32-bit int"},
	} {
		func() {
			defer func() {
				if r := recover(); r != c.want {
					t.Errorf("%s: panic %v, want %q", c.what, r, c.want)
				}
			}()
			c.fn()
		}()
	}
}
