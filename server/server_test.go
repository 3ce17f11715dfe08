package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/internal/testassets"
)

// testConfig is the default configuration with edits.
func testConfig(t testing.TB, edit func(*config.Config)) *config.Config {
	t.Helper()
	cfg, err := config.Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	// The Host of httptest's requests and of the raw-connection tests': the
	// loopback server refuses other names (TestLoopbackServerChecksHost).
	cfg.Server.AllowedHosts = []string{"example.com", "x", "test"}
	if edit != nil {
		edit(cfg)
	}
	return cfg
}

// testServer is a Server answering on a real loopback listener.
type testServer struct {
	*Server
	url  string
	logs *lockedWriter
	// queued receives a value each time an image enters the queue, batches the
	// stats of each batch the scheduler has finished (computed or skipped).
	queued  chan struct{}
	batches chan BatchStats
}

// startServer starts a server for cfg and load on 127.0.0.1, waits for its model
// and shuts it down when the test ends.
func startServer(t testing.TB, cfg *config.Config, load Loader) *testServer {
	t.Helper()
	logs := &lockedWriter{w: &bytes.Buffer{}}
	s := New(cfg, load, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// Buffered beyond any test's traffic; the hooks never block the server (a
	// test that reads the events reads them long before the buffer fills).
	queued, batches := make(chan struct{}, 1024), make(chan BatchStats, 1024)
	s.onQueued = func() {
		select {
		case queued <- struct{}{}:
		default:
		}
	}
	s.onBatch = func(st BatchStats) {
		select {
		case batches <- st:
		default:
		}
	}
	url := serveOnLoopback(t, s)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return &testServer{Server: s, url: url, logs: logs, queued: queued, batches: batches}
}

// serveOnLoopback serves s on a 127.0.0.1 listener and returns its URL; when
// the test ends it shuts s down, and Shutdown and Serve must both succeed.
func serveOnLoopback(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func modelLoader(m Model) Loader {
	return func(context.Context) (Model, error) { return m, nil }
}

// photo reads a sample photo from the shared assets (CAPTIONER_ASSETS).
func photo(t testing.TB, rel string) []byte {
	t.Helper()
	dir := testassets.Dir(t, "these tests use real photos")
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const catPhoto = "samples/cat_720p.jpg"

type part struct {
	field, filename string
	data            []byte
}

func multipartBody(t testing.TB, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.filename))
			h.Set("Content-Type", "application/octet-stream")
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.field))
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

// response is a finished HTTP exchange with its JSON body decoded.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func do(t testing.TB, method, url, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(t, req)
}

// send sends req and reads its answer (do, for a request with more headers).
func send(t testing.TB, req *http.Request) response {
	t.Helper()
	method, url := req.Method, req.URL
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// Errorf, not Fatalf: do runs in goroutines, where Fatalf would leave the
		// test waiting for an answer that never comes.
		t.Errorf("%s %s: %v", method, url, err)
		return response{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: reading the body: %v", method, url, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.json); err != nil {
			t.Errorf("%s %s: body is not JSON: %v: %s", method, url, err, b)
		}
	}
	return r
}

func (r response) wantError(t testing.TB, status int, contains string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	msg, _ := r.json["error"].(string)
	if !strings.Contains(msg, contains) {
		t.Fatalf("error %q, want it to contain %q", msg, contains)
	}
}

// lockedWriter lets the server's handlers log concurrently into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}
