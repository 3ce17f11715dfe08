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
