package server

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	dto "github.com/prometheus/client_model/go"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/pipeline"
)

// stepModel is the queue tests' test double: it reports each batch it is given
// on entered (when set) and, when release is set, waits for a value on it before
// answering, so a test decides exactly when a batch finishes. The caption names
// the input, so a test can check every reply went to the job that asked. With
// overlaps set it is an Overlapper, and Decode too can be held (decodeEntered,
// decodeRelease).
type stepModel struct {
	name          string
	entered       chan []int // ids of each encoded batch, in order
	release       chan struct{}
	overlaps      bool
	decodeEntered chan []int
	decodeRelease chan struct{}
	mu            sync.Mutex
	decodes       []Options
	closed        bool
	encodeErr     error
	pre           pipeline.Preprocessor
}

func newStepModel(name string) *stepModel {
	return &stepModel{name: name, entered: make(chan []int, 64), pre: testPreprocessor(50_000_000)}
}

func (m *stepModel) Preprocessor() pipeline.Preprocessor { return m.pre }

func (m *stepModel) Encode(_ context.Context, t [][]float32) ([][]float32, error) {
	ids := make([]int, len(t))
	feats := make([][]float32, len(t))
	for i, x := range t {
		ids[i] = int(x[0])
		feats[i] = []float32{x[0]}
	}
	if m.entered != nil {
		m.entered <- ids
	}
	if m.release != nil {
		<-m.release
	}
	return feats, m.encodeErr
}

func (m *stepModel) Overlaps() bool { return m.overlaps }

func (m *stepModel) Decode(_ context.Context, f [][]float32, o Options) ([]Result, error) {
	m.mu.Lock()
	m.decodes = append(m.decodes, o)
	m.mu.Unlock()
	if m.decodeEntered != nil {
		ids := make([]int, len(f))
		for i, x := range f {
			ids[i] = int(x[0])
		}
		m.decodeEntered <- ids
		<-m.decodeRelease
	}
	out := make([]Result, len(f))
	for i, x := range f {
		c := fmt.Sprintf("image %d beam %d", int(x[0]), o.Beam)
		out[i] = Result{Caption: c, Score: -1}
		for k := range max(o.Alternatives, 1) {
			out[i].Alternatives = append(out[i].Alternatives, Alternative{Caption: fmt.Sprintf("%s alt %d", c, k), Score: -1 - float64(k)})
		}
		out[i].Alternatives[0].Caption = c
	}
	return out, nil
}

func (m *stepModel) Info() Info {
	return Info{Model: m.name, Version: "v-" + m.name, Encoder: "test", Device: "test", Vocab: 3}
}

func (m *stepModel) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// manualClock drives the batcher's clock: now is set by the test, and every
// timer the scheduler asks for is reported on timers with the duration requested.
type manualClock struct {
	mu     sync.Mutex
	t      time.Time
	timers chan manualTimer
}

type manualTimer struct {
	d    time.Duration
	fire chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), timers: make(chan manualTimer, 64)}
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) after(d time.Duration) <-chan time.Time {
	t := manualTimer{d: d, fire: make(chan time.Time, 1)}
	c.timers <- t
	return t.fire
}

// startBatcher runs a batcher on m with a manual clock until the test ends.
func startBatcher(t *testing.T, cfg BatcherConfig, m Model, setup ...func(*Batcher)) (*Batcher, *manualClock) {
	t.Helper()
	b := NewBatcher(cfg, m)
	clk := newManualClock()
	b.now, b.after = clk.now, clk.after
	for _, f := range setup { // before Run, which reads what they set
		f(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		<-b.Stopped()
	})
	go b.Run(ctx)
	return b, clk
}

// reserve holds n places, as a request does for its images before it
// prepares them: while they are held, a batch waits for them.
func reserve(t *testing.T, b *Batcher, n int) {
	t.Helper()
	if err := b.Reserve(n); err != nil {
		t.Fatalf("Reserve(%d): %v", n, err)
	}
}

