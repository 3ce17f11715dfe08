package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told, so rates and ETAs are exact.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestBar(total int) (*Bar, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(1000, 0)}
	b := New(&buf, "extract", total, "img")
	b.now = clk.now
	b.start = clk.t
	b.lastOut = clk.t
	return b, &buf, clk
}

func TestBarLogLinesShowRateAndETA(t *testing.T) {
	b, buf, clk := newTestBar(100)
	clk.t = clk.t.Add(10 * time.Second)
	b.SetStatus("loss %.2f", 2.5)
	b.Add(25) // 2.5 img/s; 75 left -> 30 s
	want := "extract  25% |######                  | 25/100 [0:10, 2.5 img/s, ETA 0:30] loss 2.50\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
}

func TestBarThrottlesRedraws(t *testing.T) {
	b, buf, clk := newTestBar(10)
	clk.t = clk.t.Add(LogInterval / 2)
	b.Add(1)
	if buf.Len() != 0 {
		t.Fatalf("drew before the log interval passed: %q", buf.String())
	}
	clk.t = clk.t.Add(LogInterval)
	b.Add(1)
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Fatalf("want one line after the interval, got %d: %q", got, buf.String())
	}
}

func TestBarFinishAndUnknownTotal(t *testing.T) {
	b, buf, clk := newTestBar(0)
	clk.t = clk.t.Add(3725 * time.Second)
	b.done = 7450
	b.Finish()
	want := "extract 7450 [1:02:05, 2.0 img/s]\n"
	if buf.String() != want {
		t.Fatalf("got %q want %q", buf.String(), want)
	}
}
