package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/tags"
)

// httpError is an error with the status it answers.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration // sent as Retry-After when positive (429)
	// images is, for a request none of whose images could be captioned,
	// each image's entry (imageErrorJSON), sent as "captions" beside "error":
	// a client reads why each failed as it would in a 200.
	images []gin.H
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// upload is one image of a request as it moves through the handler.
type upload struct {
	name string // multipart file name, "" for a raw body
	// field: a multipart part without a file name, as a form field's text
	// is (curl -F image=photo.jpg, without the @, sends the name).
	field  bool
	data   []byte
	heavy  bool  // costly to decode: see heavyDecodeBytes
	cost   int64 // bytes its decoding allocates, from its header
	width  int
	height int
	tensor []float32
	thumb  string // data URL
	prep   time.Duration
	reply  <-chan reply
	err    *httpError // why this image has no caption; the others still get theirs
}

// request is a parsed POST /v1/captions.
type request struct {
	opts    Options
	timeout time.Duration
	images  []*upload
	body    *bodyReader
}

// optionFields are the options a request may set as query or form fields.
var optionFields = []string{"beam", "max_len", "alternatives", "guide", "no_repeat", "attention", "model", "timeout_ms"}

func (s *Server) postCaptions(c *gin.Context) {
	b := s.readyBatcher(c)
	if b == nil {
		return
	}
	t0 := time.Now()
	// The body is read before a queue place is taken (see upload.go): the queue
	// holds images ready to be decoded, never a client still sending.
	req, err := s.parseRequest(c, b.Model)
	if req != nil {
		defer req.body.release()
	}
	if err != nil {
		if req != nil {
			req.body.abandon()
		}
		s.fail(c, err)
		return
	}
	pre := b.Model().Preprocessor()
	// The images' headers are read, and their decoding budgeted, before any is
	// decoded or a queue place is taken for them.
	if err := s.budget(pre, req.images); err != nil {
		s.fail(c, err)
		return
	}
	good := req.images[:0:0]
	for _, u := range req.images {
		if u.err == nil {
			good = append(good, u)
		}
	}
	// Every image refused by its header: nothing to queue.
	if len(good) == 0 {
		s.fail(c, allFailed(req.images))
		return
	}
	if err := b.Reserve(len(good)); err != nil {
		s.fail(c, s.submitError(b, err))
		return
	}
	held := len(good)
	defer func() { b.Release(held) }() // places not taken by a submitted image
	ctx, cancel := context.WithTimeout(c.Request.Context(), req.timeout)
	defer cancel() // also drops queued images of a request that fails half-way
	if err := s.prepare(ctx, pre, good); err != nil {
		s.fail(c, s.waitError(c, req, err))
		return
	}
	req.body.release()
	for _, u := range good {
		if u.err != nil {
			continue
		}
		u.reply, err = b.Submit(ctx, u.tensor, req.opts)
		if err != nil {
			s.fail(c, s.submitError(b, err))
			return
		}
		held--
		u.tensor = nil
	}
	submitted := len(good) - held
	// The places of images that failed to decode go back now, not when the
	// captions are in: the batcher waits for a batch to fill while any place
	// is held, and these images will never come.
	b.Release(held)
	held = 0
	if submitted == 0 { // every image failed to decode
		s.fail(c, allFailed(req.images))
		return
	}
	out := make([]gin.H, len(req.images))
	for i, u := range req.images {
		if u.err != nil {
			out[i] = imageErrorJSON(i, u)
			continue
		}
		r, err := b.Wait(ctx, u.reply)
		if err != nil {
			s.fail(c, s.waitError(c, req, err))
			return
		}
		out[i] = captionJSON(i, u, r, time.Since(t0))
		if s.liveOn() {
			s.live.publish(liveEvent(u, r))
		}
	}
	c.JSON(http.StatusOK, gin.H{"captions": out})
}