func submit(t *testing.T, b *Batcher, ctx context.Context, id int, o Options) <-chan reply {
	t.Helper()
	if err := b.Reserve(1); err != nil {
		t.Fatalf("Reserve for %d: %v", id, err)
	}
	return submitReserved(t, b, ctx, id, o)
}

// tensor is a preprocessed image of the size b's model takes, whose first
// value is id: the step model's captions name it.
func tensor(b *Batcher, id int) []float32 {
	x := make([]float32, b.Model().Preprocessor().TensorLen())
	x[0] = float32(id)
	return x
}

// submitReserved queues image id into a place already held.
func submitReserved(t *testing.T, b *Batcher, ctx context.Context, id int, o Options) <-chan reply {
	t.Helper()
	return submitTensor(t, b, ctx, tensor(b, id), o)
}

// submitTensor queues the preprocessed image x into a place already held.
func submitTensor(t *testing.T, b *Batcher, ctx context.Context, x []float32, o Options) <-chan reply {
	t.Helper()
	ch, err := b.Submit(ctx, x, o)
	if err != nil {
		t.Fatalf("Submit(image %g): %v", x[0], err)
	}
	return ch
}

func wantCaption(t *testing.T, ch <-chan reply, want string) Captioned {
	t.Helper()
	r := <-ch
	if r.err != nil {
		t.Fatalf("reply error %v, want caption %q", r.err, want)
	}
	if r.res.Caption != want {
		t.Fatalf("caption %q, want %q", r.res.Caption, want)
	}
	return r.res
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var greedy = Options{Beam: 1, MaxLen: 10, Alternatives: 1}

func TestBatchFormsAtMaxBatch(t *testing.T) {
	m := newStepModel("m")
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 4, MaxDelay: time.Hour, QueueSize: 16}, m)
	reserve(t, b, 4) // one request of four images holds their places before it prepares them
	var replies []<-chan reply
	for id := range 4 {
		replies = append(replies, submitReserved(t, b, context.Background(), id, greedy))
	}
	// No timer is ever fired: only reaching MaxBatch can start this batch
	// (the batcher may have set one, if it took image 0 before the others
	// were queued).
	if got := <-m.entered; !equalIDs(got, []int{0, 1, 2, 3}) {
		t.Fatalf("batch %v, want [0 1 2 3]", got)
	}
	for id, ch := range replies {
		r := wantCaption(t, ch, fmt.Sprintf("image %d beam 1", id))
		if r.BatchSize != 4 || r.Model != "m" || r.Version != "v-m" {
			t.Errorf("reply %d: batch size %d model %q version %q, want 4, m, v-m", id, r.BatchSize, r.Model, r.Version)
		}
	}
}

