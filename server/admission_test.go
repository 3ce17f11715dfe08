package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/internal/hostile"
)

// slowUpload is a client on a raw connection that sends a request's headers
// with Expect: 100-continue and then as little of its body as it likes.
type slowUpload struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

// startSlowUpload sends the headers of a raw image upload announcing length
// body bytes and returns once the server's handler has started reading the
// body (it answers 100 Continue when it does).
func startSlowUpload(t *testing.T, url string, length int) *slowUpload {
	t.Helper()
	return startSlowUploadFrom(t, url, length, "")
}

// startSlowUploadFrom is startSlowUpload for the client a proxy names in
// X-Forwarded-For (none when empty).
func startSlowUploadFrom(t *testing.T, url string, length int, client string) *slowUpload {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	forwarded := ""
	if client != "" {
		forwarded = "X-Forwarded-For: " + client + "\r\n"
	}
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: x\r\n%sContent-Type: image/png\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", forwarded, length)
	u := &slowUpload{t: t, conn: conn, rd: bufio.NewReader(conn)}
	line, err := u.rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 Continue") {
		t.Fatalf("server answered %q (%v), want 100 Continue", line, err)
	}
	if line, _ := u.rd.ReadString('\n'); line != "\r\n" {
		t.Fatalf("after 100 Continue: %q", line)
	}
	return u
}

// answer reads the server's final answer.
func (u *slowUpload) answer() response {
	u.t.Helper()
	resp, err := http.ReadResponse(u.rd, nil)
	if err != nil {
		u.t.Fatalf("reading the answer to the slow upload: %v", err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	r.body, _ = io.ReadAll(resp.Body)
	json.Unmarshal(r.body, &r.json)
	return r
}

// A client trickling its body holds no queue place: with a queue of one image,
// others are captioned meanwhile, and the slow one is answered 408 once it
// falls below the minimum rate.
func TestSlowUploadHoldsNoQueuePlace(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.QueueSize = 1
		c.Server.MinUploadRate = 1024
	})
	slow := startSlowUpload(t, ts.url, 50_000) // within a minute (read_timeout) at the minimum rate
	slow.conn.Write(photoPNG(4, 3)[:10])
	for range 3 {
		if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(4, 3))); r.status != 200 {
			t.Fatalf("ordinary upload beside the slow one: %d %s, want 200", r.status, r.body)
		}
	}
	slow.answer().wantError(t, 408, "the request body arrived slower than the minimum of 1024 bytes/s (server.min_upload_rate): 10 bytes in ")
}

// A sender above the minimum rate cannot stretch reading past read_timeout;
// a body of declared length is cut sooner, once it falls behind the pace that
// brings all of it within read_timeout (it holds all of it in the budget).
func TestTrickleAboveMinimumRateEndsAtReadTimeout(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.MinUploadRate = 64
		c.Server.ReadTimeout = 2 * time.Second
	})
	trickle := func(slow *slowUpload, chunked bool) func() {
		stop := make(chan struct{})
		go func() { // 40 bytes every 100 ms: 400 bytes/s, well above the minimum
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					b := make([]byte, 40)
					if chunked {
						b = append(append([]byte("28\r\n"), b...), "\r\n"...)
					}
					if _, err := slow.conn.Write(b); err != nil {
						return
					}
				}
			}
		}()
		return func() { close(stop) }
	}
	// Chunked: no length is held, nothing to keep pace with.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunked := &slowUpload{t: t, conn: conn, rd: bufio.NewReader(conn)}
	stop := trickle(chunked, true)
	chunked.answer().wantError(t, 408, "the request body did not arrive within 2s (server.read_timeout)")
	stop()

	declared := startSlowUpload(t, ts.url, 100_000)
	stop = trickle(declared, false)
	defer stop()
	declared.answer().wantError(t, 408, "the request body arrived slower than 50000 bytes/s, the pace at which its declared 100000 bytes arrive within 2s (server.read_timeout)")
	waitFor(t, "the bodies' bytes to leave the budget", func() bool { return ts.uploads.used.Load() == 0 })
}

