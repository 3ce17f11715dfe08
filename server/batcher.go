package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The batcher follows ollama's scheduler (server/sched.go): each job carries its
// own context and a buffered reply channel, admission is a non-blocking send on a
// bounded channel, and one goroutine owns the model (and so the device, which is
// not safe for concurrent use), forms batches and skips jobs whose context ended.
// A model whose encoder and decoder have devices of their own (Overlapper) runs
// as a two-stage pipeline: batch k+1 encodes while batch k decodes.

// ErrQueueFull is returned by Submit when the bounded queue has no room.
var ErrQueueFull = errors.New("server: the caption queue is full")

// ErrStopped is returned for jobs submitted to, or still queued in, a stopped batcher.
var ErrStopped = errors.New("server: the caption queue has stopped (the server is shutting down)")

// ErrReloaded is returned for a job prepared for the model before a reload
// whose encoder takes images of another size: its tensor fits no encoder now.
var ErrReloaded = errors.New("server: the models were reloaded with an encoder of another input size while the image waited")

// job is one image waiting for its caption.
type job struct {
	ctx     context.Context
	arrived time.Time
	input   []float32 // the Model's Preprocessor tensor
	opts    Options
	reply   chan reply // capacity 1: the scheduler never blocks on a reply
}

type reply struct {
	res Captioned
	err error
}

// BatcherConfig sizes the queue and the batches.
type BatcherConfig struct {
	MaxBatch  int           // largest batch given to the model
	MaxDelay  time.Duration // longest the oldest queued job waits for a batch to fill (while images are on their way)
	QueueSize int           // images that may be prepared or wait; one more is refused with ErrQueueFull
}

// Batcher queues images and captions them in batches on one model.
type Batcher struct {
	cfg   BatcherConfig
	queue chan *job

	model  atomic.Pointer[modelBox] // read by the scheduler; swapped between batches
	swapCh chan swapReq

	// now and after are the clock; tests replace them to control batch timing.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	// observe, when set, is told about every computed batch (metrics, tests).
	observe func(BatchStats)
	// queued, when set, is told each time Submit has queued an image (tests).
	queued func()

	// places counts reserved places: images being prepared plus images queued.
	places atomic.Int64
	// released wakes a scheduler waiting for reserved images (Run's fill)
	// when Release gives places back: the images it waited for will not come,
	// and without the wake it waited out MaxDelay for them.
	released chan struct{}

	// batchTime is the last batch's duration in nanoseconds, for Retry-After.
	batchTime atomic.Int64

	stopped  chan struct{} // closed when Run returns
	stopOnce sync.Once
}

// modelBox lets the atomic pointer hold an interface value.
type modelBox struct{ m Model }

type swapReq struct {
	m    Model
	done chan Model // receives the model that was replaced
}

// BatchStats describes one computed batch.
type BatchStats struct {
	Size      int             // jobs computed
	Expired   int             // jobs skipped because their deadline had passed
	Cancelled int             // jobs skipped because their client had gone
	Stale     int             // jobs skipped because a reload changed the encoder's input size (ErrReloaded)
	Groups    int             // distinct Options, the model included, among the computed jobs (Decode calls)
	Waits     []time.Duration // queue wait of each computed job, arrival to batch start
	Encode    time.Duration
	Decode    time.Duration
	Err       error
}

// NewBatcher returns a batcher for m; call Run to start it.
func NewBatcher(cfg BatcherConfig, m Model) *Batcher {
	if cfg.MaxBatch <= 0 || cfg.QueueSize <= 0 || cfg.MaxDelay <= 0 {
		panic(fmt.Sprintf("server: bad batcher config %+v: MaxBatch, QueueSize and MaxDelay must be positive", cfg))
	}
	b := &Batcher{
		cfg:      cfg,
		queue:    make(chan *job, cfg.QueueSize),
		swapCh:   make(chan swapReq),
		now:      time.Now,
		after:    time.After,
		stopped:  make(chan struct{}),
		released: make(chan struct{}, 1),
	}
	b.model.Store(&modelBox{m})
	return b
}

// Model returns the model that the next batch will use.
func (b *Batcher) Model() Model { return b.model.Load().m }

// Depth is the number of jobs waiting in the queue.
func (b *Batcher) Depth() int { return len(b.queue) }

// Reserved is the number of places taken: images being prepared or queued.
func (b *Batcher) Reserved() int { return int(b.places.Load()) }

// RetryAfter estimates how long until the queue has room: the time to compute
// the batches ahead, at least one second (the Retry-After header's resolution).
func (b *Batcher) RetryAfter() time.Duration {
	batches := (b.Reserved() + b.cfg.MaxBatch - 1) / b.cfg.MaxBatch
	d := time.Duration(batches) * time.Duration(b.batchTime.Load())
	return max(d.Round(time.Second), time.Second)
}

