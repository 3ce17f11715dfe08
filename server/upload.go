package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// A request's body is read before the request takes a queue place, so that a
// client trickling its upload holds only its own connection, never a place
// that the queue could give to an image ready to be captioned. What bounds the
// bodies instead: each must arrive at server.min_upload_rate or faster and
// within server.read_timeout (bodyReader), and those held at once, received or
// arriving, are at most server.max_upload_bytes (uploadBudget). A body of
// declared length takes all of it from the budget before its first byte is
// read: counted as they arrived, parallel uploads from one client each held
// part of its share when the share ran out, and all of them were refused
// after sending that part for nothing.

// uploadGrace is the time a body has before its rate counts: a connection's
// first round trips and TCP slow start are not the client's fault.
const uploadGrace = time.Second

// uploadBudget counts the bytes of request bodies the server holds, in all
// and by client address: one client may hold a quarter of them (and always one
// largest body), so that a few uploads sent fast and then trickled at the
// minimum rate cannot hold all of it for read_timeout.
type uploadBudget struct {
	max, perClient int64
	used           atomic.Int64

	mu       sync.Mutex
	byClient map[string]int64
}

func newUploadBudget(total, maxBody int64) *uploadBudget {
	return &uploadBudget{max: total, perClient: max(total/4, maxBody), byClient: map[string]int64{}}
}

// take counts n more bytes of client's, or returns the *httpError of the limit
// they would pass, counting nothing.
func (u *uploadBudget) take(client string, n int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used.Load()+n > u.max {
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: time.Second, msg: fmt.Sprintf(
			"the server is receiving as much upload data as it holds at once (server.max_upload_bytes, %d bytes); retry in a moment", u.max)}
	}
	if u.byClient[client]+n > u.perClient {
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: time.Second, msg: fmt.Sprintf(
			"this client is sending as much upload data as one client may hold at once (a quarter of server.max_upload_bytes, and at least server.max_body_bytes: %d bytes); retry when its other uploads are done", u.perClient)}
	}
	u.used.Add(n)
	u.byClient[client] += n
	return nil
}

func (u *uploadBudget) give(client string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.used.Add(-n)
	if u.byClient[client] -= n; u.byClient[client] <= 0 {
		delete(u.byClient, client)
	}
}

// bodyReader is a request body held to the minimum upload rate, the read
// timeout and a limit on stalls. Before each read it sets the connection's read
// deadline to the moment the next byte becomes overdue: uploadGrace plus what
// the bytes so far allow at the minimum rate, but never more than
// server.read_header_timeout from now (a sender that has stopped), nor past
// start + read_timeout. Bytes that arrive move the deadline forward only by
// their worth at the minimum rate, so a slow sender cannot stretch it; and a
// fast one that stops cannot hold its bytes against the upload budget for the
// whole read_timeout (8 such bodies held all of it for 60 s).
type bodyReader struct {
	body     io.ReadCloser // limited to server.max_body_bytes
	rc       *http.ResponseController
	header   http.Header // the response's
	eof      bool        // the body was read to its end
	start    time.Time
	deadline time.Time     // start + server.read_timeout, fixed
	stall    time.Duration // server.read_header_timeout: the longest wait for more bytes
	minRate  int           // bytes per second: server.min_upload_rate, or paced's
	paced    bool          // minRate is the pace of a declared length held whole (see newBodyReader)
	expects  bool          // the client waits on Expect: 100-continue before sending
	budget   *uploadBudget
	client   string // the client's address, as the budget counts it
	declared int64  // the body's Content-Length, -1 when unknown (chunked)
	n        int64  // bytes read
	held     int64  // bytes held against the budget: the declared length once reading starts, then at least n
	failed   error  // the *httpError that ended the body, if one did
}

