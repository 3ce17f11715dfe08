package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/internal/testassets"
)

// The end-to-end test drives Debian's headless Chromium through chromedriver's
// WebDriver HTTP API: no npm, no browser download.
const (
	chromiumPath     = "/usr/bin/chromium"
	chromedriverPath = "/usr/bin/chromedriver"
)

// webdriver is one chromedriver session.
type webdriver struct {
	t    *testing.T
	base string // http://127.0.0.1:PORT/session/ID
}

func (w *webdriver) call(method, path string, body any) json.RawMessage {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	if resp.StatusCode != 200 {
		w.t.Fatalf("webdriver %s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return out.Value
}

func (w *webdriver) navigate(url string) { w.call("POST", "/url", map[string]string{"url": url}) }

func (w *webdriver) find(css string) string {
	var el map[string]string
	json.Unmarshal(w.call("POST", "/element", map[string]string{"using": "css selector", "value": css}), &el)
	for _, id := range el {
		return id
	}
	w.t.Fatalf("no element %s", css)
	return ""
}

// await runs script in the page; the script calls done(value) when the page has
// reached the state the test waits for (it is event-driven: no polling here).
func (w *webdriver) await(script string, args ...any) string {
	w.t.Helper()
	if args == nil {
		args = []any{}
	}
	var s string
	if err := json.Unmarshal(w.call("POST", "/execute/async", map[string]any{"script": script, "args": args}), &s); err != nil {
		w.t.Fatalf("script result: %v", err)
	}
	return s
}

// screenshot saves the page as a PNG in $CAPTIONER_SCREENSHOTS, when set, so a
// person can look at the pages.
func (w *webdriver) screenshot(name string) {
	dir := os.Getenv("CAPTIONER_SCREENSHOTS")
	if dir == "" {
		return
	}
	var b64 string
	json.Unmarshal(w.call("GET", "/screenshot", nil), &b64)
	png, _ := base64.StdEncoding.DecodeString(b64)
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		w.t.Error(err)
	}
}

// checkConsole fails the test on anything the pages logged at SEVERE level, such
// as a Content-Security-Policy violation or a script error, except messages
// that contain one of expected (Chromium logs every refused request).
// awaitError waits until the page's error box is shown (with shown false,
// hidden) and gives the value then of report, a JavaScript expression that
// may read the box as e.
func awaitError(w *webdriver, shown bool, report string) string {
	return w.await(fmt.Sprintf(`const done = arguments[arguments.length - 1], e = document.getElementById("error");
		const check = () => { if (e.hidden !== %v) { done(%s); return true; } };
		if (!check()) new MutationObserver(check).observe(e, {attributes: true});`, shown, report))
}

func (w *webdriver) checkConsole(expected ...string) {
	w.t.Helper()
	var entries []struct {
		Level, Message string
	}
	json.Unmarshal(w.call("POST", "/se/log", map[string]string{"type": "browser"}), &entries)
	for _, e := range entries {
		if e.Level == "SEVERE" && !slices.ContainsFunc(expected, func(x string) bool { return strings.Contains(e.Message, x) }) {
			w.t.Errorf("browser console: %s", e.Message)
		}
	}
}

// startChromium starts chromedriver and a headless Chromium session, both ended
// with the test.
func startChromium(t *testing.T) *webdriver {
	for _, p := range []string{chromiumPath, chromedriverPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is missing (apt-get install chromium chromium-driver): skipping the browser test", p)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(chromedriverPath, fmt.Sprintf("--port=%d", port))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// chromedriver says when it listens.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "started successfully") {
	}
	go io.Copy(io.Discard, stdout)

	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":       "chrome",
		"goog:loggingPrefs": map[string]string{"browser": "ALL"},
		"goog:chromeOptions": map[string]any{
			"binary": chromiumPath,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--window-size=1100,900", "--user-data-dir=" + t.TempDir()},
		},
	}}}
	root := &webdriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal(root.call("POST", "/session", caps), &sess)
	w := &webdriver{t: t, base: root.base + "/session/" + sess.SessionID}
	t.Cleanup(func() { w.call("DELETE", "", nil) })
	w.call("POST", "/timeouts", map[string]int{"script": 120_000})
	return w
}

