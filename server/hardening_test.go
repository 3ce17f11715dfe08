package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/captioner/captioner/config"
)

// stepServer is a test server on a real loopback listener with a fast fake model.
func stepServer(t *testing.T, edit func(*config.Config)) *testServer {
	t.Helper()
	m := newStepModel("m")
	m.entered = nil
	return startServer(t, testConfig(t, edit), modelLoader(m))
}

// get does a GET with extra headers and reads the whole answer.
func get(t *testing.T, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// A stream never ends: its first frame is enough.
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		r.body = []byte(line)
		return r
	}
	r.body, _ = io.ReadAll(resp.Body)
	return r
}

func (r response) wantExact(t *testing.T, what string, status int, body string) {
	t.Helper()
	if got := strings.TrimSpace(string(r.body)); r.status != status || got != body {
		t.Errorf("%s: %d %s, want %d %s", what, r.status, got, status, body)
	}
}

func TestLiveModes(t *testing.T) {
	const (
		off      = `{"error":"the live stream is off on this server (server.live is off, the default when server.addr is not loopback): set server.live to public or token to turn it on"}`
		needTok  = `{"error":"the live stream needs the viewer token (server.live is token): open /live?token=\u003cserver.live_token\u003e, or send Authorization: Bearer \u003cserver.live_token\u003e"}`
		wrongTok = `{"error":"the token is not server.live_token: ask whoever runs the server for the viewer token"}`
		streamOK = "retry: 2000"
		proxied  = `{"error":"the live stream answers only requests made on the server's machine (server.live auto on a loopback server.addr), and this one came through a proxy or from another address: set server.live to token (or public) to show it through a proxy"}`
	)
	page := func(r response) string {
		if r.status == 200 && strings.Contains(string(r.body), `<script src="/static/live.js">`) {
			return "the page"
		}
		return strings.TrimSpace(string(r.body))
	}
	for _, tc := range []struct {
		name   string
		edit   func(*config.Config)
		query  string
		header map[string]string
		status int
		stream string // the stream's answer; the page's is the same error, or the page
	}{
		{"auto on loopback is this machine's", nil, "", nil, 200, streamOK},
		// A proxy on the same machine connects from loopback for every client.
		{"auto on loopback, through a proxy", nil, "", map[string]string{"X-Forwarded-For": "203.0.113.5"}, 403, proxied},
		{"auto on loopback, from a trusted proxy", func(c *config.Config) { c.Server.TrustedProxies = []string{"127.0.0.1"} }, "", nil, 403, proxied},
		{"public through a proxy", func(c *config.Config) { c.Server.Live = "public" }, "", map[string]string{"X-Forwarded-For": "203.0.113.5"}, 200, streamOK},
		{"auto beyond loopback is off", func(c *config.Config) { c.Server.Addr = "0.0.0.0:8080" }, "", nil, 403, off},
		{"off", func(c *config.Config) { c.Server.Live = "off" }, "", nil, 403, off},
		{"public beyond loopback", func(c *config.Config) { c.Server.Addr = ":8080"; c.Server.Live = "public" }, "", nil, 200, streamOK},
		{"token missing", liveToken, "", nil, 401, needTok},
		{"token wrong", liveToken, "?token=guess", nil, 401, wrongTok},
		{"token empty", liveToken, "?token=", nil, 401, wrongTok},
		{"admin token is not a viewer token", func(c *config.Config) { liveToken(c); c.Server.AdminToken = "adm" }, "",
			map[string]string{"Authorization": "Bearer adm"}, 401, wrongTok},
		{"token in the query", liveToken, "?token=v13w", nil, 200, streamOK},
		{"token as bearer", liveToken, "", map[string]string{"Authorization": "Bearer v13w"}, 200, streamOK},
	} {
		ts := stepServer(t, tc.edit)
		stream := get(t, ts.url+"/v1/live"+tc.query, tc.header)
		if got := strings.TrimSpace(string(stream.body)); stream.status != tc.status || got != tc.stream {
			t.Errorf("%s: /v1/live %d %s, want %d %s", tc.name, stream.status, got, tc.status, tc.stream)
		}
		wantPage := tc.stream
		if tc.status == 200 {
			wantPage = "the page"
		}
		if r := get(t, ts.url+"/live"+tc.query, tc.header); r.status != tc.status || page(r) != wantPage {
			t.Errorf("%s: /live %d %s, want %d %s", tc.name, r.status, page(r), tc.status, wantPage)
		}
	}
}

