// Package benchstat holds what the benchmarks measure besides wall time per
// loop: the process's CPU time, and the median call. Why the median: the
// reference scripts in ../shared/bench (torch_captioner.py's timed) report the
// median of their per-call times, and a ratio is only fair between like
// statistics. On a shared machine a call now and then lands in a neighbour's
// burst and takes twice as long; the mean over a loop counts those, the median
// does not, so a mean against a median understates the faster side.
package benchstat

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

// CPUTime is the CPU time the process has used so far, every thread's, user
// and system. Beside a benchmark's rate, CPU time per item is a figure that
// the load of a shared machine disturbs far less.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic("benchstat: getrusage: " + err.Error())
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Calls runs call b.N times, timing each call, and returns the median and the
// fastest of those times. The caller resets b's timer before, if it warmed up.
func Calls(b *testing.B, call func()) (median, fastest time.Duration) {
	times := make([]time.Duration, b.N)
	for i := range times {
		t0 := time.Now()
		call()
		times[i] = time.Since(t0)
	}
	return Median(times), slices.Min(times)
}

// Median is the middle of times (the mean of the two middle ones for an even
// count, as Python's statistics.median); times is sorted in place.
func Median(times []time.Duration) time.Duration {
	slices.Sort(times)
	n := len(times)
	if n%2 == 1 {
		return times[n/2]
	}
	return (times[n/2-1] + times[n/2]) / 2
}