// Reserve holds n places in the queue for images a handler is about to prepare,
// or returns ErrQueueFull at once. Holding the place before decoding means a
// full server refuses a request before spending CPU and memory on its images.
// Places are given back by Submit (the image takes it) or Release.
func (b *Batcher) Reserve(n int) error {
	select {
	case <-b.stopped:
		return ErrStopped
	default:
	}
	for {
		p := b.places.Load()
		if p+int64(n) > int64(b.cfg.QueueSize) {
			return ErrQueueFull
		}
		if b.places.CompareAndSwap(p, p+int64(n)) {
			return nil
		}
	}
}

// Release gives back n reserved places that will not be submitted, and wakes
// the scheduler if it waits for them.
func (b *Batcher) Release(n int) {
	b.places.Add(-int64(n))
	select {
	case b.released <- struct{}{}:
	default: // a wake is pending already
	}
}

// Submit queues one image into a place held with Reserve and returns the
// channel its reply arrives on. When ctx ends before the job reaches a batch,
// the job is skipped without being computed. After ErrStopped the place is
// still the caller's to Release.
func (b *Batcher) Submit(ctx context.Context, input []float32, opts Options) (<-chan reply, error) {
	select {
	case <-b.stopped:
		return nil, ErrStopped
	default:
	}
	j := &job{ctx: ctx, arrived: b.now(), input: input, opts: opts, reply: make(chan reply, 1)}
	select {
	case b.queue <- j:
		if b.queued != nil {
			b.queued()
		}
		return j.reply, nil
	default:
		panic("server: Submit without a place reserved: the queue is fuller than its reservations")
	}
}

// take is the scheduler receiving j: its place in the queue is free again.
func (b *Batcher) take(j *job) *job {
	b.places.Add(-1)
	return j
}

// Wait returns the reply from ch, or the reason it will not come: ctx ended
// (context.DeadlineExceeded or context.Canceled) or the batcher stopped.
func (b *Batcher) Wait(ctx context.Context, ch <-chan reply) (Captioned, error) {
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return Captioned{}, ctx.Err()
	case <-b.stopped:
		// A reply sent just before the stop still counts.
		select {
		case r := <-ch:
			return r.res, r.err
		default:
			return Captioned{}, ErrStopped
		}
	}
}

// Swap makes m the model for the next batch and returns the one it replaces,
// once no batch uses that one any more (the caller closes it). It blocks until
// the scheduler is between batches, or returns ErrStopped.
func (b *Batcher) Swap(m Model) (Model, error) {
	req := swapReq{m: m, done: make(chan Model, 1)}
	select {
	case b.swapCh <- req:
		return <-req.done, nil
	case <-b.stopped:
		return nil, ErrStopped
	}
}

// Stopped is closed once Run has returned.
func (b *Batcher) Stopped() <-chan struct{} { return b.stopped }

// Run is the scheduler loop. It returns when ctx ends, answering every job still
// queued with ErrStopped. The caller stops admission (the HTTP server) first and
// cancels ctx once everything accepted has been answered, or the grace period is over.
func (b *Batcher) Run(ctx context.Context) {
	defer b.stop()
	// A model that overlaps (see Overlapper) decodes each batch on a second
	// goroutine while this one encodes the next; the channel is unbuffered, so the
	// encoder runs at most one batch ahead. Every batch handed over is finished
	// before a model swap and before Run returns (the model is closed after).
	decodes := make(chan encoded)
	var inflight sync.WaitGroup
	go func() {
		for e := range decodes {
			b.decode(e)
			inflight.Done()
		}
	}()
	defer func() {
		close(decodes)
		inflight.Wait()
	}()
	batch := make([]*job, 0, b.cfg.MaxBatch)
	for {
		// Stopping wins over queued work: a select between ready cases is random.
		if ctx.Err() != nil {
			return
		}
		var first *job
		select {
		case <-ctx.Done():
			return
		case req := <-b.swapCh:
			inflight.Wait()
			req.done <- b.model.Swap(&modelBox{req.m}).m
			continue
		case j := <-b.queue:
			first = b.take(j)
		}
		batch = append(batch[:0], first)
		var timer <-chan time.Time
	fill:
		for len(batch) < b.cfg.MaxBatch {
			// Take what is already queued before looking at the timer: under load the
			// timer has long fired, and a select between two ready cases picks at
			// random, which would cut batches short.
			select {
			case j := <-b.queue:
				batch = append(batch, b.take(j))
				continue
			default:
			}
			// Wait only for images on their way: with no place reserved, none is
			// being prepared, and the next would come from a request not yet
			// made. Waiting then only added MaxDelay to the batch's latency: 10 of
			// the 22 ms a lone client's caption took.
			if b.places.Load() == 0 {
				break
			}
			if timer == nil {
				// The oldest job's deadline for a batch is timed from its arrival,
				// so time it spent queued behind the previous batch counts.
				timer = b.after(first.arrived.Add(b.cfg.MaxDelay).Sub(b.now()))
			}
			select {
			case j := <-b.queue:
				batch = append(batch, b.take(j))
			case <-b.released: // look at the places again
			case <-timer:
				break fill
			case <-ctx.Done():
				b.fail(batch, ErrStopped)
				return
			}
		}
		if e, ok := b.encode(batch); ok {
			if o, can := e.m.(Overlapper); can && o.Overlaps() {
				inflight.Add(1)
				decodes <- e
			} else {
				b.decode(e)
			}
		}
		clear(batch) // drop references to the inputs (600 KB each) while idle
	}
}