func liveToken(c *config.Config) { c.Server.Live = "token"; c.Server.LiveToken = "v13w" }

// viewers is how many live streams the hub holds for client.
func (h *hub) viewersOf(client string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perClient[client]
}

func TestLiveCapPerClient(t *testing.T) {
	const full = `{"error":"this address already has as many live streams open as one client may (server.live_max_per_client); close one first"}`
	// Public: auto shows the stream to this machine alone, not to what a proxy passes on.
	ts := stepServer(t, func(c *config.Config) { c.Server.LiveMaxPerClient = 2; c.Server.Live = "public" })
	_, closeA := openLive(t, ts.url, "")
	_, closeB := openLive(t, ts.url, "")
	defer closeB()
	third := get(t, ts.url+"/v1/live", nil)
	third.wantExact(t, "third stream", 429, full)
	if ra := third.header.Get("Retry-After"); ra != "5" {
		t.Errorf("third stream: Retry-After %q, want 5 (every 429 has one)", ra)
	}
	// X-Forwarded-For from a peer that is no trusted proxy names nobody.
	get(t, ts.url+"/v1/live", map[string]string{"X-Forwarded-For": "10.9.9.9"}).wantExact(t, "third stream, forwarded", 429, full)
	closeA()
	waitFor(t, "the closed stream to leave", func() bool { return ts.live.viewersOf("127.0.0.1") == 1 })
	if r := get(t, ts.url+"/v1/live", nil); r.status != 200 {
		t.Errorf("after one closed: %d %s, want 200", r.status, r.body)
	}

	// Behind a trusted proxy the forwarded address is the client.
	tp := stepServer(t, func(c *config.Config) {
		c.Server.LiveMaxPerClient = 1
		c.Server.TrustedProxies = []string{"127.0.0.0/8"}
		c.Server.Live = "public"
	})
	for _, who := range []string{"10.0.0.1", "10.0.0.2"} {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", tp.url+"/v1/live", nil)
		req.Header.Set("X-Forwarded-For", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("first stream of %s behind the proxy: %d", who, resp.StatusCode)
		}
	}
	get(t, tp.url+"/v1/live", map[string]string{"X-Forwarded-For": "10.0.0.1"}).wantExact(t, "second stream of 10.0.0.1", 429, full)
}

func TestLogsRecordOnlyTrustedForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		trusted []string
		want    string
	}{
		{nil, `"remote":"127.0.0.1"`},                    // the default
		{[]string{"10.0.0.0/8"}, `"remote":"127.0.0.1"`}, // the peer is not among them
		{[]string{"127.0.0.1"}, `"remote":"203.0.113.7"`},
	} {
		ts := stepServer(t, func(c *config.Config) {
			if tc.trusted != nil {
				c.Server.TrustedProxies = tc.trusted
			}
		})
		get(t, ts.url+"/v1/models", map[string]string{"X-Forwarded-For": "203.0.113.7"})
		line := grepLines(ts.logs.String(), `"route":"/v1/models"`)
		if !strings.Contains(line, tc.want) {
			t.Errorf("trusted %v: log %s, want %s", tc.trusted, line, tc.want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	ts := stepServer(t, nil)
	for _, path := range []string{"/", "/live", "/static/app.js", "/v1/models", "/healthz", "/openapi.json", "/nowhere"} {
		r := get(t, ts.url+path, nil)
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", path, got)
		}
		csp := r.header.Get("Content-Security-Policy")
		isPage := path == "/" || path == "/live"
		if isPage != (csp == pagePolicy) || isPage != (r.header.Get("X-Frame-Options") == "DENY") ||
			isPage != (r.header.Get("Referrer-Policy") == "no-referrer") {
			t.Errorf("%s: CSP %q, X-Frame-Options %q, Referrer-Policy %q; want the page policy on pages only", path, csp,
				r.header.Get("X-Frame-Options"), r.header.Get("Referrer-Policy"))
		}
	}
	if !strings.Contains(pagePolicy, "frame-ancestors 'none'") || !strings.Contains(pagePolicy, "script-src 'self';") {
		t.Errorf("page policy %q lacks frame-ancestors 'none' or script-src 'self'", pagePolicy)
	}
}

func TestWarmUp503sLogAtInfo(t *testing.T) {
	release := make(chan struct{})
	m := newStepModel("m")
	m.entered = nil
	logs := &lockedWriter{w: &bytes.Buffer{}}
	s := New(testConfig(t, nil), func(context.Context) (Model, error) { <-release; return m, nil },
		slog.New(slog.NewJSONHandler(logs, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	started := make(chan error, 1)
	go func() { started <- s.Start(context.Background()) }()
	get(t, "http://"+ln.Addr().String()+"/readyz", nil).wantExact(t, "readyz while loading", 503,
		`{"error":"not ready: the model is loading and warming up; retry in a few seconds"}`)
	if r := get(t, "http://"+ln.Addr().String()+"/v1/models", nil); r.status != 503 {
		t.Errorf("/v1/models while loading: %d, want 503", r.status)
	}
	close(release)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	s.Shutdown(context.Background())
	// A client retrying /v1/models while the model loads is no error either.
	for _, route := range []string{"/readyz", "/v1/models"} {
		line := grepLines(logs.String(), `"route":"`+route+`"`)
		if !strings.Contains(line, `"level":"INFO"`) || !strings.Contains(line, `"status":503`) {
			t.Errorf("the warm-up 503 of %s logs %s, want level INFO", route, line)
		}
	}
}

// gaugeValue reads a gauge or counter.
func gaugeValue(c prometheus.Metric) float64 {
	var m dto.Metric
	c.Write(&m)
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// rawGet sends GET path on conn (HTTP/1.1, kept alive) and reads the answer.
func rawGet(t *testing.T, conn net.Conn, r *bufio.Reader, path string) (*http.Response, string) {
	t.Helper()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(b))
}

// idleConns is how many connections are between requests.
func (l *connLimiter) idleConns() int { return l.countWaiting(http.StateIdle) }

// silentConns is how many connections have not sent their first request.
func (l *connLimiter) silentConns() int { return l.countWaiting(http.StateNew) }

func (l *connLimiter) countWaiting(st http.ConnState) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range l.waiting {
		if w.state == st {
			n++
		}
	}
	return n
}

// rawConn is a client connection read with its own buffer.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, url string) rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return rawConn{c, bufio.NewReader(c)}
}

func (c rawConn) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return rawGet(t, c.Conn, c.r, path)
}

// wantClosed checks that the server has closed c.
func (c rawConn) wantClosed(t *testing.T, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute)) // keeps a broken limiter from hanging the test
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("%s: %v, want EOF", what, err)
	}
}

func TestConnectionLimit(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) {
		c.Server.MaxConnections = 2
		c.Server.MaxBatch = 1
	})
	ok := func(c rawConn, what string) {
		t.Helper()
		if resp, body := c.get(t, "/healthz"); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s, want 200", what, resp.StatusCode, body)
		}
	}
	// Two idle keep-alives fill the cap; a third connection takes the place of
	// the one idle longest.
	c1, c2 := dialRaw(t, ts.url), dialRaw(t, ts.url)
	ok(c1, "first connection")
	waitFor(t, "the first connection to be idle", func() bool { return ts.conns.idleConns() == 1 })
	ok(c2, "second connection")
	waitFor(t, "both connections to be idle", func() bool { return ts.conns.idleConns() == 2 })
	c3 := dialRaw(t, ts.url)
	ok(c3, "third connection, at the cap with two idle")
	c1.wantClosed(t, "the connection idle longest")
	ok(c2, "the other idle connection")

	// With both places in requests, one more connection is answered 503 and
	// closed; a liveness probe is answered 200 (busy is not dead), and closed.
	waitFor(t, "both connections to be idle", func() bool { return ts.conns.idleConns() == 2 })
	results := occupy(t, ts, m) // two new connections, in requests, in place of c2 and c3
	c2.wantClosed(t, "idle connection replaced by a request")
	c3.wantClosed(t, "idle connection replaced by a request")
	c4 := dialRaw(t, ts.url)
	resp, body := c4.get(t, "/v1/models")
	if resp.StatusCode != 503 || body != strings.TrimSpace(refusalBody) || resp.Header.Get("Retry-After") != "1" || !resp.Close ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("over the cap: %d Retry-After %q close %v %s, want 503, 1, close and %s", resp.StatusCode,
			resp.Header.Get("Retry-After"), resp.Close, body, refusalBody)
	}
	c4.wantClosed(t, "the refused connection")
	probe := dialRaw(t, ts.url)
	if resp, body := probe.get(t, "/healthz?probe=kubelet"); resp.StatusCode != 200 || body != `{"status":"ok"}` || !resp.Close {
		t.Errorf("a liveness probe over the cap: %d close %v %s, want 200, close and the /healthz answer", resp.StatusCode, resp.Close, body)
	}
	probe.wantClosed(t, "the probe's connection")
	finish(t, m, results)
	waitFor(t, "the finished requests' connections to be idle", func() bool { return ts.conns.idleConns() == 2 })
	ok(dialRaw(t, ts.url), "after the requests finished")
	for _, c := range []struct {
		name string
		m    prometheus.Metric
		want float64
	}{
		{"captioner_connections_refused_total", ts.metrics.connsRefused, 2},
		{"captioner_connections_idle_closed_total", ts.metrics.connsIdleClosed, 4},
		{"captioner_connections_open", ts.metrics.connsOpen, 2},
	} {
		if got := gaugeValue(c.m); got != c.want {
			t.Errorf("%s %g, want %g", c.name, got, c.want)
		}
	}
}

