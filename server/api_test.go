package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/captioner/captioner/config"
	textpkg "github.com/captioner/captioner/text"
)

func firstCaption(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	caps, _ := r.json["captions"].([]any)
	if len(caps) == 0 {
		t.Fatalf("no captions in %s", r.body)
	}
	return caps[0].(map[string]any)
}

func TestCaptionMultipartAndRawBody(t *testing.T) {
	cat := photo(t, catPhoto)
	ts := startServer(t, testConfig(t, nil), captionLoader(t))

	body, ct := multipartBody(t, part{"image", "cat.jpg", cat})
	c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", ct, body))
	if c["filename"] != "cat.jpg" || c["width"] != 1280.0 || c["height"] != 720.0 || c["index"] != 0.0 {
		t.Errorf("filename %v size %vx%v index %v, want cat.jpg 1280x720 0", c["filename"], c["width"], c["height"], c["index"])
	}
	text, _ := c["caption"].(string)
	if text == "" {
		t.Fatalf("empty caption: %v", c)
	}
	alts := c["alternatives"].([]any)
	if len(alts) != 3 { // default beam 3, alternatives default to the beam width
		t.Errorf("%d alternatives, want 3", len(alts))
	}
	if best := alts[0].(map[string]any); best["caption"] != text || best["score"] != c["score"] {
		t.Errorf("best alternative %v, want the caption %q with score %v", best, text, c["score"])
	}
	tm := c["timings_ms"].(map[string]any)
	for _, k := range []string{"preprocess", "queue", "encode", "decode", "total"} {
		if v, ok := tm[k].(float64); !ok || v < 0 {
			t.Errorf("timings_ms.%s = %v", k, tm[k])
		}
	}
	if tm["total"].(float64) < tm["encode"].(float64)+tm["decode"].(float64) {
		t.Errorf("total %v is less than encode + decode: %v", tm["total"], tm)
	}

	raw := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", "image/jpeg", bytes.NewReader(cat)))
	if raw["caption"] != text || raw["filename"] != "" {
		t.Errorf("raw body: caption %q filename %q, want %q and no file name", raw["caption"], raw["filename"], text)
	}
}

// Every caption is a sentence with its tokens, a confidence and the encoder's
// tags; guided decoding (on by default) makes the cat's caption name the cat,
// and guide=0 asks for the plain caption.
func TestCaptionTagsConfidenceAndGuide(t *testing.T) {
	cat := photo(t, catPhoto)
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	caption := func(query string) (string, []string, map[string]any) {
		c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions"+query, "image/jpeg", bytes.NewReader(cat)))
		var tokens []string
		for _, w := range c["tokens"].([]any) {
			tokens = append(tokens, w.(string))
		}
		if want := textpkg.Sentence(tokens); c["caption"] != want {
			t.Errorf("%s: caption %q, want the sentence of its tokens %q", query, c["caption"], want)
		}
		if conf, ok := c["confidence"].(float64); !ok || conf <= 0 || conf >= 1 {
			t.Errorf("%s: confidence %v, want it in (0, 1)", query, c["confidence"])
		}
		top := c["tags"].([]any)[0].(map[string]any)
		if top["noun"] != "cat" || top["label"] != "Egyptian cat" || top["prob"].(float64) < 0.9 || top["label_prob"].(float64) < 0.8 {
			t.Errorf("%s: top tag %v, want cat (Egyptian cat) above 0.9", query, top)
		}
		return c["caption"].(string), tokens, c
	}
	guided, tokens, c := caption("")
	if !slices.Contains(tokens, "cat") || fmt.Sprint(c["guided"]) != "[cat]" {
		t.Errorf("default (guided): %q, guided %v; want it to name the cat", guided, c["guided"])
	}
	plain, tokens, c := caption("?guide=0")
	if slices.Contains(tokens, "cat") || fmt.Sprint(c["guided"]) != "[]" {
		t.Errorf("guide=0: %q, guided %v; want the plain caption, which misses the cat", plain, c["guided"])
	}
	if again, _, _ := caption("?guide=1"); again != guided {
		t.Errorf("guide=1: %q, want the default's %q", again, guided)
	}
	if r := do(t, "POST", ts.url+"/v1/captions?guide=2", "image/jpeg", bytes.NewReader(cat)); r.status != http.StatusBadRequest || r.json["error"] != "guide=2 is outside 0..1" {
		t.Errorf("guide=2: %d %s", r.status, r.body)
	}
}