func TestBrowserUploadAndLive(t *testing.T) {
	photoPath := filepath.Join(testassets.Dir(t, "the browser uploads a real photo"), "samples", "flickr8k_fullres", "1000268201_693b08cb0e.jpg")
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	w := startChromium(t)

	// Tab 1 watches /live, connected before the upload.
	w.navigate(ts.url + "/live")
	live := w.await(awaitLiveStatus)
	if live != "live" {
		t.Fatalf("live page status %q", live)
	}
	liveTab := strings.Trim(string(w.call("GET", "/window", nil)), `"`)

	// Tab 2 uploads a photo on / through the file picker.
	var tab struct {
		Handle string `json:"handle"`
	}
	json.Unmarshal(w.call("POST", "/window/new", map[string]string{"type": "tab"}), &tab)
	w.call("POST", "/window", map[string]string{"handle": tab.Handle})
	w.navigate(ts.url + "/")
	// Guided decoding asked for explicitly: the page sends guide=1, which the
	// server would refuse (400) under any other field name.
	w.await(`document.getElementById("guide").value = "1"; arguments[0]("set")`)
	chooseFiles(w, photoPath)
	caption := w.await(awaitCaption)
	if caption == "" || strings.HasPrefix(caption, "ERROR") {
		t.Fatalf("upload page shows %q", caption)
	}
	alts := w.await(`arguments[0](document.querySelectorAll("#results .alts li").length + " " +
		document.querySelector("#results table.timings").textContent)`)
	if !strings.HasPrefix(alts, "3 ") || !strings.Contains(alts, "encode (batch)") {
		t.Errorf("upload page alternatives/timings: %q, want 3 alternatives and the timings table", alts)
	}
	tagged := w.await(`arguments[0](document.querySelector("#results .confidence").textContent + "|" +
		document.querySelector("#results .tags").textContent)`)
	if !regexp.MustCompile(`^confidence [0-9]{1,3}%.*\|Recognised: `).MatchString(tagged) {
		t.Errorf("upload page confidence and tags: %q", tagged)
	}
	// One model served: nothing to choose.
	if got := w.await(`arguments[0](String(document.getElementById("model-choice").hidden))`); got != "true" {
		t.Errorf("model selector hidden: %s, want true with one model", got)
	}
	w.screenshot("upload.png")

	// Back on tab 1 the same caption has arrived, with its thumbnail.
	w.call("POST", "/window", map[string]string{"handle": liveTab})
	got := w.await(`const done = arguments[arguments.length - 1], want = arguments[0];
		const feed = document.getElementById("feed");
		const check = () => {
			for (const li of feed.children) {
				if (li.querySelector(".text").textContent === want) {
					// Answer once its arrival animation is over, for the screenshot.
					Promise.all(li.getAnimations().map((a) => a.finished))
						.then(() => done(li.querySelector("img").src.slice(0, 23) + "|" + want + "|" +
							/confidence [0-9]+%$/.test(li.querySelector(".tags").textContent) + "|" +
							/ flickr8k-merge-lstm [0-9a-f]{12}$/.test(li.querySelector(".meta").textContent)));
					return true;
				}
			}
		};
		if (!check()) new MutationObserver(check).observe(feed, {childList: true});`, caption)
	if got != "data:image/jpeg;base64,|"+caption+"|true|true" {
		t.Errorf("live page shows %q, want the thumbnail data URL, %q, the tags with the confidence and the model", got, caption)
	}
	w.screenshot("live.png")
	w.checkConsole()
	t.Logf("caption %q seen on / and on /live", caption)
}

// awaitCaption waits for the upload page's first caption, or its error box,
// and gives the caption, or the error after "ERROR: ".
const awaitCaption = `const done = arguments[arguments.length - 1];
	const check = () => {
		const c = document.querySelector("#results .caption"), e = document.getElementById("error");
		if (c) { done(c.textContent); return true; }
		if (!e.hidden) { done("ERROR: " + e.firstChild.textContent); return true; }
	};
	if (!check()) new MutationObserver(check).observe(document.body, {childList: true, subtree: true, attributes: true});`

