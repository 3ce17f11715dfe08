package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/captioner/captioner/config"
)

func TestMetricsAfterCaptions(t *testing.T) {
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	img := photoPNG(32, 32)
	for range 3 {
		if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(img)); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	do(t, "POST", ts.url+"/v1/captions", "text/plain", strings.NewReader("x"))
	// Methods HTTP does not name are one label, not a series each (any token
	// up to 1 MB is a method to net/http), and errors show their start.
	long := strings.Repeat("M", 4000)
	do(t, long, ts.url+"/v1/captions", "", nil).wantError(t, 405, `"`+long[:32]+`" is not allowed on /v1/captions`)
	do(t, "FOOBAR", ts.url+"/nothing", "", nil).wantError(t, 404, `no route "FOOBAR" /nothing`)
	do(t, "DELETE", ts.url+"/v1/captions", "", nil).wantError(t, 405, "DELETE is not allowed on /v1/captions")
	info := do(t, "GET", ts.url+"/v1/models", "", nil).json["models"].([]any)[0].(map[string]any)
	m := string(do(t, "GET", ts.url+"/metrics", "", nil).body)
	for _, want := range []string{
		fmt.Sprintf(`captioner_model_info{device=%q,model=%q,version=%q} 1`, info["device"], info["name"], info["version"]),
		`captioner_http_requests_total{method="POST",route="/v1/captions",status="200"} 3`,
		`captioner_http_requests_total{method="POST",route="/v1/captions",status="415"} 1`,
		`captioner_http_requests_total{method="other",route="unmatched",status="405"} 1`,
		`captioner_http_requests_total{method="other",route="unmatched",status="404"} 1`,
		`captioner_http_requests_total{method="DELETE",route="unmatched",status="405"} 1`,
		`captioner_http_request_duration_seconds_count{route="/v1/captions"} 4`,
		`captioner_images_captioned_total 3`,
		`captioner_batch_size_count 3`, // one image per request, answered before the next
		`captioner_batch_size_bucket{le="1"} 3`,
		`captioner_queue_wait_seconds_count 3`,
		`captioner_preprocess_seconds_count 3`, // the 415 is refused before decoding
		`captioner_images_per_second 0.3`,
		"captioner_queue_depth ",
		"go_goroutines ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(m, "FOOBAR") || strings.Contains(m, "MMMM") {
		t.Errorf("metrics label a made-up method by its name")
	}
}

// sequenceLoader hands out the given models in order; an error entry fails that load.
type sequenceLoader struct {
	mu    sync.Mutex
	items []any // Model, error, or panicking
}

// panicking is a loader's item that panics with its text.
type panicking string

func (l *sequenceLoader) load(context.Context) (Model, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.items[0]
	l.items = l.items[1:]
	switch v := next.(type) {
	case error:
		return nil, v
	case panicking:
		panic(string(v))
	}
	return next.(Model), nil
}