// A photo of a thing alone is captioned as the thing, with lone_object;
// guide=0 gives the decoder's caption without it, and a photo of a cat never
// has it.
func TestLoneObjectThroughTheAPI(t *testing.T) {
	screwdriver, err := os.ReadFile("../testdata/ood/tool_screwdriver1.jpg")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", "image/jpeg", bytes.NewReader(screwdriver)))
	alts := c["alternatives"].([]any)
	if lone, ok := c["lone_object"].(float64); !ok || lone < 0.6 || !strings.HasSuffix(c["caption"].(string), " screwdriver on a gray background.") ||
		len(alts) < 2 || alts[0].(map[string]any)["caption"] != c["caption"] {
		t.Errorf("the screwdriver: %q, lone_object %v, alternatives %v; want it named on its backdrop, at least 0.6 sure, first of the alternatives", c["caption"], c["lone_object"], alts)
	}
	// Its confidence is the geometric mean of lone_object and its noun's tag.
	tag := c["tags"].([]any)[0].(map[string]any)
	if conf, lone := c["confidence"].(float64), c["lone_object"].(float64); math.Abs(conf*conf/lone-tag["prob"].(float64)) > 1e-6 {
		t.Errorf("the screwdriver: confidence %g, lone_object %g, tag %v: want confidence² = lone_object × the tag's prob", conf, lone, tag)
	}
	// Greedy decoding has no alternatives of its own: the decoder's caption follows the object's.
	greedy := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?beam=1", "image/jpeg", bytes.NewReader(screwdriver)))
	if alts := greedy["alternatives"].([]any); len(alts) != 2 || alts[0].(map[string]any)["caption"] != greedy["caption"] ||
		strings.Contains(alts[1].(map[string]any)["caption"].(string), "background") {
		t.Errorf("beam=1: %q, alternatives %v; want the object's caption, then the decoder's", greedy["caption"], alts)
	}
	plain := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?guide=0", "image/jpeg", bytes.NewReader(screwdriver)))
	if _, ok := plain["lone_object"]; ok || strings.Contains(plain["caption"].(string), "background") {
		t.Errorf("guide=0: %q, lone_object %v; want the decoder's caption", plain["caption"], plain["lone_object"])
	}
	cat := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", "image/jpeg", bytes.NewReader(photo(t, catPhoto))))
	if _, ok := cat["lone_object"]; ok {
		t.Errorf("the cat: lone_object %v", cat["lone_object"])
	}
}

// The no-repeat rule (decode.no_repeat 2, the default) keeps a caption from
// saying a pair of words twice; no_repeat=0 turns it off for one request: the
// merge model's plain beam-3 caption of this photo then says "black shirt"
// twice.
func TestNoRepeatPerRequest(t *testing.T) {
	man := photo(t, "samples/grace_hopper.bmp")
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	tokens := func(query string) []string {
		c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?guide=0"+query, "image/bmp", bytes.NewReader(man)))
		var ws []string
		for _, w := range c["tokens"].([]any) {
			ws = append(ws, w.(string))
		}
		return ws
	}
	repeatsAPair := func(ws []string) bool {
		seen := map[[2]string]bool{}
		for i := 1; i < len(ws); i++ {
			p := [2]string{ws[i-1], ws[i]}
			if seen[p] || ws[i] == ws[i-1] {
				return true
			}
			seen[p] = true
		}
		return false
	}
	if ws := tokens(""); repeatsAPair(ws) {
		t.Errorf("default: %v repeats a pair of words or a word", ws)
	}
	if ws := tokens("&no_repeat=0"); !repeatsAPair(ws) {
		t.Errorf("no_repeat=0: %v repeats nothing; want the plain caption, which says a pair twice", ws)
	}
	if r := do(t, "POST", ts.url+"/v1/captions?no_repeat=1", "image/bmp", bytes.NewReader(man)); r.status != http.StatusBadRequest ||
		r.json["error"] != `no_repeat=1 would forbid any word twice ("a" included): use 0 (repeats allowed) or 2..100` {
		t.Errorf("no_repeat=1: %d %s", r.status, r.body)
	}
}

