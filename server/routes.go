package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/server/web"
)

func init() { gin.SetMode(gin.ReleaseMode) }

func (s *Server) routes() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// A path with a slash too many is no route: gin's redirect to the path
	// without it came before the middleware (no Host check, no nosniff) and
	// answered HTML, where every answer is JSON.
	r.RedirectTrailingSlash = false
	// Only the configured proxies may name the client (X-Forwarded-For), in logs
	// and per-client limits; config has checked the list.
	if err := r.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		panic("server: server.trusted_proxies passed validation but gin refuses it: " + err.Error())
	}
	r.Use(s.requestLog, noSniff, s.recover)
	if s.loopback {
		r.Use(s.loopbackHost, s.loopbackOrigin)
	}
	r.NoRoute(func(c *gin.Context) {
		apiError(c, http.StatusNotFound, fmt.Sprintf("no route %s %.64s; the API is described at GET /openapi.json", shortMethod(c.Request.Method), c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		apiError(c, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %.64s; see GET /openapi.json for the methods it takes", shortMethod(c.Request.Method), c.Request.URL.Path))
	})

	// HEAD wherever GET answers (HTTP asks it of servers; monitors use it):
	// net/http drops the body. The live stream alone is GET only.
	getHead := func(path string, h ...gin.HandlerFunc) {
		r.GET(path, h...)
		r.HEAD(path, h...)
	}
	getHead("/", s.page("index.html"))
	getHead("/live", s.liveGate, s.page("live.html"))
	getHead("/static/*file", staticAsset)

	r.POST("/v1/captions", s.postCaptions)
	getHead("/v1/models", s.getModels)
	r.GET("/v1/live", s.liveGate, s.getLive)
	getHead("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	getHead("/readyz", s.getReady)
	getHead("/metrics", gin.WrapH(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	getHead("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPISpec) })
	r.POST("/admin/reload", s.adminOnly, s.postReload)
	return r
}

// staticFiles serves the pages' scripts and styles.
var staticFiles = http.FileServerFS(web.Static)

// staticAsset answers /static/NAME with an embedded script or style. The pages
// themselves are served only at / and /live, with their security headers and
// the live page's access check; anything else is a JSON 404 like every error.
func staticAsset(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	if st, err := fs.Stat(web.Static, name); err != nil || st.IsDir() || path.Ext(name) == ".html" {
		apiError(c, http.StatusNotFound, fmt.Sprintf("no file %.64q in /static: the pages are at / and /live", name))
		return
	}
	c.Request.URL.Path = "/" + name
	staticFiles.ServeHTTP(c.Writer, c.Request)
}

// pagePolicy is the pages' Content-Security-Policy: their scripts, styles and
// connections are the server's own files and API, images also the previews
// (blob:) and thumbnails (data:) they make, and no other site may frame them.
const pagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) page(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		b, err := web.Static.ReadFile(name)
		if err != nil {
			panic("server: embedded page missing: " + name) // a build defect, not a request error
		}
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", pagePolicy)
		h.Set("X-Frame-Options", "DENY")        // frame-ancestors for browsers without CSP 2
		h.Set("Referrer-Policy", "no-referrer") // /live?token= stays out of other sites' logs
		c.Data(http.StatusOK, "text/html; charset=utf-8", b)
	}
}

// loopbackHost refuses requests to a loopback server whose Host is not
// localhost, a loopback address or one of server.allowed_hosts. A web page
// can point a name of its own at 127.0.0.1 (DNS rebinding) and then read the
// server's answers as its own site's, the live stream's photos included; the
// Host header is the browser's word for that name, which it cannot forge.
func (s *Server) loopbackHost(c *gin.Context) {
	host := c.Request.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || config.LoopbackHost(host) || s.allowedHost(host) {
		return
	}
	apiError(c, http.StatusForbidden, fmt.Sprintf("Host %.64q is not this server's: it listens on loopback (server.addr) and answers localhost and loopback addresses; "+
		"if a reverse proxy on this machine forwards its clients' Host, add %.64q to server.allowed_hosts (CAPTIONER_SERVER_ALLOWED_HOSTS)", host, host))
}

// allowedHost says whether host is one of server.allowed_hosts.
func (s *Server) allowedHost(host string) bool {
	return slices.ContainsFunc(s.cfg.AllowedHosts, func(a string) bool { return strings.EqualFold(a, host) })
}

// loopbackOrigin refuses what a web page of another site sends a loopback
// server: a request whose Origin is not the server's own (the request's Host)
// nor one of server.allowed_hosts. A cross-site HTML form needs no CORS
// preflight, so any page its user opened could post photos to the server,
// each costing its CPU and shown on /live. Its own pages send its own origin;
// curl and scripts send none.
func (s *Server) loopbackOrigin(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		return
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && (strings.EqualFold(u.Host, c.Request.Host) || s.allowedHost(u.Hostname())) {
		return
	}
	apiError(c, http.StatusForbidden, fmt.Sprintf("Origin %.64q is another site's: this server listens on loopback (server.addr) and answers its own pages and clients that are no web page (curl, scripts); "+
		"if a reverse proxy on this machine serves it under another name, add that name to server.allowed_hosts (CAPTIONER_SERVER_ALLOWED_HOSTS)", origin))
}

// noSniff keeps browsers from reading any answer (an uploaded image echoed in
// an error, JSON) as another type, such as HTML.
func noSniff(c *gin.Context) { c.Header("X-Content-Type-Options", "nosniff") }

// apiError answers {"error": msg}. Messages say what went wrong and what to do.
func apiError(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// requestIDPattern accepts ids a proxy may have set; anything else is replaced so
// that logs cannot be forged through the header.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestLog gives each request an id (X-Request-Id, kept from the client when
// sane), logs it when it ends, and counts it in the metrics by route and status.
func (s *Server) requestLog(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if !requestIDPattern.MatchString(id) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Header("X-Request-Id", id)
	log := s.log.With("request_id", id)
	c.Set(logKey, log)
	defer func() {
		// A handler that drops the connection (the client closed its side)
		// panics with http.ErrAbortHandler, which net/http handles.
		p := recover()
		s.logRequest(c, log, start, p == http.ErrAbortHandler)
		if p != nil {
			panic(p)
		}
	}()
	c.Next()
}

// logRequest logs and counts a request that has ended; dropped says that its
// handler dropped the connection, answering nothing.
func (s *Server) logRequest(c *gin.Context, log *slog.Logger, start time.Time, dropped bool) {
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	if dropped {
		status = statusClientGone
	}
	d := time.Since(start)
	s.metrics.requests.WithLabelValues(route, methodLabel(c.Request.Method), strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
	level := slog.LevelInfo
	switch {
	case status == http.StatusServiceUnavailable && !s.ready():
		// Not ready is expected while the model loads and warms up (readyz,
		// clients retrying /v1/models) and while shutting down.
	case status >= 500:
		level = slog.LevelError
	case route == "/healthz" || route == "/readyz" || route == "/metrics":
		level = slog.LevelDebug // probes and scrapes would drown everything else
	}
	log.Log(c.Request.Context(), level, "request", "method", shortMethod(c.Request.Method), "route", route,
		"status", status, "duration_ms", ms(d), "bytes", c.Writer.Size(),
		"remote", c.ClientIP())
}

// methodLabel is a request's method as the metrics label it: HTTP's own
// methods by name, any other "other". net/http takes any token as a method,
// up to the header limit (1 MB), and each new label value is a series kept
// for the process's life: 4,000 made-up 32 KB methods grew the server by
// 190 MB and every scrape to 143 MB.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// shortMethod is a request's method as logs and errors show it: at most its
// first 32 bytes, quoted when it is none of HTTP's own.
func shortMethod(m string) string {
	if methodLabel(m) == m {
		return m
	}
	return fmt.Sprintf("%.32q", m)
}

// statusClientGone is nginx's 499: the client closed its side of the
// connection before the answer; the connection is dropped, and logs and
// metrics record it.
const statusClientGone = 499

const logKey = "log"

func reqLog(c *gin.Context) *slog.Logger { return c.MustGet(logKey).(*slog.Logger) }

// recover turns a handler panic into a 500 with the request id, so one bad
// request costs only itself.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			reqLog(c).Error("panic", "panic", p)
			apiError(c, http.StatusInternalServerError, "internal error; please report it with request id "+c.Writer.Header().Get("X-Request-Id"))
		}
	}()
	c.Next()
}

// formTypes are the Content-Types a cross-site HTML form (or a fetch without a
// preflight) can send.
var formTypes = []string{"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

// adminOnly admits requests bearing the configured token or, when no token is
// configured and the server listens on loopback only, requests from loopback.
// Anything a browser could send from another site is refused first: a request
// with an Origin header or a form Content-Type. The peer address is used,
// never X-Forwarded-For, which a client can set.
func (s *Server) adminOnly(c *gin.Context) {
	if c.GetHeader("Origin") != "" {
		apiError(c, http.StatusForbidden, "admin endpoints refuse requests with an Origin header, which browsers send from web pages: call them from curl or a script")
		return
	}
	ct := c.GetHeader("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	for _, f := range formTypes {
		if strings.EqualFold(strings.TrimSpace(mt), f) {
			apiError(c, http.StatusUnsupportedMediaType, "admin endpoints refuse Content-Type "+strconv.Quote(ct)+", which a web page's form can send: send no body")
			return
		}
	}
	if tok := s.cfg.AdminToken; tok != "" {
		switch got, ok := bearer(c); {
		case !ok:
			unauthorized(c, "admin endpoints need the header Authorization: Bearer <server.admin_token>")
		case !sameToken(got, tok):
			unauthorized(c, "the bearer token is not server.admin_token")
		}
		return
	}
	if !s.loopback {
		apiError(c, http.StatusForbidden, "admin endpoints need server.admin_token when server.addr ("+s.cfg.Addr+") is not loopback: set it and send Authorization: Bearer <server.admin_token>")
		return
	}
	if !s.fromThisMachine(c) {
		apiError(c, http.StatusForbidden, "admin endpoints answer only requests made on the server's machine unless server.admin_token is set, and this one came through a proxy or from another address: call from the server's machine, or configure a token")
		return
	}
}

// fromThisMachine reports whether a request was made on the server's own
// machine: its peer is a loopback address, and no proxy passed it on. A
// proxy on the same machine connects from loopback too, for every client it
// serves, so a request with a header proxies add (X-Forwarded-*, X-Real-IP,
// Forwarded, Via: curl sends none) or from a server.trusted_proxies address
// is not local. A proxy that adds none (nginx's bare proxy_pass, a TCP
// relay) cannot be told apart: list it in server.trusted_proxies.
func (s *Server) fromThisMachine(c *gin.Context) bool {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || !ip.IsLoopback() {
		return false
	}
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Forwarded", "Via"} {
		if c.GetHeader(h) != "" {
			return false
		}
	}
	return !slices.ContainsFunc(s.cfg.TrustedProxies, func(p string) bool {
		if _, n, err := net.ParseCIDR(p); err == nil {
			return n.Contains(ip)
		}
		return ip.Equal(net.ParseIP(p))
	})
}

// bearer is the token of an Authorization: Bearer header (the scheme's name
// in any case, as HTTP has it).
func bearer(c *gin.Context) (string, bool) {
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// unauthorized answers 401 with the challenge HTTP asks of it.
func unauthorized(c *gin.Context, msg string) {
	c.Header("WWW-Authenticate", `Bearer realm="captioner"`)
	apiError(c, http.StatusUnauthorized, msg)
}

// sameToken compares a presented token with the configured one in constant time.
func sameToken(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) postReload(c *gin.Context) {
	info, err := s.Reload(c.Request.Context())
	switch {
	case errors.Is(err, ErrReloadRunning):
		apiError(c, http.StatusConflict, err.Error())
	case err != nil:
		apiError(c, http.StatusInternalServerError, err.Error())
	default:
		c.JSON(http.StatusOK, modelJSON(info, true))
	}
}

func (s *Server) getReady(c *gin.Context) {
	b, why := s.serving()
	if b == nil {
		c.Header("Retry-After", "1") // as every 503 says when
		apiError(c, http.StatusServiceUnavailable, why)
		return
	}
	info := b.Model().Info()
	c.JSON(http.StatusOK, gin.H{"status": "ready", "model": info.Model, "version": info.Version})
}

// ready reports whether the server captions: /readyz answers 200.
func (s *Server) ready() bool {
	b, _ := s.serving()
	return b != nil
}

// serving is the batcher when the server captions, else nil and why not.
func (s *Server) serving() (*Batcher, string) {
	b := s.batcher.Load()
	if b == nil {
		return nil, "not ready: the model is loading and warming up; retry in a few seconds"
	}
	select {
	case <-b.Stopped():
		return nil, "not ready: the server is shutting down"
	default:
	}
	return b, ""
}

func (s *Server) getModels(c *gin.Context) {
	b := s.readyBatcher(c)
	if b == nil {
		return
	}
	infos := served(b.Model())
	out := make([]gin.H, len(infos))
	for k, i := range infos {
		out[k] = modelJSON(i, k == 0)
	}
	// The limits let a client (the upload page) split many photos over as
	// many requests as they need, instead of having them all refused.
	c.JSON(http.StatusOK, gin.H{"models": out, "limits": gin.H{"max_images": s.cfg.MaxImages, "max_body_bytes": s.cfg.MaxBodyBytes,
		"max_beam": s.cfg.MaxBeam, "max_len": config.MaxCaptionLen}})
}

// modelJSON describes a served model; isDefault marks the one that captions
// requests that name none.
func modelJSON(i Info, isDefault bool) gin.H {
	scores := i.Scores
	if scores == nil {
		scores = map[string]float64{}
	}
	return gin.H{"name": i.Model, "version": i.Version, "encoder": i.Encoder, "device": i.Device,
		"precision": i.Precision, "decoder_precision": i.DecoderPrecision, "vocab_size": i.Vocab, "scores": scores, "arch": i.Arch, "default": isDefault}
}

// readyBatcher returns the batcher, or answers 503 and returns nil.
func (s *Server) readyBatcher(c *gin.Context) *Batcher {
	b := s.batcher.Load()
	if b == nil {
		c.Header("Retry-After", "1") // as the answers at capacity say when
		apiError(c, http.StatusServiceUnavailable, "the model is still loading; retry in a few seconds (GET /readyz answers 200 once it is ready)")
	}
	return b
}