func TestReloadSwapsOrKeepsTheOldModel(t *testing.T) {
	v1, v2, v3 := newStepModel("one"), newStepModel("two"), newStepModel("three")
	for _, m := range []*stepModel{v1, v2, v3} {
		m.entered = nil
	}
	v3.encodeErr = errors.New("weights are NaN")
	l := &sequenceLoader{items: []any{v1, v2, errors.New("model folder models/x: no such file"), v3, panicking("makeslice: len out of range")}}
	ts := startServer(t, testConfig(t, nil), l.load)
	version := func() string {
		c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(8, 8))))
		return c["model"].(map[string]any)["version"].(string)
	}
	if v := version(); v != "v-one" {
		t.Fatalf("first model %q", v)
	}
	r := do(t, "POST", ts.url+"/admin/reload", "", nil)
	if r.status != 200 || r.json["version"] != "v-two" {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	if v := version(); v != "v-two" {
		t.Errorf("after reload captions come from %q, want v-two", v)
	}
	v1.mu.Lock()
	if !v1.closed {
		t.Errorf("the replaced model was not closed")
	}
	v1.mu.Unlock()
	// A load that fails and a model that fails its warm-up both leave v2 serving.
	do(t, "POST", ts.url+"/admin/reload", "", nil).wantError(t, 500,
		"reload failed, still serving two version v-two: model folder models/x: no such file")
	do(t, "POST", ts.url+"/admin/reload", "", nil).wantError(t, 500,
		"reload failed, still serving two version v-two: warm-up encode of 1 images: weights are NaN")
	v3.mu.Lock()
	if !v3.closed {
		t.Errorf("the model that failed its warm-up was not closed")
	}
	v3.mu.Unlock()
	// A load that panics (SIGHUP's reload runs in a goroutine of its own,
	// with nothing above it to recover) fails as the others do.
	if _, err := ts.Reload(context.Background()); err == nil || err.Error() != "reload failed, still serving two version v-two: loading the models failed unexpectedly (makeslice: len out of range); the log holds the details" {
		t.Errorf("a reload whose load panics: %v", err)
	}
	if v := version(); v != "v-two" {
		t.Errorf("after failed reloads captions come from %q, want v-two", v)
	}
	m := string(do(t, "GET", ts.url+"/metrics", "", nil).body)
	for _, want := range []string{`captioner_model_reloads_total{result="ok"} 1`, `captioner_model_reloads_total{result="failed"} 3`,
		`captioner_model_info{device="test",model="two",version="v-two"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestAdminNeedsLoopbackOrToken(t *testing.T) {
	reload := func(cfg *config.Config, remote string, header map[string]string) *httptest.ResponseRecorder {
		m := newStepModel("m")
		m.entered = nil
		s := New(cfg, modelLoader(m), discardLog())
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown(context.Background())
		req := httptest.NewRequest("POST", "/admin/reload", nil)
		req.RemoteAddr = remote
		for k, v := range header {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		return w
	}
	open := testConfig(t, nil)
	tok := testConfig(t, func(c *config.Config) { c.Server.AdminToken = "s3cret" })
	public := testConfig(t, func(c *config.Config) { c.Server.Addr = "0.0.0.0:8080" })
	publicTok := testConfig(t, func(c *config.Config) { c.Server.Addr = "0.0.0.0:8080"; c.Server.AdminToken = "s3cret" })
	proxied := testConfig(t, func(c *config.Config) { c.Server.TrustedProxies = []string{"127.0.0.0/8"} })
	notLocal := `{"error":"admin endpoints answer only requests made on the server's machine unless server.admin_token is set, and this one came through a proxy or from another address: call from the server's machine, or configure a token"}`
	const (
		ok         = `"version":"v-m"`
		needBearer = `{"error":"admin endpoints need the header Authorization: Bearer \u003cserver.admin_token\u003e"}`
		origin     = `{"error":"admin endpoints refuse requests with an Origin header, which browsers send from web pages: call them from curl or a script"}`
	)
	form := func(ct string) string {
		return `{"error":"admin endpoints refuse Content-Type \"` + ct + `\", which a web page's form can send: send no body"}`
	}
	bearer := map[string]string{"Authorization": "Bearer s3cret"}
	for _, tc := range []struct {
		name   string
		cfg    *config.Config
		remote string
		header map[string]string
		status int
		body   string // exact, or contained for ok
	}{
		{"loopback v4", open, "127.0.0.1:5000", nil, 200, ok},
		{"loopback v6", open, "[::1]:5000", nil, 200, ok},
		{"remote", open, "10.1.2.3:5000", nil, 403, notLocal},
		{"forwarded for loopback", open, "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "127.0.0.1"}, 403, notLocal},
		// A proxy on the same machine connects from loopback for every client:
		// what it passes on is not local, whether it names the client or is
		// named in server.trusted_proxies.
		{"proxied, X-Forwarded-For", open, "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.5"}, 403, notLocal},
		{"proxied, X-Real-IP", open, "127.0.0.1:5000", map[string]string{"X-Real-IP": "203.0.113.5"}, 403, notLocal},
		{"proxied, Forwarded", open, "[::1]:5000", map[string]string{"Forwarded": "for=203.0.113.5"}, 403, notLocal},
		{"proxied, Via", open, "127.0.0.1:5000", map[string]string{"Via": "1.1 proxy"}, 403, notLocal},
		{"proxied, X-Forwarded-Proto", open, "127.0.0.1:5000", map[string]string{"X-Forwarded-Proto": "https"}, 403, notLocal},
		{"proxied, X-Forwarded-Host", open, "127.0.0.1:5000", map[string]string{"X-Forwarded-Host": "captions.example.com"}, 403, notLocal},
		{"a trusted proxy's address", proxied, "127.0.0.1:5000", nil, 403, notLocal},
		{"a trusted proxy with the token", func() *config.Config { c := *proxied; c.Server.AdminToken = "s3cret"; return &c }(), "127.0.0.1:5000", bearer, 200, ok},
		{"token missing", tok, "127.0.0.1:5000", nil, 401, needBearer},
		{"token wrong", tok, "10.1.2.3:5000", map[string]string{"Authorization": "Bearer guess"}, 401, `{"error":"the bearer token is not server.admin_token"}`},
		{"token right", tok, "10.1.2.3:5000", bearer, 200, ok},
		{"scheme in lower case", tok, "10.1.2.3:5000", map[string]string{"Authorization": "bearer s3cret"}, 200, ok},
		{"another scheme", tok, "10.1.2.3:5000", map[string]string{"Authorization": "Basic czNjcmV0"}, 401, needBearer},
		// Listening beyond loopback, a loopback peer (a proxy or sidecar on the
		// same host) is no proof of anything.
		{"public, loopback peer", public, "127.0.0.6:5000", nil, 403, `{"error":"admin endpoints need server.admin_token when server.addr (0.0.0.0:8080) is not loopback: set it and send Authorization: Bearer \u003cserver.admin_token\u003e"}`},
		{"public, token right", publicTok, "127.0.0.6:5000", bearer, 200, ok},
		{"public, token missing", publicTok, "127.0.0.1:5000", nil, 401, needBearer},
		// What a cross-site page can send is refused, token or not.
		// (A loopback server refuses another site's Origin before admin sees
		// it; admin refuses even the server's own.)
		{"origin", open, "127.0.0.1:5000", map[string]string{"Origin": "http://example.com"}, 403, origin},
		{"origin with token", publicTok, "10.1.2.3:5000", map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer s3cret"}, 403, origin},
		{"urlencoded form", open, "127.0.0.1:5000", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, form("application/x-www-form-urlencoded")},
		{"multipart form", tok, "127.0.0.1:5000", map[string]string{"Content-Type": "multipart/form-data; boundary=x", "Authorization": "Bearer s3cret"}, 415, form(`multipart/form-data; boundary=x`)},
		{"text/plain", open, "127.0.0.1:5000", map[string]string{"Content-Type": "Text/Plain;charset=UTF-8"}, 415, form("Text/Plain;charset=UTF-8")},
		{"json is fine", open, "127.0.0.1:5000", map[string]string{"Content-Type": "application/json"}, 200, ok},
	} {
		w := reload(tc.cfg, tc.remote, tc.header)
		body := strings.TrimSpace(w.Body.String())
		match := body == tc.body
		if tc.body == ok || !strings.HasPrefix(tc.body, "{") {
			match = strings.Contains(body, tc.body)
		}
		if w.Code != tc.status || !match {
			t.Errorf("%s: %d %s, want %d %s", tc.name, w.Code, body, tc.status, tc.body)
		}
		if challenge := w.Header().Get("WWW-Authenticate"); (w.Code == 401) != (challenge == `Bearer realm="captioner"`) {
			t.Errorf("%s: %d with WWW-Authenticate %q; a 401, and only a 401, challenges Bearer", tc.name, w.Code, challenge)
		}
	}
}

// sseReader reads Server-Sent Events frames.
type sseReader struct{ r *bufio.Reader }

// next returns the next frame's fields (comments under ":").
func (s sseReader) next(t *testing.T) map[string]string {
	t.Helper()
	f := map[string]string{}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			return f
		}
		k, v, _ := strings.Cut(line, ":")
		f[k] += strings.TrimPrefix(v, " ")
	}
}

func openLive(t *testing.T, url, lastID string) (sseReader, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/live", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/v1/live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := sseReader{bufio.NewReader(resp.Body)}
	if f := r.next(t); f[""] != "connected" || f["retry"] != "2000" {
		t.Fatalf("first frame %v, want the connected comment and retry", f)
	}
	return r, func() { cancel(); resp.Body.Close() }
}

func TestLiveStreamsEveryCaptionToEveryViewer(t *testing.T) {
	ts := startServer(t, testConfig(t, func(c *config.Config) { c.Server.ThumbSize = 64 }), captionLoader(t))
	a, closeA := openLive(t, ts.url, "")
	defer closeA()
	b, closeB := openLive(t, ts.url, "")
	defer closeB()
	body, ct := multipartBody(t, part{"image", "wide.png", photoPNG(200, 100)})
	c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", ct, body))
	var first uint64 // ids start above any earlier server's (firstID), then count
	for _, v := range []sseReader{a, b} {
		f := v.next(t)
		id, err := strconv.ParseUint(f["id"], 10, 64)
		if first == 0 {
			first = id
		}
		if f["event"] != "caption" || err != nil || id != first || first < firstID(time.Now().Add(-time.Hour)) {
			t.Fatalf("frame %v, want caption event %d, an id above the last hour's servers'", f, first)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(f["data"]), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["caption"] != c["caption"] || ev["filename"] != "wide.png" {
			t.Errorf("live caption %v %v, want %v wide.png", ev["caption"], ev["filename"], c["caption"])
		}
		thumb, ok := strings.CutPrefix(ev["thumbnail"].(string), "data:image/jpeg;base64,")
		if !ok {
			t.Fatalf("thumbnail is not a JPEG data URL: %.40s", ev["thumbnail"])
		}
		raw, err := base64.StdEncoding.DecodeString(thumb)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(raw))
		if err != nil || cfg.Width != 64 || cfg.Height != 32 {
			t.Errorf("thumbnail %dx%d (%v), want 64x32", cfg.Width, cfg.Height, err)
		}
	}
	// A viewer reconnecting after the first event is not sent it again; a
	// new one is, and so is one coming back from an earlier server (whose
	// ids are lower: a restart), which would otherwise miss this one's.
	do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(10, 10)))
	for _, c := range []struct{ lastID, want uint64 }{{first, first + 1}, {0, first}, {first - 5000, first}} {
		last := ""
		if c.lastID > 0 {
			last = strconv.FormatUint(c.lastID, 10)
		}
		v, closeV := openLive(t, ts.url, last)
		if f := v.next(t); f["id"] != strconv.FormatUint(c.want, 10) {
			t.Errorf("connecting after event %q replays %v first, want event %d", last, f, c.want)
		}
		closeV()
	}
}

func TestSlowViewerIsDroppedNotWaitedFor(t *testing.T) {
	m := newMetrics(nil)
	h := newHub(2, 10, 10, m)
	slow, _, err := h.join("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, _, _ := h.join("a", 0)
	for i := range 5 {
		h.publish(map[string]int{"n": i}) // returns at once even though slow never reads
		<-fast.events
	}
	select {
	case <-slow.kicked:
	default:
		t.Fatal("the viewer that fell 3 events behind a buffer of 2 is still connected")
	}
	select {
	case <-fast.kicked:
		t.Fatal("the viewer that kept up was disconnected")
	default:
	}
	if n := gaugeValue(m.liveKicked); n != 1 {
		t.Errorf("captioner_live_viewers_dropped_total %g, want 1", n)
	}
	if _, _, err := h.join("a", 0); err != nil {
		t.Errorf("join after the drop: %v", err)
	}
	for i := range 8 {
		h.join(fmt.Sprint("client", i), 0)
	}
	if _, _, err := h.join("b", 0); !errors.Is(err, errTooManyViewers) {
		t.Errorf("11th viewer with a limit of 10: %v, want errTooManyViewers", err)
	}
}

func TestGracefulShutdownFinishesAcceptedRequests(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBatch = 1 })
	results := occupy(t, ts, m) // two accepted requests: one on the model, one queued
	// net/http runs the shutdown hooks once it has closed the listeners.
	closed := make(chan struct{})
	var once sync.Once
	ts.httpSrv.RegisterOnShutdown(func() { once.Do(func() { close(closed) }) }) // the cleanup shuts down again
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	<-closed
	if c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://")); err == nil {
		c.Close()
		t.Error("the listener still accepts connections during the shutdown")
	}
	finish(t, m, results)
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		t.Error("Shutdown did not close the model")
	}
}

func TestShutdownGraceOverAnswersQueued503(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBatch = 1 })
	running, queued := make(chan response, 1), make(chan response, 1)
	go func() { running <- do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(5, 5))) }()
	<-m.entered
	<-ts.queued // the running request's image
	go func() { queued <- do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(6, 6))) }()
	<-ts.queued

	grace, over := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(grace) }()
	over() // the grace period ends with the batch still on the device
	(<-queued).wantError(t, 503, "the server shut down before this image was captioned; retry")
	m.release <- struct{}{} // the batch on the device still completes and is answered
	if r := <-running; r.status != 200 {
		t.Errorf("running request: %d %s, want 200", r.status, r.body)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
}

func TestOverloadOnly200And429ThenBaseline(t *testing.T) {
	m := newStepModel("m")
	m.entered = nil
	cfg := testConfig(t, func(c *config.Config) {
		c.Server.MaxBatch = 2
		c.Server.QueueSize = 4 // places below
		c.Server.MaxQueueDelay = time.Hour
	})
	s := New(cfg, modelLoader(m), discardLog())
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	url := "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	img := photoPNG(16, 16)
	post := func(client *http.Client) int {
		resp, err := client.Post(url+"/v1/captions", "image/png", bytes.NewReader(img))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// A first full batch (two requests: MaxQueueDelay is an hour) warms the
	// connection pool and the handler paths.
	warm := make(chan int, 2)
	for range 2 {
		go func() { warm <- post(client) }()
	}
	if a, b := <-warm, <-warm; a != 200 || b != 200 {
		t.Fatalf("warm-up statuses %d %d", a, b)
	}
	client.CloseIdleConnections()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()

	// The model holds a first batch (both of two requests, or the first alone
	// when its batch started before the second held a place, which then
	// waits in the queue); then a burst of 62 requests arrives: the queue's
	// free places are taken, the rest must get 429 at once, and only after
	// they all have does the model let go.
	m.release = make(chan struct{})
	m.entered = make(chan []int, 8)
	const clients, places = 64, 4
	codes := make(chan int, clients)
	for range 2 {
		go func() { codes <- post(client) }()
	}
	ok := len(<-m.entered) + places
	for range clients - 2 {
		go func() { codes <- post(client) }()
	}
	counts := map[int]int{}
	for range clients - ok {
		counts[<-codes]++
	}
	close(m.release)
	for range ok {
		counts[<-codes]++
	}
	if counts[200] != ok || counts[429] != clients-ok || len(counts) != 2 {
		t.Errorf("statuses %v, want %dx200 and %dx429 and nothing else", counts, ok, clients-ok)
	}
	client.CloseIdleConnections()
	waitFor(t, "goroutines to return to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapAlloc) - int64(before.HeapAlloc); grow > 4<<20 {
		t.Errorf("heap grew by %d KB after the burst, want under 4 MB (64 requests hold 38 MB of tensors)", grow>>10)
	}
	s.Shutdown(context.Background())
	<-served
}

// A request's places in the queue and its upload bytes all come back once it
// is answered, images refused at their header included: a leak of either
// would wear the server down to refusing everyone (429) or to no upload limit.
func TestAnsweredRequestGivesBackPlacesAndUploadBytes(t *testing.T) {
	ts := stepServer(t, nil)
	good := photoPNG(16, 16)
	r := postParts(t, ts.url, part{"image", "good.png", good}, part{"image", "cut.png", good[:40]}, part{"image", "notes.txt", []byte("not a photo")})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	b := ts.batcher.Load()
	waitFor(t, "places and upload bytes back", func() bool { return b.Reserved() <= 0 && ts.uploads.used.Load() <= 0 })
	if b.Reserved() != 0 || ts.uploads.used.Load() != 0 {
		t.Errorf("after the answer: %d places reserved, %d upload bytes held; want 0 and 0", b.Reserved(), ts.uploads.used.Load())
	}
}

// The live history keeps the last recentLen captions for new viewers, not
// every caption since the start (each with its thumbnail).
func TestLiveHistoryIsBounded(t *testing.T) {
	h := newHub(4, 10, 10, newMetrics(nil))
	for i := range recentLen + 5 {
		h.publish(map[string]int{"n": i})
	}
	_, missed, _ := h.join("a", 0)
	if len(missed) != recentLen || !bytes.Contains(missed[0], []byte(`{"n":5}`)) {
		t.Errorf("a new viewer is replayed %d frames from %q, want the last %d from {\"n\":5}", len(missed), missed[0], recentLen)
	}
}

// Shutdown whose grace is over still waits for the batch on the model before
// closing it: closing a model under a running batch would crash a deploy.
func TestShutdownClosesTheModelAfterItsBatch(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBatch = 1 })
	running := make(chan response, 1)
	go func() { running <- do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(5, 5))) }()
	<-m.entered
	over, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(over) }()
	time.Sleep(200 * time.Millisecond)
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		t.Error("the model was closed while its batch was running")
	}
	m.release <- struct{}{}
	<-running
	<-done
}

// Shutdown ends every live stream and refuses new viewers, returning well
// within its grace period with a viewer connected.
func TestShutdownEndsLiveStreams(t *testing.T) {
	ts := stepServer(t, nil)
	v, closeV := openLive(t, ts.url, "")
	defer closeV()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with a live viewer: %v, want nil within the grace period", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := v.r.ReadString('\n'); errc <- err }()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("the stream sent more after the shutdown")
		}
	case <-time.After(3 * time.Second):
		t.Error("the stream stayed open after the shutdown")
	}
	if _, _, err := ts.live.join("x", 0); !errors.Is(err, errHubClosed) {
		t.Errorf("join after the shutdown: %v, want errHubClosed", err)
	}
}

// A failed batch counts as a batch error, and its images as not captioned.
func TestFailedBatchIsNotCountedAsCaptions(t *testing.T) {
	m := newMetrics(nil)
	m.observeBatch(BatchStats{Size: 2, Err: errors.New("decoder fell over")})
	m.observeBatch(BatchStats{Size: 3})
	if got, errs := gaugeValue(m.images), gaugeValue(m.batchErrors); got != 3 || errs != 1 {
		t.Errorf("captioned images %g, batch errors %g; want 3 and 1", got, errs)
	}
}

// A reload asked for while another runs is refused with 409, neither queued
// nor run twice; the first one still completes.
func TestReloadWhileReloadingIsRefused(t *testing.T) {
	var mu sync.Mutex
	loads := 0
	block := make(chan struct{})
	load := func(context.Context) (Model, error) {
		mu.Lock()
		loads++
		n := loads
		mu.Unlock()
		if n > 1 { // the reload, not the start
			<-block
		}
		m := newStepModel(fmt.Sprint("v", n))
		m.entered = nil
		return m, nil
	}
	ts := startServer(t, testConfig(t, nil), load)
	first := make(chan response, 1)
	go func() { first <- do(t, "POST", ts.url+"/admin/reload", "", nil) }()
	waitFor(t, "the first reload to start loading", func() bool { mu.Lock(); defer mu.Unlock(); return loads == 2 })
	do(t, "POST", ts.url+"/admin/reload", "", nil).wantError(t, 409, ErrReloadRunning.Error())
	close(block)
	if r := <-first; r.status != 200 {
		t.Errorf("the first reload: %d %s", r.status, r.body)
	}
	mu.Lock()
	defer mu.Unlock()
	if loads != 2 {
		t.Errorf("%d loads, want 2 (the start and one reload)", loads)
	}
}

// TestShutdownDuringTheLoadDoesNotWaitForIt: a SIGTERM while the models
// load (a model folder on a hung file system) waited for the load and held
// the process past its grace period until it was killed. Shutdown returns at
// once, cancelling the load's context (the warm-up stops), and Start closes
// the model it loaded after it.
func TestShutdownDuringTheLoadDoesNotWaitForIt(t *testing.T) {
	release, loading := make(chan struct{}), make(chan struct{})
	m := newStepModel("m")
	m.entered = nil
	var loadCtx context.Context
	s := New(testConfig(t, nil), func(ctx context.Context) (Model, error) {
		loadCtx = ctx
		close(loading)
		<-release
		return m, nil
	}, discardLog())
	started := make(chan error, 1)
	go func() { started <- s.Start(context.Background()) }()
	<-loading
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown during the load: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Shutdown during the load waited for it")
	}
	if loadCtx.Err() == nil {
		t.Error("Shutdown left the load's context running (its warm-up would go on)")
	}
	close(release)
	if err := <-started; !errors.Is(err, ErrShutDown) {
		t.Errorf("Start after Shutdown: %v, want ErrShutDown", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed || s.batcher.Load() != nil {
		t.Errorf("the model loaded after Shutdown: closed %v, batcher %v; want it closed and no batcher", m.closed, s.batcher.Load())
	}
}

// TestReloadHandsTheOldModelBack: the replaced model's memory goes back to
// the system when a reload ends, not over minutes (a server rested at 216 MB
// after three reloads, 143 MB before; 142 MB with it handed back).
func TestReloadHandsTheOldModelBack(t *testing.T) {
	debug.FreeOSMemory() // what earlier tests left is not this test's
	ts := startServer(t, pipelineConfig(t), captionLoader(t))
	if r := do(t, "POST", ts.url+"/admin/reload", "", nil); r.status != 200 {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	// A collection frees the old model if nothing did: its memory is then
	// idle, and held until the scavenger gets to it.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if held := ms.HeapIdle - ms.HeapReleased; held > 24<<20 {
		t.Errorf("after a reload the heap holds %d MB it does not use, want it handed back (under 24 MB)", held>>20)
	}
}
