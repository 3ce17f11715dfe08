package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// hub fans captions out to /live viewers. Publishing never blocks: each viewer
// has a bounded buffer, and a viewer whose buffer is full is disconnected (its
// browser's EventSource reconnects and catches up from the recent history), so a
// slow viewer costs itself and never the captioning.
type hub struct {
	buf, maxViewers, maxPerClient int
	metrics                       *metrics

	mu        sync.Mutex
	viewers   map[*viewer]struct{}
	perClient map[string]int // open streams by client address
	recent    []frame        // the last recentLen events, oldest first, for new viewers
	nextID    uint64         // the last event's id; from firstID, above every earlier hub's
	closed    bool
}

// recentLen is how many past captions a viewer sees when it connects.
const recentLen = 12

type frame struct {
	id   uint64
	data []byte
}

type viewer struct {
	client string
	events chan []byte   // SSE frames, capacity buf
	kicked chan struct{} // closed when the hub drops the viewer
}

func newHub(buf, maxViewers, maxPerClient int, m *metrics) *hub {
	return &hub{buf: buf, maxViewers: maxViewers, maxPerClient: maxPerClient, metrics: m,
		viewers: map[*viewer]struct{}{}, perClient: map[string]int{}, nextID: firstID(time.Now())}
}

// firstID is where the event ids of a hub started at now begin: the start's
// milliseconds times 1024, above every id an earlier server gave (unless it
// made 1,024 captions a millisecond). A viewer reconnecting to a restarted
// server sends the old server's last id: with ids from 1 again the new
// server would replay none of its first captions, and the page, which skips
// ids it has shown, would drop them. Below 2^53, so JavaScript's numbers
// hold them exactly.
func firstID(now time.Time) uint64 { return uint64(now.UnixMilli()) << 10 }

// errHubClosed, errTooManyViewers and errClientViewers are the reasons join
// refuses, each with a Retry-After as every 429 and 503 has: a viewer's
// slot frees when a stream closes, which no one can time, so a few seconds.
var (
	errHubClosed      = &httpError{status: http.StatusServiceUnavailable, retryAfter: time.Second, msg: "the server is shutting down"}
	errTooManyViewers = &httpError{status: http.StatusServiceUnavailable, retryAfter: liveRetry, msg: "too many live viewers (server.live_max_viewers); retry later"}
	errClientViewers  = &httpError{status: http.StatusTooManyRequests, retryAfter: liveRetry,
		msg: "this address already has as many live streams open as one client may (server.live_max_per_client); close one first"}
)

// liveRetry is the Retry-After of a live stream refused for want of a slot.
const liveRetry = 5 * time.Second

// join registers a viewer from client (its address) and returns it with the
// recent frames after event lastID (the browser's Last-Event-ID when it
// reconnects) to send first.
func (h *hub) join(client string, lastID uint64) (*viewer, [][]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, errHubClosed
	}
	if h.perClient[client] >= h.maxPerClient {
		return nil, nil, errClientViewers
	}
	if len(h.viewers) >= h.maxViewers {
		return nil, nil, errTooManyViewers
	}
	v := &viewer{client: client, events: make(chan []byte, h.buf), kicked: make(chan struct{})}
	h.viewers[v] = struct{}{}
	h.perClient[client]++
	h.metrics.liveViewers.Set(float64(len(h.viewers)))
	var missed [][]byte
	for _, f := range h.recent {
		if f.id > lastID {
			missed = append(missed, f.data)
		}
	}
	return v, missed, nil
}

func (h *hub) leave(v *viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(v)
}

// drop removes v; h.mu is held.
func (h *hub) drop(v *viewer) {
	if _, ok := h.viewers[v]; ok {
		delete(h.viewers, v)
		if h.perClient[v.client]--; h.perClient[v.client] == 0 {
			delete(h.perClient, v.client)
		}
		close(v.kicked)
		h.metrics.liveViewers.Set(float64(len(h.viewers)))
	}
}

