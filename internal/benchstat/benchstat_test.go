package benchstat

import (
	"testing"
	"time"
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
	sleeps := []time.Duration{20, 1, 5, 1, 5} // milliseconds; the median call sleeps 5
	i := 0
	median, fastest := Calls(b, func() { time.Sleep(sleeps[i] * time.Millisecond); i++ })
	if i != 5 {
		t.Fatalf("Calls made %d calls, want b.N = 5", i)
	}
	if median < 5*time.Millisecond || median >= 10*time.Millisecond {
		t.Errorf("median %v, want about 5ms (the middle of 1, 1, 5, 5, 20 ms)", median)
	}
	if fastest < time.Millisecond || fastest >= 5*time.Millisecond {
		t.Errorf("fastest %v, want about 1ms", fastest)
	}
}

func TestCPUTimeAdvancesWithWork(t *testing.T) {
	t0 := CPUTime()
	x := 0.0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		for i := range 1000 {
			x += float64(i)
		}
	}
	if d := CPUTime() - t0; d < 20*time.Millisecond {
		t.Errorf("CPUTime advanced %v over 50ms of busy work (x=%v), want at least 20ms", d, x)
	}
}
