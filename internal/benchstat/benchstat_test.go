package benchstat

import (
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		times []time.Duration
		want  time.Duration
	}{
		{[]time.Duration{7}, 7},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 10, 2}, 3}, // the mean of 2 and 4
		{[]time.Duration{3, 3, 100, 3, 2}, 3},
	} {
		if got := Median(append([]time.Duration(nil), c.times...)); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.times, got, c.want)
		}
	}
}

func TestCallsTimesEachCall(t *testing.T) {
	b := &testing.B{N: 5}
	sleeps := []time.Duration{40, 2, 10, 2, 10} // milliseconds; the median call sleeps 10
	i := 0
	median, fastest := Calls(b, func() { time.Sleep(sleeps[i] * time.Millisecond); i++ })
	if i != 5 {
		t.Fatalf("Calls made %d calls, want b.N = 5", i)
	}
	// Sleeps run over on a loaded machine: the bounds leave them 8 ms.
	if median < 10*time.Millisecond || median >= 18*time.Millisecond {
		t.Errorf("median %v, want about 10ms (the middle of 2, 2, 10, 10, 40 ms)", median)
	}
	if fastest < 2*time.Millisecond || fastest >= 10*time.Millisecond {
		t.Errorf("fastest %v, want about 2ms", fastest)
	}
}

// TestCPUTimeAdvancesWithWork busies the CPU until the kernel's process CPU
// clock (CLOCK_PROCESS_CPUTIME_ID, another account of the same time) has
// advanced 50 ms, and checks that CPUTime advanced as much, and not much more:
// a wall-clock busy loop got 18 ms of CPU on a loaded machine. Reading the
// clock after every 1,000 additions spends about half the time in the kernel,
// which system time left out would miss; after every 1,000,000 nearly all of
// it is user time, which counted twice would double.
func TestCPUTimeAdvancesWithWork(t *testing.T) {
	for _, additions := range []int{1000, 1_000_000} {
		t0, c0 := CPUTime(), processCPU(t)
		x := 0.0
		for wall := time.Now().Add(10 * time.Second); processCPU(t)-c0 < 50*time.Millisecond && time.Now().Before(wall); {
			for i := range additions {
				x += float64(i)
			}
		}
		used := processCPU(t) - c0
		if d := CPUTime() - t0; d < used*4/5 || d > used*3/2 || used < 50*time.Millisecond {
			t.Errorf("reading the clock every %d additions: CPUTime advanced %v while the process CPU clock advanced %v (x=%v), want about as much (and 50ms at least)", additions, d, used, x)
		}
	}
}

// processCPU reads the kernel's CLOCK_PROCESS_CPUTIME_ID.
func processCPU(t *testing.T) time.Duration {
	const clockProcessCPUTimeID = 2
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		t.Fatalf("clock_gettime: %v", e)
	}
	return time.Duration(ts.Nano())
}

// TestCPUTimeCountsSystemTime reads /dev/zero a byte at a time until the
// process CPU clock has advanced 50 ms: about three quarters of that time is
// the kernel's, system time, which a CPUTime of user time alone leaves out
// (it advanced 4 to 23 ms of the 50 in 40 runs, under the 40 ms asked). The
// reads are raw system calls, not os.File's nor syscall.Read, whose work in
// Go's scheduler around each call is user time: with syscall.Read user time
// alone reached the 40 ms now and then.
func TestCPUTimeCountsSystemTime(t *testing.T) {
	fd, err := syscall.Open("/dev/zero", syscall.O_RDONLY, 0)
	if err != nil {
		t.Skipf("no /dev/zero: %v", err)
	}
	defer syscall.Close(fd)
	b := make([]byte, 1)
	t0, c0 := CPUTime(), processCPU(t)
	for wall := time.Now().Add(10 * time.Second); processCPU(t)-c0 < 50*time.Millisecond && time.Now().Before(wall); {
		for range 1000 {
			if n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1); e != 0 || n != 1 {
				t.Fatalf("reading /dev/zero: %d bytes, %v", n, e)
			}
		}
	}
	used := processCPU(t) - c0
	if d := CPUTime() - t0; d < used*4/5 || used < 50*time.Millisecond {
		t.Errorf("reading /dev/zero a byte at a time: CPUTime advanced %v while the process CPU clock advanced %v, want about as much (and 50ms at least)", d, used)
	}
}