func newBodyReader(s *Server, c *gin.Context) *bodyReader {
	now := time.Now()
	b := &bodyReader{
		body:     http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes),
		rc:       http.NewResponseController(c.Writer),
		header:   c.Writer.Header(),
		client:   c.ClientIP(),
		declared: c.Request.ContentLength,
		expects:  strings.EqualFold(c.Request.Header.Get("Expect"), "100-continue"),
		start:    now,
		deadline: now.Add(s.cfg.ReadTimeout),
		stall:    s.cfg.ReadHeaderTimeout,
		minRate:  s.cfg.MinUploadRate,
		budget:   s.uploads,
	}
	// A body holds its whole declared length from its first byte, so it must
	// also arrive at the pace that brings all of it within read_timeout: at
	// the minimum rate, a 32 MiB body that sent 1 MiB a minute would hold
	// 32 MiB of the budget for that minute. Any body that could arrive in time
	// keeps this pace.
	if pace := int(float64(b.declared) / s.cfg.ReadTimeout.Seconds()); pace > b.minRate {
		b.minRate, b.paced = pace, true
	}
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.failed != nil {
		return 0, b.failed
	}
	due := b.start.Add(uploadGrace + time.Duration(float64(b.n+1)/float64(b.minRate)*float64(time.Second)))
	stalled := time.Now().Add(b.stall)
	due = minTime(minTime(due, stalled), b.deadline)
	// Where the connection cannot take deadlines (a test recorder), the body is
	// read without them.
	b.rc.SetReadDeadline(due)
	// Before the first read, which is also when net/http tells a client that
	// asked (Expect: 100-continue) to send its body.
	if b.n == 0 && b.held < b.declared {
		if err := b.hold(b.declared); err != nil {
			return 0, err
		}
	}
	n, err := b.body.Read(p)
	if err := b.hold(b.n + int64(n)); err != nil {
		return 0, err
	}
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		// The request now waits for its captions with no read deadline: one
		// there would end the request's context, as if the client had gone
		// (net/http watches the connection from the end of the body on).
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.failed = b.timeoutError(due, due.Equal(stalled))
		return n, b.failed
	}
	return n, err
}

func (b *bodyReader) timeoutError(due time.Time, stalled bool) error {
	if stalled {
		return errorf(http.StatusRequestTimeout, "the request body stopped arriving: nothing for %s (server.read_header_timeout) after %d bytes; send it without pauses",
			b.stall, b.n)
	}
	if due.Equal(b.deadline) {
		return errorf(http.StatusRequestTimeout, "the request body did not arrive within %s (server.read_timeout): %d bytes were received; send it faster or in smaller requests",
			b.deadline.Sub(b.start), b.n)
	}
	if b.paced {
		return errorf(http.StatusRequestTimeout, "the request body arrived slower than %d bytes/s, the pace at which its declared %d bytes arrive within %s (server.read_timeout): %d bytes in %s; send it faster or in smaller requests",
			b.minRate, b.declared, b.deadline.Sub(b.start), b.n, time.Since(b.start).Round(time.Millisecond))
	}
	return errorf(http.StatusRequestTimeout, "the request body arrived slower than the minimum of %d bytes/s (server.min_upload_rate): %d bytes in %s; send it faster or in smaller requests",
		b.minRate, b.n, time.Since(b.start).Round(time.Millisecond))
}

// finish reads what follows a multipart body's closing boundary (a line end
// or two) up to its end, still held to the rate, so the read deadline comes
// off. A body that goes on past that keeps its deadline, and its connection
// is closed after the answer.
func (b *bodyReader) finish() {
	io.Copy(io.Discard, io.LimitReader(b, maxEpilogueBytes))
}

// maxEpilogueBytes bounds what finish reads after a multipart body's end.
const maxEpilogueBytes = 4 << 10

// abandon makes the answer to a request refused before a client waiting on
// Expect: 100-continue was told to send its body the connection's last, and
// reads none of the body. Otherwise net/http, to keep the connection, reads up
// to 256 KB of it before answering, first telling the client to send it (a
// bad option or Content-Type cost the client its upload), or after answering,
// waiting for a body the client never sends. A client that sends without
// waiting is left to net/http, which reads what it sends and answers: closing
// on it mid-send would lose it the answer.
func (b *bodyReader) abandon() {
	if b.expects && b.n == 0 {
		b.header.Set("Connection", "close")
		b.rc.SetReadDeadline(time.Now())
	}
}

// hold takes from the budget what it takes to hold bytes of the body in all.
func (b *bodyReader) hold(bytes int64) error {
	if bytes <= b.held {
		return nil
	}
	if err := b.budget.take(b.client, bytes-b.held); err != nil {
		b.failed = err
		return err
	}
	b.held = bytes
	return nil
}

// release gives the body's bytes back to the budget once its images are
// decoded (or refused); it may be called again.
func (b *bodyReader) release() {
	b.budget.give(b.client, b.held)
	b.n, b.held, b.declared = 0, 0, -1
}

func (b *bodyReader) Close() error { return b.body.Close() }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
