package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, in a registry of its own so that
// several servers (tests) can live in one process.
type metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec   // route, method, status
	latency         *prometheus.HistogramVec // route
	queueDepth      prometheus.GaugeFunc
	queueReserved   prometheus.GaugeFunc
	queueWait       prometheus.Histogram
	batchSize       prometheus.Histogram
	preprocess      prometheus.Histogram
	encode          prometheus.Histogram
	decode          prometheus.Histogram
	images          prometheus.Counter
	dropped         *prometheus.CounterVec // reason
	rejected        prometheus.Counter
	batchErrors     prometheus.Counter
	model           *prometheus.GaugeVec // model, version, device
	reloads         *prometheus.CounterVec
	liveViewers     prometheus.Gauge
	liveKicked      prometheus.Counter
	connsOpen       prometheus.Gauge
	connsRefused    prometheus.Counter
	connsIdleClosed prometheus.Counter

	rate imageRate
}

// batchSizeBuckets are the batch-size histogram's upper bounds (powers of two up to a GPU batch).
var batchSizeBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	durations := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "captioner_http_requests_total", Help: "HTTP requests by route, method (other: none of HTTP's own) and status (499: client went away).",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "captioner_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: durations,
	}, []string{"route"})
	m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "captioner_queue_depth", Help: "Images waiting for a batch.",
	}, func() float64 { return float64(s.depth(func(b *Batcher) int { return b.Depth() })) })
	m.queueReserved = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "captioner_queue_places_taken", Help: "Images admitted and not yet in a batch (being prepared or queued); at server.queue_size new requests get 429.",
	}, func() float64 { return float64(s.depth(func(b *Batcher) int { return b.Reserved() })) })
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "captioner_queue_wait_seconds", Help: "Time from an image's arrival in the queue to the start of its batch.", Buckets: durations,
	})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "captioner_batch_size", Help: "Images per computed batch.", Buckets: batchSizeBuckets,
	})
	m.preprocess = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "captioner_preprocess_seconds", Help: "Decoding and resizing time per image (one thread each), from the upload to the encoder's tensor.", Buckets: durations,
	})
	m.encode = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "captioner_encode_seconds", Help: "Encoder time per batch.", Buckets: durations,
	})
	m.decode = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "captioner_decode_seconds", Help: "Decoder time per batch (all option groups).", Buckets: durations,
	})
	m.images = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "captioner_images_captioned_total", Help: "Images captioned.",
	})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "captioner_images_dropped_total", Help: "Images the scheduler skipped, not computed, because their request had ended (deadline, client_gone) or a reload changed the encoder's input size while they waited (reloaded).",
	}, []string{"reason"})
	m.rejected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "captioner_queue_rejected_total", Help: "Requests refused with 429 because the queue was full.",
	})
	m.batchErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "captioner_batch_errors_total", Help: "Batches the model failed on.",
	})
	m.model = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "captioner_model_info", Help: "1 for each model serving now, with the device it runs on.",
	}, []string{"model", "version", "device"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "captioner_model_reloads_total", Help: "Hot reloads by result (ok, failed).",
	}, []string{"result"})
	m.liveViewers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "captioner_live_viewers", Help: "Open /live streams.",
	})
	m.liveKicked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "captioner_live_viewers_dropped_total", Help: "Live viewers disconnected because they fell behind.",
	})
	m.connsOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "captioner_connections_open", Help: "Open client connections; at server.max_connections new ones get 503.",
	})
	m.connsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "captioner_connections_refused_total", Help: "Connections answered 503 and closed because server.max_connections were open, all in requests.",
	})
	m.connsIdleClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "captioner_connections_idle_closed_total", Help: "Idle keep-alive connections closed to make room for a new one at server.max_connections.",
	})
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.queueDepth, m.queueReserved, m.queueWait, m.batchSize,
		m.preprocess, m.encode, m.decode, m.images, m.dropped, m.rejected, m.batchErrors, m.model, m.reloads,
		m.liveViewers, m.liveKicked, m.connsOpen, m.connsRefused, m.connsIdleClosed} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "captioner_images_per_second", Help: "Images captioned per second over the last 10 seconds.",
	}, func() float64 { return m.rate.perSecond(time.Now()) }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeBatch(st BatchStats) {
	m.dropped.WithLabelValues("deadline").Add(float64(st.Expired))
	m.dropped.WithLabelValues("client_gone").Add(float64(st.Cancelled))
	m.dropped.WithLabelValues("reloaded").Add(float64(st.Stale))
	if st.Size > 0 {
		m.batchSize.Observe(float64(st.Size))
		m.encode.Observe(st.Encode.Seconds())
		m.decode.Observe(st.Decode.Seconds())
		for _, w := range st.Waits {
			m.queueWait.Observe(w.Seconds())
		}
	}
	if st.Err != nil {
		m.batchErrors.Inc()
	} else {
		m.images.Add(float64(st.Size))
		m.rate.add(time.Now(), st.Size)
	}
}

// setModels records the models serving now, one series each.
func (m *metrics) setModels(infos []Info) {
	m.model.Reset()
	for _, i := range infos {
		m.model.WithLabelValues(i.Model, i.Version, i.Device).Set(1)
	}
}

// imageRate counts images in one-second slots over a sliding window.
type imageRate struct {
	mu    sync.Mutex
	slots [rateWindow]struct {
		sec int64
		n   int
	}
}

const rateWindow = 10 // seconds

func (r *imageRate) add(t time.Time, n int) {
	sec := t.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.slots[sec%rateWindow]
	if s.sec != sec {
		s.sec, s.n = sec, 0
	}
	s.n += n
}

// perSecond averages the last rateWindow complete and current seconds.
func (r *imageRate) perSecond(t time.Time) float64 {
	now := t.Unix()
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for _, s := range r.slots {
		if now-s.sec < rateWindow {
			total += s.n
		}
	}
	return float64(total) / rateWindow
}