// A photo of a thing alone is captioned as the thing, and its card says why
// the caption is no sentence of the decoder's: those are the alternatives.
func TestBrowserShowsALoneObject(t *testing.T) {
	ts := startServer(t, testConfig(t, nil), captionLoader(t))
	w := startChromium(t)
	w.navigate(ts.url + "/")
	photo, err := filepath.Abs("../testdata/ood/tool_screwdriver1.jpg") // the file picker takes absolute paths
	if err != nil {
		t.Fatal(err)
	}
	chooseFiles(w, photo)
	caption := w.await(awaitCaption)
	if !strings.HasSuffix(caption, " screwdriver on a gray background.") {
		t.Fatalf("upload page shows %q, want the screwdriver on its backdrop", caption)
	}
	note := w.await(`arguments[0](document.querySelector("#results .confidence").textContent + "|" +
		document.querySelector("#results .alts li").firstChild.textContent.trim())`)
	if !regexp.MustCompile(`^confidence [0-9]{1,3}% · a photo of things alone \([0-9]{2,3}% sure\): the decoder's captions are among the alternatives\|` + regexp.QuoteMeta(caption) + `$`).MatchString(note) {
		t.Errorf("the card says %q, want the lone-object note and the caption first among the alternatives", note)
	}
	w.checkConsole()
}

// awaitLiveStatus waits for the live page's status to read "live".
const awaitLiveStatus = `const done = arguments[arguments.length - 1];
	const s = document.getElementById("status");
	const check = () => { if (s.textContent === "live") { done("live"); return true; } };
	if (!check()) new MutationObserver(check).observe(s, {childList: true, characterData: true, subtree: true});`

// With server.live: token, /live?token= passes the token on to the stream.
func TestBrowserLiveWithToken(t *testing.T) {
	ts := stepServer(t, liveToken)
	w := startChromium(t)
	w.navigate(ts.url + "/live?token=v13w")
	if got := w.await(awaitLiveStatus); got != "live" {
		t.Fatalf("live page status %q", got)
	}
	w.checkConsole()
}

// A live page the server refuses (this address has its streams open already)
// says so, where EventSource, which gives up on any answer but 200, left it
// on "reconnecting…" for good.
func TestBrowserLiveRefusedSaysSo(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Server.LiveMaxPerClient = 1 })
	_, closeStream := openLive(t, ts.url, "") // this address's one stream
	defer closeStream()
	w := startChromium(t)
	w.navigate(ts.url + "/live")
	got := w.await(`const done = arguments[arguments.length - 1], s = document.getElementById("status");
		const check = () => { if (s.textContent.startsWith("refused")) { done(s.textContent); return true; } };
		if (!check()) new MutationObserver(check).observe(s, {childList: true, characterData: true, subtree: true});`)
	if want := "refused by the server: this address already has as many live streams open as one client may (server.live_max_per_client); close one first (retrying in 10 s)"; got != want {
		t.Errorf("live page refused: status %q, want %q", got, want)
	}
}

// A token the server stops taking (its live_token changed while the page was
// open; here a proxy swaps the stream's token) is refused with the server's
// own reason, and the tab forgets it, so that the upload page's Live link no
// longer carries it. The page said only "too many live streams open, or a
// wrong token", and kept the token for every page of the tab.
func TestBrowserLiveTokenRefusedLater(t *testing.T) {
	ts := stepServer(t, liveToken)
	front := behind(t, ts, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v1/live" {
			r.URL.RawQuery = "token=stale"
		}
		return false
	})
	w := startChromium(t)
	w.navigate(front + "/live?token=v13w")
	got := w.await(`const done = arguments[arguments.length - 1], s = document.getElementById("status");
		const check = () => { if (s.textContent.startsWith("refused")) { done(s.textContent + "|" + sessionStorage.getItem("captioner-live-token")); return true; } };
		if (!check()) new MutationObserver(check).observe(s, {childList: true, characterData: true, subtree: true});`)
	if want := "refused by the server: the token is not server.live_token: ask whoever runs the server for the viewer token (retrying in 10 s)|null"; got != want {
		t.Errorf("live page with a stale token: %q, want %q", got, want)
	}
	w.checkConsole("status of 401")
}