// A sender that sends fast and then stops is cut off after
// server.read_header_timeout with nothing, not at read_timeout: its bytes
// would hold the upload budget all that time.
func TestStalledUploadIsCutOff(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.MinUploadRate = 1024
		c.Server.ReadTimeout = time.Minute
		c.Server.ReadHeaderTimeout = 300 * time.Millisecond
	})
	slow := startSlowUpload(t, ts.url, 100_000)
	start := time.Now()
	slow.conn.Write(make([]byte, 50_000)) // enough, at 1 KB/s, for 49 s more
	slow.answer().wantError(t, 408, "the request body stopped arriving: nothing for 300ms (server.read_header_timeout) after 50000 bytes; send it without pauses")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cut off after %s, want about 300ms", took)
	}
	waitFor(t, "the stalled body's bytes to leave the budget", func() bool { return ts.uploads.used.Load() == 0 })
}

// Bodies held at once are bounded by server.max_upload_bytes.
func TestUploadBytesBudget(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.MaxBodyBytes = 64 << 10
		c.Server.MaxUploadBytes = 64 << 10
	})
	// One upload holds its declared 62 KB of the 64 KB from the moment the
	// server starts reading it, while it waits for the rest of its body: the
	// next upload of 8 KB cannot fit until the first is over.
	slow := startSlowUpload(t, ts.url, 62<<10)
	slow.conn.Write(make([]byte, 60<<10))
	waitFor(t, "the first body to be read", func() bool { return ts.uploads.used.Load() == 62<<10 })
	r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(make([]byte, 8<<10)))
	r.wantError(t, 503, "the server is receiving as much upload data as it holds at once (server.max_upload_bytes, 65536 bytes); retry in a moment")
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	slow.conn.Close()
	waitFor(t, "the first body to be released", func() bool { return ts.uploads.used.Load() == 0 })
	if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(4, 3))); r.status != 200 {
		t.Errorf("after the first upload ended: %d %s, want 200", r.status, r.body)
	}
}

// One client holds at most a quarter of server.max_upload_bytes (at least one
// largest body): another client's upload still fits while its own does not.
// Clients are told apart by X-Forwarded-For from a trusted proxy.
func TestUploadBudgetPerClient(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.MaxBodyBytes = 64 << 10
		c.Server.MaxUploadBytes = 1 << 20 // a quarter: 256 KiB
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	var held []*slowUpload
	for range 4 { // 4 x 63 KB declared by client 10.0.0.1, 252 KB: just under its share
		u := startSlowUploadFrom(t, ts.url, 63<<10, "10.0.0.1")
		u.conn.Write(make([]byte, 62<<10))
		held = append(held, u)
	}
	waitFor(t, "the client's bodies to be read", func() bool { return ts.uploads.used.Load() == 4*63<<10 })
	post := func(client string) response {
		req, _ := http.NewRequest("POST", ts.url+"/v1/captions", bytes.NewReader(make([]byte, 16<<10)))
		req.Header.Set("Content-Type", "image/png")
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := response{status: resp.StatusCode, header: resp.Header}
		r.body, _ = io.ReadAll(resp.Body)
		json.Unmarshal(r.body, &r.json)
		return r
	}
	post("10.0.0.1").wantError(t, 503, "this client is sending as much upload data as one client may hold at once (a quarter of server.max_upload_bytes, and at least server.max_body_bytes: 262144 bytes)")
	// Another client's upload is read: its zeros are no image.
	post("10.0.0.2").wantError(t, 415, "unsupported image format")
	for _, u := range held {
		u.conn.Close()
	}
	waitFor(t, "the bodies to be released", func() bool { return ts.uploads.used.Load() == 0 && ts.uploads.clients() == 0 })
}