// stop closes the stopped channel and answers every job still queued.
func (b *Batcher) stop() {
	b.stopOnce.Do(func() { close(b.stopped) })
	b.Drain()
}

// Drain answers every queued job with ErrStopped at once. Shutdown calls it when
// the grace period is over, so queued requests get their answer without waiting
// for the batch on the device.
func (b *Batcher) Drain() {
	for {
		select {
		case j := <-b.queue:
			b.take(j).reply <- reply{err: ErrStopped}
		default:
			return
		}
	}
}

func (b *Batcher) fail(jobs []*job, err error) {
	for _, j := range jobs {
		j.reply <- reply{err: err}
	}
}

// encoded is a batch between the two stages: encoded, waiting for its decode.
type encoded struct {
	m     Model
	live  []*job
	feats [][]float32
	st    BatchStats
	start time.Time
}

// encode runs one Encode on the jobs of batch whose context is still live. It
// returns false when nothing is left to decode: every job was skipped, or the
// encoder failed (those jobs are answered and the batch reported).
func (b *Batcher) encode(batch []*job) (encoded, bool) {
	e := encoded{m: b.model.Load().m, start: b.now()}
	size := e.m.Preprocessor().TensorLen()
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.reply <- reply{err: err}
			if errors.Is(err, context.DeadlineExceeded) {
				e.st.Expired++
			} else {
				e.st.Cancelled++
			}
			continue
		}
		if len(j.input) != size { // alone: the batch's other images fit
			j.reply <- reply{err: ErrReloaded}
			e.st.Stale++
			continue
		}
		e.live = append(e.live, j)
	}
	e.st.Size = len(e.live)
	if len(e.live) == 0 {
		b.report(e.st)
		return e, false
	}
	inputs := make([][]float32, len(e.live))
	for i, j := range e.live {
		inputs[i] = j.input
		e.st.Waits = append(e.st.Waits, e.start.Sub(j.arrived))
	}
	// The batch runs to completion once started: its members' contexts are checked
	// above, and one cancelled client must not waste the others' work.
	feats, err := e.m.Encode(context.Background(), inputs)
	e.st.Encode = b.now().Sub(e.start)
	if err != nil {
		e.st.Err = fmt.Errorf("encoding a batch of %d images: %w", len(e.live), err)
		b.report(e.st)
		b.fail(e.live, e.st.Err)
		return e, false
	}
	e.feats = feats
	return e, true
}

// decode runs one Decode per distinct Options of an encoded batch and answers
// its jobs. The model is one of the Options, so no Decode mixes models.
func (b *Batcher) decode(e encoded) {
	decodeStart := b.now()
	groups := map[Options][]int{}
	var order []Options // first-seen order, so runs are reproducible
	for i, j := range e.live {
		if _, ok := groups[j.opts]; !ok {
			order = append(order, j.opts)
		}
		groups[j.opts] = append(groups[j.opts], i)
	}
	st := e.st
	st.Groups = len(order)
	results := make([]Result, len(e.live))
	errs := make([]error, len(e.live))
	made := make([]Info, len(e.live)) // the model of each job
	infos := served(e.m)
	for _, o := range order {
		idx := groups[o]
		info, _ := modelNamed(infos, o.Model) // Decode fails on a name it does not know
		f := make([][]float32, len(idx))
		for k, i := range idx {
			f[k], made[i] = e.feats[i], info
		}
		res, err := e.m.Decode(context.Background(), f, o)
		if err == nil && len(res) != len(idx) {
			err = fmt.Errorf("model returned %d captions for %d images", len(res), len(idx))
		}
		for k, i := range idx {
			if err != nil {
				errs[i] = fmt.Errorf("decoding a batch of %d images: %w", len(idx), err)
				st.Err = errs[i]
				continue
			}
			results[i] = res[k]
		}
	}
	st.Decode = b.now().Sub(decodeStart)
	// The batch is recorded before its replies go out, so that whoever has an
	// answer finds it in /metrics.
	b.batchTime.Store(int64(b.now().Sub(e.start)))
	b.report(st)
	for i, j := range e.live {
		j.reply <- reply{err: errs[i], res: Captioned{
			Result: results[i], Model: made[i].Model, Version: made[i].Version,
			QueueWait: st.Waits[i], Encode: st.Encode, Decode: st.Decode, BatchSize: len(e.live),
		}}
	}
}

func (b *Batcher) report(st BatchStats) {
	if b.observe != nil {
		b.observe(st)
	}
}
