package server

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter caps the connections a listener keeps open. A connection over the
// cap is answered 503 and closed at once rather than left waiting in the
// kernel's backlog: its client learns why and when to retry, and one that holds
// many idle keep-alives cannot make others hang.
type connLimiter struct {
	net.Listener
	slots   chan struct{} // one per open connection
	refusal chan struct{} // bounds the goroutines answering refused connections
	open    prometheus.Gauge
	refused prometheus.Counter
}

// maxRefusing bounds the refused connections being answered at once; beyond it
// they are closed without an answer, so a flood costs no more than this.
const maxRefusing = 64

// refusalTimeout bounds answering one refused connection.
const refusalTimeout = time.Second

// refusalResponse is the whole answer to a connection over the cap.
var refusalResponse = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n" +
	"Content-Length: " + strconv.Itoa(len(refusalBody)) + "\r\n\r\n" + refusalBody)

const refusalBody = `{"error":"the server has as many open connections as it allows (server.max_connections); retry in a moment, and reuse one connection for several requests"}` + "\n"

func newConnLimiter(ln net.Listener, max int, m *metrics) *connLimiter {
	return &connLimiter{Listener: ln, slots: make(chan struct{}, max), refusal: make(chan struct{}, maxRefusing),
		open: m.connsOpen, refused: m.connsRefused}
}

// Accept returns the next connection within the cap, answering the ones over it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.open.Inc()
			return &limitedConn{Conn: c, release: func() { <-l.slots; l.open.Dec() }}, nil
		default:
			l.refused.Inc()
			l.refuse(c)
		}
	}
}

// refuse answers c with the 503 and closes it, off the accept loop.
func (l *connLimiter) refuse(c net.Conn) {
	select {
	case l.refusal <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusal }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refusalTimeout))
		if _, err := c.Write(refusalResponse); err != nil {
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

// limitedConn gives its slot back when closed (the HTTP server closes each
// connection once; the Once makes a second Close harmless anyway).
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