// The upload page shows each file the server could not caption beside the
// captions of the others.
func TestBrowserShowsEachBadFile(t *testing.T) {
	dir := t.TempDir()
	good, notes := filepath.Join(dir, "good.png"), filepath.Join(dir, "notes.png")
	if err := os.WriteFile(good, photoPNG(40, 30), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notes, []byte("hello, this is not a photo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := stepServer(t, nil)
	w := startChromium(t)
	w.navigate(ts.url + "/")
	chooseFiles(w, notes, good)
	got := w.await(`const done = arguments[arguments.length - 1];
		const results = document.getElementById("results"), e = document.getElementById("error");
		const check = () => {
			if (!e.hidden) { done("ERROR: " + e.firstChild.textContent); return true; }
			if (results.children.length < 2) return false;
			done([...results.children].map((c) =>
				c.classList.contains("failed") ? "failed: " + c.querySelector(".image-error").textContent
					: "caption: " + c.querySelector(".caption").textContent).join("\n") +
				"\n" + document.getElementById("status").textContent.replace(/[0-9]+ ms/, "N ms"));
			return true;
		};
		if (!check()) new MutationObserver(check).observe(document.body, {childList: true, subtree: true, attributes: true});`)
	want := "failed: unsupported image format: text, not an image; accepted formats are JPEG, PNG, GIF, BMP and WebP\n" +
		"caption: image -1 beam 3\n" +
		"done in N ms · 1 of 2 could not be captioned"
	if got != want {
		t.Errorf("upload page shows\n%s\nwant\n%s", got, want)
	}
	w.screenshot("upload-bad-file.png")
	w.checkConsole()
}

// noisePNG is a w×h PNG of random pixels, which do not compress.
func noisePNG(w, h int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// chooseFiles sets the upload page's file input to paths, as a user choosing
// them in the file picker (several: newline-separated).
func chooseFiles(w *webdriver, paths ...string) {
	w.call("POST", "/element/"+w.find("#file")+"/value", map[string]string{"text": strings.Join(paths, "\n")})
}

// readUpload returns, once the upload page says it is done (or shows an
// error), each card as "file: caption" or "file: why it failed", then the
// status line with its time as N ms.
func readUpload(w *webdriver) string {
	return w.await(`const done = arguments[arguments.length - 1];
		const e = document.getElementById("error"), s = document.getElementById("status");
		const check = () => {
			if (!e.hidden) { done("ERROR: " + e.firstChild.textContent); return true; }
			if (!s.textContent.startsWith("done")) return false;
			done([...document.getElementById("results").children].map((c) => c.querySelector(".filename").textContent + ": " +
				(c.classList.contains("failed") ? c.querySelector(".image-error").textContent : c.querySelector(".caption").textContent)).join("\n") +
				"\n" + s.textContent.replace(/[0-9]+ ms/, "N ms"));
			return true;
		};
		if (!check()) new MutationObserver(check).observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true});`)
}

// writeFiles writes each name's bytes into dir and returns the paths in order.
func writeFiles(t *testing.T, dir string, names []string, data func(name string) []byte) []string {
	var paths []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, data(n), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// More photos than one request may carry: the upload page reads the server's
// limits from /v1/models and sends them in as many requests as they need, the
// cards in the order chosen. The body limit here lets three photos through by
// their sizes alone but not with each part's headers and the other fields,
// which the page allows for: it sends two a request. A file larger than a
// request may be is not sent: its card says why in sizes, and the others are
// captioned. Then a limit the page cannot see (the images' decoded size)
// refuses a request of three; the page halves it until each goes alone.
func TestBrowserSplitsLargeUploads(t *testing.T) {
	dir := t.TempDir()
	photo := map[string][]byte{}
	for i, n := range []string{"a.png", "b.png", "c.png", "d.png"} {
		photo[n] = noisePNG(40, 36, uint64(i))
	}
	size := len(photo["a.png"])
	for _, b := range photo {
		size = max(size, len(b))
	}
	limit := int64(3*size + 200)
	photo["big.png"] = noisePNG(80, 80, 9) // past the body limit
	if int64(len(photo["big.png"])) <= limit {
		t.Fatalf("big.png is %d bytes, not past the limit of %d", len(photo["big.png"]), limit)
	}
	paths := writeFiles(t, dir, []string{"a.png", "b.png", "c.png", "big.png", "d.png"}, func(n string) []byte { return photo[n] })
	ts := stepServer(t, func(c *config.Config) { c.Server.MaxImages, c.Server.MaxBodyBytes, c.Server.MaxBeam = 3, limit, 5 })
	w := startChromium(t)
	w.navigate(ts.url + "/")
	// The option fields are bounded by what the server accepts.
	bounds := w.await(`const done = arguments[arguments.length - 1];
		models.then(() => done(["beam", "alternatives", "max_len"].map((id) => document.getElementById(id).max).join(" ")));`)
	if want := fmt.Sprintf("5 3 %d", config.MaxCaptionLen); bounds != want { // alternatives: at most the beam field's 3
		t.Errorf("beam, alternatives and max_len fields' max %q, want %q (server.max_beam 5, beam 3)", bounds, want)
	}
	chooseFiles(w, paths...)
	got := readUpload(w)
	want := "a.png: image 0 beam 3\nb.png: image 0 beam 3\nc.png: image 0 beam 3\n" +
		// big.png is not sent: the page knows the limit.
		fmt.Sprintf("big.png: big.png is %.0f KB; this server takes at most %.0f KB a photo\n", math.Round(float64(len(photo["big.png"]))/1024), math.Round(float64(limit-4096-512)/1024)) +
		"d.png: image 0 beam 3\n" +
		"done in N ms · 3 requests · 1 of 5 could not be captioned"
	if got != want {
		t.Errorf("upload page shows\n%s\nwant\n%s", got, want)
	}

	paths = writeFiles(t, dir, []string{"e.png", "f.png", "g.png"}, func(string) []byte { return photoPNG(400, 300) })
	// This server's beam is at most 2: the page brings its beam field (3) down to that.
	ts = stepServer(t, func(c *config.Config) {
		c.Image.MaxDecodedBytes, c.Image.MaxRequestDecodedBytes, c.Server.MaxBeam, c.Decode.Beam = 1<<20, 1<<20, 2, 2
	})
	w.navigate(ts.url + "/")
	chooseFiles(w, paths...)
	got = readUpload(w)
	// e, f and g refused together (past 1 MiB decoded), then e and f, and g.
	if want := "e.png: image 0 beam 2\nf.png: image 0 beam 2\ng.png: image 0 beam 2\ndone in N ms · 3 requests"; got != want {
		t.Errorf("upload past the decoded-size limit shows\n%s\nwant\n%s", got, want)
	}
	w.checkConsole("status of 413") // the refused groups of the second upload
}

// TestBrowserSplitsSlowUploads: on an uplink too slow for a request of all
// the photos to arrive within server.read_timeout (408), the page sends
// halves, as it does for 413, where it had given up on the whole upload.
func TestBrowserSplitsSlowUploads(t *testing.T) {
	dir := t.TempDir()
	paths := writeFiles(t, dir, []string{"a.png", "b.png", "c.png", "d.png"}, func(n string) []byte { return noisePNG(140, 140, uint64(n[0])) })
	ts := stepServer(t, func(c *config.Config) { c.Server.ReadTimeout = 3 * time.Second })
	w := startChromium(t)
	w.navigate(ts.url + "/")
	// 78 KB a photo at 80 KB/s: the four take 3.9 s, 30% past the 3 s the
	// server gives a body; two take 1.95 s, 35% within.
	w.call("POST", "/chromium/network_conditions", map[string]any{"network_conditions": map[string]any{
		"offline": false, "latency": 0, "download_throughput": 10 << 20, "upload_throughput": 80 << 10}})
	chooseFiles(w, paths...)
	got := readUpload(w)
	if want := "a.png: image 0 beam 3\nb.png: image 0 beam 3\nc.png: image 0 beam 3\nd.png: image 0 beam 3\ndone in N ms · 3 requests"; got != want {
		t.Errorf("upload on a slow uplink shows\n%s\nwant\n%s", got, want)
	}
	w.checkConsole("status of 408") // the request of all four
}

// A busy server (429) is asked again after its Retry-After: three tries, then
// the page says why it stopped, in words for people (the API's error names
// the Retry-After header); while the queue has room again, the retry
// captions the photo.
func TestBrowserRetriesWhenBusy(t *testing.T) {
	photo := filepath.Join(t.TempDir(), "p.png")
	if err := os.WriteFile(photo, photoPNG(40, 30), 0o644); err != nil {
		t.Fatal(err)
	}
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBatch = 1; c.Server.QueueSize = 1 })
	results := occupy(t, ts, m) // one image on the model, one queued: the queue is full
	w := startChromium(t)
	w.navigate(ts.url + "/")
	// Busy throughout: three tries a second apart, then the error.
	chooseFiles(w, photo)
	got := readUpload(w)
	if want := "ERROR: the server is busy captioning other photos: try again in a few seconds"; got != want {
		t.Fatalf("upload to a server busy throughout shows %q, want %q", got, want)
	}
	// Nothing came: the cards there were are not left dimmed as if an answer were on its way.
	if stale := w.await(`arguments[0](String(document.getElementById("results").classList.contains("stale")))`); stale != "false" {
		t.Errorf("after the upload stopped, the results are still marked stale")
	}
	if metrics := string(do(t, "GET", ts.url+"/metrics", "", nil).body); !strings.Contains(metrics, "captioner_queue_rejected_total 3\n") {
		t.Errorf("the page asked a busy server other than three times:\n%s", regexp.MustCompile(`(?m)^captioner_queue_rejected_total.*$`).FindString(metrics))
	}

	// Try again, busy at first, then room: the page waits, says so, and
	// asks again. The photo need not be chosen again.
	w.call("POST", "/element/"+w.find("#retry")+"/click", map[string]any{})
	busy := w.await(`const done = arguments[arguments.length - 1], s = document.getElementById("status"), e = document.getElementById("error");
		const check = () => {
			if (!e.hidden) { done("ERROR: " + e.firstChild.textContent); return true; }
			if (s.textContent.includes("busy")) { done(s.textContent); return true; }
		};
		if (!check()) new MutationObserver(check).observe(document.body, {childList: true, characterData: true, subtree: true, attributes: true});`)
	if !regexp.MustCompile(`^the server is busy; trying again in [0-9]+ s…$`).MatchString(busy) {
		t.Fatalf("status while the queue is full: %q", busy)
	}
	finish(t, m, results)
	<-m.entered // the page's request, asked again
	m.release <- struct{}{}
	if got, want := readUpload(w), "p.png: image -1 beam 3\ndone in N ms"; got != want {
		t.Errorf("after the retry the page shows %q, want %q", got, want)
	}
	w.checkConsole("status of 429") // the refused tries
}

// An option the server would refuse (a beam wider than server.max_beam)
// keeps the chosen photos: the page says which field and how to go on, and
// Try again sends them once it is fixed. Alternatives follow the beam down.
func TestBrowserKeepsPhotosOnABadOption(t *testing.T) {
	photo := filepath.Join(t.TempDir(), "p.png")
	if err := os.WriteFile(photo, photoPNG(40, 30), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := stepServer(t, func(c *config.Config) { c.Server.MaxBeam = 5 })
	w := startChromium(t)
	w.navigate(ts.url + "/")
	w.await(`models.then(() => { document.getElementById("beam").value = "9"; arguments[0]("set"); })`)
	chooseFiles(w, photo)
	got := awaitError(w, true, `e.firstChild.textContent + " | retry shown: " + !document.getElementById("retry").hidden`)
	if !regexp.MustCompile(`^Beam width: .+ Fix it, then try again\. \| retry shown: true$`).MatchString(got) {
		t.Fatalf("a beam past server.max_beam: the page says %q", got)
	}
	// Beam 1: alternatives (3) come down to 1, or the server would refuse them.
	alts := w.await(`const b = document.getElementById("beam");
		b.value = "1"; b.dispatchEvent(new Event("input"));
		arguments[0](document.getElementById("alternatives").value)`)
	if alts != "1" {
		t.Errorf("alternatives after beam 1: %s, want 1", alts)
	}
	w.call("POST", "/element/"+w.find("#retry")+"/click", map[string]any{})
	if got, want := readUpload(w), "p.png: image -1 beam 1\ndone in N ms"; got != want {
		t.Errorf("after fixing the beam, Try again shows %q, want %q", got, want)
	}
	w.checkConsole()
}

// A second upload while the first is still sending replaces it: the first's
// remaining requests are not sent, and only the second's cards show.
func TestBrowserSecondUploadReplacesFirst(t *testing.T) {
	dir := t.TempDir()
	first := writeFiles(t, dir, []string{"a1.png", "a2.png", "a3.png"}, func(string) []byte { return photoPNG(40, 30) })
	second := writeFiles(t, dir, []string{"b.png"}, func(string) []byte { return photoPNG(30, 40) })
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxImages = 1 })
	w := startChromium(t)
	w.navigate(ts.url + "/")
	chooseFiles(w, first...)
	<-m.entered // a1 is on the model, a2 and a3 wait in the page
	chooseFiles(w, second...)
	m.release <- struct{}{} // a1's batch; its answer goes nowhere
	<-m.entered             // b
	m.release <- struct{}{}
	got := readUpload(w)
	if want := "b.png: image -1 beam 3\ndone in N ms"; got != want {
		t.Errorf("after a second upload the page shows %q, want %q", got, want)
	}
	select {
	case ids := <-m.entered:
		t.Errorf("the first upload kept sending after the second replaced it (a batch of %v)", ids)
	case <-time.After(300 * time.Millisecond):
	}
	w.checkConsole()
}

// A second upload with an option the server would refuse does not stop the
// first, which was valid: the first's captions come, and the second's photos
// wait behind Try again. (It had aborted the first and left the page with a
// progress bar and dimmed cards for ever.)
func TestBrowserBadSecondUploadLeavesTheFirst(t *testing.T) {
	dir := t.TempDir()
	first := writeFiles(t, dir, []string{"a.png"}, func(string) []byte { return photoPNG(40, 30) })
	second := writeFiles(t, dir, []string{"b.png"}, func(string) []byte { return photoPNG(30, 40) })
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxBeam = 5 })
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000}) // a page that never gets there fails, not hangs
	w.navigate(ts.url + "/")
	chooseFiles(w, first...)
	<-m.entered // a is on the model
	w.await(`document.getElementById("beam").value = "9"; arguments[0]("set")`)
	chooseFiles(w, second...)
	awaitError(w, true, `"shown"`)
	select {
	case m.release <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the first upload's batch waits for nothing: was the upload aborted?")
	}
	// The error stays for the second: wait for the first's status.
	got := w.await(`const done = arguments[arguments.length - 1], s = document.getElementById("status");
		const check = () => {
			if (!s.textContent.startsWith("done")) return false;
			done([...document.getElementById("results").children].map((c) => c.querySelector(".filename").textContent + ": " +
				c.querySelector(".caption").textContent).join("\n") + "\n" + s.textContent.replace(/[0-9]+ ms/, "N ms"));
			return true;
		};
		if (!check()) new MutationObserver(check).observe(s, {childList: true, characterData: true, subtree: true});`)
	if want := "a.png: image -1 beam 3\ndone in N ms"; got != want {
		t.Errorf("the first upload, after a refused second: %q, want %q", got, want)
	}
	if got := w.await(`arguments[0](document.getElementById("progress").hidden + " " + document.getElementById("results").classList.contains("stale"))`); got != "true false" {
		t.Errorf("progress hidden, results dimmed: %q, want \"true false\"", got)
	}
	w.checkConsole()
}