// enteredAtOnce fails the test unless m is given the batch want without a
// timer firing: the test's clock fires none, so a batcher that waits for
// MaxDelay never starts it (the ten seconds only keep such a failure short).
func enteredAtOnce(t *testing.T, m *stepModel, want []int) {
	t.Helper()
	select {
	case got := <-m.entered:
		if !equalIDs(got, want) {
			t.Fatalf("batch %v, want %v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("batch %v did not start: the batcher is waiting for images that are not on their way", want)
	}
}

// noTimer fails the test if the batcher asked for a timer it was not expected to.
func noTimer(t *testing.T, clk *manualClock) {
	t.Helper()
	select {
	case tm := <-clk.timers:
		t.Errorf("the batcher waited (a timer of %v) where nothing was on its way", tm.d)
	default:
	}
}

func TestBatchWaitsForImagesOnTheirWay(t *testing.T) {
	m := newStepModel("m")
	b, clk := startBatcher(t, BatcherConfig{MaxBatch: 4, MaxDelay: time.Hour, QueueSize: 16}, m)
	// A second image's place is held (its request is decoding it) when the
	// first is queued: the batch waits for it, up to the full MaxDelay.
	reserve(t, b, 1)
	r0 := submit(t, b, context.Background(), 0, greedy)
	if tm := <-clk.timers; tm.d != time.Hour {
		t.Fatalf("timer %v, want the full MaxDelay for a job that just arrived", tm.d)
	}
	r1 := submitReserved(t, b, context.Background(), 1, greedy)
	// The timer never fires: with no more places held, the batch starts as
	// soon as the awaited image is in it.
	enteredAtOnce(t, m, []int{0, 1})
	wantCaption(t, r0, "image 0 beam 1")
	wantCaption(t, r1, "image 1 beam 1")
}

func TestBatchDelayIsTimedFromArrival(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	b, clk := startBatcher(t, BatcherConfig{MaxBatch: 8, MaxDelay: 10 * time.Millisecond, QueueSize: 16}, m)

	// Job 0 starts a batch alone when its timer fires (another image's place
	// is held, so the batch waits for it); the model then holds the batch.
	reserve(t, b, 1)
	r0 := submit(t, b, context.Background(), 0, greedy)
	first := <-clk.timers
	if first.d != 10*time.Millisecond {
		t.Fatalf("first timer %v, want 10ms", first.d)
	}
	first.fire <- time.Time{}
	<-m.entered

	// Job 1 arrives in the held place while the model is busy, another place
	// is held behind it, and it waits 7ms behind the model, so once the model
	// is free only 3ms of its delay remain.
	r1 := submitReserved(t, b, context.Background(), 1, greedy)
	reserve(t, b, 1)
	defer b.Release(1)
	clk.advance(7 * time.Millisecond)
	m.release <- struct{}{}
	wantCaption(t, r0, "image 0 beam 1")
	second := <-clk.timers
	if second.d != 3*time.Millisecond {
		t.Fatalf("timer for a job that waited 7ms: %v, want 3ms", second.d)
	}
	second.fire <- time.Time{}
	if got := <-m.entered; !equalIDs(got, []int{1}) {
		t.Fatalf("batch %v, want [1]", got)
	}
	m.release <- struct{}{}
	if r := wantCaption(t, r1, "image 1 beam 1"); r.QueueWait != 7*time.Millisecond {
		t.Errorf("queue wait %v, want 7ms (arrival to batch start)", r.QueueWait)
	}
}

func TestBacklogFormsFullBatchesWithoutWaiting(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	b, clk := startBatcher(t, BatcherConfig{MaxBatch: 3, MaxDelay: time.Hour, QueueSize: 16}, m)
	// A lone job with nothing on its way starts at once: MaxDelay is an hour.
	r0 := submit(t, b, context.Background(), 0, greedy)
	enteredAtOnce(t, m, []int{0})
	// Seven jobs queue behind the busy model; once it frees up they fill batches
	// from the backlog, and the last, alone, does not wait either.
	var rs []<-chan reply
	for id := 1; id <= 7; id++ {
		rs = append(rs, submit(t, b, context.Background(), id, greedy))
	}
	m.release <- struct{}{}
	wantCaption(t, r0, "image 0 beam 1")
	for _, want := range [][]int{{1, 2, 3}, {4, 5, 6}, {7}} {
		enteredAtOnce(t, m, want)
		m.release <- struct{}{}
	}
	for i, ch := range rs {
		wantCaption(t, ch, fmt.Sprintf("image %d beam 1", i+1))
	}
	noTimer(t, clk)
}

func TestEndedJobsAreDroppedNotComputed(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	statsCh := make(chan BatchStats, 8)
	b := NewBatcher(BatcherConfig{MaxBatch: 4, MaxDelay: time.Hour, QueueSize: 16}, m)
	b.observe = func(s BatchStats) { statsCh <- s }
	ctx, stop := context.WithCancel(context.Background())
	defer func() { stop(); <-b.Stopped() }()
	go b.Run(ctx)

	cancelled, cancel := context.WithCancel(context.Background())
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	reserve(t, b, 4) // one request's four images: they wait for each other
	rA := submitReserved(t, b, context.Background(), 1, greedy)
	rB := submitReserved(t, b, cancelled, 2, greedy)
	rC := submitReserved(t, b, expired, 3, greedy)
	cancel() // client 2 goes away while queued
	rD := submitReserved(t, b, context.Background(), 4, greedy)

	if got := <-m.entered; !equalIDs(got, []int{1, 4}) {
		t.Fatalf("model computed %v, want only the live jobs [1 4]", got)
	}
	m.release <- struct{}{}
	wantCaption(t, rA, "image 1 beam 1")
	wantCaption(t, rD, "image 4 beam 1")
	if r := <-rB; !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled job: %v, want context.Canceled", r.err)
	}
	if r := <-rC; !errors.Is(r.err, context.DeadlineExceeded) {
		t.Errorf("expired job: %v, want context.DeadlineExceeded", r.err)
	}
	if st := <-statsCh; st.Size != 2 || st.Expired != 1 || st.Cancelled != 1 {
		t.Errorf("stats %+v, want size 2, 1 expired, 1 cancelled", st)
	}
}

func TestFullQueueRefusesAtOnce(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 2}, m)
	r0 := submit(t, b, context.Background(), 0, greedy)
	<-m.entered // job 0 is on the model, the queue is empty
	r1 := submit(t, b, context.Background(), 1, greedy)
	r2 := submit(t, b, context.Background(), 2, greedy)
	if err := b.Reserve(1); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third queued job: %v, want ErrQueueFull", err)
	}
	if d, r := b.Depth(), b.Reserved(); d != 2 || r != 2 {
		t.Errorf("depth %d reserved %d, want 2 and 2", d, r)
	}
	m.release <- struct{}{}
	wantCaption(t, r0, "image 0 beam 1")
	<-m.entered // job 1 left the queue: its place is free again
	if err := b.Reserve(1); err != nil {
		t.Errorf("Reserve with a place free: %v", err)
	}
	b.Release(1)
	m.release <- struct{}{}
	wantCaption(t, r1, "image 1 beam 1")
	<-m.entered
	m.release <- struct{}{}
	wantCaption(t, r2, "image 2 beam 1")
	if r := b.Reserved(); r != 0 {
		t.Errorf("%d places still reserved after every job was answered", r)
	}
}

