package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/server"
)

// echoModel captions instantly: these tests check the load generator's
// bookkeeping, not the model.
type echoModel struct{}

func (echoModel) Encode(_ context.Context, t [][]float32) ([][]float32, error) {
	f := make([][]float32, len(t))
	for i := range f {
		f[i] = []float32{0}
	}
	return f, nil
}

func (echoModel) Decode(_ context.Context, f [][]float32, o server.Options) ([]server.Result, error) {
	out := make([]server.Result, len(f))
	for i := range out {
		out[i] = server.Result{Caption: "a photo", Alternatives: []server.Alternative{{Caption: "a photo"}}}
	}
	return out, nil
}

// Preprocessor makes 8x8 tensors: the model ignores them, and the server sizes
// its tensors by the model's encoder.
func (echoModel) Preprocessor() pipeline.Preprocessor {
	return pipeline.NewPreprocessor(encoder.Config{Input: 8}, config.Image{MaxPixels: 50_000_000, MaxDecodedBytes: 1 << 30})
}

func (echoModel) Info() server.Info { return server.Info{Model: "echo", Version: "1", Device: "none"} }
func (echoModel) Close() error      { return nil }

func startCaptioner(t *testing.T) target {
	cfg, err := config.Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.QueueSize = 8
	s := server.New(cfg, func(context.Context) (server.Model, error) { return echoModel{}, nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	var tg targets
	if err := tg.Set("captioner=http://" + ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	return tg[0]
}

func testPhotos() []photo {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 16, 16)))
	return []photo{{"a.png", b.Bytes()}}
}

func TestLevelCountsRequestsAndBatches(t *testing.T) {
	tg := startCaptioner(t)
	client := &http.Client{}
	batches := scrape(client, tg)["captioner_batch_size_count"]
	// The server runs in this process: its pid is ours.
	r := runLevel(client, tg, testPhotos(), 4, time.Minute, 40, os.Getpid())
	batches = scrape(client, tg)["captioner_batch_size_count"] - batches
	if r.Requests != 40 || r.Errors != 0 || r.Throughput <= 0 {
		t.Fatalf("level %+v, want 40 requests, no errors, a throughput", r)
	}
	// 40 requests through a real HTTP stack cost CPU time, and well under a
	// CPU-second each.
	if !(r.CPUms > 0 && r.CPUms < 1000) {
		t.Errorf("CPU-ms per request %v, want in (0, 1000)", r.CPUms)
	}
	if r.Stages == nil || !(r.Stages.Preprocess > 0) || r.Stages.Encode < 0 || r.Stages.Decode < 0 {
		t.Errorf("stages %+v: want a positive preprocessing time per image from the server's metrics", r.Stages)
	}
	if !(r.P50 <= r.P95 && r.P95 <= r.P99 && r.P50 > 0) {
		t.Errorf("percentiles p50 %v p95 %v p99 %v are not ordered", r.P50, r.P95, r.P99)
	}
	images, counted := 0, 0
	for k, n := range r.Batches {
		// Each batch holds at most le images; at least 40 images over all batches
		// means the histogram delta was read (and de-cumulated) correctly.
		images += n * int(leOf(k))
		counted += n
		if math.IsInf(leOf(k), 0) {
			t.Errorf("batch sizes %v have a +Inf bucket, which only repeats the largest", r.Batches)
		}
	}
	if images < 40 {
		t.Errorf("batch sizes %v hold fewer than the 40 images sent", r.Batches)
	}
	// De-cumulated, each batch is counted in one bucket: as many as the server made.
	if counted != int(batches) {
		t.Errorf("batch sizes %v count %d batches, the server made %v", r.Batches, counted, batches)
	}
}

