package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/captioner/captioner/internal/hostile"
)

// soakDuration reads a duration from the environment, def when unset.
func soakDuration(t *testing.T, key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v (want e.g. 2m)", key, v, err)
	}
	return d
}

// tally counts the answers one kind of client got.
type tally struct {
	mu     sync.Mutex
	status map[int]int
}

func (c *tally) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == nil {
		c.status = map[int]int{}
	}
	c.status[status]++
}

func (c *tally) get() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]int{}
	for k, v := range c.status {
		out[k] = v
	}
	return out
}

func count5xx(m map[int]int) int {
	n := 0
	for s, k := range m {
		if s >= 500 {
			n += k
		}
	}
	return n
}

// ordinaryClients run n clients captioning img one request after another until
// ctx ends, and return what they were answered (0: no answer at all).
func ordinaryClients(ctx context.Context, url string, n int, img []byte) *tally {
	var tl tally
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				tl.add(post(ctx, client, url, "image/jpeg", img))
			}
		})
	}
	go func() {
		wg.Wait()
		client.CloseIdleConnections()
	}()
	<-ctx.Done()
	wg.Wait()
	return &tl
}

// post sends one request and returns its status; 0 when it got none because
// ctx ended, -1 for any other transport failure.
func post(ctx context.Context, client *http.Client, url, ct string, body []byte) int {
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/captions", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The attackers connect from loopback addresses of their own, as from other
// machines: the server's per-client limits (a client address holds at most a
// quarter of server.max_upload_bytes) told them from the ordinary clients by
// nothing else, and answered those 503 when the soak shared 127.0.0.1 with the
// attack.
var (
	slowClientAddr = net.IPv4(127, 0, 0, 2)
	bombClientAddr = net.IPv4(127, 0, 0, 3)
)

// attackerDialer dials from ip.
func attackerDialer(ip net.IP) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
}

// slowClients keep n connections sending a request body at one byte a second,
// opening a new one whenever the server ends one, until ctx ends.
func slowClients(ctx context.Context, addr string, n int, answers *tally) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				slowRequest(ctx, addr, answers)
			}
		})
	}
	return &wg
}

func slowRequest(ctx context.Context, addr string, answers *tally) {
	conn, err := attackerDialer(slowClientAddr).DialContext(ctx, "tcp", addr)
	if err != nil {
		answers.add(-1)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fmt.Fprintf(conn, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n")
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			answers.add(resp.StatusCode)
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-answered:
			return
		case <-tick.C:
			if _, err := conn.Write([]byte{0xff}); err != nil {
				<-answered
				return
			}
		}
	}
}

// bombClients send, one request after another, the costliest images the
// default limits let through: a 16-bit RGBA PNG just under
// image.max_decoded_bytes and a progressive JPEG of MaxScans scans.
func bombClients(ctx context.Context, t *testing.T, url string, n int, answers *tally) *sync.WaitGroup {
	body, ct := multipartBody(t,
		part{"image", "bomb.png", hostile.ZeroPNG(5790, 5790, 16, 6)},        // 256 MiB decoded, 8 bytes a pixel
		part{"image", "scans.jpg", hostile.ProgressiveJPEG(1600, 1600, 500)}) // 500 passes over 2.6 MP
	img := readAll(body)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{DialContext: attackerDialer(bombClientAddr).DialContext}}
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				answers.add(post(ctx, client, url, ct, img))
			}
		})
	}
	return &wg
}

// TestSoakUnderAttack measures 16 ordinary clients alone, then beside 64
// clients trickling request bodies and 4 sending decode bombs: they must keep
// 70% of their throughput and get no 5xx, and the resident memory must come
// back within 20% of where it was before the attack. It takes minutes:
// `make soak` (SOAK_DURATION, default 2m, is the attack's length).
func TestSoakUnderAttack(t *testing.T) {
	if os.Getenv("CAPTIONER_SOAK") == "" {
		t.Skip("a soak of minutes: run it with CAPTIONER_SOAK=1 (make soak)")
	}
	TuneProcess() // as serve does: the resident memory measured is a server's
	attack := soakDuration(t, "CAPTIONER_SOAK_DURATION", 2*time.Minute)
	normal := soakDuration(t, "CAPTIONER_SOAK_BASELINE", 30*time.Second)
	ts := startServer(t, pipelineConfig(t), captionLoader(t))
	addr := strings.TrimPrefix(ts.url, "http://")
	img := photo(t, "samples/flickr8k_fullres/1000268201_693b08cb0e.jpg")

	run := func(d time.Duration) (float64, map[int]int) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		tl := ordinaryClients(ctx, ts.url, 16, img)
		got := tl.get()
		return float64(got[200]) / d.Seconds(), got
	}
	run(5 * time.Second) // warm-up: connections, allocator arenas
	baseRate, baseAnswers := run(normal)
	baseRSS, baseHeap := rssBytes(t)
	t.Logf("alone: %.1f captions/s over %s, answers %v; RSS %d MB (Go heap %d MB)", baseRate, normal, baseAnswers, baseRSS>>20, baseHeap>>20)

	ctx, cancel := context.WithTimeout(context.Background(), attack)
	var slowAnswers, bombAnswers tally
	slow := slowClients(ctx, addr, 64, &slowAnswers)
	bombs := bombClients(ctx, t, ts.url, 4, &bombAnswers)
	rate, answers := run(attack)
	cancel()
	slow.Wait()
	bombs.Wait()
	waitFor(t, "the attackers' requests to end", func() bool {
		return ts.uploads.used.Load() == 0 && ts.depth(func(b *Batcher) int { return b.Reserved() }) == 0 &&
			len(ts.prepSlots) == 0
	})
	rss, heap := rssBytes(t)
	t.Logf("under attack: %.1f captions/s over %s (%.0f%% of alone), answers %v", rate, attack, 100*rate/baseRate, answers)
	t.Logf("slow-body clients were answered %v; bomb clients %v", slowAnswers.get(), bombAnswers.get())
	t.Logf("RSS before the attack %d MB (Go heap %d MB), after %d MB (Go heap %d MB): %+.0f%%",
		baseRSS>>20, baseHeap>>20, rss>>20, heap>>20, 100*(float64(rss)/float64(baseRSS)-1))
	if rate < 0.7*baseRate {
		t.Errorf("ordinary clients got %.1f captions/s under attack, less than 70%% of %.1f alone", rate, baseRate)
	}
	if n := count5xx(answers) + count5xx(baseAnswers); n > 0 {
		t.Errorf("ordinary clients got %d answers of 5xx: %v alone, %v under attack", n, baseAnswers, answers)
	}
	if float64(rss) > 1.2*float64(baseRSS) {
		t.Errorf("RSS %d MB after the attack, more than 20%% above the %d MB before", rss>>20, baseRSS>>20)
	}
}
