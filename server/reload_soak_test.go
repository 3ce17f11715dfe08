package server

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// rssBytes is the process's resident set size, after the Go heap has handed
// back what it can, so that what remains above the heap is native memory.
func rssBytes(t *testing.T) (rss, heap uint64) {
	t.Helper()
	// Twice: sync.Pool keeps what it held through one collection (its victim
	// cache), so one collection counts pooled buffers as if they were live.
	debug.FreeOSMemory()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status (%v): RSS is measured on Linux only", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return kb << 10, ms.HeapInuse
		}
	}
	t.Fatal("/proc/self/status has no VmRSS line")
	return 0, 0
}

// TestReloadsKeepRSSFlat reloads the real model 100 times through POST
// /admin/reload, captioning an image after each, and checks that the resident
// memory after the 100th reload is within 20% of that after the first. Native
// memory freed on Close (oneDNN plans in several malloc arenas) used to stay
// with the process: 169 MB grew to 362 MB. It takes minutes: `make soak-reload`.
func TestReloadsKeepRSSFlat(t *testing.T) {
	if os.Getenv("CAPTIONER_SOAK") == "" {
		t.Skip("a soak of minutes: run it with CAPTIONER_SOAK=1 (make soak-reload)")
	}
	TuneProcess() // as serve does: the resident memory measured is a server's
	const reloads = 100
	ts := startServer(t, pipelineConfig(t), captionLoader(t))
	img := photoPNG(320, 240)
	var firstRSS, firstHeap uint64
	for i := 1; i <= reloads; i++ {
		if r := do(t, "POST", ts.url+"/admin/reload", "", nil); r.status != 200 {
			t.Fatalf("reload %d: %d %s", i, r.status, r.body)
		}
		if r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(img)); r.status != 200 {
			t.Fatalf("caption after reload %d: %d %s", i, r.status, r.body)
		}
		if i == 1 {
			firstRSS, firstHeap = rssBytes(t)
		}
	}
	rss, heap := rssBytes(t)
	t.Logf("after 1 reload: RSS %d MB (Go heap %d MB); after %d: RSS %d MB (Go heap %d MB)",
		firstRSS>>20, firstHeap>>20, reloads, rss>>20, heap>>20)
	if float64(rss) > 1.2*float64(firstRSS) {
		t.Errorf("RSS grew from %d MB after 1 reload to %d MB after %d, more than 20%%", firstRSS>>20, rss>>20, reloads)
	}
}
