package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
)

// The browser tests of the pages' behaviour around the upload: a server
// still warming up, or not answering GET /v1/models, dropped folders, the
// live token across pages, where the keyboard's focus goes, and what the
// pages name things for screen readers.

// warmingServer is a server on a loopback listener whose model loads only when
// the test calls the returned release: until then it warms up, and answers
// /v1/models and /v1/captions 503 with a Retry-After. Its logs (JSON, level
// INFO) hold a line a request.
func warmingServer(t *testing.T, m Model) (*testServer, func()) {
	t.Helper()
	load := make(chan struct{})
	logs := &lockedWriter{w: &bytes.Buffer{}}
	s := New(testConfig(t, nil), func(ctx context.Context) (Model, error) {
		select {
		case <-load:
			return m, nil
		case <-ctx.Done(): // the test ended before it released the load
			return nil, ctx.Err()
		}
	}, slog.New(slog.NewJSONHandler(logs, nil)))
	url := serveOnLoopback(t, s)
	started := make(chan error, 1)
	go func() { started <- s.Start(context.Background()) }()
	release := func() {
		t.Helper()
		close(load)
		if err := <-started; err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	return &testServer{Server: s, url: url, logs: logs}, release
}

// attendingModel is a step model serving two models, the default an attention
// model whose captions have a map for each word when asked (attention=1).
type attendingModel struct{ *stepModel }

func (m attendingModel) Models() []Info {
	return []Info{{Model: "att", Version: "v-att", Device: "test", Arch: decoder.ArchAttention}, {Model: "merge", Version: "v-merge", Device: "test", Arch: decoder.ArchMerge}}
}

func (m attendingModel) Decode(ctx context.Context, f [][]float32, o Options) ([]Result, error) {
	out, err := m.stepModel.Decode(ctx, f, o)
	if o.Attention {
		for i := range out {
			words := strings.Fields(out[i].Caption)
			out[i].Attention = make([][]float32, len(words))
			for k := range words {
				out[i].Attention[k] = make([]float32, 49) // the 7x7 grid
				out[i].Attention[k][k] = 1
			}
		}
	}
	return out, err
}

// A page opened while the server warms up (GET /v1/models answers 503) asks
// again until it has the models: the selector and the model's name appear,
// and a photo chosen meanwhile waits for them, so that it is sent asking the
// attention model for its maps. The page had taken the first 503 for good:
// no selector, and every card said the attention model had no maps.
func TestBrowserWaitsForWarmUp(t *testing.T) {
	photo := filepath.Join(t.TempDir(), "p.png")
	if err := os.WriteFile(photo, photoPNG(40, 30), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newStepModel("att")
	m.entered = nil
	ts, release := warmingServer(t, attendingModel{m})
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000}) // a page that never gets there fails, not hangs
	w.navigate(ts.url + "/")
	waitFor(t, "the page's GET /v1/models, answered 503", func() bool {
		return strings.Contains(grepLines(ts.logs.String(), `"route":"/v1/models"`), `"status":503`)
	})
	chooseFiles(w, photo)
	waiting := w.await(`const done = arguments[arguments.length - 1], s = document.getElementById("status");
		const check = () => { if (s.textContent) { done(s.textContent); return true; } };
		if (!check()) new MutationObserver(check).observe(s, {childList: true, characterData: true, subtree: true});`)
	if want := "the server is loading its model; the photos go once it is ready…"; waiting != want {
		t.Errorf("status of a photo chosen while the server warms up: %q, want %q", waiting, want)
	}
	release()
	got := w.await(`const done = arguments[arguments.length - 1];
		const check = () => {
			const c = document.querySelector("#results .result"), e = document.getElementById("error");
			if (!e.hidden) { done("ERROR: " + e.firstChild.textContent); return true; }
			if (!c) return false;
			done([document.getElementById("model-choice").hidden ? "no selector" : [...document.getElementById("model-select").options].map((o) => o.textContent).join(", "),
				document.getElementById("model").textContent, c.querySelectorAll(".caption .word").length + " words",
				...[...c.querySelectorAll(".muted")].map((p) => p.textContent).filter((t) => t.includes("not an attention model"))].join(" | "));
			return true;
		};
		if (!check()) new MutationObserver(check).observe(document.body, {childList: true, subtree: true, attributes: true});`)
	if want := "att (default), merge | att v-att · test | 4 words"; got != want {
		t.Errorf("after the warm-up the page shows %q, want %q (selector, model, the caption's words with maps)", got, want)
	}
	w.checkConsole("status of 503") // the warm-up's answers to /v1/models
}