// An upload stopped half-way (here by Cancel) keeps the cards it got, and Try
// again sends only the photos not yet answered, whose cards follow.
func TestBrowserTryAgainSendsTheRest(t *testing.T) {
	paths := writeFiles(t, t.TempDir(), []string{"a.png", "b.png", "c.png"}, func(string) []byte { return photoPNG(40, 30) })
	ts, m := blockedServer(t, func(c *config.Config) { c.Server.MaxImages = 1 })
	w := startChromium(t)
	w.call("POST", "/timeouts", map[string]int{"script": 15000})
	w.navigate(ts.url + "/")
	chooseFiles(w, paths...)
	<-m.entered // a
	m.release <- struct{}{}
	<-m.entered // b, when Cancel is pressed
	w.call("POST", "/element/"+w.find("#cancel")+"/click", map[string]any{})
	stopped := awaitError(w, true, `e.firstChild.textContent + " | " + document.getElementById("status").textContent`)
	if stopped != "cancelled | 1 of 3 images answered before this" {
		t.Errorf("after Cancel the page says %q", stopped)
	}
	m.release <- struct{}{} // b's batch; its answer goes nowhere
	w.call("POST", "/element/"+w.find("#retry")+"/click", map[string]any{})
	for range 2 { // b and c, again and at last
		<-m.entered
		m.release <- struct{}{}
	}
	if got, want := readUpload(w), "a.png: image -1 beam 3\nb.png: image -1 beam 3\nc.png: image -1 beam 3\ndone in N ms · 2 requests"; got != want {
		t.Errorf("after Try again the page shows %q, want %q", got, want)
	}
	w.checkConsole()
}