// allFailed is the answer to a request none of whose images could be
// captioned: the first image's status, with every image's reason in the
// message and each image's entry beside it.
func allFailed(images []*upload) error {
	entries := make([]gin.H, len(images))
	reasons := make([]string, len(images))
	for i, u := range images {
		entries[i] = imageErrorJSON(i, u)
		reasons[i] = fmt.Sprintf("index %d%s: %s", i, nameSuffix(u.name), u.err.msg) // as each answer's "index"
	}
	msg := images[0].err.msg
	if len(images) > 1 {
		msg = fmt.Sprintf("none of the %d images could be captioned: %s", len(images), strings.Join(reasons, "; "))
	}
	return &httpError{status: images[0].err.status, msg: msg, images: entries}
}

// imageErrorJSON is the entry of an image that has no caption, in its place
// among the captions.
func imageErrorJSON(i int, u *upload) gin.H {
	return gin.H{"index": i, "filename": u.name, "status": u.err.status, "error": u.err.msg}
}

// resultJSON is a caption as the API and the live page show it: the
// sentence, its tokens, score and confidence, the n-best list, the tags and
// the nouns guided decoding made it name, the model that made it, and for a
// photo of things alone how sure the lone-object probe is.
func resultJSON(r Captioned) gin.H {
	alts := make([]gin.H, len(r.Alternatives))
	for k, a := range r.Alternatives {
		alts[k] = gin.H{"caption": a.Caption, "score": a.Score, "confidence": a.Confidence}
	}
	tagged := r.Tags
	if tagged == nil {
		tagged = []tags.Tag{} // [] rather than null
	}
	guided := r.Guided
	if guided == nil {
		guided = []string{}
	}
	h := gin.H{
		"caption": r.Caption, "tokens": r.Tokens, "score": r.Score, "confidence": r.Confidence,
		"tags": tagged, "guided": guided, "alternatives": alts,
		"model": gin.H{"name": r.Model, "version": r.Version},
	}
	if r.Attention != nil {
		h["attention"] = r.Attention
	}
	if r.LoneObject > 0 {
		h["lone_object"] = r.LoneObject
	}
	return h
}

func captionJSON(i int, u *upload, r Captioned, total time.Duration) gin.H {
	out := resultJSON(r)
	maps.Copy(out, gin.H{
		"index": i, "filename": u.name, "width": u.width, "height": u.height,
		"batch_size": r.BatchSize,
		"timings_ms": gin.H{
			"preprocess": ms(u.prep), "queue": ms(r.QueueWait),
			"encode": ms(r.Encode), "decode": ms(r.Decode), "total": ms(total),
		},
	})
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fail answers err: an *httpError with its status, anything else as a 500.
func (s *Server) fail(c *gin.Context, err error) {
	var he *httpError
	if errors.As(err, &he) {
		if he.status == statusClientGone {
			// The client closed its side: it may have gone, or only
			// half-closed and still be reading, which net/http cannot tell
			// apart. Dropping the connection answers both; returning would
			// have sent the half-closed one 200 with no body.
			panic(http.ErrAbortHandler)
		}
		if he.retryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(int(he.retryAfter/time.Second)))
		}
		if he.images != nil {
			c.AbortWithStatusJSON(he.status, gin.H{"error": he.msg, "captions": he.images})
			return
		}
		apiError(c, he.status, he.msg)
		return
	}
	reqLog(c).Error("caption", "err", err)
	apiError(c, http.StatusInternalServerError, "captioning failed: "+err.Error())
}

func (s *Server) submitError(b *Batcher, err error) error {
	switch {
	case errors.Is(err, ErrQueueFull):
		s.metrics.rejected.Inc()
		return &httpError{status: http.StatusTooManyRequests, retryAfter: b.RetryAfter(), msg: fmt.Sprintf(
			"the server is at capacity (its queue of %d images is full); retry after the number of seconds in the Retry-After header", s.cfg.QueueSize)}
	case errors.Is(err, ErrStopped):
		return errorf(http.StatusServiceUnavailable, "the server is shutting down; retry on another instance or in a moment")
	}
	return err
}