// dropFiles drops paths (files or folders) on the element css matches, as a
// user dragging them from a file manager.
func dropFiles(w *webdriver, css string, paths ...string) {
	w.t.Helper()
	var r struct{ X, Y, Width, Height float64 }
	json.Unmarshal(w.call("GET", "/element/"+w.find(css)+"/rect", nil), &r)
	data := map[string]any{"items": []any{}, "files": paths, "dragOperationsMask": 1} // copy
	for _, typ := range []string{"dragEnter", "dragOver", "drop"} {
		w.call("POST", "/goog/cdp/execute", map[string]any{"cmd": "Input.dispatchDragEvent", "params": map[string]any{
			"type": typ, "x": r.X + r.Width/2, "y": r.Y + r.Height/2, "data": data}})
	}
}

// A folder dropped with photos is skipped, and the photos are captioned; the
// page says which folder it skipped and what to do. (Chromium refuses to read
// a folder into a request: the page had sent it with the photos, and the
// whole upload failed with "Failed to fetch".)
func TestBrowserDropSkipsFolders(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "holiday")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	paths := writeFiles(t, dir, []string{"p.png", filepath.Join("holiday", "q.png")}, func(string) []byte { return photoPNG(40, 30) })
	ts := stepServer(t, nil)
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	w.navigate(ts.url + "/")
	dropFiles(w, "#drop", folder, paths[0])
	if got, want := readUpload(w), "p.png: image -1 beam 3\ndone in N ms · skipped the folder “holiday”: open it and drop the photos inside instead"; got != want {
		t.Errorf("after dropping a folder and a photo the page shows\n%s\nwant\n%s", got, want)
	}
	w.checkConsole()
}

// pageState is, at once, the upload page's error (or "no error"), whether Try
// again shows, and its status line.
const pageState = `const e = document.getElementById("error");
	arguments[0]((e.hidden ? "no error" : e.firstChild.textContent) + " | retry shown: " + !document.getElementById("retry").hidden +
		" | status: " + document.getElementById("status").textContent)`

// A folder dropped alone says so in the status line, and leaves an upload's
// error and its Try again as they were: Try again still sends the photos. A
// folder dropped with photos while an option field is off gets its note too,
// beside the field's error. (The note had replaced the error and hidden Try
// again: the photos had to be chosen again; and an off field lost the note.)
func TestBrowserFolderNoteKeepsTryAgain(t *testing.T) {
	dir := t.TempDir()
	folder := filepath.Join(dir, "holiday")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	photo := writeFiles(t, dir, []string{"p.png"}, func(string) []byte { return photoPNG(40, 30) })[0]
	ts := stepServer(t, nil)
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	w.navigate(ts.url + "/")
	const note = "skipped the folder “holiday”: open it and drop the photos inside instead"
	// A beam past server.max_beam (8): the upload stops, Try again shows.
	w.await(`models.then(() => { document.getElementById("beam").value = "9"; arguments[0]("set"); })`)
	chooseFiles(w, photo)
	stopped := awaitError(w, true, `e.firstChild.textContent`)
	dropFiles(w, "#drop", folder)
	if got, want := w.await(pageState), stopped+" | retry shown: true | status: "+note; got != want {
		t.Fatalf("after dropping a folder alone on a stopped upload the page shows\n%s\nwant\n%s", got, want)
	}
	w.await(`const b = document.getElementById("beam"); b.value = "1"; b.dispatchEvent(new Event("input")); arguments[0]("set")`)
	w.call("POST", "/element/"+w.find("#retry")+"/click", map[string]any{})
	if got, want := readUpload(w), "p.png: image -1 beam 1\ndone in N ms"; got != want {
		t.Errorf("Try again after the folder's note shows %q, want %q", got, want)
	}

	w.await(`document.getElementById("beam").value = "9"; arguments[0]("set")`)
	dropFiles(w, "#drop", folder, photo)
	if got, want := w.await(pageState), " | retry shown: true | status: "+note; !strings.HasPrefix(got, "Beam width: ") || !strings.HasSuffix(got, want) {
		t.Errorf("after dropping a folder and a photo with the beam off the page shows\n%s\nwant the beam's error then %q", got, want)
	}
	w.checkConsole()
}

// With server.live: token, a user who opened /live?token= and went to the
// upload page gets back to a working live page through the nav's Live link;
// the link was /live, which answered 401 in JSON.
func TestBrowserLiveLinkKeepsToken(t *testing.T) {
	ts := stepServer(t, liveToken)
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	w.navigate(ts.url + "/live?token=v13w")
	if got := w.await(awaitLiveStatus); got != "live" {
		t.Fatalf("live page status %q", got)
	}
	w.call("POST", "/element/"+w.find(`nav a[href="/"]`)+"/click", map[string]any{})
	w.call("POST", "/element/"+w.find("#live-link")+"/click", map[string]any{})
	got := w.await(awaitLiveOrNot)
	if want := "/live?token=v13w: live"; got != want {
		t.Errorf("live page reached from the upload page's nav: %q, want %q", got, want)
	}
	w.checkConsole()
}