// percentile is the nearest rank below: p% of the way from the fastest to
// the slowest, in milliseconds to the microsecond.
func TestPercentile(t *testing.T) {
	var lats []time.Duration
	for i := range 100 { // 1.5, 2.5, ... 100.5 ms, in no order
		lats = append(lats, time.Duration((i*37)%100+1)*time.Millisecond+500*time.Microsecond)
	}
	for p, want := range map[float64]float64{0: 1.5, 50: 50.5, 95: 95.5, 99: 99.5, 100: 100.5} {
		if got := percentile(lats, p); got != want {
			t.Errorf("percentile(1.5 ... 100.5 ms, %v) = %v ms, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile of no latencies = %v, want 0", got)
	}
}

// A level's figures from a server that answers its first 10 requests 500 and
// takes 100 ms over its last 4: 90 answered, the errors not in the
// throughput, and only p99 (rank 88 of 90) among the slow ones.
func TestLevelStatistics(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		if k > 96 {
			time.Sleep(100 * time.Millisecond)
		}
		if k <= 10 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	var tg targets
	if err := tg.Set("flask=" + srv.URL); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	r := runLevel(srv.Client(), tg[0], testPhotos(), 1, time.Minute, 100, 0)
	wall := time.Since(before)
	if r.Requests != 100 || r.Errors != 10 || r.Throughput != 90/r.Seconds {
		t.Errorf("level %+v: want 100 requests, 10 errors, 90 answers over %v s", r, r.Seconds)
	}
	if r.Seconds <= 0.4 || r.Seconds > wall.Seconds() {
		t.Errorf("level took %v s, want over the 0.4 s of the slow answers and at most the %v s runLevel took", r.Seconds, wall.Seconds())
	}
	if start := time.Unix(0, int64(r.Start*1e9)); start.Before(before.Add(-time.Millisecond)) || start.After(before.Add(wall)) {
		t.Errorf("level started at %v, want between %v and %v", start, before, before.Add(wall))
	}
	if !(r.P50 < 100 && r.P95 < 100 && r.P99 >= 100) {
		t.Errorf("p50 %v, p95 %v, p99 %v ms; want only p99 at 100 ms or more", r.P50, r.P95, r.P99)
	}
}

func TestBatchString(t *testing.T) {
	r := levelResult{Batches: map[string]int{"<=1": 3, "<=2": 0, "<=16": 1, "<=4": 2}}
	if got, want := r.batchString(), "<=1:3 <=4:2 <=16:1"; got != want {
		t.Errorf("batchString() = %q, want %q (by size, empty buckets left out)", got, want)
	}
}

// Stage times per image from two scrapes of captioner's /metrics: 20 images
// in 5 batches took 1 s to prepare, 2 s to encode and 0.5 s to decode.
func TestStagesBetween(t *testing.T) {
	before := map[string]float64{
		"captioner_preprocess_seconds_sum": 1, "captioner_preprocess_seconds_count": 10,
		"captioner_encode_seconds_sum": 3, "captioner_encode_seconds_count": 2,
		"captioner_decode_seconds_sum": 4, "captioner_images_captioned_total": 10,
	}
	after := map[string]float64{
		"captioner_preprocess_seconds_sum": 2, "captioner_preprocess_seconds_count": 30,
		"captioner_encode_seconds_sum": 5, "captioner_encode_seconds_count": 7,
		"captioner_decode_seconds_sum": 4.5, "captioner_images_captioned_total": 30,
	}
	if got, want := stagesBetween(before, after), (stages{Preprocess: 50, Encode: 100, Decode: 25}); got != want {
		t.Errorf("stagesBetween = %+v ms per image, want %+v", got, want)
	}
	if got := stagesBetween(before, before); got != (stages{}) {
		t.Errorf("stagesBetween with no images = %+v, want zeros", got)
	}
}

func TestOverloadCheckPasses(t *testing.T) {
	tg := startCaptioner(t)
	o := runOverload(&http.Client{}, tg, testPhotos(), 32, time.Second, 10*time.Second)
	if o.Verdict != "ok" {
		t.Fatalf("overload verdict %q (%+v)", o.Verdict, o)
	}
	if o.Statuses[200] == 0 {
		t.Errorf("no request succeeded under overload: %v", o.Statuses)
	}
}

// The overload verdict from a scripted captioner: statuses other than 200 and
// 429 fail it, and so do more than 2 goroutines or more than 1.5 times the
// heap plus 16 MB after the overload than before it (10 goroutines and 100 MB).
func TestOverloadVerdict(t *testing.T) {
	for _, c := range []struct {
		answers []int
		after   string // /metrics after the overload
		want    string // %d: the count of 400s
	}{
		{[]int{200, 429}, "go_goroutines 12\ngo_memstats_heap_alloc_bytes 1.66e+08\n", "ok"},
		{[]int{200, 429, 400}, "go_goroutines 13\ngo_memstats_heap_alloc_bytes 1.6600001e+08\n",
			"FAILED: %d x status 400; goroutines did not return to the baseline; heap did not return to the baseline"},
	} {
		var mu sync.Mutex
		scrapes, sent := 0, 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if r.URL.Path == "/metrics" {
				scrapes++
				if scrapes == 1 {
					io.WriteString(w, "# TYPE go_goroutines gauge\ngo_goroutines 10\ngo_memstats_heap_alloc_bytes 1e+08\n")
				} else {
					io.WriteString(w, c.after)
				}
				return
			}
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(c.answers[sent%len(c.answers)])
			sent++
		}))
		var tg targets
		if err := tg.Set("captioner=" + srv.URL); err != nil {
			t.Fatal(err)
		}
		o := runOverload(srv.Client(), tg[0], testPhotos(), 2, 200*time.Millisecond, 0)
		srv.Close()
		want := c.want
		if strings.Contains(want, "%d") {
			want = fmt.Sprintf(want, o.Statuses[400])
		}
		if o.Verdict != want || o.Statuses[200] == 0 || o.Statuses[429] == 0 {
			t.Errorf("answers %v, then %q: verdict %q (statuses %v), want %q", c.answers, c.after, o.Verdict, o.Statuses, want)
		}
	}
}