func (s *Server) waitError(c *gin.Context, req *request, err error) error {
	switch {
	case c.Request.Context().Err() != nil:
		return &httpError{status: statusClientGone}
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout,
			"no caption within the request's deadline of %s: the deadline is shorter than captioning takes, or the server is busy; allow more time with timeout_ms (at most %d), send fewer images, or retry later",
			req.timeout, s.cfg.MaxRequestTimeout.Milliseconds())
	case errors.Is(err, ErrStopped):
		return errorf(http.StatusServiceUnavailable, "the server shut down before this image was captioned; retry")
	case errors.Is(err, ErrReloaded):
		return errorf(http.StatusServiceUnavailable, "the models were reloaded with an encoder of another input size while this image waited; send it again")
	}
	return err
}

// pickModel checks the model a request names (its model field) against those
// m serves, and names the default in the options of a request that names
// none, so that requests for one model share a Decode however they named it.
// Only an attention model has attention weights to give.
func pickModel(m Model, o *Options) error {
	infos := served(m)
	info, ok := modelNamed(infos, o.Model)
	var names, attending []string
	for _, i := range infos {
		names = append(names, i.Model)
		if i.Arch == decoder.ArchAttention {
			attending = append(attending, "model="+i.Model)
		}
	}
	if !ok {
		return errorf(http.StatusBadRequest, "model=%.64q is not served here; the models are %s (the first is the default; GET /v1/models describes them)",
			o.Model, strings.Join(names, ", "))
	}
	o.Model = info.Model
	if o.Attention && info.Arch != decoder.ArchAttention {
		also := "serve an attention model (server.models)"
		if len(attending) > 0 {
			also = "ask for an attention model: " + strings.Join(attending, " or ")
		}
		return errorf(http.StatusBadRequest, "attention=1 asks for attention weights, but model %s is a merge model, which has none: leave attention out, or %s", info.Model, also)
	}
	return nil
}

// parseRequest reads the images and options of a request, multipart or raw,
// and checks the options against the models served once the body is read
// (pickModel; models returns them).
func (s *Server) parseRequest(c *gin.Context, models func() Model) (*request, error) {
	r := c.Request
	if r.ContentLength > s.cfg.MaxBodyBytes {
		// Refused before a byte of it is read: a client that asked to continue
		// (Expect: 100-continue) is told now, not after sending the limit's worth.
		return nil, s.bodyTooLarge()
	}
	req := &request{body: newBodyReader(s, c)}
	r.Body = req.body
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// Decoding it would be one more bomb to bound, for no gain.
		return req, errorf(http.StatusUnsupportedMediaType, "Content-Encoding %.32q is not accepted: send the images as they are (JPEG, PNG and WebP are compressed already)", ce)
	}
	// Options come from the query or the form, each at most once, and only
	// the known ones: a misspelt option ("beams=5") would otherwise be ignored
	// without a word, and a repeated one would leave which value counts unsaid.
	fields := map[string]string{}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// URL.Query drops the pairs it cannot read: "?beam=9;x=1" was
		// captioned at the default beam.
		return req, errorf(http.StatusBadRequest, "malformed query string (%v): separate the options with &, and percent-encode ;, %% and & inside a value", err)
	}
	for _, k := range slices.Sorted(maps.Keys(query)) { // the same error for the same request
		vs := query[k]
		if !isOption(k) {
			return req, errorf(http.StatusBadRequest, "unknown query parameter %.64q: the options are %s", k, strings.Join(optionFields, ", "))
		}
		if len(vs) > 1 {
			return req, errorf(http.StatusBadRequest, "option %s is given %d times in the query; give it once", k, len(vs))
		}
		fields[k] = vs[0]
	}
	options := func() error {
		var err error
		if req.opts, req.timeout, err = s.parseOptions(fields); err != nil {
			return err
		}
		return pickModel(models(), &req.opts)
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct != "" && err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		// A parameter given twice, say: the media type is lost with it, and
		// "not accepted" would be told of the type that was sent.
		return req, errorf(http.StatusBadRequest, "Content-Type %.128q cannot be parsed (%v): send multipart/form-data with its boundary, as a form library or curl -F writes it, or the raw image with one type, such as image/jpeg", ct, err)
	}
	multipart := mt == "multipart/form-data"
	switch {
	case multipart:
		if err := s.readMultipart(r, fields, req); err != nil {
			return req, err
		}
		req.body.finish()
	case ct == "" || strings.HasPrefix(mt, "image/") || mt == "application/octet-stream":
		// A raw body's options are all in the query: checked before a byte of
		// the body is read, so that a client that asked to continue (Expect:
		// 100-continue) learns of a bad one before sending the image.
		if err := options(); err != nil {
			return req, err
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return req, s.bodyError(req.body, err)
		}
		req.images = append(req.images, &upload{data: data})
	default:
		return req, errorf(http.StatusUnsupportedMediaType,
			"Content-Type %q is not accepted: send multipart/form-data with the image in field \"image\", or the raw image bytes with Content-Type image/jpeg (or image/png, ...)", ct)
	}
	if len(req.images) == 0 {
		return req, errorf(http.StatusBadRequest, "no image in the request: send the file in multipart field \"image\" (repeat the field for several images)")
	}
	if multipart { // its options may be form fields too
		return req, options()
	}
	// Again: a reload may have changed the models while the body arrived.
	return req, pickModel(models(), &req.opts)
}