func TestMixedOptionsEncodeOnceDecodePerGroup(t *testing.T) {
	m := newStepModel("m")
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 3, MaxDelay: time.Hour, QueueSize: 8}, m)
	beam3 := Options{Beam: 3, MaxLen: 10, Alternatives: 3}
	reserve(t, b, 3)
	r0 := submitReserved(t, b, context.Background(), 0, greedy)
	r1 := submitReserved(t, b, context.Background(), 1, beam3)
	r2 := submitReserved(t, b, context.Background(), 2, greedy)
	if got := <-m.entered; !equalIDs(got, []int{0, 1, 2}) {
		t.Fatalf("encoded %v, want one batch [0 1 2]", got)
	}
	wantCaption(t, r0, "image 0 beam 1")
	wantCaption(t, r1, "image 1 beam 3")
	wantCaption(t, r2, "image 2 beam 1")
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.decodes) != 2 || m.decodes[0] != greedy || m.decodes[1] != beam3 {
		t.Errorf("decode calls %v, want [greedy, beam3]", m.decodes)
	}
}

func TestModelErrorReachesEveryJob(t *testing.T) {
	m := newStepModel("m")
	m.encodeErr = errors.New("device lost")
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 2, MaxDelay: time.Hour, QueueSize: 8}, m)
	reserve(t, b, 2)
	r0 := submitReserved(t, b, context.Background(), 0, greedy)
	r1 := submitReserved(t, b, context.Background(), 1, greedy)
	<-m.entered
	for _, ch := range []<-chan reply{r0, r1} {
		if r := <-ch; r.err == nil || r.err.Error() != "encoding a batch of 2 images: device lost" {
			t.Errorf("reply error %v, want the encode failure", r.err)
		}
	}
}

