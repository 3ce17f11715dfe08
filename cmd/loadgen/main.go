// Command loadgen measures captioning servers on this machine: throughput and
// latency percentiles at several client counts, the batch sizes captioner formed,
// and an overload check. It talks to loopback addresses only and stops by itself
// (each level is bounded in time and in requests).
//
//	captioner serve --addr 127.0.0.1:8080 &
//	python3 ../shared/bench/torch_captioner.py serve --port 5000 --threads 2 &
//	loadgen -target captioner=http://127.0.0.1:8080 -target flask=http://127.0.0.1:5000
//
// A target named flask (or any URL whose path ends in /caption) is driven as the
// seed-style server: POST /caption, multipart field "image". Every other target
// is captioner: POST /v1/captions, multipart field "image".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type target struct {
	name      string
	base      string // scheme://host:port
	path      string // the caption endpoint
	captioner bool   // has /metrics with the batch-size histogram
}

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }

func (t *targets) Set(v string) error {
	name, raw, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q: want NAME=URL, e.g. captioner=http://127.0.0.1:8080", v)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q: not a URL like http://127.0.0.1:8080", raw)
	}
	if err := loopbackOnly(u.Hostname()); err != nil {
		return err
	}
	tg := target{name: name, base: u.Scheme + "://" + u.Host, captioner: true, path: "/v1/captions"}
	if name == "flask" || strings.HasSuffix(u.Path, "/caption") {
		tg.captioner, tg.path = false, "/caption"
	}
	if u.RawQuery != "" { // request options, e.g. captioner=http://127.0.0.1:8080?beam=1
		tg.path += "?" + u.RawQuery
	}
	*t = append(*t, tg)
	return nil
}

// loopbackOnly refuses hosts that are not this machine: a load generator aimed
// at someone else's server is an attack.
func loopbackOnly(host string) error {
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not a loopback address; loadgen only drives servers on this machine", host, ip)
		}
	}
	return nil
}

func main() {
	var tgs targets
	flag.Var(&tgs, "target", "NAME=URL of a server to drive (repeatable); loopback only")
	photos := flag.String("photos", "", "folder of JPEG photos to send (default: $CAPTIONER_ASSETS/samples/flickr8k_fullres)")
	levels := flag.String("clients", "1,4,16,64", "concurrent clients, one level after another")
	rounds := flag.Int("rounds", 1, "run the levels this many times, every second round with the targets in reverse order, so that each target runs after a different one; ratios and CPU accounts are per round")
	duration := flag.Duration("duration", 10*time.Second, "how long each level runs")
	maxReq := flag.Int("max-requests", 2000, "stop a level after this many requests")
	warmup := flag.Int("warmup", 4, "requests sent before each target's first level, not measured")
	warmupFor := flag.Duration("warmup-for", 0, "then drive each target at the largest client count for this long, not measured: servers that prepare per batch size (PyTorch traced at its best) meet every size before the levels")
	overload := flag.Int("overload", 256, "clients for the captioner overload check (0: skip)")
	overloadFor := flag.Duration("overload-duration", 8*time.Second, "how long the overload check runs")
	startWait := flag.Duration("start-wait", time.Minute, "how long to wait for each target to caption a photo (its model loaded) before the warm-up")
	settle := flag.Duration("settle", 5*time.Second, "how long the server may take to return to its baseline after the overload")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	serverPIDs := pids{}
	flag.Var(serverPIDs, "pid", "NAME=PID of a target's server process (repeatable): adds its CPU-ms per request and the CPU account")
	var shares relatives
	flag.Var(&shares, "relative", "A=B: also print target A's requests/s as a share of target B's at each level and round (repeatable), e.g. the default model against another")
	flag.Parse()
	if len(tgs) == 0 {
		fatal(errors.New("no -target given; e.g. -target captioner=http://127.0.0.1:8080"))
	}
	if err := checkPIDs(serverPIDs, tgs); err != nil {
		fatal(err)
	}
	if err := shares.check(tgs); err != nil {
		fatal(err)
	}
	var counts []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-clients %q: want positive whole numbers separated by commas", *levels))
		}
		counts = append(counts, n)
	}
	if *rounds < 1 {
		fatal(fmt.Errorf("-rounds %d: want 1 or more", *rounds))
	}
	imgs, err := loadPhotos(*photos)
	if err != nil {
		fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}, Timeout: 2 * time.Minute}

	var report struct {
		Levels   []levelResult   `json:"levels"`
		Overload *overloadResult `json:"overload,omitempty"`
	}
	for _, tg := range tgs {
		if err := waitReady(client, tg, imgs[0], *startWait); err != nil {
			fatal(err)
		}
		for i := range *warmup {
			if _, err := send(client, tg, imgs[i%len(imgs)]); err != nil {
				fatal(fmt.Errorf("%s: warm-up request: %w", tg.name, err))
			}
		}
		if *warmupFor > 0 {
			runLevel(client, tg, imgs, slices.Max(counts), *warmupFor, math.MaxInt, 0)
		}
	}
	fmt.Printf("%-10s %7s %9s %9s %9s %9s %8s  %s\n", "target", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "batch sizes (captioner)")
	for _, run := range schedule(len(tgs), counts, *rounds) {
		if *rounds > 1 && run.first {
			fmt.Printf("round %d of %d\n", run.round, *rounds)
		}
		tg := tgs[run.target]
		r := runLevel(client, tg, imgs, run.clients, *duration, *maxReq, serverPIDs[tg.name])
		r.Round = run.round
		report.Levels = append(report.Levels, r)
		fmt.Printf("%-10s %7d %9.1f %9.1f %9.1f %9.1f %8d  %s\n", r.Target, r.Clients, r.Throughput,
			r.P50, r.P95, r.P99, r.Errors, r.batchString())
	}
	for _, line := range ratios(report.Levels, *rounds > 1) {
		fmt.Println(line)
	}
	for _, line := range shares.lines(report.Levels, *rounds > 1) {
		fmt.Println(line)
	}
	printAccounts(report.Levels, *rounds > 1)
	for _, tg := range tgs {
		if tg.captioner && *overload > 0 {
			o := runOverload(client, tg, imgs, *overload, *overloadFor, *settle)
			report.Overload = &o
			fmt.Printf("\noverload %s: %d clients for %s: statuses %v; goroutines %.0f -> %.0f (after %s), heap %.1f -> %.1f MB, RSS %.1f -> %.1f MB: %s\n",
				tg.name, *overload, *overloadFor, o.Statuses, o.GoroutinesBefore, o.GoroutinesAfter, o.Settled,
				o.HeapBefore/1e6, o.HeapAfter/1e6, o.RSSBefore/1e6, o.RSSAfter/1e6, o.Verdict)
			break
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			fatal(err)
		}
	}
	if report.Overload != nil && report.Overload.Verdict != "ok" {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(2)
}