// maxFieldBytes bounds a non-file form field (an option value).
const maxFieldBytes = 64

func (s *Server) readMultipart(r *http.Request, fields map[string]string, req *request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed multipart body: %v", err)
	}
	body := req.body
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.multipartError(body, err)
		}
		name := p.FormName()
		switch {
		case name == "image":
			// Refused at the part past the limit, not after the last: a body
			// of 600,000 empty image parts took 400 MB and seconds of CPU
			// before the count was checked.
			if len(req.images) == s.cfg.MaxImages {
				return errorf(http.StatusRequestEntityTooLarge, "more than %d images in one request (server.max_images): split them over several requests", s.cfg.MaxImages)
			}
			data, err := io.ReadAll(p)
			if err != nil {
				return s.multipartError(body, err)
			}
			req.images = append(req.images, &upload{name: cleanFilename(p.FileName()), field: p.FileName() == "", data: data})
		case isOption(name):
			v, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
			if err != nil {
				return s.multipartError(body, err)
			}
			if len(v) > maxFieldBytes {
				return errorf(http.StatusBadRequest, "form field %q is longer than %d bytes", name, maxFieldBytes)
			}
			if _, twice := fields[name]; twice {
				return errorf(http.StatusBadRequest, "option %s is given twice (in the form, or in the query and the form); give it once", name)
			}
			fields[name] = string(v)
		default:
			return errorf(http.StatusBadRequest, "unknown form field %.64q: the fields are image (the file, repeatable), %s", name, strings.Join(optionFields, ", "))
		}
	}
}

func isOption(name string) bool {
	for _, f := range optionFields {
		if name == f {
			return true
		}
	}
	return false
}

// multipartError is bodyError for a multipart body, whose parser says EOF
// both for a body that ends inside a part and for one where no part starts.
func (s *Server) multipartError(body *bodyReader, err error) error {
	var mbe *http.MaxBytesError
	if body.failed == nil && !errors.As(err, &mbe) && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return errorf(http.StatusBadRequest, "malformed multipart body: it ends before its closing boundary, or no part starts with the boundary its Content-Type names; send it as a form library or curl -F writes it")
	}
	return s.bodyError(body, err)
}

func (s *Server) bodyTooLarge() error {
	return errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (server.max_body_bytes): send smaller images or fewer per request", s.cfg.MaxBodyBytes)
}

func (s *Server) bodyError(body *bodyReader, err error) error {
	if body.failed != nil { // too slow, too late, or over the upload budget
		return body.failed
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return s.bodyTooLarge()
	}
	return errorf(http.StatusBadRequest, "reading the request body: %v", err)
}