// A body of declared length takes all of it from the budget before its first
// byte is read: of three parallel uploads from one client, two fit its share
// and are read whole, and the third is refused at once, before it is asked to
// send its body (no 100 Continue). Counted as the bytes arrived, all three
// held part of the share when it ran out, and all three were refused.
func TestUploadBudgetReservesDeclaredLength(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.MaxBodyBytes = 100 << 10
		c.Server.MaxUploadBytes = 1 << 20 // a quarter: 256 KiB
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	first := startSlowUploadFrom(t, ts.url, 100<<10, "10.0.0.1")
	second := startSlowUploadFrom(t, ts.url, 100<<10, "10.0.0.1")
	waitFor(t, "both declared lengths to be held", func() bool { return ts.uploads.used.Load() == 200<<10 })
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Type: image/png\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", 100<<10)
	third := &slowUpload{t: t, conn: conn, rd: bufio.NewReader(conn)}
	third.answer().wantError(t, 503, "this client is sending as much upload data as one client may hold at once (a quarter of server.max_upload_bytes, and at least server.max_body_bytes: 262144 bytes)")
	for _, u := range []*slowUpload{first, second} {
		u.conn.Write(make([]byte, 100<<10))
	}
	for _, u := range []*slowUpload{first, second} { // read whole: their zeros are no image
		u.answer().wantError(t, 415, "unsupported image format")
	}
	waitFor(t, "the bodies to be released", func() bool { return ts.uploads.used.Load() == 0 && ts.uploads.clients() == 0 })
}

// A raw upload's query options and its Content-Type are checked before a
// byte of its body is read: a client that asked to continue (Expect:
// 100-continue) gets the error instead of 100 Continue, and sends nothing.
func TestRefusedBeforeTheBodyIsSent(t *testing.T) {
	ts := stepServer(t, nil)
	for _, tc := range []struct{ query, contentType, want string }{
		{"?beam=99", "image/jpeg", "beam=99 is outside 1..8"},
		{"?model=nope", "image/jpeg", "model=\"nope\" is not served here"},
		{"", "text/plain", "Content-Type \"text/plain\" is not accepted"},
		{"", "image/jpeg\r\nContent-Encoding: gzip", "Content-Encoding \"gzip\" is not accepted: send the images as they are (JPEG, PNG and WebP are compressed already)"},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v1/captions%s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 50000\r\nExpect: 100-continue\r\n\r\n", tc.query, tc.contentType)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		u := &slowUpload{t: t, conn: conn, rd: bufio.NewReader(conn)}
		u.answer().wantError(t, map[bool]int{true: 415, false: 400}[tc.query == ""], tc.want) // not 100 Continue
		// The server closes the connection: the body it did not ask for must
		// not be read as the next request.
		if _, err := u.rd.ReadByte(); err != io.EOF {
			t.Errorf("%s %s: after the answer, read %v; want the connection closed (EOF)", tc.query, tc.contentType, err)
		}
		conn.Close()
	}
	// A client that sends its body without waiting (no Expect) gets the answer
	// after it, on a connection net/http keeps: closing under it as it sends
	// lost it the answer (connection reset by peer).
	r := do(t, "POST", ts.url+"/v1/captions?beam=99", "image/jpeg", bytes.NewReader(make([]byte, 4<<20)))
	r.wantError(t, 400, "beam=99 is outside 1..8")
}

// clients is how many client addresses hold upload bytes.
func (u *uploadBudget) clients() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.byClient)
}

