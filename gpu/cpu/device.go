// Package cpu is the CPU backend of the gpu device layer: GEMM through oneDNN's sgemm
// (cgo) or gonum (pure Go: CGO_ENABLED=0, or the purecpu tag), every other kernel as goroutine-parallel
// loops, with the hot loops in C when cgo is available. See ../README.md.
package cpu

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/captioner/captioner/gpu"
)

func init() {
	gpu.Register("cpu", func(gpu.Options) (gpu.Device, error) { return New(0), nil })
}

// Device is a CPU device. Buffers are Go []float32 slices; kernels run
// synchronously on the calling goroutine plus a pool of threads-1 workers.
type Device struct {
	threads int
	work    chan uint32 // a parallel loop's generation, for the worker goroutines
	loop    loop
	closed  bool

	// Scratch reused across calls so that kernels do not allocate.
	col   []float32 // im2col matrix of Conv2D
	wt    []float32 // transposed weight of a direct or pointwise Conv2D
	zeros []float32 // zeros: padding rows of DepthwiseConv2D, a missing bias
	acc   []float64 // column sums of BiasActBackward
	expQ  []float32 // exp(2·q) of AttentionScoresExp
}

// loop is the device's current parallel loop (parallel). Its chunks are
// claimed in order by the caller and by the workers that wake in time: a
// worker the OS has not yet run, or has descheduled, costs the caller nothing,
// since the caller runs the chunk itself. A worker that wakes after the loop
// ended finds another generation, or no chunk left, and does nothing.
//
// Between loops a worker, and a caller waiting for a worker's chunk, poll
// for a while (spinFor) before they sleep on a channel. A decoding step is a
// dozen loops a few microseconds to a few hundred long with little between
// them; a goroutine that sleeps there is woken through the Go scheduler and
// the OS, which took longer than the chunks: the caller ran most loops alone
// (58% of them in float32 greedy decoding at batch 32) and waited for the rest.
type loop struct {
	// state is generation << 32 | chunks << 16 | chunks claimed: a worker
	// reads fn and n only after claiming a chunk, and the caller writes
	// them only after every chunk of the last loop has finished.
	state atomic.Uint64
	fn    func(lo, hi int)
	n     int
	// finished counts the chunks done, plus callerAsleep once the caller
	// sleeps on done: one word, so that the Add that finishes the last chunk
	// also tells its worker whether to wake the caller, and a worker touches
	// nothing of the loop's after that Add (the caller may have returned).
	finished atomic.Int32
	done     chan struct{}
}

// callerAsleep is the bit of loop.finished that says the caller sleeps on done.
const callerAsleep = 1 << 30

// spinFor is how long a worker polls for the next loop, and a caller for a
// worker's last chunk, before sleeping: longer than the gaps inside a
// decoding step, short enough that an idle server soon stops polling. Each
// loop also queues a wake-up on d.work (at most threads of them); a worker
// that ran those loops while polling receives them later, finds nothing to
// claim and polls spinFor again for each, so polling ends at most a few
// spinFor after the last loop.
const spinFor = 50 * time.Microsecond

// yieldEvery is how many polls go between runtime.Gosched calls (about 2 us
// of polling), so that a polling goroutine lets the others on its thread run.
const yieldEvery = 1024

// spin polls ready until it holds or spinFor has passed, and reports which.
// The clock starts at the first yield, after yieldEvery polls, and is read
// every yieldEvery polls: spin may poll a little longer than spinFor.
func spin(ready func() bool) bool {
	var deadline time.Time
	for n := 1; ; n++ {
		if ready() {
			return true
		}
		if n%yieldEvery != 0 {
			continue
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(spinFor)
		} else if now.After(deadline) {
			return false
		}
		runtime.Gosched()
	}
}

// New returns a CPU device running on threads threads (goroutines for our loops,
// BLAS threads for GEMM); threads <= 0 means runtime.GOMAXPROCS(0).
func New(threads int) *Device {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	d := &Device{threads: threads, work: make(chan uint32, threads)}
	d.loop.done = make(chan struct{}, 1)
	for i := 1; i < threads; i++ {
		go d.worker()
	}
	return d
}

