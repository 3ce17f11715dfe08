package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/pipeline"
)

// httpError is an error with the status it answers.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration // sent as Retry-After when positive (429)
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// upload is one image of a request as it moves through the handler.
type upload struct {
	name   string // multipart file name, "" for a raw body
	data   []byte
	width  int
	height int
	tensor []float32
	thumb  string // data URL
	prep   time.Duration
	reply  <-chan reply
}

// request is a parsed POST /v1/captions.
type request struct {
	opts    Options
	timeout time.Duration
	images  []*upload
}

// optionFields are the options a request may set as query or form fields.
var optionFields = []string{"beam", "max_len", "alternatives", "attention", "timeout_ms"}

func (s *Server) postCaptions(c *gin.Context) {
	b := s.readyBatcher(c)
	if b == nil {
		return
	}
	t0 := time.Now()
	// A place in the queue is held before the body is read, so a full server
	// answers 429 without spending anything on the request.
	if err := b.Reserve(1); err != nil {
		s.fail(c, s.submitError(b, err))
		return
	}
	held := 1
	defer func() { b.Release(held) }() // places not taken by a submitted image
	req, err := s.parseRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if more := len(req.images) - held; more > 0 {
		if err := b.Reserve(more); err != nil {
			s.fail(c, s.submitError(b, err))
			return
		}
		held += more
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), req.timeout)
	defer cancel() // also drops queued images of a request that fails half-way
	if err := s.prepare(b.Model().Preprocessor(), req.images); err != nil {
		s.fail(c, err)
		return
	}
	for _, u := range req.images {
		u.reply, err = b.Submit(ctx, u.tensor, req.opts)
		if err != nil {
			s.fail(c, s.submitError(b, err))
			return
		}
		held--
		u.tensor = nil
	}
	out := make([]gin.H, len(req.images))
	for i, u := range req.images {
		r, err := b.Wait(ctx, u.reply)
		if err != nil {
			s.fail(c, s.waitError(c, req, err))
			return
		}
		out[i] = captionJSON(i, u, r, time.Since(t0))
		s.live.publish(liveEvent(u, r))
	}
	c.JSON(http.StatusOK, gin.H{"captions": out})
}

// alternativesJSON is the n-best list as the API and the live page show it.
func alternativesJSON(r Captioned) []gin.H {
	alts := make([]gin.H, len(r.Alternatives))
	for k, a := range r.Alternatives {
		alts[k] = gin.H{"caption": a.Caption, "score": a.Score}
	}
	return alts
}

func captionJSON(i int, u *upload, r Captioned, total time.Duration) gin.H {
	h := gin.H{
		"index": i, "filename": u.name, "width": u.width, "height": u.height,
		"caption": r.Caption, "score": r.Score, "alternatives": alternativesJSON(r),
		"model":      gin.H{"name": r.Model, "version": r.Version},
		"batch_size": r.BatchSize,
		"timings_ms": gin.H{
			"preprocess": ms(u.prep), "queue": ms(r.QueueWait),
			"encode": ms(r.Encode), "decode": ms(r.Decode), "total": ms(total),
		},
	}
	if r.Attention != nil {
		h["attention"] = r.Attention
	}
	return h
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fail answers err: an *httpError with its status, anything else as a 500.
func (s *Server) fail(c *gin.Context, err error) {
	var he *httpError
	if errors.As(err, &he) {
		if he.status == statusClientGone {
			c.Abort()
			return
		}
		if he.retryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(int(he.retryAfter/time.Second)))
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
			"no caption within the request's deadline of %s: the server is busy; retry later, send fewer images, or allow more time with timeout_ms (at most %d)",
			req.timeout, s.cfg.MaxRequestTimeout.Milliseconds())
	case errors.Is(err, ErrStopped):
		return errorf(http.StatusServiceUnavailable, "the server shut down before this image was captioned; retry")
	case errors.Is(err, decoder.ErrNoAttention):
		return errorf(http.StatusBadRequest,
			"attention=1 asks for attention weights, but the loaded model is a merge model, which has none: leave attention out, or serve an attention model (decoder.arch: attention)")
	}
	return err
}

// parseRequest reads the images and options of a request, multipart or raw.
func (s *Server) parseRequest(c *gin.Context) (*request, error) {
	r := c.Request
	r.Body = http.MaxBytesReader(c.Writer, r.Body, s.cfg.MaxBodyBytes)
	fields := map[string]string{}
	for _, k := range optionFields {
		if v, ok := c.GetQuery(k); ok {
			fields[k] = v
		}
	}
	req := &request{}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "multipart/form-data":
		if err := s.readMultipart(r, fields, req); err != nil {
			return nil, err
		}
	case ct == "" || strings.HasPrefix(mt, "image/") || mt == "application/octet-stream":
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, s.bodyError(err)
		}
		req.images = append(req.images, &upload{data: data})
	default:
		return nil, errorf(http.StatusUnsupportedMediaType,
			"Content-Type %q is not accepted: send multipart/form-data with the image in field \"image\", or the raw image bytes with Content-Type image/jpeg (or image/png, ...)", ct)
	}
	if len(req.images) == 0 {
		return nil, errorf(http.StatusBadRequest, "no image in the request: send the file in multipart field \"image\" (repeat the field for several images)")
	}
	if len(req.images) > s.cfg.MaxImages {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%d images in one request, the limit is %d (server.max_images): split them over several requests", len(req.images), s.cfg.MaxImages)
	}
	var err error
	req.opts, req.timeout, err = s.parseOptions(fields)
	return req, err
}

// maxFieldBytes bounds a non-file form field (an option value).
const maxFieldBytes = 64

func (s *Server) readMultipart(r *http.Request, fields map[string]string, req *request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed multipart body: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.bodyError(err)
		}
		name := p.FormName()
		switch {
		case name == "image":
			data, err := io.ReadAll(p)
			if err != nil {
				return s.bodyError(err)
			}
			req.images = append(req.images, &upload{name: boundedFilename(p.FileName()), data: data})
		case isOption(name):
			v, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
			if err != nil {
				return s.bodyError(err)
			}
			if len(v) > maxFieldBytes {
				return errorf(http.StatusBadRequest, "form field %q is longer than %d bytes", name, maxFieldBytes)
			}
			fields[name] = string(v)
		default:
			return errorf(http.StatusBadRequest, "unknown form field %q: the fields are image (the file, repeatable), %s", name, strings.Join(optionFields, ", "))
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

func (s *Server) bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, "request body is larger than the limit of %d bytes (server.max_body_bytes): send smaller images or fewer per request", s.cfg.MaxBodyBytes)
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

// prepare decodes, preprocesses and thumbnails every image, in parallel, in the
// handler (never in the batcher, which must keep the device busy). The first
// failing image decides the answer.
func (s *Server) prepare(pre pipeline.Preprocessor, images []*upload) error {
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	for i, u := range images {
		wg.Go(func() { errs[i] = s.prepareOne(pre, u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			var he *httpError
			if errors.As(err, &he) && len(images) > 1 {
				he.msg = fmt.Sprintf("image %d%s: %s", i+1, nameSuffix(images[i].name), he.msg)
			}
			return err
		}
	}
	return nil
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", name)
}

func (s *Server) prepareOne(pre pipeline.Preprocessor, u *upload) error {
	s.prepSlots <- struct{}{}
	defer func() { <-s.prepSlots }()
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
	u.thumb = thumbnail(im.Decoded, s.cfg.ThumbSize)
	u.prep = time.Since(t0)
	return nil
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