// The decoding of a request's images together is budgeted from their headers,
// before any is decoded.
func TestRequestDecodeBudget(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) { c.Image.MaxRequestDecodedBytes = 100 << 20 })
	// Headers only: decoding them would fail, so a 413 shows nothing was decoded.
	big := pngHeader(4096, 4096) // RGBA: 64 MiB
	body, ct := multipartBody(t, part{"image", "a.png", big}, part{"image", "b.png", big})
	do(t, "POST", ts.url+"/v1/captions", ct, body).wantError(t, 413,
		"the images of this request decode to 128 MiB together, more than the limit of 100 MiB per request (image.max_request_decoded_bytes): send them in several requests, or smaller images")
	// One of them alone is within the budget, and gets decoded (and found truncated).
	_, err := testPreprocessor(50_000_000).Bytes(big)
	do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(big)).wantError(t, 400, strings.TrimPrefix(err.Error(), "imgproc: "))
	// The limit is exact: both at a limit of their 128 MiB pass the budget
	// (and are decoded); a byte less refuses them, said in bytes.
	for limit, want := range map[int64]string{
		128 << 20:   "", // decoded: each answered on its own
		128<<20 - 1: "the images of this request decode to 128 MiB together, more than the limit of 134217727 bytes per request",
	} {
		tl := stepServer(t, func(c *config.Config) { c.Image.MaxRequestDecodedBytes = limit })
		body, ct := multipartBody(t, part{"image", "a.png", big}, part{"image", "b.png", big})
		r := do(t, "POST", tl.url+"/v1/captions", ct, body)
		if want == "" {
			if r.status == 413 {
				t.Errorf("limit %d, exactly the images' cost: %d %s", limit, r.status, r.body)
			}
			continue
		}
		r.wantError(t, 413, want)
	}
}

// Several images: each bad one is reported in its place, the others are captioned.
func TestBadImagesReportedEachInItsPlace(t *testing.T) {
	ts := stepServer(t, nil)
	good := photoPNG(40, 30)
	trunc := good[:60]
	body, ct := multipartBody(t, part{"image", "good.png", good}, part{"image", "notes.txt", []byte("hello, this is not a photo\n")},
		part{"image", "huge.png", pngHeader(50000, 50000)}, part{"image", "cut.png", trunc}, part{"image", "good2.png", good})
	r := do(t, "POST", ts.url+"/v1/captions", ct, body)
	if r.status != 200 {
		t.Fatalf("status %d, want 200 when some images are good: %s", r.status, r.body)
	}
	_, truncErr := testPreprocessor(1_000_000).Bytes(trunc)
	caps := r.json["captions"].([]any)
	want := []string{
		`caption "image -1 beam 3"`,
		`{"error":"unsupported image format: text, not an image; accepted formats are JPEG, PNG, GIF, BMP and WebP","filename":"notes.txt","index":1,"status":415}`,
		`{"error":"image is 50000x50000 = 2500000000 pixels, more than the limit of 50000000; send a smaller image or raise image.max_pixels","filename":"huge.png","index":2,"status":413}`,
		fmt.Sprintf(`{"error":%q,"filename":"cut.png","index":3,"status":400}`, strings.TrimPrefix(truncErr.Error(), "imgproc: ")),
		`caption "image -1 beam 3"`,
	}
	if len(caps) != len(want) {
		t.Fatalf("%d entries, want %d: %s", len(caps), len(want), r.body)
	}
	for i, c := range caps {
		e := c.(map[string]any)
		got, _ := json.Marshal(e)
		if _, ok := e["caption"]; ok {
			got = []byte(fmt.Sprintf("caption %q", e["caption"]))
			if e["index"] != float64(i) {
				t.Errorf("entry %d has index %v", i, e["index"])
			}
		}
		if string(got) != want[i] {
			t.Errorf("entry %d: %s\nwant       %s", i, got, want[i])
		}
	}

	// When none is good, the first one's status, with every image's reason.
	body, ct = multipartBody(t, part{"image", "notes.txt", []byte("hello, this is not a photo\n")}, part{"image", "cut.png", trunc})
	r = do(t, "POST", ts.url+"/v1/captions", ct, body)
	r.wantError(t, 415,
		`none of the 2 images could be captioned: index 0 ("notes.txt"): unsupported image format: text, not an image; accepted formats are JPEG, PNG, GIF, BMP and WebP; index 1 ("cut.png"): `+strings.TrimPrefix(truncErr.Error(), "imgproc: "))
	// And each image's entry, as a 200 would have it.
	entries, _ := r.json["captions"].([]any)
	wantEntries := []map[string]any{
		{"index": 0.0, "filename": "notes.txt", "status": 415.0, "error": "unsupported image format: text, not an image; accepted formats are JPEG, PNG, GIF, BMP and WebP"},
		{"index": 1.0, "filename": "cut.png", "status": 400.0, "error": strings.TrimPrefix(truncErr.Error(), "imgproc: ")},
	}
	if len(entries) != len(wantEntries) {
		t.Fatalf("the error's captions: %v, want %d entries", r.json["captions"], len(wantEntries))
	}
	for i, e := range entries {
		if !reflect.DeepEqual(e, any(wantEntries[i])) {
			t.Errorf("the error's entry %d: %v, want %v", i, e, wantEntries[i])
		}
	}
}