func TestCaptionSeveralImagesWithOptions(t *testing.T) {
	names := []string{"1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg"}
	var parts []part
	for _, n := range names {
		parts = append(parts, part{"image", n, photo(t, "samples/flickr8k_fullres/"+n)})
	}
	parts = append(parts, part{field: "alternatives", data: []byte("2")})
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	body, ct := multipartBody(t, parts...)
	r := do(t, "POST", ts.url+"/v1/captions?beam=2&max_len=12", ct, body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	caps := r.json["captions"].([]any)
	if len(caps) != len(names) {
		t.Fatalf("%d captions for %d images", len(caps), len(names))
	}
	for i, ci := range caps {
		c := ci.(map[string]any)
		if c["filename"] != names[i] || c["index"] != float64(i) {
			t.Errorf("caption %d is for %v (index %v), want %s", i, c["filename"], c["index"], names[i])
		}
		if n := len(c["alternatives"].([]any)); n != 2 {
			t.Errorf("caption %d: %d alternatives, want 2", i, n)
		}
		if words := strings.Fields(c["caption"].(string)); len(words) == 0 || len(words) > 12 {
			t.Errorf("caption %d %q: %d words, want 1..12", i, c["caption"], len(words))
		}
	}
}

// pngHeader is a valid PNG signature and IHDR chunk announcing w x h pixels.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestCaptionErrors(t *testing.T) {
	cat := photo(t, catPhoto)
	// One configuration for the server and its pipeline, as serve has.
	cfg := pipelineConfig(t)
	cfg.Server.MaxBodyBytes = 1 << 20
	cfg.Server.MaxImages = 2
	cfg.Image.MaxPixels = 2_000_000
	ts := startServer(t, cfg, PipelineLoader(cfg))
	one := func(data []byte) func() (string, []byte) {
		return func() (string, []byte) {
			body, ct := multipartBody(t, part{"image", "x", data})
			return ct, readAll(body)
		}
	}
	raw := func(ct string, data []byte) func() (string, []byte) {
		return func() (string, []byte) { return ct, data }
	}
	// A damaged photo's message is imgproc's, which names the problem in the words
	// of the JPEG decoder of this build (libjpeg-turbo with cgo, image/jpeg without).
	imgprocMessage := func(data []byte) string {
		_, err := testPreprocessor(1 << 30).Bytes(data)
		return strings.TrimPrefix(err.Error(), "imgproc: ")
	}
	for _, tc := range []struct {
		name   string
		query  string
		body   func() (string, []byte)
		status int
		msg    string
	}{
		{"empty image", "", one(nil), 400, "empty input"},
		{"truncated jpeg", "", one(cat[:5000]), 400, imgprocMessage(cat[:5000])},
		{"text file", "", one([]byte("hello, this is not a photo\n")), 415, "text, not an image"},
		{"tiff", "", one([]byte("II*\x00\x08\x00\x00\x00")), 415, "TIFF image"},
		{"file name sent as a field", "", func() (string, []byte) {
			body, ct := multipartBody(t, part{field: "image", data: []byte("cat.jpg")})
			return ct, readAll(body)
		}, 415, `unsupported image format: text, not an image; accepted formats are JPEG, PNG, GIF, BMP and WebP; this "image" part has no file name, as a form field's text has: send the photo as a file (curl -F image=@photo.jpg, with the @)`},
		{"pixel bomb", "", one(pngHeader(50000, 50000)), 413, "50000x50000 = 2500000000 pixels, more than the limit of 2000000"},
		{"body limit", "", one(bytes.Repeat(cat, 20)), 413, "larger than the limit of 1048576 bytes"},
		{"too many images", "", func() (string, []byte) {
			body, ct := multipartBody(t, part{"image", "a", cat}, part{"image", "b", cat}, part{"image", "c", cat})
			return ct, readAll(body)
		}, 413, "more than 2 images in one request (server.max_images): split them over several requests"},
		{"many empty image parts", "", func() (string, []byte) {
			// Refused at the third part: the rest of the body is never parsed,
			// here a part with no closing boundary, which would be a 400.
			p := "--xx\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n\r\n"
			return "multipart/form-data; boundary=xx", []byte(strings.Repeat(p, 100))
		}, 413, "more than 2 images in one request"},
		{"content type parameter twice", "", raw("image/jpeg; x=1; x=2", cat), 400, `Content-Type "image/jpeg; x=1; x=2" cannot be parsed (mime: duplicate parameter name): send multipart/form-data`},
		{"semicolon in the query", "?beam=9;x=1", raw("image/jpeg", cat), 400, "malformed query string (invalid semicolon separator in query): separate the options with &, and percent-encode ;, % and & inside a value"},
		{"bad escape in the query", "?beam=99%zz", raw("image/jpeg", cat), 400, `malformed query string (invalid URL escape "%zz")`},
		{"every image bad", "", func() (string, []byte) {
			body, ct := multipartBody(t, part{"image", "cut.jpg", cat[:3000]}, part{"image", "bomb.png", pngHeader(50000, 50000)})
			return ct, readAll(body)
		}, 400, `none of the 2 images could be captioned: index 0 ("cut.jpg"): ` + imgprocMessage(cat[:3000]) +
			`; index 1 ("bomb.png"): image is 50000x50000 = 2500000000 pixels, more than the limit of 2000000`},
		{"no image field", "", func() (string, []byte) {
			body, ct := multipartBody(t, part{field: "beam", data: []byte("2")})
			return ct, readAll(body)
		}, 400, `no image in the request: send the file in multipart field "image"`},
		{"unknown field", "", func() (string, []byte) {
			body, ct := multipartBody(t, part{"photo", "a.jpg", cat})
			return ct, readAll(body)
		}, 400, `unknown form field "photo"`},
		{"json body", "", raw("application/json", []byte(`{"image":"..."}`)), 415, `Content-Type "application/json" is not accepted`},
		{"raw text body", "", raw("image/jpeg", []byte("GIF8")), 415, "text, not an image"},
		{"beam zero", "?beam=0", raw("image/jpeg", cat), 400, "beam=0 is outside 1..8"},
		{"beam not a number", "?beam=three", raw("image/jpeg", cat), 400, `beam="three" is not a whole number`},
		{"too many alternatives", "?beam=2&alternatives=3", raw("image/jpeg", cat), 400, "alternatives=3 is more than beam=2"},
		{"timeout over cap", "?timeout_ms=999999", raw("image/jpeg", cat), 400, "timeout_ms=999999 is outside 1..120000"},
		{"max_len over", "?max_len=101", raw("image/jpeg", cat), 400, "max_len=101 is outside 1..100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := tc.body()
			do(t, "POST", ts.url+"/v1/captions"+tc.query, ct, bytes.NewReader(body)).wantError(t, tc.status, tc.msg)
		})
	}
	do(t, "GET", ts.url+"/v1/captions", "", nil).wantError(t, 405, "GET is not allowed on /v1/captions")
	do(t, "GET", ts.url+"/v2/nothing", "", nil).wantError(t, 404, "no route GET /v2/nothing")
	// A trailing slash is no route either: gin redirected it, before any
	// middleware (no Host check, no nosniff), with an HTML body.
	do(t, "GET", ts.url+"/healthz/", "", nil).wantError(t, 404, "no route GET /healthz/")
	ct, body := raw("image/jpeg", cat)()
	do(t, "POST", ts.url+"/v1/captions/", ct, bytes.NewReader(body)).wantError(t, 404, "no route POST /v1/captions/")
}