func TestTargetsAreLoopbackOnly(t *testing.T) {
	var tg targets
	if err := tg.Set("x=http://10.1.2.3:8080"); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("non-loopback target: %v", err)
	}
	if err := tg.Set("flask=http://127.0.0.1:5000"); err != nil || tg[0].path != "/caption" || tg[0].captioner {
		t.Errorf("flask target %+v, %v", tg, err)
	}
	if err := tg.Set("captioner=http://127.0.0.1:8080?beam=1"); err != nil || tg[1].path != "/v1/captions?beam=1" || !tg[1].captioner {
		t.Errorf("captioner target with options %+v, %v", tg, err)
	}
}

func TestPIDFlag(t *testing.T) {
	p := pids{}
	if err := p.Set(fmt.Sprintf("captioner=%d", os.Getpid())); err != nil || p["captioner"] != os.Getpid() {
		t.Fatalf("Set own pid: %v, %v", err, p)
	}
	for v, want := range map[string]string{
		"captioner":         `want NAME=PID`,
		"captioner=x":       `want NAME=PID`,
		"captioner=0":       `want NAME=PID`,
		"captioner=9999999": `reading process 9999999's CPU time`,
	} {
		if err := p.Set(v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%q) = %v, want an error containing %q", v, err, want)
		}
	}
}

func TestPIDsNameTargets(t *testing.T) {
	var tg targets
	if err := tg.Set("captioner=http://127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	if err := checkPIDs(pids{"captioner": 1}, tg); err != nil {
		t.Errorf("a -pid of a target: %v", err)
	}
	if err := checkPIDs(pids{"flask": 7}, tg); err == nil || err.Error() != "-pid flask=7: no -target is named flask" {
		t.Errorf("a -pid of no target: %v", err)
	}
	// A process that ended before the level reports no CPU figure.
	if m := startCPU(1 << 30); m.pid != 0 || m.perRequest(10) != 0 {
		t.Errorf("meter of a missing process %+v reports %v CPU-ms", m, m.perRequest(10))
	}
}

// cpuSeconds agrees with getrusage, the kernel's other account of the same
// time, to within its 10 ms ticks, after work that is in good part system time
// (reading /proc), so that leaving out stime (or reading another field) shows.
func TestCPUSecondsCountsWork(t *testing.T) {
	rusage := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	stime := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Stime.Nano())
	}
	for s0 := stime(); stime()-s0 < 100*time.Millisecond; {
		if _, err := os.ReadFile("/proc/self/stat"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cpuSeconds(os.Getpid())
	want := rusage()
	if err != nil || got > want+0.001 || got < want-0.03 {
		t.Errorf("cpuSeconds = %v s, %v; getrusage says %v s", got, err, want)
	}
}

// perRequest is the server's CPU milliseconds per answered request: 2 CPU
// seconds (and the little this test adds) over 1,000 answers is 2 ms each.
func TestPerRequestIsMilliseconds(t *testing.T) {
	now, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	m := cpuMeter{pid: os.Getpid(), start: now - 2}
	if got := m.perRequest(1000); got < 2 || got > 2.1 {
		t.Errorf("perRequest(1000) after 2 CPU-s = %v, want 2 ms", got)
	}
}

// waitReady waits through a loading server's 503s for its first caption, and
// stops at once at any other refusal.
func TestWaitReadyWaitsForACaption(t *testing.T) {
	var mu sync.Mutex // the handler runs on the server's goroutines
	answers := []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK}
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(answers[min(got, len(answers)-1)])
		got++
	}))
	defer srv.Close()
	var tg targets
	if err := tg.Set("loading=" + srv.URL + "/caption"); err != nil {
		t.Fatal(err)
	}
	if err := waitReady(srv.Client(), tg[0], testPhotos()[0], time.Minute); err != nil || got != 3 {
		t.Fatalf("waitReady: %v after %d requests, want nil after 3 (two 503s, then 200)", err, got)
	}

	mu.Lock()
	answers, got = []int{http.StatusNotFound}, 0
	mu.Unlock()
	err := waitReady(srv.Client(), tg[0], testPhotos()[0], time.Minute)
	want := "loading: " + srv.URL + "/caption answered 404 to a caption request with a.png, want 200: is it a captioning endpoint, and does it take that photo?"
	if err == nil || err.Error() != want || got != 1 {
		t.Fatalf("waitReady against a 404: %v after %d requests, want %q after 1", err, got, want)
	}

	mu.Lock()
	answers, got = []int{http.StatusServiceUnavailable}, 0
	mu.Unlock()
	err = waitReady(srv.Client(), tg[0], testPhotos()[0], 0)
	want = "loading: no caption from " + srv.URL + "/caption after 0s (is the server running and loading its model? see its log): still answering 503 (not ready)"
	if err == nil || err.Error() != want {
		t.Fatalf("waitReady never ready: %v, want %q", err, want)
	}
}