// takeSlots takes every slot of sem until the test releases them.
func takeSlots(sem chan struct{}) (release func()) {
	for range cap(sem) {
		sem <- struct{}{}
	}
	return func() {
		for range cap(sem) {
			<-sem
		}
	}
}

// A client that half-closes its connection once it has sent the request
// (HTTP/1.0 clients may) cannot be told from one that left: the connection is
// dropped, with no answer, where net/http had answered 200 with no body.
func TestHalfClosedClientGetsNoEmptyAnswer(t *testing.T) {
	ts := stepServer(t, nil)
	release := takeSlots(ts.prepSlots) // the request waits for a decode slot
	defer release()
	photo := photoPNG(4, 3)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.0\r\nHost: %s\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n%s",
		strings.TrimPrefix(ts.url, "http://"), len(photo), photo)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(conn)
	if len(answer) != 0 {
		t.Errorf("answered %q, want the connection dropped", answer)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reading the answer: %v, want EOF or a reset", err)
	}
	waitFor(t, "the request to be counted as 499", func() bool {
		return gaugeValue(ts.metrics.requests.WithLabelValues("/v1/captions", "POST", "499")) == 1
	})
}

// The wait for a decode slot ends with the request: its deadline is answered
// 504 while the slots are still taken, and a client that leaves has nothing
// decoded.
func TestDecodeSlotWaitHonoursTheRequest(t *testing.T) {
	ts := stepServer(t, nil)
	release := takeSlots(ts.prepSlots)
	do(t, "POST", ts.url+"/v1/captions?timeout_ms=100", "image/png", bytes.NewReader(photoPNG(4, 3))).
		wantError(t, 504, "no caption within the request's deadline of 100ms")

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/captions", bytes.NewReader(photoPNG(4, 3)))
	req.Header.Set("Content-Type", "image/png")
	done := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	waitFor(t, "the request to wait for a slot", func() bool { return ts.uploads.used.Load() > 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
	waitFor(t, "the handler to end", func() bool {
		return gaugeValue(ts.metrics.requests.WithLabelValues("/v1/captions", "POST", "499")) == 1
	})
	release()
	if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(4, 3))); r.status != 200 {
		t.Fatalf("after the slots were freed: %d %s", r.status, r.body)
	}
	<-ts.queued // the last request's image
	select {
	case <-ts.queued:
		t.Fatal("an image of a request that had ended was queued")
	default:
	}
}

// Heavy images share heavySlots: ordinary ones are decoded while every heavy
// slot is taken, a heavy one waits (here, past its deadline).
func TestHeavyImagesLeaveSlotsForOrdinaryOnes(t *testing.T) {
	ts := stepServer(t, nil)
	release := takeSlots(ts.heavySlots)
	defer release()
	if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(40, 30))); r.status != 200 {
		t.Fatalf("ordinary image while the heavy slots are taken: %d %s", r.status, r.body)
	}
	heavy := pngHeader(4200, 4200) // 67 MiB decoded: over heavyDecodeBytes
	do(t, "POST", ts.url+"/v1/captions?timeout_ms=100", "image/png", bytes.NewReader(heavy)).
		wantError(t, 504, "no caption within the request's deadline of 100ms")
}