// Fork opens a CPU device with as many threads as d and scratch of its own
// (gpu.Forker), so that two goroutines may compute at the same time.
func (d *Device) Fork() (gpu.Device, error) { return New(d.threads), nil }

// worker runs the loops it is woken for and those that start while it polls
// after one (spinFor).
func (d *Device) worker() {
	for gen := range d.work {
		for {
			d.loop.run(gen)
			var next uint32
			if !spin(func() bool { next = d.loop.open(gen); return next != gen }) {
				break
			}
			gen = next
		}
	}
}

// open returns the generation of the current loop if it is not gen and has
// a chunk left to claim, else gen.
func (l *loop) open(gen uint32) uint32 {
	s := l.state.Load()
	if g := uint32(s >> 32); g != gen && uint16(s) < uint16(s>>16) {
		return g
	}
	return gen
}

// run runs chunks of generation gen's loop until none is left to claim, and
// reports whether it finished the loop's last chunk; a worker that does wakes
// the caller if it sleeps.
func (l *loop) run(gen uint32) (last bool) {
	for {
		s := l.state.Load()
		chunks, i := int(uint16(s>>16)), int(uint16(s))
		if uint32(s>>32) != gen || i >= chunks {
			return false
		}
		if !l.state.CompareAndSwap(s, s+1) {
			continue
		}
		l.fn(i*l.n/chunks, (i+1)*l.n/chunks)
		if f := l.finished.Add(1); int(f&^callerAsleep) == chunks {
			if f&callerAsleep != 0 {
				l.done <- struct{}{}
			}
			return true
		}
	}
}

// wait returns once the chunks of a loop of chunks chunks have all finished,
// polling first, then asleep on done.
func (l *loop) wait(chunks int) {
	if spin(func() bool { return int(l.finished.Load()) == chunks }) {
		return
	}
	// If the last chunk finished before this Add, its worker saw no
	// callerAsleep and sends nothing; else it sees it and sends.
	if int(l.finished.Add(callerAsleep)) == callerAsleep|chunks {
		return
	}
	<-l.done
}

// cgoPiece bounds the float32 multiply-adds of one cgo call inside a
// parallel chunk: about 20 us on one core, one tick of the Go runtime's sysmon
// while it is busy. sysmon hands the P of a goroutine it finds in the same cgo
// call on two ticks to another thread, and every hand-off keeps it busy.
// Decoding steps' chunks run 100-500 us, and runs fell into two modes: sysmon
// asleep for milliseconds, or every chunk's P handed off, a third thread
// spinning for work, ~10,000 context switches a second and a fifth to a
// third of the speed gone. A call shorter than a tick cannot be found twice.
// Measured on Zen 4, float32 greedy decoding at batch 32, 3 alternating
// rounds: 4,555-4,870 captions/s whole, 5,189-6,690 in pieces, 300-1,650
// context switches a second instead of 800-12,000 (gpu/README.md).
const cgoPiece = 1 << 20

// inPieces calls fn over [lo, hi) in consecutive ranges of whole multiples of
// align (the last range may end at hi mid-multiple), each at most cgoPiece
// multiply-adds at costPerItem each (at least one multiple of align).
func inPieces(lo, hi, align, costPerItem int, fn func(lo, hi int)) {
	step := max(align, cgoPiece/max(1, costPerItem)/align*align)
	for ; lo < hi; lo += step {
		fn(lo, min(lo+step, hi))
	}
}

// Threads is the number of threads the device computes with.
func (d *Device) Threads() int { return d.threads }

// Name says which BLAS runs GEMM and on how many threads.
func (d *Device) Name() string {
	return fmt.Sprintf("cpu (%s, %d threads)", blasName, d.threads)
}