func TestSwapBetweenBatches(t *testing.T) {
	old, next := newStepModel("old"), newStepModel("new")
	old.release = make(chan struct{})
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 8}, old)
	r0 := submit(t, b, context.Background(), 0, greedy)
	<-old.entered
	swapped := make(chan Model)
	go func() {
		m, err := b.Swap(next)
		if err != nil {
			t.Errorf("Swap: %v", err)
		}
		swapped <- m
	}()
	// The swap waits for the running batch, which still uses the old model.
	old.release <- struct{}{}
	if r := wantCaption(t, r0, "image 0 beam 1"); r.Model != "old" {
		t.Errorf("running batch answered by %q, want old", r.Model)
	}
	if m := <-swapped; m != Model(old) {
		t.Errorf("Swap returned %v, want the old model", m)
	}
	r1 := submit(t, b, context.Background(), 1, greedy)
	<-next.entered
	if r := wantCaption(t, r1, "image 1 beam 1"); r.Model != "new" || r.Version != "v-new" {
		t.Errorf("after swap answered by %q %q, want new v-new", r.Model, r.Version)
	}
}

// TestImagePreparedBeforeAReloadFailsAlone: an image preprocessed for the
// model before a reload brought an encoder of another input size fits no
// encoder now. It alone is answered ErrReloaded; the image beside it in the
// batch, prepared for the new model, is captioned.
func TestImagePreparedBeforeAReloadFailsAlone(t *testing.T) {
	old, next := newStepModel("old"), newStepModel("new")
	next.pre = pipeline.NewPreprocessor(encoder.Config{Input: 16}, config.Image{MaxPixels: 1 << 20, MaxDecodedBytes: 1 << 30})
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 2, MaxDelay: time.Hour, QueueSize: 8}, old)
	stale := tensor(b, 1) // the handler's, prepared with old's preprocessor
	if _, err := b.Swap(next); err != nil {
		t.Fatal(err)
	}
	reserve(t, b, 2) // both in one batch
	r1 := submitTensor(t, b, context.Background(), stale, greedy)
	r2 := submitReserved(t, b, context.Background(), 2, greedy)
	if got := receive(t, next.entered, "the batch"); !equalIDs(got, []int{2}) {
		t.Errorf("encoded images %v, want only 2", got)
	}
	if r := <-r1; !errors.Is(r.err, ErrReloaded) {
		t.Errorf("stale image: %+v, want ErrReloaded", r)
	}
	if r := wantCaption(t, r2, "image 2 beam 1"); r.Model != "new" {
		t.Errorf("answered by %q, want new", r.Model)
	}
}

// TestReloadedImageAnswer: the request of an image answered ErrReloaded gets
// 503 with what to do, and the metrics count the image as dropped.
func TestReloadedImageAnswer(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("POST", "/v1/captions", nil)
	err := (&Server{}).waitError(c, &request{}, ErrReloaded)
	var he *httpError
	if want := "the models were reloaded with an encoder of another input size while this image waited; send it again"; !errors.As(err, &he) || he.status != 503 || he.msg != want {
		t.Errorf("answer %v, want 503 %q", err, want)
	}
	m := newMetrics(nil)
	m.observeBatch(BatchStats{Stale: 2})
	var dropped dto.Metric
	if err := m.dropped.WithLabelValues("reloaded").Write(&dropped); err != nil || dropped.GetCounter().GetValue() != 2 {
		t.Errorf("captioner_images_dropped_total{reason=\"reloaded\"} = %v (%v), want 2", dropped.GetCounter().GetValue(), err)
	}
}

// receive returns the next value of ch, failing the test after 10 s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
		panic("unreachable")
	}
}

