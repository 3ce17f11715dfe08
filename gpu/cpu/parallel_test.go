package cpu

import (
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallelDoesNotWaitForWorkers runs loops on a device whose worker has
// not started: the caller must claim and run every chunk itself. The worker,
// started afterwards, finds only ended loops in its queue and must run nothing.
func TestParallelDoesNotWaitForWorkers(t *testing.T) {
	d := &Device{threads: 2, work: make(chan uint32, 2)}
	d.loop.done = make(chan struct{}, 1)
	var ran atomic.Int64
	for range 3 { // more loops than the queue holds: the caller must not block on it
		covered := make([]int, 1000)
		d.parallel(len(covered), 10, func(lo, hi int) {
			ran.Add(1)
			for i := lo; i < hi; i++ {
				covered[i]++
			}
		})
		for i, c := range covered {
			if c != 1 {
				t.Fatalf("element %d computed %d times, want once", i, c)
			}
		}
	}
	if r := ran.Load(); r != 6 {
		t.Fatalf("%d chunks ran, want 6 (two a loop, every one on the caller)", r)
	}
	// The ended loops' generations wait in the queue (two: it holds two, the
	// third loop found it full): a worker that takes one must run nothing.
	for len(d.work) > 0 {
		if d.loop.run(<-d.work) {
			t.Fatal("a worker finished a chunk of an ended loop")
		}
	}
	if r := ran.Load(); r != 6 {
		t.Fatalf("%d chunks ran after the ended loops' generations were taken, want still 6", r)
	}
	// A worker that runs in time shares a loop with the caller: each chunk
	// waits until both have started, so the loop ends only if two goroutines
	// ran them (else the test hangs).
	go d.worker()
	defer d.Close()
	started := make(chan struct{}, 2)
	d.parallel(2, 1, func(lo, hi int) {
		started <- struct{}{}
		for len(started) < 2 {
			runtime.Gosched()
		}
	})
}

// TestCallerWaitsForWorkersChunk has the workers' chunks outlast the
// caller's by less and more than spinFor, so the caller finds them finished,
// polls until they finish, or sleeps until the last one wakes it. Every loop
// must return only after all its chunks, within a generous bound (a lost
// wake-up would hang it), and leave no wake-up behind for the next loop (which
// would then return before its workers' chunks end).
func TestCallerWaitsForWorkersChunk(t *testing.T) {
	for _, threads := range []int{2, 3} {
		d := New(threads)
		defer d.Close()
		for _, late := range []time.Duration{0, spinFor / 4, spinFor - spinFor/10, spinFor + spinFor/10, 4 * spinFor, 2 * time.Millisecond} {
			for range 20 {
				var started, finished atomic.Int32
				returned := make(chan struct{})
				go func() {
					d.parallel(threads, 1, func(lo, hi int) {
						if started.Add(1) > 1 { // the chunks started after the first: the workers', unless they came late
							time.Sleep(late)
						}
						finished.Add(1)
					})
					close(returned)
				}()
				select {
				case <-returned:
				case <-time.After(10 * time.Second):
					t.Fatalf("%d threads, chunks %v late: parallel has not returned after 10 s", threads, late)
				}
				if f := finished.Load(); f != int32(threads) {
					t.Fatalf("%d threads, chunks %v late: parallel returned after %d of %d chunks", threads, late, f, threads)
				}
				if n := len(d.loop.done); n != 0 {
					t.Fatalf("%d threads, chunks %v late: %d wake-ups left queued, want 0", threads, late, n)
				}
			}
		}
	}
}

// TestSpin: spin reports a condition that holds, on the first poll or a later
// one, and gives up on one that never does after spinFor, not before.
func TestSpin(t *testing.T) {
	if !spin(func() bool { return true }) {
		t.Fatal("spin gave up on a condition that held at once")
	}
	// Past the first yield, where the clock starts; spin reads it again only
	// after another yieldEvery polls, having polled the condition first.
	polls := 0
	if !spin(func() bool { polls++; return polls == 2*yieldEvery }) {
		t.Fatalf("spin gave up after %d polls on a condition that held at poll %d", polls, 2*yieldEvery)
	}
	t0 := time.Now()
	if spin(func() bool { return false }) {
		t.Fatal("spin reported a condition that never held")
	}
	if took := time.Since(t0); took < spinFor {
		t.Fatalf("spin gave up after %v, before spinFor (%v)", took, spinFor)
	}
}

// TestOpen: a polling worker joins a loop of another generation than its last
// that has a chunk left to claim, and no other.
func TestOpen(t *testing.T) {
	var l loop
	for _, c := range []struct {
		gen, chunks, claimed, last, want uint32
	}{
		{5, 2, 0, 4, 5},         // a new loop: join it
		{5, 2, 1, 4, 5},         // the caller claimed one chunk: the other is left
		{5, 2, 2, 4, 4},         // every chunk claimed: nothing to join
		{5, 2, 0, 5, 5},         // the worker's own last loop: nothing new (open returns last)
		{0, 3, 1, 1<<32 - 1, 0}, // generations wrap around
	} {
		l.state.Store(uint64(c.gen)<<32 | uint64(c.chunks)<<16 | uint64(c.claimed))
		if got := l.open(c.last); got != c.want {
			t.Errorf("loop %d with %d of %d chunks claimed, worker last in %d: open = %d, want %d", c.gen, c.claimed, c.chunks, c.last, got, c.want)
		}
	}
}

// TestInPieces: the pieces cover [lo, hi) once, in order, start at multiples
// of align from lo, and hold at most cgoPiece multiply-adds unless one
// multiple of align already costs more.
func TestInPieces(t *testing.T) {
	for _, c := range []struct{ lo, hi, align, cost, wantStep int }{
		{0, 2600, 4, 32 * 256, 128},       // float32 greedy at batch 32: 8,192 a column
		{64, 2600, 32, 3072, 320},         // int8 at 24 rows of 512, a quarter the cost
		{0, 100, 4, cgoPiece, 4},          // a multiple of align over the bound: one at a time
		{0, 100, 1, 1, 100},               // all of it under the bound: one call
		{5, 5, 4, 1, 0},                   // nothing to do: no call
		{0, 2048, 4, 512, cgoPiece / 512}, // one row (greedy at batch 1): 2,048 a piece
	} {
		next := c.lo
		calls := 0
		inPieces(c.lo, c.hi, c.align, c.cost, func(lo, hi int) {
			calls++
			if lo != next || hi <= lo || hi > c.hi {
				t.Fatalf("%+v: piece [%d, %d) after %d", c, lo, hi, next)
			}
			if (lo-c.lo)%c.align != 0 || hi-lo > c.wantStep || hi != c.hi && hi-lo != c.wantStep {
				t.Fatalf("%+v: piece [%d, %d), want %d items a piece from a multiple of %d", c, lo, hi, c.wantStep, c.align)
			}
			next = hi
		})
		if next != max(c.lo, c.hi) || (c.hi > c.lo) != (calls > 0) {
			t.Fatalf("%+v: pieces ended at %d after %d calls, want %d", c, next, calls, c.hi)
		}
	}
}

// TestSumSquaresIsDeterministic: the chunks' sums are added in order, so a
// sum whose float64 rounding depends on that order gives the same bits on
// every call, however the threads finish.
func TestSumSquaresIsDeterministic(t *testing.T) {
	d := New(2)
	defer d.Close()
	x := make([]float32, 64*grain)
	for i := range x {
		x[i] = float32(1 + i%7)
		if i%grain == 0 {
			x[i] = 3e7 // chunk sums of very different sizes: their order shows in the last bits
		}
	}
	b := d.Alloc(len(x))
	d.Upload(b, x)
	first, err := d.SumSquares(b)
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		if s, _ := d.SumSquares(b); math.Float64bits(s) != math.Float64bits(first) {
			t.Fatalf("SumSquares gave %v, then %v", first, s)
		}
	}
}