func TestScheduleReversesTargetsEveryOtherRound(t *testing.T) {
	got := schedule(3, []int{1, 16}, 3)
	var order []int
	for _, r := range got {
		order = append(order, r.round*1000+r.clients*10+r.target)
	}
	want := []int{
		1010, 1011, 1012, 1160, 1161, 1162, // round 1: targets 0, 1, 2 at each level
		2012, 2011, 2010, 2162, 2161, 2160, // round 2: reversed, so each follows another
		3010, 3011, 3012, 3160, 3161, 3162,
	}
	if !slices.Equal(order, want) {
		t.Fatalf("schedule = %v, want %v", order, want)
	}
	for i, r := range got {
		if r.first != (i%6 == 0) {
			t.Errorf("run %d (%+v): first = %v", i, r, r.first)
		}
	}
}

func TestRatiosCompareWithinARound(t *testing.T) {
	levels := []levelResult{
		{Target: "captioner", Round: 1, Clients: 16, Throughput: 200, Seconds: 10, P99: 100, captioner: true},
		{Target: "flask", Round: 1, Clients: 16, Throughput: 25, Seconds: 10, P99: 800},
		{Target: "flask", Round: 1, Clients: 64, Throughput: 20, Seconds: 10, P99: 900},
		{Target: "captioner", Round: 2, Clients: 16, Throughput: 180, Seconds: 10, P99: 110, captioner: true},
		{Target: "flask", Round: 2, Clients: 16, Throughput: 30, Seconds: 10, P99: 700},
	}
	want := []string{
		"captioner vs flask at 16 clients (round 1): 8.00x throughput, p99 100 ms vs 800 ms",
		"captioner vs flask at 16 clients (round 2): 6.00x throughput, p99 110 ms vs 700 ms",
		"captioner vs flask at 16 clients over 2 rounds: 6.91x throughput (rounds 6.00x-8.00x)", // 380 / 55
	}
	if got := ratios(levels, true); !slices.Equal(got, want) {
		t.Errorf("ratios =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := ratios(levels[:2], false); len(got) != 1 || got[0] != "captioner vs flask at 16 clients: 8.00x throughput, p99 100 ms vs 800 ms" {
		t.Errorf("one round: ratios = %q", got)
	}
}

func TestRelativeSharesPerLevelAndRound(t *testing.T) {
	var r relatives
	if err := r.Set("captioner=merge"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"captioner", "=merge", "merge=merge"} {
		if err := r.Set(bad); err == nil {
			t.Errorf("-relative %q: no error", bad)
		}
	}
	if err := r.check(targets{{name: "captioner"}}); err == nil || !strings.Contains(err.Error(), "no -target is named merge") {
		t.Errorf("check without a merge target: %v", err)
	}
	levels := []levelResult{
		{Target: "captioner", Round: 1, Clients: 16, Throughput: 180, Seconds: 10},
		{Target: "merge", Round: 1, Clients: 16, Throughput: 200, Seconds: 10},
		{Target: "merge", Round: 1, Clients: 64, Throughput: 210, Seconds: 10},
		{Target: "merge", Round: 2, Clients: 16, Throughput: 190, Seconds: 10},
		{Target: "captioner", Round: 2, Clients: 16, Throughput: 171, Seconds: 10},
		{Target: "captioner", Round: 3, Clients: 16, Throughput: 200, Seconds: 5}, // ended early at -max-requests
		{Target: "merge", Round: 3, Clients: 16, Throughput: 250, Seconds: 10},
		{Target: "captioner", Round: 3, Clients: 64, Throughput: 150, Seconds: 10}, // merge served nothing at 64 this round
		{Target: "merge", Round: 3, Clients: 64, Throughput: 0, Seconds: 10},
	}
	want := []string{
		"captioner at 16 clients (round 1): 90.0% of merge's requests/s (180.0 vs 200.0)",
		"captioner at 16 clients (round 2): 90.0% of merge's requests/s (171.0 vs 190.0)",
		"captioner at 16 clients (round 3): 80.0% of merge's requests/s (200.0 vs 250.0)",
		// 4,510 requests in 25 s against 6,400 in 30 s: 180.4 against 213.3 requests/s
		"captioner at 16 clients over 3 rounds: 84.6% of merge's requests/s (rounds 80.0%-90.0%)",
	}
	if got := r.lines(levels, true); !slices.Equal(got, want) {
		t.Errorf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