// parseOptions reads the request's decode options (the pipeline's Decoding
// checks them against server.max_beam and fills the defaults) and its timeout.
func (s *Server) parseOptions(f map[string]string) (Options, time.Duration, error) {
	o, err := s.decoding.ParseOptions(f)
	if err != nil {
		return o, 0, errorf(http.StatusBadRequest, "%s", err)
	}
	timeoutMs := int(s.cfg.RequestTimeout.Milliseconds())
	if v, ok := f["timeout_ms"]; ok {
		if timeoutMs, err = pipeline.ParseField("timeout_ms", v, 1, int(s.cfg.MaxRequestTimeout.Milliseconds())); err != nil {
			return o, 0, errorf(http.StatusBadRequest, "%s", err)
		}
	}
	return o, time.Duration(timeoutMs) * time.Millisecond, nil
}

// budget reads every image's header and refuses, each on its own, those that
// cannot be read or exceed the per-image limits; the decoding of the others
// together must stay within image.max_request_decoded_bytes, or the request
// is refused before any image is decoded.
func (s *Server) budget(pre pipeline.Preprocessor, images []*upload) error {
	var total int64
	for _, u := range images {
		h, cost, err := pre.Cost(u.data)
		if err != nil {
			u.fail(imageError(err))
			continue
		}
		u.cost, u.heavy = cost, cost > heavyDecodeBytes || h.Scans > heavyScans
		total += cost
	}
	if total > s.maxRequestDecoded {
		return errorf(http.StatusRequestEntityTooLarge,
			"the images of this request decode to %s together, more than the limit of %s per request (image.max_request_decoded_bytes): send them in several requests, or smaller images",
			imgproc.Size(total), imgproc.Limit(s.maxRequestDecoded))
	}
	return nil
}

// fail records why u has no caption.
func (u *upload) fail(err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{status: http.StatusInternalServerError, msg: "preparing the image failed: " + err.Error()}
	}
	if u.field && he.status == http.StatusUnsupportedMediaType {
		he = &httpError{status: he.status, msg: he.msg + `; this "image" part has no file name, as a form field's text has: send the photo as a file (curl -F image=@photo.jpg, with the @)`}
	}
	u.err = he
	u.data = nil
}