// publish sends one caption event to every viewer without blocking.
func (h *hub) publish(ev any) {
	body, err := json.Marshal(ev)
	if err != nil {
		panic("server: live event does not marshal: " + err.Error())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	data := fmt.Appendf(nil, "id: %d\nevent: caption\ndata: %s\n\n", h.nextID, body)
	if len(h.recent) == recentLen {
		h.recent = append(h.recent[:0], h.recent[1:]...)
	}
	h.recent = append(h.recent, frame{h.nextID, data})
	for v := range h.viewers {
		select {
		case v.events <- data:
		default:
			h.metrics.liveKicked.Inc()
			h.drop(v)
		}
	}
}

// close disconnects every viewer and refuses new ones (server shutdown).
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for v := range h.viewers {
		h.drop(v)
	}
}

// liveEvent is what /live shows for one caption.
func liveEvent(u *upload, r Captioned) gin.H {
	out := resultJSON(r)
	maps.Copy(out, gin.H{"thumbnail": u.thumb, "filename": u.name, "time": time.Now().UTC().Format(time.RFC3339Nano)})
	return out
}

// liveKeepAlive is how often an idle stream sends a comment, so proxies and
// browsers keep it open and a vanished client is noticed.
const liveKeepAlive = 15 * time.Second

// liveWriteTimeout bounds one write to a viewer; a viewer that cannot take a
// frame in this time is gone or hopeless.
const liveWriteTimeout = 10 * time.Second

// liveOn says whether the live page can have viewers (server.live is not
// off): only then are captions published, with their thumbnails, which a
// server without it (the default beyond loopback) would make for nobody.
func (s *Server) liveOn() bool { return s.liveMode != "off" }

// liveGate admits to the live page and stream only whom server.live allows.
// Browsers' EventSource cannot send headers, so the token may come as ?token=
// (the live page passes its own on); pages send no Referer, and logs record the
// route without the query.
func (s *Server) liveGate(c *gin.Context) {
	switch s.liveMode {
	case "public":
	case "local":
		if !s.fromThisMachine(c) {
			apiError(c, http.StatusForbidden, "the live stream answers only requests made on the server's machine (server.live auto on a loopback server.addr), and this one came through a proxy or from another address: set server.live to token (or public) to show it through a proxy")
		}
	case "token":
		got, ok := bearer(c)
		if !ok {
			got, ok = c.GetQuery("token")
		}
		switch {
		case !ok:
			unauthorized(c, "the live stream needs the viewer token (server.live is token): open /live?token=<server.live_token>, or send Authorization: Bearer <server.live_token>")
		case !sameToken(got, s.cfg.LiveToken):
			unauthorized(c, "the token is not server.live_token: ask whoever runs the server for the viewer token")
		}
	default:
		apiError(c, http.StatusForbidden, "the live stream is off on this server (server.live is off, the default when server.addr is not loopback): set server.live to public or token to turn it on")
	}
}

// getLive streams captions as Server-Sent Events (event "caption", JSON data).
func (s *Server) getLive(c *gin.Context) {
	// A reconnecting EventSource sends the id of the last event it saw.
	lastID, _ := strconv.ParseUint(c.GetHeader("Last-Event-ID"), 10, 64)
	v, recent, err := s.live.join(c.ClientIP(), lastID)
	if err != nil {
		s.fail(c, err)
		return
	}
	defer s.live.leave(v)
	w := c.Writer
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(frames ...[]byte) bool {
		// The server's WriteTimeout would end the stream; each write gets its own deadline instead.
		rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !send(append([][]byte{[]byte("retry: 2000\n: connected\n\n")}, recent...)...) {
		return
	}
	tick := time.NewTicker(liveKeepAlive)
	defer tick.Stop()
	for {
		select {
		case f := <-v.events:
			if !send(f) {
				return
			}
		case <-tick.C:
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
		case <-v.kicked:
			return
		case <-c.Request.Context().Done():
			return
		}
	}
}