// TestOverlappingModelEncodesWhileDecoding checks the two-stage pipeline: with an
// Overlapper, batch 1 is encoded while batch 0 is still decoding; a swap waits
// for every batch handed to the decoder, and so does Run before it returns.
func TestOverlappingModelEncodesWhileDecoding(t *testing.T) {
	m := newStepModel("m")
	m.overlaps = true
	m.decodeEntered, m.decodeRelease = make(chan []int, 4), make(chan struct{})
	b := NewBatcher(BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 8}, m)
	ctx, stop := context.WithCancel(context.Background())
	go b.Run(ctx)
	r0 := submit(t, b, context.Background(), 0, greedy)
	receive(t, m.entered, "encode of batch 0")
	receive(t, m.decodeEntered, "decode of batch 0")
	r1 := submit(t, b, context.Background(), 1, greedy)
	if got := receive(t, m.entered, "encode of batch 1 while batch 0 decodes"); !equalIDs(got, []int{1}) {
		t.Fatalf("second encoded batch %v, want [1]", got)
	}
	swapped := make(chan Model, 1)
	go func() {
		old, err := b.Swap(newStepModel("next"))
		if err != nil {
			t.Errorf("Swap: %v", err)
		}
		swapped <- old
	}()
	m.decodeRelease <- struct{}{}
	wantCaption(t, r0, "image 0 beam 1")
	receive(t, m.decodeEntered, "decode of batch 1")
	select {
	case <-swapped:
		t.Fatal("the swap returned the old model while it was still decoding batch 1")
	case <-time.After(50 * time.Millisecond):
	}
	m.decodeRelease <- struct{}{}
	wantCaption(t, r1, "image 1 beam 1")
	if old := receive(t, swapped, "swap"); old != Model(m) {
		t.Errorf("Swap returned %v, want the old model", old)
	}

	// Stopping while a batch decodes: Run returns only once it has been answered.
	b.Swap(m)
	r2 := submit(t, b, context.Background(), 2, greedy)
	receive(t, m.decodeEntered, "decode of batch 2")
	stop()
	select {
	case <-b.Stopped():
		t.Fatal("Run returned while batch 2 was still decoding")
	case <-time.After(50 * time.Millisecond):
	}
	m.decodeRelease <- struct{}{}
	wantCaption(t, r2, "image 2 beam 1")
	receive(t, b.Stopped(), "stop")
}

func TestStopAnswersQueuedJobs(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	b := NewBatcher(BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 8}, m)
	ctx, stop := context.WithCancel(context.Background())
	go b.Run(ctx)
	r0 := submit(t, b, context.Background(), 0, greedy)
	<-m.entered
	r1 := submit(t, b, context.Background(), 1, greedy)
	stop()
	m.release <- struct{}{} // the running batch completes; the queued job is not started
	wantCaption(t, r0, "image 0 beam 1")
	<-b.Stopped()
	if r := <-r1; !errors.Is(r.err, ErrStopped) {
		t.Errorf("queued job after stop: %v, want ErrStopped", r.err)
	}
	if err := b.Reserve(1); !errors.Is(err, ErrStopped) {
		t.Errorf("Reserve after stop: %v, want ErrStopped", err)
	}
	if _, err := b.Submit(context.Background(), []float32{2}, greedy); !errors.Is(err, ErrStopped) {
		t.Errorf("Submit after stop: %v, want ErrStopped", err)
	}
	if _, err := b.Swap(newStepModel("x")); !errors.Is(err, ErrStopped) {
		t.Errorf("Swap after stop: %v, want ErrStopped", err)
	}
}

func TestWaitReturnsOnDeadline(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 8}, m)
	ctx, cancel := context.WithCancel(context.Background())
	ch := submit(t, b, ctx, 0, greedy)
	<-m.entered
	cancel()
	if _, err := b.Wait(ctx, ch); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait: %v, want context.Canceled", err)
	}
	m.release <- struct{}{}
}

