package assets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/captioner/captioner/progress"
)

// StallTimeout is how long a download may go without receiving a byte (or
// its response headers) before it fails. A whole-download timeout would either
// cut a slow but moving download of the 1 GB dataset or leave a dead one
// hanging for minutes.
const StallTimeout = 15 * time.Second

// httpGet is the Store's default Fetch.
var httpGet = newHTTPGet(StallTimeout, http.ProxyFromEnvironment)

// newHTTPGet returns a Fetch through proxy that fails when the connection
// stalls for stall: while connecting, waiting for the headers, or between two
// reads of the body.
func newHTTPGet(stall time.Duration, proxy func(*http.Request) (*url.URL, error)) func(url string) (io.ReadCloser, error) {
	transport := &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: stall}).DialContext,
		TLSHandshakeTimeout:   stall,
		ResponseHeaderTimeout: stall,
	}
	return func(url string) (io.ReadCloser, error) {
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			return nil, err
		}
		// The transport's timeouts leave out a proxy's answer to CONNECT,
		// which it waits a minute for: each hop's headers must come within the
		// three phases' stalls (connecting, TLS, the response), counted
		// afresh at a redirect (the dataset's GitHub release has one).
		headers := time.AfterFunc(3*stall, cancel)
		client := &http.Client{Transport: transport, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 10 { // net/http's own limit
				return errors.New("stopped after 10 redirects")
			}
			headers.Reset(3 * stall)
			return nil
		}}
		resp, err := client.Do(req)
		if !headers.Stop() { // the request was cancelled: even a response is cut off
			if err == nil {
				resp.Body.Close()
			}
			cancel()
			return nil, fmt.Errorf("%w: no response within %s (through a proxy that does not answer?)", errStalled, 3*stall)
		}
		if err != nil {
			cancel()
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			cancel()
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
		b := &stallBody{body: resp.Body, size: resp.ContentLength, stall: stall, cancel: cancel}
		b.timer = time.AfterFunc(stall, b.expire)
		return b, nil
	}
}

// errStalled is the error a stalled download returns.
var errStalled = errors.New("the connection stalled")

// stallBody cancels its request when no byte arrives for stall.
type stallBody struct {
	body   io.ReadCloser
	size   int64 // Content-Length, -1 when unknown
	stall  time.Duration
	cancel context.CancelFunc
	timer  *time.Timer

	mu      sync.Mutex
	expired bool
}

func (b *stallBody) expire() {
	b.mu.Lock()
	b.expired = true
	b.mu.Unlock()
	b.cancel()
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		expired := b.expired
		b.mu.Unlock()
		if expired {
			return n, fmt.Errorf("%w: no data for %s", errStalled, b.stall)
		}
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	b.cancel()
	return b.body.Close()
}

// Size is the announced length of the download, -1 when unknown.
func (b *stallBody) Size() int64 { return b.size }

// get downloads url into w, drawing a progress bar on s.Log, labelled name.
func (s *Store) get(url, name string, w io.Writer) error {
	body, err := s.Fetch(url)
	if err != nil {
		return err
	}
	defer body.Close()
	if s.Log == nil {
		_, err = io.Copy(w, body)
		return err
	}
	total := int64(-1)
	if sz, ok := body.(interface{ Size() int64 }); ok {
		total = sz.Size()
	}
	bar := progress.New(s.Log, name, int(max(total, 0)>>10), "KiB")
	_, err = io.Copy(w, &barReader{r: body, bar: bar})
	bar.Finish()
	return err
}

// barReader counts what passes through it on a progress bar, in KiB.
type barReader struct {
	r    io.Reader
	bar  *progress.Bar
	part int // bytes not yet counted: less than a KiB
}

func (b *barReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.part += n
	b.bar.Add(b.part >> 10)
	b.part &= 1<<10 - 1
	return n, err
}