func TestNotReadyAnswers503(t *testing.T) {
	release := make(chan struct{})
	m := newStepModel("m")
	m.entered = nil
	s := New(testConfig(t, nil), func(ctx context.Context) (Model, error) {
		<-release
		return m, nil
	}, discardLog())
	h := s.Handler()
	get := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader("x")))
		return w
	}
	started := make(chan error)
	go func() { started <- s.Start(context.Background()) }()
	for _, p := range []struct{ method, path string }{{"GET", "/readyz"}, {"GET", "/v1/models"}, {"POST", "/v1/captions"}} {
		if w := get(p.method, p.path); w.Code != 503 || !strings.Contains(w.Body.String(), "loading") {
			t.Errorf("%s %s while loading: %d %s, want 503 saying the model is loading", p.method, p.path, w.Code, w.Body)
		} else if p.path != "/readyz" && w.Header().Get("Retry-After") != "1" {
			t.Errorf("%s %s while loading: Retry-After %q, want 1", p.method, p.path, w.Header().Get("Retry-After"))
		}
	}
	if w := get("GET", "/healthz"); w.Code != 200 {
		t.Errorf("/healthz while loading: %d, want 200", w.Code)
	}
	close(release)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if w := get("GET", "/readyz"); w.Code != 200 || !strings.Contains(w.Body.String(), `"version":"v-m"`) {
		t.Errorf("/readyz when loaded: %d %s", w.Code, w.Body)
	}
	s.Shutdown(context.Background())
}

