// Package progress draws a one-line terminal progress bar with rate and ETA, the
// Go counterpart of the tqdm bars the seed notebook used.
//
// On a terminal the line is redrawn in place at most every Interval; when the
// output is a file or pipe (CI logs, nohup) a plain line is written at most every
// LogInterval, so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar tracks progress towards a total. It is safe for concurrent use.
type Bar struct {
	w       io.Writer
	label   string
	unit    string
	total   int
	tty     bool
	every   time.Duration
	now     func() time.Time
	mu      sync.Mutex
	done    int
	status  string
	start   time.Time
	lastOut time.Time
}

// Refresh periods for a terminal and for logs.
const (
	Interval    = 200 * time.Millisecond
	LogInterval = 10 * time.Second
)

// New starts a bar for total items of unit (e.g. "img", "tok") written to w.
func New(w io.Writer, label string, total int, unit string) *Bar {
	tty := isTerminal(w)
	every := LogInterval
	if tty {
		every = Interval
	}
	b := &Bar{w: w, label: label, unit: unit, total: total, tty: tty, every: every, now: time.Now}
	b.start = b.now()
	return b
}

// Add records n more items done and redraws when due.
func (b *Bar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if t := b.now(); t.Sub(b.lastOut) >= b.every {
		b.lastOut = t
		b.draw(false)
	}
}

// SetStatus sets a short text shown after the counts, such as "loss 2.41".
func (b *Bar) SetStatus(format string, args ...any) {
	b.mu.Lock()
	b.status = fmt.Sprintf(format, args...)
	b.mu.Unlock()
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(true)
}

func (b *Bar) rate() float64 {
	el := b.now().Sub(b.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(b.done) / el
}

// draw writes the line; the caller holds mu.
func (b *Bar) draw(final bool) {
	rate := b.rate()
	var sb strings.Builder
	sb.WriteString(b.label)
	if b.total > 0 {
		frac := float64(b.done) / float64(b.total)
		if frac > 1 {
			frac = 1
		}
		const width = 24
		filled := int(frac * width)
		fmt.Fprintf(&sb, " %3.0f%% |%s%s| %d/%d", frac*100,
			strings.Repeat("#", filled), strings.Repeat(" ", width-filled), b.done, b.total)
	} else {
		fmt.Fprintf(&sb, " %d", b.done)
	}
	fmt.Fprintf(&sb, " [%s, %.1f %s/s", fmtDuration(b.now().Sub(b.start)), rate, b.unit)
	if b.total > 0 && !final && rate > 0 {
		fmt.Fprintf(&sb, ", ETA %s", fmtDuration(time.Duration(float64(b.total-b.done)/rate*float64(time.Second))))
	}
	sb.WriteString("]")
	if b.status != "" {
		sb.WriteString(" " + b.status)
	}
	switch {
	case b.tty && final:
		fmt.Fprintf(b.w, "\r\033[K%s\n", sb.String())
	case b.tty:
		fmt.Fprintf(b.w, "\r\033[K%s", sb.String())
	default:
		fmt.Fprintln(b.w, sb.String())
	}
}

// fmtDuration prints h:mm:ss or m:ss, like tqdm.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
