package cpu

import (
	"runtime"
	"sync/atomic"
	"testing"
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
	// The worker, started now, first drains the ended loops' generations, and
	// must run nothing of them; then it shares a loop with the caller.
	go d.worker()
	defer d.Close()
	for len(d.work) > 0 {
		runtime.Gosched()
	}
	if r := ran.Load(); r != 6 {
		t.Fatalf("%d chunks ran after the worker started, want still 6", r)
	}
	d.parallel(1000, 10, func(lo, hi int) { ran.Add(1) })
	if r := ran.Load(); r != 8 {
		t.Fatalf("%d chunks ran, want 8", r)
	}
}