// TestSilentConnectionsGiveWay: connections opened and left without a request
// (the probe held all 1,024 places this way) give way to new ones like idle
// keep-alives, the one waiting longest first.
func TestSilentConnectionsGiveWay(t *testing.T) {
	ts, _ := blockedServer(t, func(c *config.Config) { c.Server.MaxConnections = 2 })
	s1 := dialRaw(t, ts.url)
	waitFor(t, "the first connection to be counted silent", func() bool { return ts.conns.silentConns() == 1 })
	s2 := dialRaw(t, ts.url)
	waitFor(t, "both connections to be counted silent", func() bool { return ts.conns.silentConns() == 2 })
	c := dialRaw(t, ts.url)
	if resp, body := c.get(t, "/healthz"); resp.StatusCode != 200 {
		t.Fatalf("at the cap with two silent connections: %d %s, want 200", resp.StatusCode, body)
	}
	s1.wantClosed(t, "the silent connection that waited longest")
	if resp, body := s2.get(t, "/healthz"); resp.StatusCode != 200 {
		t.Errorf("the other silent connection: %d %s, want 200", resp.StatusCode, body)
	}
	if got := gaugeValue(ts.metrics.connsIdleClosed); got != 1 {
		t.Errorf("captioner_connections_idle_closed_total %g, want 1", got)
	}
}