// awaitLiveOrNot waits until the page the browser shows is a live page whose
// stream is live, and gives its address then, "ADDRESS: live"; on a page with
// no status line (a JSON refusal), its address and the start of its text.
const awaitLiveOrNot = `const done = arguments[arguments.length - 1], s = document.getElementById("status");
	if (!s) { done(location.pathname + location.search + ": " + document.body.textContent.slice(0, 80)); return; }
	const check = () => { if (s.textContent === "live") { done(location.pathname + location.search + ": live"); return true; } };
	if (!check()) new MutationObserver(check).observe(s, {childList: true, characterData: true, subtree: true});`

// pressEnter gives the element css matches the keyboard's focus and presses
// Enter on it, as a keyboard user does.
func pressEnter(w *webdriver, css string) {
	w.t.Helper()
	w.await(`document.querySelector(arguments[0]).focus(); arguments[1]("focused")`, css)
	w.call("POST", "/actions", map[string]any{"actions": []any{map[string]any{"type": "key", "id": "keyboard", "actions": []any{
		map[string]string{"type": "keyDown", "value": "\uE007"}, map[string]string{"type": "keyUp", "value": "\uE007"}}}}})
	w.call("DELETE", "/actions", nil)
}

// Cancel and Try again hide themselves when pressed: the keyboard's focus
// moves to the drop zone, where it had fallen to the page's body (a keyboard
// user started again from the top of the page).
func TestBrowserKeepsFocus(t *testing.T) {
	paths := writeFiles(t, t.TempDir(), []string{"a.png", "b.png"}, func(string) []byte { return photoPNG(40, 30) })
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxImages = 1 })
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	w.navigate(ts.url + "/")
	chooseFiles(w, paths...)
	<-m.entered // a
	pressEnter(w, "#cancel")
	got := awaitError(w, true, `e.firstChild.textContent + " | focus on " + (document.activeElement.id || document.activeElement.tagName)`)
	if want := "cancelled | focus on drop"; got != want {
		t.Errorf("after Cancel: %q, want %q", got, want)
	}
	m.release <- struct{}{} // a's batch; its answer goes nowhere
	pressEnter(w, "#retry")
	got = awaitError(w, false, `"focus on " + (document.activeElement.id || document.activeElement.tagName)`)
	if want := "focus on drop"; got != want {
		t.Errorf("after Try again: %q, want %q", got, want)
	}
	for range 2 { // a and b, again
		<-m.entered
		m.release <- struct{}{}
	}
	if got, want := readUpload(w), "a.png: image -1 beam 3\nb.png: image -1 beam 3\ndone in N ms · 2 requests"; got != want {
		t.Errorf("after Try again the page shows %q, want %q", got, want)
	}
	w.checkConsole()
}

// The drop zone's accessible name is its visible text (WCAG 2.5.3, Label in
// Name: a voice user says what they see), and the formats describe it; the
// results are a region named Captions (an aria-label on a plain div names
// nothing). Chromium computes both as a screen reader gets them.
func TestBrowserNamesForScreenReaders(t *testing.T) {
	ts := stepServer(t, nil)
	w := startChromium(t)
	w.navigate(ts.url + "/")
	computed := func(css, what string) string {
		var s string
		json.Unmarshal(w.call("GET", "/element/"+w.find(css)+"/"+what, nil), &s)
		return s
	}
	visible := w.await(`arguments[0](document.querySelector("#drop .pointer-only").textContent)`)
	if got := computed("#drop", "computedlabel"); got != visible {
		t.Errorf("drop zone's accessible name %q, want its visible text %q", got, visible)
	}
	if got, want := w.await(`arguments[0](document.getElementById(document.getElementById("drop").getAttribute("aria-describedby")).textContent)`),
		"JPEG, PNG, GIF, BMP or WebP"; got != want {
		t.Errorf("drop zone's description %q, want %q", got, want)
	}
	if got := computed("#results", "computedrole") + " " + computed("#results", "computedlabel"); got != "region Captions" {
		t.Errorf("results: role and name %q, want \"region Captions\"", got)
	}
	w.checkConsole()
}

// After the Back button restores the upload page from the browser's
// back/forward cache, its Live link carries the token of the live page the
// tab opened meanwhile: the restored page runs no script anew, and the link
// had stayed /live, which answered 401.
func TestBrowserLiveLinkAfterBack(t *testing.T) {
	ts := stepServer(t, liveToken)
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	w.navigate(ts.url + "/")
	w.await(`window.before = true; arguments[0]("marked")`)
	w.navigate(ts.url + "/live?token=v13w")
	if got := w.await(awaitLiveStatus); got != "live" {
		t.Fatalf("live page status %q", got)
	}
	w.call("POST", "/back", map[string]any{})
	if got := w.await(`arguments[0](location.pathname + " " + (window.before === true))`); got != "/ true" {
		t.Fatalf("after Back: %q, want the upload page as it was left (\"/ true\"): not restored from the back/forward cache, so this test tests nothing", got)
	}
	w.call("POST", "/element/"+w.find("#live-link")+"/click", map[string]any{})
	got := w.await(awaitLiveOrNot)
	if want := "/live?token=v13w: live"; got != want {
		t.Errorf("live page reached from the restored upload page's nav: %q, want %q", got, want)
	}
	w.checkConsole()
}

