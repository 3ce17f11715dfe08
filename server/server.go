// Package server is captioner's HTTP API: a Gin router in front of a dynamic
// batching queue that captions images on one encoder and one or several
// caption models, plus the upload page, the live page, Prometheus metrics,
// graceful shutdown and hot reload.
// The API is documented in openapi.json, served at /openapi.json.
package server

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/pipeline"
)

//go:embed openapi.json
var openAPISpec []byte

// Server is one captioning server. Create it with New, then Start loads the model
// and Serve answers requests on a listener.
type Server struct {
	cfg      config.Server
	decoding pipeline.Decoding // request options against decode.* and server.max_beam
	log      *slog.Logger
	load     Loader
	metrics  *metrics
	live     *hub
	// liveMode is server.live resolved (off, local, public or token); loopback is
	// whether server.addr is loopback-only, which decides what needs a token.
	liveMode string
	loopback bool
	router   *gin.Engine
	httpSrv  *http.Server
	conns    *connLimiter // server.max_connections

	// prepSlots bounds the images being decoded and preprocessed at once to
	// GOMAXPROCS. The decoding runs in C (libjpeg-turbo), and a goroutine in a C
	// call gives up its P, so Go's scheduler does not bound it: without the
	// bound, every upload in flight would be a thread competing with the
	// encoder's and the decoder's for the cores, however many arrive at once.
	prepSlots chan struct{}
	// heavySlots bounds the heavy images (heavyDecodeBytes) among them to half
	// the cores, at least one.
	heavySlots chan struct{}
	// heavyGarbage hands a heavy decode's memory back once it is garbage.
	heavyGarbage memoryReturner
	// maxRequestDecoded is image.max_request_decoded_bytes: what one request's
	// images may allocate together when decoded.
	maxRequestDecoded int64
	uploads           *uploadBudget // server.max_upload_bytes

	batcher atomic.Pointer[Batcher] // nil until Start has a warm model
	stopRun context.CancelFunc      // stops the batcher
	// startMu orders Start's installing the batcher and Shutdown: one that
	// comes during the load does not wait for it, and Start closes the model
	// it loaded after it (closing).
	startMu    sync.Mutex
	closing    bool
	cancelLoad context.CancelFunc // Start's, for Shutdown

	reloadMu sync.Mutex // one reload at a time

	// Tests set these before Start to wait on the queue's events instead of
	// polling its state: an image has been queued; a batch has been computed
	// or skipped.
	onQueued func()
	onBatch  func(BatchStats)
}

