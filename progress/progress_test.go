package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
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
	clk.t = clk.t.Add(5 * time.Second)
	b.Add(10) // before the log interval: counted, not drawn
	clk.t = clk.t.Add(5 * time.Second)
	b.SetStatus("loss %.2f", 2.5)
	b.Add(15) // 25 in all, 2.5 img/s; 75 left -> 30 s
	want := "extract  25% |######                  | 25/100 [0:10, 2.5 img/s, ETA 0:30] loss 2.50\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
}

// With nothing done there is no rate to tell an ETA by: none is shown (it
// had read "ETA 0:00").
func TestBarWithNothingDoneShowsNoETA(t *testing.T) {
	b, buf, clk := newTestBar(10)
	clk.t = clk.t.Add(10 * time.Second)
	b.Add(0)
	if want := "extract   0% |                        | 0/10 [0:10, 0.0 img/s]\n"; buf.String() != want {
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
	// The interval runs again from that line.
	clk.t = clk.t.Add(LogInterval - time.Second)
	b.Add(1)
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Fatalf("drew again before another interval passed: %q", buf.String())
	}
}

// The final line has no ETA; the bar is full at the total and no further
// (a count past it stays full), and nearly full is not full; a bar finished
// at once has a rate of 0.
func TestBarFinishLines(t *testing.T) {
	for _, tc := range []struct {
		total, done int
		elapsed     time.Duration
		want        string
	}{
		{100, 99, 10 * time.Second, "extract  99% |####################### | 99/100 [0:10, 9.9 img/s]\n"},
		{10, 12, 4 * time.Second, "extract 100% |########################| 12/10 [0:04, 3.0 img/s]\n"},
		{0, 0, 0, "extract 0 [0:00, 0.0 img/s]\n"},
	} {
		b, buf, clk := newTestBar(tc.total)
		clk.t = clk.t.Add(tc.elapsed)
		b.done = tc.done
		b.Finish()
		if buf.String() != tc.want {
			t.Errorf("%d of %d: got %q, want %q", tc.done, tc.total, buf.String(), tc.want)
		}
	}
}

// On a terminal the line is redrawn in place (carriage return, erase to the
// end of the line) and ended by Finish alone; a file is not a terminal.
func TestBarOnATerminal(t *testing.T) {
	b, buf, clk := newTestBar(0)
	b.tty = true
	clk.t = clk.t.Add(LogInterval)
	b.Add(5)
	b.Finish()
	if want := "\r\033[Kextract 5 [0:10, 0.5 img/s]\r\033[Kextract 5 [0:10, 0.5 img/s]\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := New(f, "x", 1, "img"); b.tty || b.every != LogInterval {
		t.Errorf("a file: tty %v, every %s; want a log every %s", b.tty, b.every, LogInterval)
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{-5 * time.Second: "0:00", 89600 * time.Millisecond: "1:30",
		59 * time.Minute: "59:00", time.Hour: "1:00:00", 3725 * time.Second: "1:02:05"} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%s) = %q, want %q", d, got, want)
		}
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

// A character device is a terminal to New: the line is redrawn every
// Interval, not every LogInterval as in a log.
func TestNewOnATerminalRedrawsEveryInterval(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := New(f, "x", 1, "img"); !b.tty || b.every != Interval {
		t.Errorf("%s: tty %v, every %s; want a redraw every %s", os.DevNull, b.tty, b.every, Interval)
	}
}

// New starts the clock: a bar finished at once took 0:00, at a finite rate
// (counted from the zero time, it would have taken millions of hours). The
// rate is what the few nanoseconds between New and Finish give: any number,
// 0.0 where the clock did not move.
func TestNewStartsTheClock(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 0, "img")
	b.done = 3
	b.Finish()
	if ok, _ := regexp.MatchString(`^x 3 \[0:00, [0-9]+\.[0-9] img/s\]\n$`, buf.String()); !ok {
		t.Errorf("finished at once: %q, want elapsed 0:00 and a finite rate", buf.String())
	}
}