// prepare decodes, preprocesses and (for the live page) thumbnails every
// image, in parallel, in the handler (never in the batcher, which must keep
// the device busy). An image that fails records its error and the others
// carry on. When ctx ends first, prepare returns its error at once: images not
// started are never decoded, and those being decoded (a decoder cannot be
// stopped half-way) finish on their own, holding their decode slots, while the
// request is answered.
func (s *Server) prepare(ctx context.Context, pre pipeline.Preprocessor, images []*upload) error {
	var wg sync.WaitGroup
	for _, u := range images {
		wg.Go(func() {
			if err := s.prepareOne(ctx, pre, u); err != nil && ctx.Err() == nil {
				u.fail(err)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return ctx.Err()
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", name)
}

// An image is heavy when decoding it allocates more than heavyDecodeBytes (a
// 16-bit PNG, a large progressive JPEG: tens of times an ordinary photo's few
// MB) or it has more than heavyScans scans, each a pass over the image (an
// encoder's progressive JPEG has about 10). Heavy images also take one of
// heavySlots, so that ordinary uploads always find a decode slot of their own
// however many heavy ones arrive.
const (
	heavyDecodeBytes = 64 << 20
	heavyScans       = 32
)

func (s *Server) prepareOne(ctx context.Context, pre pipeline.Preprocessor, u *upload) error {
	if u.heavy {
		release, err := acquire(ctx, s.heavySlots)
		if err != nil {
			return err
		}
		defer func() {
			release()
			// The last large picture decoded is garbage now: hand the memory
			// back unless another heavy decode would take it again at once.
			if u.cost > heavyDecodeBytes && len(s.heavySlots) == 0 {
				s.heavyGarbage.request()
			}
		}()
	}
	release, err := acquire(ctx, s.prepSlots)
	if err != nil {
		return err
	}
	defer release()
	if u.heavy {
		lowPriority(func() { err = s.decode(pre, u) })
		return err
	}
	return s.decode(pre, u)
}

// memoryReturner returns the heap's free memory to the system
// (debug.FreeOSMemory: a full collection, then the release) in the background:
// never two at a time, at most once a memoryReturnGap, and once more when
// asked meanwhile. Go paces its next collection by the heap's peak, so after a
// large decode an idle server kept the picture's memory until the collection
// forced every two minutes: 480-600 MB after one 5792² 16-bit PNG, against
// 210 at rest. A collection costs about 26 ms of CPU at a 220 MB heap.
type memoryReturner struct {
	mu             sync.Mutex
	running, again bool
}

func (m *memoryReturner) request() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		m.again = true
		return
	}
	m.running = true
	go m.run()
}

// memoryReturnGap is the least time between two returns.
const memoryReturnGap = time.Second

func (m *memoryReturner) run() {
	for {
		debug.FreeOSMemory()
		time.Sleep(memoryReturnGap)
		m.mu.Lock()
		if !m.again {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.again = false
		m.mu.Unlock()
	}
}

func (s *Server) decode(pre pipeline.Preprocessor, u *upload) error {
	t0 := time.Now()
	im, err := pre.Bytes(u.data)
	u.data = nil
	if err != nil {
		return imageError(err)
	}
	u.width, u.height = im.Size.X, im.Size.Y
	u.tensor = im.Tensor
	// The thumbnail comes from the picture as decoded for the tensor, which for
	// a large JPEG is a DCT-scaled one: much smaller than the photo.
	if s.liveOn() {
		u.thumb = thumbnail(im.Decoded, s.cfg.ThumbSize)
	}
	u.prep = time.Since(t0)
	s.metrics.preprocess.Observe(u.prep.Seconds())
	return nil
}

// heavyNice is the priority heavy images are decoded at: the lowest, so that
// they take only the CPU time that captioning leaves (the encoder's and the
// decoder's threads, and ordinary uploads, run at the process's own).
const heavyNice = 19

// lowPriority runs f on an OS thread of its own at heavyNice, and returns
// when f has. The thread is never given back to the Go scheduler (its
// priority cannot be raised again without privileges): it ends with f.
func lowPriority(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		niceThread(heavyNice)
		f()
	}()
	<-done
}

// acquire takes a slot of sem, or returns ctx's error if it ends first (the
// request's deadline, or its client gone); release gives the slot back.
func acquire(ctx context.Context, sem chan struct{}) (release func(), err error) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Both may have been ready: an ended request decodes nothing.
	if err := ctx.Err(); err != nil {
		<-sem
		return nil, err
	}
	return func() { <-sem }, nil
}

// thumbnail returns img as a small JPEG data URL, longest side side pixels, for
// the live page: a few KB per caption, no file storage, no extra request.
func thumbnail(img image.Image, side int) string {
	var buf bytes.Buffer
	buf.WriteString("data:image/jpeg;base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &buf)
	if err := imgproc.EncodeJPEG(enc, imgproc.Thumbnail(img, side), 80); err != nil {
		panic("server: jpeg encoding into memory failed: " + err.Error()) // cannot fail on a bytes.Buffer
	}
	enc.Close()
	return buf.String()
}

// imageError maps imgproc's typed errors to statuses; its messages already say
// what was wrong and what is accepted.
func imageError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "imgproc: ")
	var tooLarge *imgproc.TooLargeError
	var corrupt *imgproc.CorruptError
	switch {
	case errors.Is(err, imgproc.ErrEmpty), errors.As(err, &corrupt):
		return errorf(http.StatusBadRequest, "%s", msg)
	case errors.Is(err, imgproc.ErrUnsupported):
		return errorf(http.StatusUnsupportedMediaType, "%s", msg)
	case errors.As(err, &tooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "%s", msg)
	}
	return err
}