func TestIdleKeepAliveIsClosed(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.IdleTimeout = 20 * time.Millisecond })
	c := dialRaw(t, ts.url)
	if resp, _ := c.get(t, "/healthz"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("%d close %v, want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	c.wantClosed(t, "idle connection (server.idle_timeout)")
	waitFor(t, "the idle connection's slot to return", func() bool { return gaugeValue(ts.metrics.connsOpen) == 0 })
}

func TestCleanFilename(t *testing.T) {
	long := strings.Repeat("a", 300)
	wide := strings.Repeat("é", 200) // 2 bytes each: 400 bytes
	for _, tc := range []struct{ in, want string }{
		{"cat.jpg", "cat.jpg"},
		{long[:255], long[:255]},
		{long, long[:255]},
		{wide, wide[:254]}, // 127 whole characters, not 255 bytes ending in half of one
		{"a\xffb.jpg", "a\uFFFDb.jpg"},
		{"a\r\nb.jpg", "a\uFFFD\uFFFDb.jpg"}, // no line break in a log or on /live
		{"\x00.jpg", "\uFFFD.jpg"},
		{"\u202egpj.exe", "\uFFFDgpj.exe"}, // a right-to-left override showed it as "exe.jpg"
		{"a\u2066b\u200fc\x7f.jpg", "a\uFFFDb\uFFFDc\uFFFD.jpg"},
		{"日本語 photo.jpg", "日本語 photo.jpg"},
	} {
		got := cleanFilename(tc.in)
		if got != tc.want || len(got) > maxFilenameBytes || !utf8.ValidString(got) {
			t.Errorf("cleanFilename(%.20q... %d bytes) = %d bytes %.20q, want %d bytes", tc.in, len(tc.in), len(got), got, len(tc.want))
		}
	}
}

func TestLiveBroadcastsBoundedFilename(t *testing.T) {
	ts := stepServer(t, nil)
	live, closeLive := openLive(t, ts.url, "")
	defer closeLive()
	name := strings.Repeat("n", 9<<20) + ".png" // the probe: a 9 MB file name
	body, ct := multipartBody(t, part{"image", name, photoPNG(8, 8)})
	if r := do(t, "POST", ts.url+"/v1/captions", ct, body); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(live.next(t)["data"]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["filename"] != name[:255] {
		t.Errorf("live filename of %d bytes, want the first 255 of %d", len(ev["filename"].(string)), len(name))
	}
}

func TestStartupLogSaysWhoMayAdminister(t *testing.T) {
	for _, tc := range []struct {
		edit func(*config.Config)
		want string
	}{
		{nil, "this machine (not through a proxy)"},
		{func(c *config.Config) { c.Server.AdminToken = "s3cret" }, "bearer token"},
		{func(c *config.Config) { c.Server.Addr = "0.0.0.0:8080"; c.Server.AdminToken = "s3cret" }, "bearer token"},
		{func(c *config.Config) { c.Server.Addr = "0.0.0.0:8080" }, "nobody (server.admin_token is unset and server.addr is not loopback)"},
	} {
		s := New(testConfig(t, tc.edit), nil, discardLog())
		if got := s.adminAccess(); got != tc.want {
			t.Errorf("admin access %q, want %q", got, tc.want)
		}
	}
}

// With server.live off nobody can watch, so captions are neither published
// nor thumbnailed; with it on, both are.
func TestLiveOffPublishesNothing(t *testing.T) {
	for _, live := range []string{"off", "public"} {
		ts := stepServer(t, func(c *config.Config) { c.Server.Live = live })
		body, ct := multipartBody(t, part{"image", "a.png", photoPNG(8, 8)})
		if r := do(t, "POST", ts.url+"/v1/captions", ct, body); r.status != 200 {
			t.Fatalf("live %s: %d %s", live, r.status, r.body)
		}
		ts.live.mu.Lock()
		recent := slices.Clone(ts.live.recent)
		ts.live.mu.Unlock()
		if want := map[string]int{"off": 0, "public": 1}[live]; len(recent) != want {
			t.Errorf("live %s: %d captions published, want %d", live, len(recent), want)
		}
		for _, f := range recent {
			if !bytes.Contains(f.data, []byte(`"thumbnail":"data:image/jpeg;base64,`)) {
				t.Errorf("live %s: the published caption has no JPEG thumbnail: %.200s", live, f.data)
			}
		}
	}
}

// TestHeadWhereGetAnswers: HEAD answers like GET without a body on every page
// and endpoint but the live stream.
func TestHeadWhereGetAnswers(t *testing.T) {
	ts := stepServer(t, nil)
	for _, path := range []string{"/", "/healthz", "/readyz", "/v1/models", "/openapi.json", "/metrics", "/static/app.js"} {
		resp, err := http.Head(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes, want 200 and none", path, resp.StatusCode, len(body))
		}
	}
}

// TestStaticServesAssetsNotPages: /static/ serves the pages' scripts and
// styles; the pages themselves only at / and /live (with their headers and
// the live page's check), and anything else is a JSON 404.
func TestStaticServesAssetsNotPages(t *testing.T) {
	ts := stepServer(t, nil)
	if r := do(t, "GET", ts.url+"/static/app.js", "", nil); r.status != 200 || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Errorf("/static/app.js: %d %q", r.status, r.header.Get("Content-Type"))
	}
	for _, path := range []string{"/static/", "/static/index.html", "/static/live.html", "/static/nonexist.js", "/static/../web.go"} {
		r := do(t, "GET", ts.url+path, "", nil)
		r.wantError(t, http.StatusNotFound, "the pages are at / and /live")
	}
	long := strings.Repeat("x", 100_000)
	r := do(t, "GET", ts.url+"/v1/"+long, "", nil)
	if msg, _ := r.json["error"].(string); r.status != 404 || len(msg) > 200 {
		t.Errorf("a 100 KB path: %d, a %d-byte message; want 404 and a short message", r.status, len(msg))
	}
}

// TestOversizedContentLengthIsRefusedAtOnce: a body announced over
// server.max_body_bytes is refused before the client sends it: no 100 Continue.
func TestOversizedContentLengthIsRefusedAtOnce(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.MaxBodyBytes = 1 << 20 })
	c := dialRaw(t, ts.url)
	fmt.Fprintf(c, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", 99999999999)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "request body is larger than the limit of 1048576 bytes (server.max_body_bytes)") {
		t.Errorf("%d %s, want 413 at once", resp.StatusCode, body)
	}
}