// New builds a server for cfg whose model comes from load. Nothing is loaded and
// nothing listens until Start and Serve.
func New(cfg *config.Config, load Loader, log *slog.Logger) *Server {
	s := &Server{
		cfg:               cfg.Server,
		decoding:          pipeline.NewDecoding(cfg.Decode, cfg.Server.MaxBeam),
		liveMode:          cfg.Server.LiveMode(),
		loopback:          cfg.Server.Loopback(),
		log:               log,
		load:              load,
		prepSlots:         make(chan struct{}, runtime.GOMAXPROCS(0)),
		heavySlots:        make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		maxRequestDecoded: cfg.Image.MaxRequestDecodedBytes,
		uploads:           newUploadBudget(cfg.Server.MaxUploadBytes, cfg.Server.MaxBodyBytes),
	}
	s.metrics = newMetrics(s)
	s.live = newHub(cfg.Server.LiveBuffer, cfg.Server.LiveMaxViewers, cfg.Server.LiveMaxPerClient, s.metrics)
	s.router = s.routes()
	s.conns = newConnLimiter(cfg.Server.MaxConnections, s.metrics, s.router)
	s.httpSrv = &http.Server{
		ConnState:         s.conns.connState,
		Handler:           s.router,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Live streams never end by themselves: Shutdown would wait for them until the
	// grace period is over. Ending them lets browsers reconnect elsewhere at once.
	s.httpSrv.RegisterOnShutdown(s.live.close)
	return s
}

// Handler is the server's router, for tests and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.router }

// Start loads and warms the model, then starts the batcher; /readyz answers 200
// from then on. It returns the load error, after which the server keeps
// answering 503 on the caption routes.
func (s *Server) Start(ctx context.Context) error {
	t0 := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.startMu.Lock()
	s.cancelLoad = cancel
	s.startMu.Unlock()
	m, err := s.loadWarm(ctx)
	s.startMu.Lock()
	defer s.startMu.Unlock()
	switch {
	case s.closing && err == nil:
		m.Close()
		fallthrough
	case s.closing:
		return ErrShutDown
	case err != nil:
		return err
	}
	b := NewBatcher(BatcherConfig{
		MaxBatch:  s.cfg.MaxBatch,
		MaxDelay:  s.cfg.MaxQueueDelay,
		QueueSize: s.cfg.QueueSize,
	}, m)
	b.observe = s.metrics.observeBatch
	if s.onBatch != nil {
		b.observe = func(st BatchStats) {
			s.metrics.observeBatch(st)
			s.onBatch(st)
		}
	}
	b.queued = s.onQueued
	runCtx, stop := context.WithCancel(context.Background())
	s.stopRun = stop
	go b.Run(runCtx)
	s.batcher.Store(b)
	infos := served(m)
	s.metrics.setModels(infos)
	// The precisions are logged because auto's pick depends on the CPU,
	// and bfloat16 changes about a tenth of the captions: an operator whose
	// machines caption a photo differently finds why here.
	s.log.Info("model ready", "model", infos[0].Model, "version", infos[0].Version, "device", infos[0].Device,
		"precision", infos[0].Precision, "decoder_precision", infos[0].DecoderPrecision, "precision_why", infos[0].PrecisionWhy, "also", also(infos), "load_and_warmup_ms", ms(time.Since(t0)))
	return nil
}

// also names, for logs, the models served beside the default: "name version, ...".
func also(infos []Info) string {
	var names []string
	for _, i := range infos[1:] {
		names = append(names, i.Model+" "+i.Version)
	}
	return strings.Join(names, ", ")
}

// loadWarm loads a model and runs it once at batch size 1 and at the largest
// batch size, decoding with each model it holds, so the first requests do not
// pay for allocation and page faults, and a model that cannot run is refused
// before it serves.
func (s *Server) loadWarm(ctx context.Context) (m Model, err error) {
	// A panic while loading (a model folder no check foresaw) fails this load
	// alone: a reload keeps the old models serving, where it would have ended
	// the process from SIGHUP's goroutine.
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("loading the models panicked", "panic", p, "stack", string(debug.Stack()))
			if m != nil { // it panicked warming up
				m.Close()
			}
			m, err = nil, fmt.Errorf("loading the models failed unexpectedly (%v); the log holds the details", p)
		}
	}()
	m, err = s.load(ctx)
	if err != nil {
		return nil, err
	}
	// The options of a request that sets none.
	o, err := s.decoding.Complete(Options{})
	if err == nil {
		err = warm(ctx, m, s.cfg.MaxBatch, o)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	// Loading leaves garbage the size of the model (the imported encoder
	// weights, file buffers), which the heap would keep resident until the
	// next collection: the server rested at 200 MB instead of 145.
	debug.FreeOSMemory()
	return m, nil
}

func warm(ctx context.Context, m Model, maxBatch int, o Options) error {
	blank := make([]float32, m.Preprocessor().TensorLen())
	for _, n := range []int{1, maxBatch} {
		in := make([][]float32, n)
		for i := range in {
			in[i] = blank
		}
		f, err := m.Encode(ctx, in)
		if err != nil {
			return fmt.Errorf("warm-up encode of %d images: %w", n, err)
		}
		for _, i := range served(m) {
			o.Model = i.Model
			if _, err := m.Decode(ctx, f, o); err != nil {
				return fmt.Errorf("warm-up decode of %d images with model %s: %w", n, i.Model, err)
			}
		}
	}
	return nil
}

// Serve answers requests on ln until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if !s.loopback && len(s.cfg.AllowedHosts) > 0 {
		// Not enforced beyond loopback: a probe or load balancer names the pod by its address.
		s.log.Warn("server.allowed_hosts does nothing here: it keeps DNS rebinding off a server listening on loopback, and server.addr is not; filter Host names at your proxy or load balancer",
			"addr", s.cfg.Addr, "allowed_hosts", s.cfg.AllowedHosts)
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "live", s.liveMode, "admin", s.adminAccess(),
		"max_connections", s.cfg.MaxConnections)
	if err := s.httpSrv.Serve(s.conns.listen(ln)); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// adminAccess says who may call the admin endpoints, for the start-up log.
