package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// connLimiter caps the connections the server keeps open (server.max_connections).
// At the cap, a new connection takes the place of the one that has waited
// longest without a request: a keep-alive between requests, or a connection
// whose first request's headers have not all arrived (net/http's StateNew).
// So neither idle keep-alives nor silent connections (opened and left, up to
// server.read_header_timeout each) can lock clients out. When every connection is in a request, the new one is
// answered 503 and closed at once rather than left waiting in the kernel's
// backlog, so its client learns why and when to retry; a probe is answered
// even then (answerOverCap).
type connLimiter struct {
	slots   chan struct{} // one per open connection
	refusal chan struct{} // bounds the goroutines answering refused connections
	metrics *metrics
	probes  http.Handler // answers /healthz and /readyz over the cap: the server's routes

	mu      sync.Mutex
	waiting map[*limitedConn]waiting // connections without a request: since when, and in which state
}

// waiting is a connection between requests (http.StateIdle) or before its
// first (http.StateNew), since a time.
type waiting struct {
	state http.ConnState
	since time.Time
}

// maxRefusing bounds the refused connections being answered at once; beyond it
// they are closed without an answer, so a flood costs no more than this.
const maxRefusing = 64

// refusalTimeout bounds answering one refused connection.
const refusalTimeout = time.Second

const refusalBody = `{"error":"the server has as many open connections as it allows (server.max_connections), all in requests; retry in a moment"}` + "\n"

// refusalResponse is the whole answer to a connection over the cap.
var refusalResponse = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n" +
	"Content-Length: " + strconv.Itoa(len(refusalBody)) + "\r\n\r\n" + refusalBody)

// answerOverCap is the answer to a connection over the cap that sent the
// request r holds (as far as it came, up to maxProbeRequest bytes) from
// the address remote: a probe's
// (GET or HEAD of /healthz or /readyz) as the server's own routes, probes,
// answer it, Host check and body alike, else the 503. A server at its cap is
// busy, not dead nor unready: an orchestrator failing its probes restarted
// it, or moved its traffic to the others and overloaded them.
func answerOverCap(r io.Reader, remote string, probes http.Handler) []byte {
	req, err := http.ReadRequest(bufio.NewReaderSize(io.LimitReader(r, maxProbeRequest), maxProbeRequest))
	probe := err == nil && (req.Method == http.MethodGet || req.Method == http.MethodHead) && (req.URL.Path == "/healthz" || req.URL.Path == "/readyz")
	// HTTP/1.1 requires Host; net/http refuses a request without it, so does this.
	if !probe || req.ProtoAtLeast(1, 1) && req.Host == "" {
		return refusalResponse
	}
	req.RemoteAddr = remote // for the request log, as net/http sets it
	w := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	probes.ServeHTTP(w, req)
	res := &http.Response{StatusCode: w.status, ProtoMajor: 1, ProtoMinor: 1, Header: w.header, Request: req, Close: true,
		Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len())}
	var out bytes.Buffer
	if err := res.Write(&out); err != nil {
		return refusalResponse
	}
	return out.Bytes()
}

// maxProbeRequest bounds what a refused connection's request is read for:
// a probe's line and headers.
const maxProbeRequest = 4 << 10

// bufferedResponse is an http.ResponseWriter that keeps the answer for
// answerOverCap to write.
type bufferedResponse struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func newConnLimiter(max int, m *metrics, probes http.Handler) *connLimiter {
	return &connLimiter{slots: make(chan struct{}, max), refusal: make(chan struct{}, maxRefusing), metrics: m,
		probes: probes, waiting: map[*limitedConn]waiting{}}
}

// listen wraps ln so that its connections count against the cap.
func (l *connLimiter) listen(ln net.Listener) net.Listener { return &limitedListener{ln, l} }

// connState is the http.Server's ConnState hook: it tracks which connections
// are idle between requests and which have sent nothing yet.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle || st == http.StateNew {
		l.waiting[lc] = waiting{st, time.Now()}
	} else {
		delete(l.waiting, lc)
	}
}

// admit takes a slot for a new connection, closing the one waiting longest
// without a request to make room if need be.
func (l *connLimiter) admit() bool {
	if l.take() {
		return true
	}
	l.mu.Lock()
	var idlest *limitedConn
	var since time.Time
	for c, w := range l.waiting {
		if idlest == nil || w.since.Before(since) {
			idlest, since = c, w.since
		}
	}
	delete(l.waiting, idlest)
	l.mu.Unlock()
	if idlest == nil {
		return false
	}
	// Servers may close idle keep-alives at any time, and connections that
	// have sent nothing; HTTP clients reconnect.
	idlest.Close() // gives its slot back before returning
	l.metrics.connsIdleClosed.Inc()
	return l.take()
}

func (l *connLimiter) take() bool {
	select {
	case l.slots <- struct{}{}:
		l.metrics.connsOpen.Inc()
		return true
	default:
		return false
	}
}

func (l *connLimiter) release() {
	<-l.slots
	l.metrics.connsOpen.Dec()
}

// refuse answers c with the 503 and closes it, off the accept loop.
func (l *connLimiter) refuse(c net.Conn) {
	l.metrics.connsRefused.Inc()
	select {
	case l.refusal <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusal }()
		defer c.Close()
		// One second for all of it, of which the request gets a quarter:
		// a probe sends it at once, and a slot held longer by silent
		// clients leaves none for it.
		deadline := time.Now().Add(refusalTimeout)
		c.SetDeadline(deadline)
		c.SetReadDeadline(time.Now().Add(refusalTimeout / 4))
		answer := answerOverCap(c, c.RemoteAddr().String(), l.probes)
		c.SetReadDeadline(deadline)
		if _, err := c.Write(answer); err != nil {
			return
		}
		// Closing with the request unread would reset the connection, and the
		// client could lose the answer: end our side, then read what it sent.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

type limitedListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection within the cap, answering the ones over it.
func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ln.l.admit() {
			return &limitedConn{Conn: c, release: ln.l.release}, nil
		}
		ln.l.refuse(c)
	}
}

// limitedConn gives its slot back when first closed: by the HTTP server, or by
// the limiter making room.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