// A progressive JPEG of more than heavyScans scans is heavy, whatever its
// size: it waits for a heavy slot like a large photo does.
func TestManyScanJPEGIsHeavy(t *testing.T) {
	ts := stepServer(t, nil)
	release := takeSlots(ts.heavySlots)
	defer release()
	do(t, "POST", ts.url+"/v1/captions?timeout_ms=100", "image/jpeg", bytes.NewReader(hostile.ProgressiveJPEG(64, 48, heavyScans+1))).
		wantError(t, 504, "no caption within the request's deadline of 100ms")
}

// The budgets admit an upload that fills them exactly: the whole total, a
// client's whole share, not a byte more.
func TestUploadBudgetIsExact(t *testing.T) {
	u := newUploadBudget(100, 100) // a client's share: max(100/4, 100) = 100
	if err := u.take("a", 100); err != nil {
		t.Errorf("100 bytes of 100: %v", err)
	}
	if err := u.take("b", 1); err == nil {
		t.Error("one byte past the total was admitted")
	}
	u = newUploadBudget(400, 10) // a client's share: 100
	if err := u.take("a", 100); err != nil {
		t.Errorf("a client's whole share: %v", err)
	}
	if err := u.take("a", 1); err == nil {
		t.Error("one byte past a client's share was admitted")
	}
}

// An ended request takes no decode slot, even when a slot is free at once
// (select picks at random among ready cases: 64 tries), and leaves the slot free.
func TestEndedRequestTakesNoSlot(t *testing.T) {
	sem := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 64 {
		if release, err := acquire(ctx, sem); err == nil {
			release()
			t.Fatal("an ended request took a decode slot")
		}
		if len(sem) != 0 {
			t.Fatal("an ended request left a decode slot taken")
		}
	}
}

// A chunked body, which declares no length, holds the upload budget for
// every byte read, its last read's too (a hold one read behind had let
// chunked uploads pass server.max_upload_bytes).
func TestChunkedUploadHoldsWhatItSent(t *testing.T) {
	ts := stepServer(t, func(c *config.Config) {
		c.Server.ReadTimeout = time.Minute
		c.Server.ReadHeaderTimeout = 20 * time.Second
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", 10_000)
	conn.Write(make([]byte, 10_000))
	conn.Write([]byte("\r\n"))
	waitFor(t, "the 10,000 bytes sent to be held", func() bool { return ts.uploads.used.Load() == 10_000 })
	conn.Close()
	waitFor(t, "the body's bytes to leave the budget", func() bool { return ts.uploads.used.Load() == 0 })
}

// An option's form field holds at most 64 bytes; one longer is refused by
// name, not cut to a value the client never sent.
func TestLongOptionFieldIsRefused(t *testing.T) {
	ts := stepServer(t, nil)
	for _, n := range []int{65, 70} {
		body, ct := multipartBody(t, part{"image", "a.png", photoPNG(4, 3)}, part{"model", "", []byte(strings.Repeat("m", n))})
		do(t, "POST", ts.url+"/v1/captions", ct, body).wantError(t, 400, `form field "model" is longer than 64 bytes`)
	}
	// 64 bytes is a value: here a model that is not served.
	body, ct := multipartBody(t, part{"image", "a.png", photoPNG(4, 3)}, part{"model", "", []byte(strings.Repeat("m", 64))})
	r := do(t, "POST", ts.url+"/v1/captions", ct, body)
	if msg, _ := r.json["error"].(string); r.status != 400 || strings.Contains(msg, "longer than") || !strings.Contains(msg, strings.Repeat("m", 64)) {
		t.Errorf("a 64-byte model name: %d %s", r.status, r.body)
	}
}