// blockedServer is a server whose model holds each batch until the test releases it.
func blockedServer(t *testing.T, edit func(*config.Config)) (*testServer, *stepModel) {
	m := newStepModel("blocked")
	ts := startServer(t, testConfig(t, edit), modelLoader(m))
	// Warm-up has run (two batches); from now on every batch waits for release.
	for range 2 {
		<-m.entered
	}
	m.release = make(chan struct{})
	t.Cleanup(func() { close(m.release) })
	return ts, m
}

// occupy sends two requests to a blocked server whose batches hold one image,
// and returns once the first is on the model and the second is queued; their
// answers arrive on the channel.
func occupy(t *testing.T, ts *testServer, m *stepModel) chan response {
	results := make(chan response, 2)
	post := func() { results <- do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(4, 3))) }
	go post()
	<-m.entered
	<-ts.queued // the first request's image, queued before it reached the model
	go post()
	<-ts.queued
	return results
}

// finish lets occupy's two batches through and checks both were answered 200.
func finish(t *testing.T, m *stepModel, results chan response) {
	m.release <- struct{}{}
	<-m.entered
	m.release <- struct{}{}
	for range 2 {
		if r := <-results; r.status != 200 {
			t.Errorf("accepted request: %d %s, want 200", r.status, r.body)
		}
	}
}

// waitFor polls cond until it holds, for what sends no event: goroutines exiting.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// nextBatch is the server's next batch, failing the test (not hanging it) when
// none comes within a minute.
func nextBatch(t *testing.T, ts *testServer) BatchStats {
	t.Helper()
	select {
	case st := <-ts.batches:
		return st
	case <-time.After(time.Minute):
		t.Fatal("no batch within a minute")
		return BatchStats{}
	}
}

func TestQueueFullAnswers429(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBatch = 1; c.Server.QueueSize = 1 })
	results := occupy(t, ts, m)
	r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(4, 3)))
	r.wantError(t, 429, "the server is at capacity (its queue of 1 images is full)")
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	finish(t, m, results)
}

func TestDeadlineAnswers504AndIsNotComputed(t *testing.T) {
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBatch = 1 })
	img := photoPNG(4, 3)
	first := make(chan response, 1)
	go func() { first <- do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(img)) }()
	<-m.entered
	// The second request waits behind the blocked batch past its deadline: one
	// second, long enough for it to reach the queue on a loaded machine (with
	// 50 ms it could expire before, and no batch would ever skip it).
	do(t, "POST", ts.url+"/v1/captions?timeout_ms=1000", "image/png", bytes.NewReader(img)).
		wantError(t, 504, "no caption within the request's deadline of 1s")
	m.release <- struct{}{}
	if r := <-first; r.status != 200 {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	// The scheduler skips the expired image without computing it.
	if st := nextBatch(t, ts); st.Size != 1 {
		t.Fatalf("first batch %+v, want the first request's image", st)
	}
	if st := nextBatch(t, ts); st.Size != 0 || st.Expired != 1 {
		t.Fatalf("second batch %+v, want the expired image skipped, nothing computed", st)
	}
	if m := string(do(t, "GET", ts.url+"/metrics", "", nil).body); !strings.Contains(m, `captioner_images_dropped_total{reason="deadline"} 1`) {
		t.Errorf("metrics lack the dropped image:\n%s", grepLines(m, "dropped"))
	}
	select {
	case got := <-m.entered:
		t.Fatalf("the model computed %v after the first request, want nothing", got)
	default:
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPreparationIsBoundedByCores checks that an upload waits for a preparation
// slot: decoding runs in C, outside Go's scheduler, so without the bound every
// concurrent upload would take a core from the encoder and decoder.
func TestPreparationIsBoundedByCores(t *testing.T) {
	ts := startServer(t, testConfig(t, nil), modelLoader(newStepModel("m")))
	if cap(ts.prepSlots) != runtime.GOMAXPROCS(0) {
		t.Fatalf("%d preparation slots, want GOMAXPROCS = %d", cap(ts.prepSlots), runtime.GOMAXPROCS(0))
	}
	for range cap(ts.prepSlots) {
		ts.prepSlots <- struct{}{} // every slot taken
	}
	done := make(chan response, 1)
	go func() { done <- do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(4, 3))) }()
	select {
	case r := <-done:
		t.Fatalf("answered %d while every preparation slot was taken", r.status)
	case <-time.After(300 * time.Millisecond):
	}
	<-ts.prepSlots
	select {
	case r := <-done:
		if r.status != http.StatusOK {
			t.Fatalf("status %d once a slot was free; body %s", r.status, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer 10 s after a slot was freed")
	}
}