// behind serves ts through a reverse proxy on loopback, for a proxy or a
// server that answers otherwise than ts: handle answers the requests it
// chooses (and returns true), the proxy passes the rest on.
func behind(t *testing.T, ts *testServer, handle func(http.ResponseWriter, *http.Request) bool) string {
	t.Helper()
	target, err := url.Parse(ts.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the server checks the pages' Origin against it
	}}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !handle(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// Where GET /v1/models answers anything but the list or a 503 (a proxy that
// does not route it, a server error, a page that is not JSON), the upload
// page asks once and goes on with the default limits and no model list: a
// photo is captioned at once. The page had asked again every few seconds,
// and the photo waited for ever under "the server is loading its model".
func TestBrowserUploadsWithoutModelList(t *testing.T) {
	photo := writeFiles(t, t.TempDir(), []string{"p.png"}, func(string) []byte { return photoPNG(40, 30) })[0]
	ts := stepServer(t, func(c *config.Config) { c.Server.MaxBeam = 5 })
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"a proxy that does not route it", 404, "404 page not found"},
		{"a server error", 500, `{"error":"boom"}`},
		{"a page that is not JSON", 200, "<html><body>sign in</body></html>"},
	} {
		var asked atomic.Int32
		front := behind(t, ts, func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/v1/models" {
				return false
			}
			asked.Add(1)
			w.WriteHeader(tc.status)
			fmt.Fprint(w, tc.body)
			return true
		})
		w.navigate(front + "/")
		chooseFiles(w, photo)
		if got, want := readUpload(w), "p.png: image -1 beam 3\ndone in N ms"; got != want {
			t.Errorf("%s: the upload shows %q, want %q", tc.name, got, want)
		}
		// The server's own limit (5) is not known: the beam's bound is the default.
		if got, want := w.await(`arguments[0](document.getElementById("beam").max + " " + document.getElementById("model-choice").hidden)`), "8 true"; got != want {
			t.Errorf("%s: beam's max and the selector hidden %q, want %q", tc.name, got, want)
		}
		if n := asked.Load(); n != 1 {
			t.Errorf("%s: the page asked GET /v1/models %d times, want once", tc.name, n)
		}
	}
	w.checkConsole("status of 404", "status of 500")
}

// speedUp makes the pages the browser opens from now on count time factor
// times faster: their timers (setTimeout) wait 1/factor of what they ask, so
// that a test need not wait out a limit of minutes.
func speedUp(w *webdriver, factor int) {
	w.t.Helper()
	w.call("POST", "/goog/cdp/execute", map[string]any{"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": map[string]any{
		"source": fmt.Sprintf("const setTimeout0 = window.setTimeout; window.setTimeout = (f, ms, ...args) => setTimeout0(f, ms / %d, ...args);", factor)}})
}

// A page opened while the server warms up, which then goes away (its model
// failed to load and it exited), does not keep a photo waiting for ever: past
// the page's limit the upload goes with the default limits and says that the
// server did not answer. It had waited for the models for good, saying "the
// server is loading its model".
func TestBrowserUploadWaitIsBounded(t *testing.T) {
	photo := writeFiles(t, t.TempDir(), []string{"p.png"}, func(string) []byte { return photoPNG(40, 30) })[0]
	ts := stepServer(t, nil)
	var gone atomic.Bool
	front := behind(t, ts, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case gone.Load(): // no answer: the connection closes
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return true
			}
			conn.Close()
		case r.URL.Path == "/v1/models": // warming up, the last answer before it goes
			gone.Store(true)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"the model is still loading; retry in a few seconds (GET /readyz answers 200 once it is ready)"}`)
		default:
			return false
		}
		return true
	})
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	speedUp(w, 60) // the page's two minutes in two seconds
	w.navigate(front + "/")
	chooseFiles(w, photo)
	if got, want := readUpload(w), "ERROR: the server did not answer (Failed to fetch): check the connection, then try again"; got != want {
		t.Errorf("upload to a server gone during its warm-up shows %q, want %q", got, want)
	}
	// A connection closed without an answer reads as empty or as reset,
	// as the close meets the request.
	w.checkConsole("status of 503", "ERR_EMPTY_RESPONSE", "ERR_CONNECTION_RESET")
}