// TestOptionErrorsAreShortAndRight: a number too large for an int is out of
// range, not "not a whole number"; echoed input is cut.
func TestOptionErrorsAreShortAndRight(t *testing.T) {
	ts := stepServer(t, nil)
	do(t, "POST", ts.url+"/v1/captions?beam=99999999999999999999", "image/png", bytes.NewReader(photoPNG(4, 3))).
		wantError(t, 400, "beam=99999999999999999999 is outside 1..")
	r := do(t, "POST", ts.url+"/v1/captions?beam="+strings.Repeat("9x", 50_000), "image/png", bytes.NewReader(photoPNG(4, 3)))
	if msg, _ := r.json["error"].(string); r.status != 400 || len(msg) > 200 || !strings.Contains(msg, "is not a whole number") {
		t.Errorf("a 100 KB beam: %d %.300s", r.status, msg)
	}
	do(t, "POST", ts.url+"/v1/captions?beams=5", "image/png", bytes.NewReader(photoPNG(4, 3))).
		wantError(t, 400, `unknown query parameter "beams": the options are beam, max_len, alternatives, guide, no_repeat, attention, model, timeout_ms`)
	do(t, "POST", ts.url+"/v1/captions?beam=1&beam=8", "image/png", bytes.NewReader(photoPNG(4, 3))).
		wantError(t, 400, "option beam is given 2 times in the query; give it once")
	body, ct := multipartBody(t, part{"beam", "", []byte("2")}, part{"image", "a.png", photoPNG(4, 3)})
	do(t, "POST", ts.url+"/v1/captions?beam=1", ct, body).
		wantError(t, 400, "option beam is given twice (in the form, or in the query and the form); give it once")
	for name, garbled := range map[string]string{
		"no part":        "garbage here",
		"cut in a part":  "--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n\x89PNG",
		"no closing one": "--b\r\nContent-Disposition: form-data; name=\"beam\"\r\n\r\n2\r\n",
	} {
		r := do(t, "POST", ts.url+"/v1/captions", "multipart/form-data; boundary=b", strings.NewReader(garbled))
		if msg, _ := r.json["error"].(string); r.status != 400 || !strings.HasPrefix(msg, "malformed multipart body: it ends before its closing boundary, or no part starts") {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	body, ct = multipartBody(t, part{strings.Repeat("y", 100_000), "", []byte("1")}, part{"image", "a.png", photoPNG(4, 3)})
	r = do(t, "POST", ts.url+"/v1/captions", ct, body)
	if msg, _ := r.json["error"].(string); r.status != 400 || len(msg) > 300 || !strings.Contains(msg, "unknown form field") {
		t.Errorf("a 100 KB field name: %d %.300s", r.status, msg)
	}
}

// TestLoopbackServerChecksHost: a loopback server answers only requests
// addressed to localhost, a loopback address or server.allowed_hosts, so a web
// page cannot reach it by DNS rebinding.
func TestLoopbackServerChecksHost(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.AllowedHosts = []string{"captions.example.com"} })
	if !ts.loopback {
		t.Fatal("the test server does not listen on loopback")
	}
	get := func(host string) response {
		req, _ := http.NewRequest("GET", ts.url+"/v1/models", nil)
		req.Host = host
		return send(t, req)
	}
	for _, host := range []string{"localhost", "LOCALHOST:8080", "127.0.0.1:8080", "127.3.4.5", "[::1]:8080", "Captions.Example.com:443"} {
		if r := get(host); r.status != 200 {
			t.Errorf("Host %s: %d %s, want 200", host, r.status, r.body)
		}
	}
	for _, host := range []string{"evil.example", "evil.example:8080", "10.0.0.1", "localhost.evil.example"} {
		get(host).wantError(t, http.StatusForbidden, "is not this server's: it listens on loopback (server.addr) and answers localhost and loopback addresses")
	}
}