// parallel runs fn over [0, n) split into at most d.threads chunks of at least
// grain items each; below 2*grain it runs serially on the caller, because waking
// workers costs microseconds. Calls must not nest.
func (d *Device) parallel(n, grain int, fn func(lo, hi int)) {
	chunks := d.threads
	if grain < 1 {
		grain = 1
	}
	if n/grain < chunks {
		chunks = n / grain
	}
	if chunks <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	chunks = min(chunks, 1<<16-1)
	l := &d.loop
	gen := uint32(l.state.Load()>>32) + 1
	l.fn, l.n = fn, n
	l.finished.Store(0)
	l.state.Store(uint64(gen)<<32 | uint64(chunks)<<16) // publishes the fields above to the workers
	for range chunks - 1 {
		select {
		case d.work <- gen:
		default: // the workers are behind: the caller runs more chunks itself
		}
	}
	if !l.run(gen) {
		l.wait(chunks) // a worker is finishing the last chunk
	}
	l.fn = nil
}

// Buf is a CPU buffer: a float32 slice. Views share the parent's memory.
type Buf struct {
	d    *Device
	data []float32
	view bool
}

// Len is the number of elements.
func (b *Buf) Len() int { return len(b.data) }

// Slice returns the view of elements [off, off+n).
func (b *Buf) Slice(off, n int) gpu.Buf {
	if off < 0 || n < 0 || off+n > len(b.data) {
		panic(fmt.Sprintf("gpu/cpu: Slice(%d, %d) of a buffer of %d elements", off, n, len(b.data)))
	}
	return &Buf{d: b.d, data: b.data[off : off+n : off+n], view: true}
}

// f returns the memory of b, checking that it belongs to d. A nil Buf gives nil.
func (d *Device) f(b gpu.Buf) []float32 {
	if b == nil {
		return nil
	}
	cb, ok := b.(*Buf)
	if !ok || cb == nil {
		panic(fmt.Sprintf("gpu/cpu: buffer of type %T is not from a CPU device", b))
	}
	if cb.d != d {
		panic("gpu/cpu: buffer belongs to another CPU device")
	}
	return cb.data
}

// need returns the memory of b, panicking unless it has exactly n elements.
func (d *Device) need(b gpu.Buf, n int, what string) []float32 {
	if b == nil {
		panic("gpu/cpu: " + what + " is nil")
	}
	s := d.f(b)
	if len(s) != n {
		panic(fmt.Sprintf("gpu/cpu: %s has %d elements, want %d", what, len(s), n))
	}
	return s
}

// Alloc returns a zeroed buffer of n elements.
func (d *Device) Alloc(n int) gpu.Buf {
	if n < 0 {
		panic(fmt.Sprintf("gpu/cpu: Alloc(%d)", n))
	}
	return &Buf{d: d, data: make([]float32, n)}
}

// Free drops the buffer's memory; later use of it panics with an index error.
func (d *Device) Free(b gpu.Buf) {
	d.f(b)
	cb := b.(*Buf)
	if cb.view {
		panic("gpu/cpu: Free of a Slice view; free the buffer Alloc returned")
	}
	cb.data = nil
}

// Upload copies src into dst.
func (d *Device) Upload(dst gpu.Buf, src []float32) {
	copy(d.need(dst, len(src), "Upload dst"), src)
}

// Download copies src into dst.
func (d *Device) Download(dst []float32, src gpu.Buf) error {
	copy(dst, d.need(src, len(dst), "Download src"))
	return nil
}

// Copy copies src into dst.
func (d *Device) Copy(dst, src gpu.Buf) {
	s := d.f(src)
	copy(d.need(dst, len(s), "Copy dst"), s)
}

// Zero sets every element of b to 0.
func (d *Device) Zero(b gpu.Buf) {
	clear(d.f(b))
}

// Sync returns nil: CPU kernels finish before they return.
func (d *Device) Sync() error { return nil }

// ChunkFloats implements gpu.Device: 1M floats (4 MB) keep a chunk's chain of
// layers in the last-level cache, where a whole batch of MobileNetV2's
// 112x112x96 activations (1.2M floats an image) would stream every
// intermediate through DRAM.
func (d *Device) ChunkFloats() int { return 1 << 20 }

// Close stops the worker goroutines. Closing twice is harmless.
func (d *Device) Close() error {
	if !d.closed {
		d.closed = true
		close(d.work)
	}
	return nil
}