// BenchmarkBatcherOverhead is the queue's own cost per image (admission,
// batching, reply) with an instant model, at 64 concurrent submitters.
func BenchmarkBatcherOverhead(b *testing.B) {
	m := newStepModel("bench")
	m.entered = nil
	bt := NewBatcher(BatcherConfig{MaxBatch: 16, MaxDelay: 100 * time.Microsecond, QueueSize: 1024}, m)
	ctx, stop := context.WithCancel(context.Background())
	defer func() { stop(); <-bt.Stopped() }()
	go bt.Run(ctx)
	input := tensor(bt, 1)
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bt.Reserve(1); err != nil {
				b.Error(err)
				return
			}
			ch, err := bt.Submit(context.Background(), input, greedy)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := bt.Wait(context.Background(), ch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// TestBatchRecordedBeforeItsReplies: whoever has an answer finds its batch in
// the metrics, whether the batch was computed or failed.
func TestBatchRecordedBeforeItsReplies(t *testing.T) {
	for _, encodeErr := range []error{nil, errors.New("device lost")} {
		m := newStepModel("m")
		m.entered = nil
		m.encodeErr = encodeErr
		b := NewBatcher(BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 4}, m)
		observed, proceed := make(chan BatchStats), make(chan struct{})
		b.observe = func(st BatchStats) {
			observed <- st
			<-proceed
		}
		ctx, cancel := context.WithCancel(context.Background())
		go b.Run(ctx)
		reply := submit(t, b, context.Background(), 7, greedy)
		st := <-observed // the batch is being recorded, and stays so until proceed
		if st.Size != 1 || (st.Err != nil) != (encodeErr != nil) {
			t.Errorf("recorded %+v for one image (encode error %v)", st, encodeErr)
		}
		select {
		case <-reply:
			t.Errorf("the reply (encode error %v) went out before its batch was recorded", encodeErr)
			close(proceed)
		default:
			close(proceed)
			<-reply
		}
		cancel()
		<-b.Stopped()
	}
}

// TestFailedImageGivesBackItsPlace posts two images, one cut short so that it
// fails to decode: its place goes back once the good one is queued, so the
// good one's batch does not wait max_queue_delay (an hour here) for an image
// that will never come.
func TestFailedImageGivesBackItsPlace(t *testing.T) {
	m := newStepModel("m")
	m.entered = nil
	ts := startServer(t, testConfig(t, func(c *config.Config) { c.Server.MaxBatch, c.Server.MaxQueueDelay = 4, time.Hour }), modelLoader(m))
	good := photoPNG(16, 16)
	answer := make(chan response, 1)
	go func() {
		answer <- postParts(t, ts.url, part{"image", "good.png", good}, part{"image", "cut.png", good[:len(good)/2]})
	}()
	select {
	case r := <-answer:
		captions := captionList(t, r)
		if len(captions) != 2 || captions[0]["caption"] == nil || captions[1]["error"] == nil {
			t.Fatalf("captions %v, want the first image's caption and the second's error", captions)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no answer: the good image's batch waits for the place of the image that failed")
	}
}

// A place given back (Release) wakes a scheduler that waits for reserved
// images: the batch goes without them at once, not when MaxDelay (here an
// hour, on a clock that never moves) is over. The scheduler is waiting when
// it has asked for its timer.
func TestReleaseWakesTheWaitingBatch(t *testing.T) {
	b, clk := startBatcher(t, BatcherConfig{MaxBatch: 4, MaxDelay: time.Hour, QueueSize: 8}, newStepModel("m"))
	reserve(t, b, 2)
	r0 := submitReserved(t, b, context.Background(), 0, greedy)
	if tm := <-clk.timers; tm.d != time.Hour {
		t.Fatalf("the batch waits %v for the reserved image, want MaxDelay", tm.d)
	}
	b.Release(1)
	select {
	case r := <-r0:
		if r.err != nil || r.res.Caption != "image 0 beam 1" {
			t.Errorf("reply %+v, want image 0's caption", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply: the batch still waits for the place given back")
	}
}

// failingDecode fails every Decode of beam 3: with an error, or, short, by
// returning one result too few.
type failingDecode struct {
	*stepModel
	short bool
}

func (m failingDecode) Decode(ctx context.Context, f [][]float32, o Options) ([]Result, error) {
	res, err := m.stepModel.Decode(ctx, f, o)
	if o.Beam == 3 {
		if m.short {
			return res[:len(res)-1], nil
		}
		return nil, errors.New("decoder fell over")
	}
	return res, err
}

// A decode that fails, or answers for fewer images than it was given (which
// would otherwise panic the batcher's goroutine), fails every image of its
// group and no other, and the batch is recorded with the error (metrics count
// it as failed, not captioned).
func TestDecodeErrorFailsItsGroupOnly(t *testing.T) {
	for _, short := range []bool{false, true} {
		stats := make(chan BatchStats, 4)
		b, _ := startBatcher(t, BatcherConfig{MaxBatch: 3, MaxDelay: time.Hour, QueueSize: 8}, failingDecode{newStepModel("m"), short},
			func(b *Batcher) { b.observe = func(st BatchStats) { stats <- st } })
		beam3 := Options{Beam: 3, MaxLen: 10, Alternatives: 1}
		reserve(t, b, 3)
		r0 := submitReserved(t, b, context.Background(), 0, beam3)
		r1 := submitReserved(t, b, context.Background(), 1, greedy)
		r2 := submitReserved(t, b, context.Background(), 2, beam3)
		wantCaption(t, r1, "image 1 beam 1")
		for _, ch := range []<-chan reply{r0, r2} {
			if r := <-ch; r.err == nil || !strings.HasPrefix(r.err.Error(), "decoding a batch of 2 images") {
				t.Errorf("short=%v: reply %+v, want the group's decode error", short, r)
			}
		}
		if st := <-stats; st.Err == nil {
			t.Errorf("short=%v: the batch was recorded without its error", short)
		}
	}
}

// cancellableEncode is stepModel whose Encode fails once its context is done,
// as pipeline.Encode does.
type cancellableEncode struct{ *stepModel }

func (m cancellableEncode) Encode(ctx context.Context, t [][]float32) ([][]float32, error) {
	f, err := m.stepModel.Encode(ctx, t)
	if err == nil {
		err = ctx.Err()
	}
	return f, err
}

// A client that leaves while its batch runs does not fail the others' images:
// the batch does not run under any one request's context.
func TestOneClientLeavingDoesNotFailTheBatch(t *testing.T) {
	m := cancellableEncode{newStepModel("m")}
	m.release = make(chan struct{})
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 2, MaxDelay: time.Hour, QueueSize: 8}, m)
	ctx, cancel := context.WithCancel(context.Background())
	reserve(t, b, 2)
	submitReserved(t, b, ctx, 0, greedy)
	r1 := submitReserved(t, b, context.Background(), 1, greedy)
	<-m.entered
	cancel()
	m.release <- struct{}{}
	wantCaption(t, r1, "image 1 beam 1")
}

// Wait returns a reply that arrived before the batcher stopped, not 503: the
// caption was computed and is delivered (64 tries, since select picks at
// random among ready cases).
func TestWaitKeepsAReplyThatCameBeforeTheStop(t *testing.T) {
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 1, MaxDelay: time.Hour, QueueSize: 1}, newStepModel("m"))
	b.stop()
	for range 64 {
		ch := make(chan reply, 1)
		ch <- reply{res: Captioned{Result: Result{Caption: "x"}}}
		if r, err := b.Wait(context.Background(), ch); err != nil || r.Caption != "x" {
			t.Fatalf("Wait after the stop with a reply ready: %+v, %v", r, err)
		}
	}
}

// Retry-After follows the measured batch time: with one image ahead and
// batches of 3 s, come back in 3 s.
func TestRetryAfterFollowsTheBatchTime(t *testing.T) {
	m := newStepModel("m")
	m.release = make(chan struct{})
	b, clk := startBatcher(t, BatcherConfig{MaxBatch: 4, MaxDelay: time.Hour, QueueSize: 8}, m)
	r := submit(t, b, context.Background(), 0, greedy)
	<-m.entered
	clk.advance(3 * time.Second)
	m.release <- struct{}{}
	wantCaption(t, r, "image 0 beam 1")
	reserve(t, b, 1)
	defer b.Release(1)
	if got := b.RetryAfter(); got != 3*time.Second {
		t.Errorf("RetryAfter %v with one image ahead and 3 s batches, want 3s", got)
	}
}