func (s *Server) adminAccess() string {
	switch {
	case s.cfg.AdminToken != "":
		return "bearer token"
	case s.loopback:
		return "this machine (not through a proxy)"
	}
	return "nobody (server.admin_token is unset and server.addr is not loopback)"
}

// Shutdown stops accepting connections, lets every accepted request finish
// (their images stay queued and are captioned) until ctx ends, then stops the
// batcher and releases the model. Requests still waiting when ctx ends get 503.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.httpSrv.Shutdown(ctx)
	if err != nil {
		s.log.Warn("grace period over with requests still running; they get 503", "err", err)
	}
	// A load still running is not waited for: nothing was accepted for it,
	// and a model folder on a hung file system held a SIGTERM'd process until
	// it was killed. Start closes what it loads.
	s.startMu.Lock()
	s.closing = true
	if s.cancelLoad != nil {
		s.cancelLoad() // the warm-up stops at its next batch; the load reads on
	}
	s.startMu.Unlock()
	if b := s.batcher.Load(); b != nil {
		s.stopRun()
		if err != nil {
			b.Drain()
		}
		<-b.Stopped() // after the batch on the device, if any, has finished
		if cerr := b.Model().Close(); cerr != nil {
			s.log.Warn("closing the model", "err", cerr)
		}
	}
	if err != nil {
		// Every handler now has its answer (the batch on the device finished, the
		// queue was drained): give them a moment to write it, then cut what is left.
		ctx, cancel := context.WithTimeout(context.Background(), answerGrace)
		defer cancel()
		if s.httpSrv.Shutdown(ctx) != nil {
			s.httpSrv.Close()
		}
	}
	return err
}

// answerGrace is how long handlers get to write answers they already have once
// the grace period is over.
const answerGrace = 2 * time.Second

// ErrShutDown is Start's error when Shutdown came while the models loaded.
var ErrShutDown = errors.New("the server was shut down while the models loaded")

// ErrReloadRunning is returned by Reload while another reload is running.
var ErrReloadRunning = errors.New("a model reload is already running; wait for it to finish")

// Reload loads and warms the model, every one it holds, again (the configured
// folders, now holding new weights, say) while the old one keeps serving, then
// swaps them between batches. On failure the old model keeps serving and the
// error says why. The answer describes the default model.
func (s *Server) Reload(ctx context.Context) (Info, error) {
	if !s.reloadMu.TryLock() {
		return Info{}, ErrReloadRunning
	}
	defer s.reloadMu.Unlock()
	b := s.batcher.Load()
	if b == nil {
		return Info{}, errors.New("the server has no model yet (still starting, or its first load failed); see the logs")
	}
	cur := b.Model().Info()
	t0 := time.Now()
	m, err := s.loadWarm(ctx)
	if err != nil {
		s.metrics.reloads.WithLabelValues("failed").Inc()
		err = fmt.Errorf("reload failed, still serving %s version %s: %w", cur.Model, cur.Version, err)
		s.log.Error("reload", "err", err)
		return cur, err
	}
	old, err := b.Swap(m)
	if err != nil {
		m.Close()
		return cur, fmt.Errorf("reload: %w", err)
	}
	if err := old.Close(); err != nil {
		s.log.Warn("closing the replaced model", "err", err)
	}
	// The replaced model's weights and buffers are garbage now: handed back
	// at once, the server rests where a fresh start does (it rested at 212 MB
	// after a reload, 143 MB before).
	debug.FreeOSMemory()
	infos := served(m)
	s.metrics.setModels(infos)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.log.Info("model reloaded", "from", cur.Version, "to", infos[0].Version, "model", infos[0].Model,
		"also", also(infos), "took_ms", ms(time.Since(t0)))
	return infos[0], nil
}

// depth reads a queue measure, 0 before the batcher exists.
func (s *Server) depth(f func(*Batcher) int) int {
	if b := s.batcher.Load(); b != nil {
		return f(b)
	}
	return 0
}