type photo struct {
	name string
	data []byte
}

func loadPhotos(dir string) ([]photo, error) {
	if dir == "" {
		assets := os.Getenv("CAPTIONER_ASSETS")
		if assets == "" {
			return nil, errors.New("no -photos folder and CAPTIONER_ASSETS is not set")
		}
		dir = filepath.Join(assets, "samples", "flickr8k_fullres")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no *.jpg photos in %s", dir)
	}
	sort.Strings(paths)
	var out []photo
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, photo{filepath.Base(p), b})
	}
	return out, nil
}

// waitReady sends caption requests with the first photo until the target
// captions it: a server that listens before its model is loaded answers 503
// meanwhile, and a level started then would count those answers as its
// errors and its throughput. Any other answer but 200 is an error at once:
// the target is not a captioning endpoint or refuses the photo.
func waitReady(client *http.Client, tg target, p photo, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		status, err := send(client, tg, p)
		switch {
		case err == nil && status == http.StatusOK:
			return nil
		case err == nil && status != http.StatusServiceUnavailable:
			return fmt.Errorf("%s: %s answered %d to a caption request with %s, want 200: is it a captioning endpoint, and does it take that photo?", tg.name, tg.base+tg.path, status, p.name)
		case time.Now().After(deadline):
			if err == nil {
				err = fmt.Errorf("still answering %d (not ready)", status)
			}
			return fmt.Errorf("%s: no caption from %s after %s (is the server running and loading its model? see its log): %w", tg.name, tg.base+tg.path, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// send posts one photo and returns the HTTP status.
func send(client *http.Client, tg target, p photo) (int, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("image", p.name)
	fw.Write(p.data)
	w.Close()
	resp, err := client.Post(tg.base+tg.path, w.FormDataContentType(), &body)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

type levelResult struct {
	Target     string         `json:"target"`
	Round      int            `json:"round"` // 1, 2, ... (-rounds)
	Clients    int            `json:"clients"`
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"` // non-200 answers and transport errors
	Seconds    float64        `json:"seconds"`
	Start      float64        `json:"start_unix"`          // when the level began, in Unix seconds: to line it up with other samples
	Throughput float64        `json:"requests_per_second"` // 200s per second
	P50        float64        `json:"p50_ms"`
	P95        float64        `json:"p95_ms"`
	P99        float64        `json:"p99_ms"`
	Batches    map[string]int `json:"batch_sizes,omitempty"` // "<=le" -> batches
	captioner  bool
	CPUms      float64 `json:"cpu_ms_per_request,omitempty"` // the server's, with -pid
	Stages     *stages `json:"stages,omitempty"`             // captioner's
}

func (r levelResult) batchString() string {
	if r.Batches == nil {
		return ""
	}
	keys := make([]string, 0, len(r.Batches))
	for k := range r.Batches {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return leOf(keys[i]) < leOf(keys[j]) })
	var parts []string
	for _, k := range keys {
		if r.Batches[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, r.Batches[k]))
		}
	}
	return strings.Join(parts, " ")
}

func leOf(k string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimPrefix(k, "<="), 64)
	return f
}