// With several models served, the upload page offers them, the default first
// and chosen; the one picked captions the upload (its name on the card and,
// for an attention model, words that show where they looked), and /live
// names the model of each caption.
func TestBrowserPicksAModel(t *testing.T) {
	photoPath := filepath.Join(testassets.Dir(t, "the browser uploads a real photo"), "samples", "flickr8k_fullres", "1000268201_693b08cb0e.jpg")
	cfg := pipelineConfig(t)
	cfg.Server.Models = []string{attentionModel(t)}
	ts := startServer(t, testConfig(t, nil), PipelineLoader(cfg))
	var version string
	for _, m := range do(t, "GET", ts.url+"/v1/models", "", nil).json["models"].([]any) {
		if m := m.(map[string]any); m["name"] == "attention-test" {
			version = m["version"].(string)
		}
	}
	w := startChromium(t)
	w.navigate(ts.url + "/")
	offered := w.await(`const done = arguments[arguments.length - 1], choice = document.getElementById("model-choice");
		const check = () => {
			if (choice.hidden) return false;
			const s = document.getElementById("model-select");
			done([...s.options].map((o) => o.textContent).join(", ") + " | " + s.value);
			return true;
		};
		if (!check()) new MutationObserver(check).observe(choice, {attributes: true});`)
	if want := "flickr8k-merge-lstm (default), attention-test | flickr8k-merge-lstm"; offered != want {
		t.Fatalf("model selector offers %q, want %q", offered, want)
	}
	w.await(`const s = document.getElementById("model-select");
		s.value = "attention-test";
		s.dispatchEvent(new Event("change"));
		arguments[0](document.getElementById("model").textContent)`)
	chooseFiles(w, photoPath)
	got := w.await(`const done = arguments[arguments.length - 1];
		const check = () => {
			const c = document.querySelector("#results .result"), e = document.getElementById("error");
			if (!e.hidden) { done("ERROR: " + e.firstChild.textContent); return true; }
			if (!c) return false;
			const meta = c.querySelectorAll(".muted");
			done(document.getElementById("model").textContent.split(" · ")[0] + " | " +
				meta[meta.length - 1].textContent.split(" · ").pop() + " | " + (c.querySelectorAll(".caption .word").length > 0));
			return true;
		};
		if (!check()) new MutationObserver(check).observe(document.body, {childList: true, subtree: true, attributes: true});`)
	if want := fmt.Sprintf("attention-test %s | attention-test %s | true", version, version); got != want {
		t.Errorf("upload page with attention-test chosen: %q, want %q (header, card, attention words)", got, want)
	}
	// A keyboard user reaches a word with Tab and sees its map while it has
	// the focus, as a mouse user does while over it.
	focus := w.await(`const span = document.querySelector("#results .caption .word"), canvas = document.querySelector("#results canvas.attention");
		span.focus();
		const on = span.tabIndex === 0 && document.activeElement === span && canvas.classList.contains("on");
		span.blur();
		arguments[0](on + " " + canvas.classList.contains("on"))`)
	if focus != "true false" {
		t.Errorf("a focused word shows its map, a blurred one hides it: got %q, want \"true false\"", focus)
	}
	// The caption is one Tab stop; the arrow keys go from word to word. The
	// photo's text alternative is the caption.
	keys := w.await(`const words = [...document.querySelectorAll("#results .caption .word")], img = document.querySelector("#results img");
		words[0].focus();
		words[0].dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true}));
		arguments[0](words.filter((w) => w.tabIndex === 0).length + " " + (document.activeElement === words[1]) + " " +
			(img.alt === document.querySelector("#results .caption").textContent))`)
	if keys != "1 true true" {
		t.Errorf("Tab stops among the words, ArrowRight to the second, alt text the caption: got %q, want \"1 true true\"", keys)
	}
	w.screenshot("upload-model-choice.png")

	// /live replays the caption to a new viewer, with the model that made it.
	w.navigate(ts.url + "/live")
	live := w.await(`const done = arguments[arguments.length - 1], feed = document.getElementById("feed");
		const check = () => {
			const li = feed.querySelector("li");
			if (li) { done(li.querySelector(".meta").textContent.split(" · ").slice(2).join(" · ")); return true; }
		};
		if (!check()) new MutationObserver(check).observe(feed, {childList: true});`)
	if want := "attention-test " + version; live != want {
		t.Errorf("live page names the model %q, want %q", live, want)
	}
	w.checkConsole()
}