// TestLoopbackServerRefusesOtherSites: a loopback server refuses requests
// whose Origin is another site's, a cross-site form's post of a photo above
// all, before anything is read or queued; its own origin, an allowed host's,
// and no Origin (curl) are served.
func TestLoopbackServerRefusesOtherSites(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.AllowedHosts = []string{"captions.example.com"} })
	post := func(origin string) response {
		body, ct := multipartBody(t, part{"image", "a.png", photoPNG(4, 3)})
		req, _ := http.NewRequest("POST", ts.url+"/v1/captions", body)
		req.Header.Set("Content-Type", ct)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return send(t, req)
	}
	for _, origin := range []string{"http://evil.example", "http://evil.example:" + strings.Split(ts.url, ":")[2], "null", "http://localhost.evil.example", "not a url"} {
		post(origin).wantError(t, http.StatusForbidden, "is another site's: this server listens on loopback (server.addr) and answers its own pages")
	}
	select {
	case <-ts.queued:
		t.Fatal("a refused request's photo was queued")
	default:
	}
	for _, origin := range []string{"", ts.url, "https://captions.example.com"} {
		if r := post(origin); r.status != 200 {
			t.Errorf("Origin %q: %d %s, want 200", origin, r.status, r.body)
		}
		<-ts.queued
	}
}

// TestHeavyDecodeGivesItsMemoryBack: after a heavy image (here a 16-bit PNG
// that decodes to 82 MB) the idle server returns the picture's memory to the
// system, rather than keeping it until Go's collection forced every two
// minutes.
func TestHeavyDecodeGivesItsMemoryBack(t *testing.T) {
	ts := stepServer(t, nil)
	var heavy bytes.Buffer
	if err := png.Encode(&heavy, image.NewNRGBA64(image.Rect(0, 0, 3200, 3200))); err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory() // the encoding's garbage
	retained := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapIdle - ms.HeapReleased // free heap still held from the system
	}
	before := retained()
	if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(heavy.Bytes())); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	waitFor(t, "the decoded picture's memory to go back to the system", func() bool { return retained() < before+16<<20 })
}