// runLevel runs n closed-loop clients (each sends its next request when the
// previous one is answered) until d has passed or maxReq requests were sent.
// With the server's pid (0: unknown) it also measures the server's CPU time.
func runLevel(client *http.Client, tg target, imgs []photo, n int, d time.Duration, maxReq, pid int) levelResult {
	before := scrape(client, tg)
	cpu := startCPU(pid)
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs int
		sent int
	)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range n {
		wg.Go(func() {
			for i := c; ctx.Err() == nil; i += n {
				mu.Lock()
				if sent >= maxReq {
					mu.Unlock()
					return
				}
				sent++
				mu.Unlock()
				t0 := time.Now()
				status, err := send(client, tg, imgs[i%len(imgs)])
				lat := time.Since(t0)
				mu.Lock()
				if err != nil || status != http.StatusOK {
					errs++
				} else {
					lats = append(lats, lat)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	r := levelResult{Target: tg.name, Clients: n, Requests: sent, Errors: errs, Seconds: secs,
		Start: float64(start.UnixMicro()) / 1e6, Throughput: float64(len(lats)) / secs, captioner: tg.captioner}
	r.P50, r.P95, r.P99 = percentile(lats, 50), percentile(lats, 95), percentile(lats, 99)
	r.CPUms = cpu.perRequest(len(lats))
	if tg.captioner {
		after := scrape(client, tg)
		st := stagesBetween(before, after)
		r.Stages = &st
		r.Batches = map[string]int{}
		prev := 0.0
		// Buckets are cumulative: a batch of size s counts in every bucket le >= s.
		for _, le := range sortedBuckets(after) {
			cum := after[bucketKey(le)] - before[bucketKey(le)]
			r.Batches["<="+le] = int(cum - prev)
			prev = cum
		}
	}
	return r
}

func percentile(lats []time.Duration, p float64) float64 {
	if len(lats) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lats...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i].Microseconds()) / 1000
}

func bucketKey(le string) string { return `captioner_batch_size_bucket{le="` + le + `"}` }

func sortedBuckets(m map[string]float64) []string {
	var les []string
	for k := range m {
		if le, ok := strings.CutPrefix(k, `captioner_batch_size_bucket{le="`); ok {
			le = strings.TrimSuffix(le, `"}`)
			if le != "+Inf" {
				les = append(les, le)
			}
		}
	}
	sort.Slice(les, func(i, j int) bool { return leOf(les[i]) < leOf(les[j]) })
	return les
}

// scrape reads the target's /metrics into series -> value (unlabelled and
// labelled series alike, keyed by their text). Non-captioner targets have none.
func scrape(client *http.Client, tg target) map[string]float64 {
	out := map[string]float64{}
	if !tg.captioner {
		return out
	}
	resp, err := client.Get(tg.base + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// levelRun is one level of one target in the schedule: target is an index
// into the targets; first marks the round's first level.
type levelRun struct {
	round, clients, target int
	first                  bool
}

// schedule orders the levels: every client count in turn, each of the n
// targets at it one after another, so that they see the same machine
// conditions; then again for each further round, every second round with the
// targets in reverse order, so that each target runs after a different one
// (a server whose threads keep spinning after its level slows whichever comes
// next; rotating the order would keep every target after the same one).
func schedule(n int, counts []int, rounds int) []levelRun {
	var out []levelRun
	for round := 1; round <= rounds; round++ {
		for i, c := range counts {
			for j := range n {
				target := j
				if round%2 == 0 {
					target = n - 1 - j
				}
				out = append(out, levelRun{round: round, clients: c, target: target, first: i == 0 && j == 0})
			}
		}
	}
	return out
}

// relatives are -relative's pairs of target names: A's requests/s as a share
// of B's.
type relatives [][2]string

func (r *relatives) String() string { return fmt.Sprint(*r) }

func (r *relatives) Set(v string) error {
	a, b, ok := strings.Cut(v, "=")
	if !ok || a == "" || b == "" || a == b {
		return fmt.Errorf("%q: want A=B, two different targets' names, e.g. captioner=merge", v)
	}
	*r = append(*r, [2]string{a, b})
	return nil
}

// check returns an error naming the first name in r that no target has.
func (r relatives) check(tgs targets) error {
	for _, p := range r {
		for _, name := range p {
			if !slices.ContainsFunc(tgs, func(t target) bool { return t.name == name }) {
				return fmt.Errorf("-relative %s=%s: no -target is named %s", p[0], p[1], name)
			}
		}
	}
	return nil
}

// lines gives, for each pair and each level and round both ran, A's
// requests/s as a percentage of B's; each line names its round when perRound,
// and after the rounds a line per level gives the share over all of them.
func (r relatives) lines(levels []levelResult, perRound bool) []string {
	var out []string
	for _, p := range r {
		ps := pairs(levels, func(l levelResult) bool { return l.Target == p[0] }, func(l levelResult) bool { return l.Target == p[1] })
		for _, q := range ps {
			out = append(out, fmt.Sprintf("%s at %d clients%s: %.1f%% of %s's requests/s (%.1f vs %.1f)",
				q.a.Target, q.a.Clients, roundLabel(q.a.Round, perRound), 100*q.share(), q.b.Target, q.a.Throughput, q.b.Throughput))
		}
		for _, s := range acrossRounds(ps) {
			out = append(out, fmt.Sprintf("%s at %d clients over %d rounds: %.1f%% of %s's requests/s (rounds %.1f%%-%.1f%%)",
				s.a, s.clients, s.rounds, 100*s.share(), s.b, 100*s.min, 100*s.max))
		}
	}
	return out
}

// levelPair is a level of one target and the level of another that ran at
// the same client count in the same round.
type levelPair struct{ a, b levelResult }

// share is a's requests/s over b's.
func (q levelPair) share() float64 { return q.a.Throughput / q.b.Throughput }

// pairs matches every level that isA with each level that isB at the same
// client count in the same round, in the order of a's levels; a b level that
// served nothing has no share and is left out.
func pairs(levels []levelResult, isA, isB func(levelResult) bool) []levelPair {
	var out []levelPair
	for _, a := range levels {
		if !isA(a) {
			continue
		}
		for _, b := range levels {
			if isB(b) && b.Clients == a.Clients && b.Round == a.Round && b.Throughput != 0 {
				out = append(out, levelPair{a, b})
			}
		}
	}
	return out
}

// roundsShare is a pair of targets' share at one client count over every
// round both ran: a's requests/s over all its rounds (the requests answered
// 200 over the seconds they took: a level may end early at -max-requests)
// over b's, beside the least and the largest share of a single round.
type roundsShare struct {
	a, b              string
	clients, rounds   int
	servedA, secondsA float64
	servedB, secondsB float64
	min, max          float64
}

func (s roundsShare) share() float64 { return (s.servedA / s.secondsA) / (s.servedB / s.secondsB) }

// acrossRounds sums pairs by target pair and client count, in their first
// pair's order, for those that ran in more than one round: the machine's
// phases move a single round's share by several percent, their sum less.
func acrossRounds(ps []levelPair) []roundsShare {
	type key struct {
		a, b    string
		clients int
	}
	var all []roundsShare
	at := map[key]int{}
	for _, q := range ps {
		k := key{q.a.Target, q.b.Target, q.a.Clients}
		i, ok := at[k]
		if !ok {
			i, at[k] = len(all), len(all)
			all = append(all, roundsShare{a: k.a, b: k.b, clients: k.clients, min: q.share(), max: q.share()})
		}
		s := &all[i]
		s.rounds++
		s.servedA += q.a.Throughput * q.a.Seconds
		s.secondsA += q.a.Seconds
		s.servedB += q.b.Throughput * q.b.Seconds
		s.secondsB += q.b.Seconds
		s.min, s.max = min(s.min, q.share()), max(s.max, q.share())
	}
	return slices.DeleteFunc(all, func(s roundsShare) bool { return s.rounds < 2 })
}

// roundLabel names a level's round in a line of the summary when the levels
// ran in several rounds (perRound), and is empty otherwise.
func roundLabel(round int, perRound bool) string {
	if !perRound {
		return ""
	}
	return fmt.Sprintf(" (round %d)", round)
}

// ratios compares every target with each peer (the targets that are not
// captioner: the seed-style Flask server, PyTorch at its best) at the same
// client count in the same round, which each line names when perRound; after
// the rounds a line per level gives the ratio over all of them.
func ratios(levels []levelResult, perRound bool) []string {
	ps := pairs(levels, func(l levelResult) bool { return l.captioner }, func(l levelResult) bool { return !l.captioner })
	var out []string
	for _, q := range ps {
		out = append(out, fmt.Sprintf("%s vs %s at %d clients%s: %.2fx throughput, p99 %.0f ms vs %.0f ms",
			q.a.Target, q.b.Target, q.a.Clients, roundLabel(q.a.Round, perRound), q.share(), q.a.P99, q.b.P99))
	}
	for _, s := range acrossRounds(ps) {
		out = append(out, fmt.Sprintf("%s vs %s at %d clients over %d rounds: %.2fx throughput (rounds %.2fx-%.2fx)",
			s.a, s.b, s.clients, s.rounds, s.share(), s.min, s.max))
	}
	return out
}

type overloadResult struct {
	Clients          int           `json:"clients"`
	Statuses         map[int]int   `json:"statuses"`
	TransportErrors  int           `json:"transport_errors"`
	GoroutinesBefore float64       `json:"goroutines_before"`
	GoroutinesAfter  float64       `json:"goroutines_after"`
	HeapBefore       float64       `json:"heap_bytes_before"`
	HeapAfter        float64       `json:"heap_bytes_after"`
	RSSBefore        float64       `json:"rss_bytes_before"`
	RSSAfter         float64       `json:"rss_bytes_after"`
	Settled          time.Duration `json:"settled_ns"`
	Verdict          string        `json:"verdict"`
}

// runOverload sends far more concurrent requests than the queue holds, with no
// pause after a 429, then checks that only 200s and 429s came back and that the
// server's goroutines and heap return to their baseline.
func runOverload(client *http.Client, tg target, imgs []photo, n int, d, settle time.Duration) overloadResult {
	o := overloadResult{Clients: n, Statuses: map[int]int{}}
	client.CloseIdleConnections()
	before := scrape(client, tg)
	o.GoroutinesBefore, o.HeapBefore, o.RSSBefore = before["go_goroutines"], before["go_memstats_heap_alloc_bytes"], before["process_resident_memory_bytes"]
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range n {
		wg.Go(func() {
			for i := c; ctx.Err() == nil; i += n {
				status, err := send(client, tg, imgs[i%len(imgs)])
				mu.Lock()
				if err != nil {
					o.TransportErrors++
				} else {
					o.Statuses[status]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	client.CloseIdleConnections()
	// The server's heap and goroutines fall back once its connections close and a
	// GC runs; watch for that rather than waiting a fixed time.
	t0 := time.Now()
	for {
		after := scrape(client, tg)
		o.GoroutinesAfter, o.HeapAfter, o.RSSAfter = after["go_goroutines"], after["go_memstats_heap_alloc_bytes"], after["process_resident_memory_bytes"]
		o.Settled = time.Since(t0).Round(time.Millisecond)
		if o.GoroutinesAfter <= o.GoroutinesBefore+2 && o.HeapAfter <= o.HeapBefore*1.5+16e6 || time.Since(t0) > settle {
			break
		}
		time.Sleep(200 * time.Millisecond)
		client.CloseIdleConnections()
	}
	var problems []string
	for s, k := range o.Statuses {
		if s != http.StatusOK && s != http.StatusTooManyRequests {
			problems = append(problems, fmt.Sprintf("%d x status %d", k, s))
		}
	}
	if o.TransportErrors > 0 {
		problems = append(problems, fmt.Sprintf("%d transport errors", o.TransportErrors))
	}
	if o.GoroutinesAfter > o.GoroutinesBefore+2 {
		problems = append(problems, "goroutines did not return to the baseline")
	}
	if o.HeapAfter > o.HeapBefore*1.5+16e6 {
		problems = append(problems, "heap did not return to the baseline")
	}
	o.Verdict = "ok"
	if len(problems) > 0 {
		sort.Strings(problems)
		o.Verdict = "FAILED: " + strings.Join(problems, "; ")
	}
	return o
}