// The answers over the cap by request: a GET or HEAD of /healthz or /readyz
// is answered as the server's routes answer it (/readyz with the model and
// its version: it had answered {"status":"ready"} alone, against the
// Ready schema; a foreign Host refused: it had been answered), anything else
// the 503, a request cut short included.
func TestAnswerOverCap(t *testing.T) {
	ts := stepServer(t, nil)
	ready := get(t, ts.url+"/readyz", nil)
	if ready.status != 200 || !strings.Contains(string(ready.body), `"version"`) {
		t.Fatalf("/readyz: %d %s", ready.status, ready.body)
	}
	refused := string(refusalResponse)
	for _, c := range []struct {
		request, status, body string // status "" is the refusal
	}{
		{"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200 OK", `{"status":"ok"}`},
		{"GET /healthz?x=1 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", "200 OK", `{"status":"ok"}`},
		{"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200 OK", ""},
		{"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200 OK", string(ready.body)},
		{"HEAD /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200 OK", ""},
		{"GET /readyz HTTP/1.1\r\nHost: evil.example\r\n\r\n", "403 Forbidden", ""},
		{"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "", ""},
		{"GET /healthzz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "", ""},
		{"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "", ""},
		{"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", "", ""}, // headers cut short
		{"GET /healthz HTTP/1.1\r\n\r\n", "", ""},                // no Host, which HTTP/1.1 requires
		{"GET /heal", "", ""},
		{"", "", ""},
	} {
		got := string(answerOverCap(strings.NewReader(c.request), "127.0.0.1:4000", ts.router))
		if c.status == "" {
			if got != refused {
				t.Errorf("%q: %q, want the refusal", c.request, got)
			}
			continue
		}
		head, body, _ := strings.Cut(got, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.1 "+c.status+"\r\n") || !strings.Contains(head, "\r\nConnection: close") || !strings.Contains(head, "\r\nX-Content-Type-Options: nosniff") ||
			strings.HasPrefix(c.request, "HEAD") && (body != "" || !strings.Contains(head, "\r\nContent-Length: ")) ||
			c.body != "" && strings.TrimSpace(body) != strings.TrimSpace(c.body) {
			t.Errorf("%q: %q, want %s with %q", c.request, got, c.status, c.body)
		}
	}
	// A server still loading: /readyz's own 503, with Retry-After as every
	// 503 has; /healthz is alive.
	loading := New(testConfig(t, nil), captionLoader(t), discardLog())
	got := string(answerOverCap(strings.NewReader("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), "127.0.0.1:4000", loading.router))
	if !strings.HasPrefix(got, "HTTP/1.1 503 Service Unavailable\r\n") || !strings.Contains(got, "\r\nRetry-After: 1\r\n") || !strings.Contains(got, "the model is loading") {
		t.Errorf("/readyz of a loading server over the cap: %q", got)
	}
	if got := string(answerOverCap(strings.NewReader("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), "127.0.0.1:4000", loading.router)); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") {
		t.Errorf("/healthz of a loading server over the cap: %q", got)
	}
}

// server.allowed_hosts applies to a loopback server alone: set beyond
// loopback it did nothing without a word.
func TestAllowedHostsBeyondLoopbackIsTold(t *testing.T) {
	const warning = `"msg":"server.allowed_hosts does nothing here: it keeps DNS rebinding off a server listening on loopback, and server.addr is not; filter Host names at your proxy or load balancer"`
	for _, tc := range []struct {
		addr string
		want bool
	}{{"0.0.0.0:8080", true}, {"127.0.0.1:8080", false}} {
		ts := stepServer(t, func(c *config.Config) {
			c.Server.Addr = tc.addr
			c.Server.AllowedHosts = []string{"captions.example.com"}
		})
		// The warning comes before the listening line.
		waitFor(t, "the listening log line", func() bool { return strings.Contains(ts.logs.String(), `"msg":"listening"`) })
		if got := strings.Contains(ts.logs.String(), warning); got != tc.want {
			t.Errorf("server.addr %s with allowed_hosts: warned %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestOverTheCapReadsTheRequestLine: over server.max_connections the request
// line is read to tell a liveness probe, across reads, within the refusal's
// second; a client that sends none still gets the 503 (the read had taken
// the whole deadline, and the answer was lost).
func TestOverTheCapReadsTheRequestLine(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) {
		c.Server.MaxConnections = 2
		c.Server.MaxBatch = 1
	})
	results := occupy(t, ts, m)
	defer finish(t, m, results)
	waitFor(t, "both connections in requests", func() bool { return ts.conns.idleConns() == 0 })
	addr := strings.TrimPrefix(ts.url, "http://")
	answer := func(parts ...string) (string, time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		t0 := time.Now()
		for i, p := range parts {
			if i > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			c.Write([]byte(p))
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b), time.Since(t0)
	}
	if got, _ := answer("GET /hea", "lthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, `{"status":"ok"}`) {
		t.Errorf("a probe's request in two writes: %q, want the /healthz answer", got)
	}
	if got, _ := answer("HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("a HEAD probe: %q, want the /healthz header", got)
	}
	if got, _ := answer("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 OK") || !strings.Contains(got, `"status":"ready"`) || !strings.Contains(got, `"model":"blocked"`) {
		t.Errorf("a readiness probe of a busy, loaded server: %q, want 200 ready", got)
	}
	for _, sent := range []string{"", "GET /heal"} {
		if got, took := answer(sent); got != string(refusalResponse) || took > 3*time.Second {
			t.Errorf("a client that sent %q and no line end: %q after %v, want the 503 within the refusal's second or so", sent, got, took)
		}
	}
}

// A 503 of a loaded server (here every live viewer slot taken) is logged at
// ERROR: only the warm-up's are expected.
func TestLoaded503sLogAtError(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.LiveMaxViewers = 1 })
	_, closeLive := openLive(t, ts.url, "")
	defer closeLive()
	if r := get(t, ts.url+"/v1/live", nil); r.status != 503 || r.header.Get("Retry-After") != "5" {
		t.Fatalf("a second viewer of one allowed: %d %s (Retry-After %q), want 503 with Retry-After 5", r.status, r.body, r.header.Get("Retry-After"))
	}
	waitFor(t, "the 503's log line", func() bool { return strings.Contains(ts.logs.String(), `"status":503`) })
	if line := grepLines(ts.logs.String(), `"status":503`); !strings.Contains(line, `"level":"ERROR"`) || !strings.Contains(line, `"route":"/v1/live"`) {
		t.Errorf("the 503 logs %s, want level ERROR on /v1/live", line)
	}
}

// Without server.allowed_hosts a server beyond loopback has nothing to warn of.
func TestNoAllowedHostsNoWarning(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.Addr = "0.0.0.0:8080"; c.Server.AllowedHosts = nil })
	waitFor(t, "the listening log line", func() bool { return strings.Contains(ts.logs.String(), `"msg":"listening"`) })
	if strings.Contains(ts.logs.String(), "server.allowed_hosts does nothing here") {
		t.Error("warned about server.allowed_hosts, which is not set")
	}
}
