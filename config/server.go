package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Server configures captioner serve. The server owns this file: add fields with
// a one-line reason each. Defaults suit 2 CPU cores; configs/gpu.yaml has
// GPU-sized batches.
type Server struct {
	// Addr is the listen address, HOST:PORT; loopback by default so a fresh install
	// is not exposed to the network.
	Addr string `mapstructure:"addr"`
	// Models are caption model folders served beside the default (model): the
	// encoder is shared, so each costs its decoder's weights only, and a
	// request picks one by its folder's name (the API's model field).
	Models []string `mapstructure:"models"`
	// MaxBatch is the largest batch the scheduler forms; on 2 cores the encoder's
	// images/s stop growing past ~8 while latency keeps growing.
	MaxBatch int `mapstructure:"max_batch"`
	// MaxQueueDelay is how long the oldest queued request may wait for a batch to
	// fill, timed from its arrival; small next to one encoder pass (~30 ms on CPU).
	// A batch waits only while more images are being prepared: a lone request
	// is not delayed.
	MaxQueueDelay time.Duration `mapstructure:"max_queue_delay"`
	// QueueSize bounds the images waiting for a batch; one more gets 429 at once,
	// so memory (600 KB per queued image) and waiting time stay bounded.
	QueueSize int `mapstructure:"queue_size"`
	// RequestTimeout is a request's deadline unless it asks for another (timeout_ms).
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// MaxRequestTimeout caps the deadline a request may ask for.
	MaxRequestTimeout time.Duration `mapstructure:"max_request_timeout"`
	// MaxBodyBytes limits a request body (all images together); more gets 413.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// MaxImages limits images in one request, so one client cannot fill the queue alone.
	MaxImages int `mapstructure:"max_images"`
	// MaxBeam caps the beam width a request may ask for: decode time grows with it.
	MaxBeam int `mapstructure:"max_beam"`
	// ReadHeaderTimeout bounds reading request headers (slowloris), and any
	// pause in the arrival of a request body.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included, however its
	// bytes trickle in.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// MinUploadRate is the slowest a request body may arrive, in bytes per second
	// averaged from the start of the body (after a one-second grace): a client
	// trickling bytes is answered 408 within seconds instead of holding its
	// connection until read_timeout.
	MinUploadRate int `mapstructure:"min_upload_rate"`
	// MaxUploadBytes bounds the request bodies held at once, received or being
	// received, before their images are decoded: bodies are read before a queue
	// place is taken, and this keeps their memory bounded; beyond it 503. A body
	// of declared length counts all of it from its first byte.
	MaxUploadBytes int64 `mapstructure:"max_upload_bytes"`
	// WriteTimeout bounds handling plus writing a response; the /live stream is exempt.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// ShutdownGrace is how long SIGTERM waits for accepted requests to finish.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	// AdminToken, when set, is the bearer token POST /admin/reload requires;
	// when empty the endpoint answers loopback clients of a loopback server
	// only, and not what a proxy passes on (a proxy's headers, or a
	// TrustedProxies address).
	AdminToken string `mapstructure:"admin_token"`
	// TrustedProxies lists the proxies (IPs or CIDRs) whose X-Forwarded-For and
	// X-Real-IP name the client in logs and per-client limits; empty trusts none,
	// so a client cannot choose the address it is recorded under. A loopback
	// address listed is a proxy on this machine: its requests are not local
	// (admin without a token, live auto).
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// AllowedHosts are the host names a loopback server answers besides
	// localhost and loopback addresses (a reverse proxy on the same machine that
	// keeps the client's Host): other Host headers are refused, so a web page
	// cannot reach the server by DNS rebinding.
	AllowedHosts []string `mapstructure:"allowed_hosts"`
	// MaxConnections caps open client connections, so they cannot exhaust file
	// descriptors and memory: at the cap a new one replaces the connection
	// waiting longest without a request (an idle keep-alive, or one that has
	// not sent its request yet), or is answered 503 when every connection is in
	// a request (a probe of /healthz, or of /readyz while ready, 200).
	MaxConnections int `mapstructure:"max_connections"`
	// Live is who may watch /live, which shows every upload's thumbnail, filename
	// and caption: off, public, token (viewers present server.live_token), or auto
	// (local when server.addr is loopback: requests made on the server's own
	// machine, not through a proxy; else off).
	Live string `mapstructure:"live"`
	// LiveToken is the token /live viewers present when server.live is token.
	LiveToken string `mapstructure:"live_token"`
	// LiveMaxPerClient caps the /live streams one client address may hold, so one
	// client cannot take every viewer slot.
	LiveMaxPerClient int `mapstructure:"live_max_per_client"`
	// LiveBuffer is how many captions a /live viewer may fall behind before it is
	// disconnected (its browser reconnects), so a slow viewer never slows captioning.
	LiveBuffer int `mapstructure:"live_buffer"`
	// LiveMaxViewers bounds concurrent /live streams (each holds a connection and a buffer).
	LiveMaxViewers int `mapstructure:"live_max_viewers"`
	// ThumbSize is the longest side in pixels of the JPEG thumbnails sent to /live.
	ThumbSize int `mapstructure:"thumb_size"`
}

func serverDefaults(v *viper.Viper) {
	v.SetDefault("server.addr", "127.0.0.1:8080")
	v.SetDefault("server.models", []string{})
	v.SetDefault("server.max_batch", 8)
	v.SetDefault("server.max_queue_delay", "10ms")
	v.SetDefault("server.queue_size", 64)
	v.SetDefault("server.request_timeout", "30s")
	v.SetDefault("server.max_request_timeout", "2m")
	v.SetDefault("server.max_body_bytes", 32<<20)
	v.SetDefault("server.max_images", 16)
	v.SetDefault("server.max_beam", 8)
	v.SetDefault("server.read_header_timeout", "5s")
	v.SetDefault("server.read_timeout", "1m")
	v.SetDefault("server.min_upload_rate", 16<<10)
	v.SetDefault("server.max_upload_bytes", 256<<20)
	v.SetDefault("server.write_timeout", "3m")
	v.SetDefault("server.idle_timeout", "2m")
	v.SetDefault("server.shutdown_grace", "30s")
	v.SetDefault("server.admin_token", "")
	v.SetDefault("server.trusted_proxies", []string{})
	v.SetDefault("server.allowed_hosts", []string{})
	v.SetDefault("server.max_connections", 1024)
	v.SetDefault("server.live", "auto")
	v.SetDefault("server.live_token", "")
	v.SetDefault("server.live_max_per_client", 4)
	v.SetDefault("server.live_buffer", 32)
	v.SetDefault("server.live_max_viewers", 256)
	v.SetDefault("server.thumb_size", 128)
}

func (c Server) validate() []error {
	var errs []error
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("server.addr: %q is not HOST:PORT (e.g. 127.0.0.1:8080, or :8080 for every interface): %v", c.Addr, err))
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		errs = append(errs, fmt.Errorf("server.addr: %q: port %q is not a number in 0..65535 (0: any free port) nor a service name", c.Addr, port))
	}
	for _, p := range []struct {
		key string
		val int
	}{
		{"server.max_batch", c.MaxBatch},
		{"server.queue_size", c.QueueSize},
		{"server.max_images", c.MaxImages},
		{"server.live_buffer", c.LiveBuffer},
		{"server.live_max_viewers", c.LiveMaxViewers},
		{"server.live_max_per_client", c.LiveMaxPerClient},
		{"server.max_connections", c.MaxConnections},
		{"server.min_upload_rate", c.MinUploadRate},
	} {
		if err := positive(p.key, p.val); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxBatch > MaxBatchSize {
		errs = append(errs, fmt.Errorf("server.max_batch: %d is above %d: the pipeline holds a whole batch's activations, sized for it at start", c.MaxBatch, MaxBatchSize))
	}
	if c.QueueSize > 0 && c.MaxImages > c.QueueSize {
		errs = append(errs, fmt.Errorf("server.max_images: %d is above server.queue_size %d, so a request of more images than the queue holds would be refused as busy (429) however often it is retried; lower it or raise server.queue_size", c.MaxImages, c.QueueSize))
	}
	if c.LiveMaxViewers >= c.MaxConnections {
		errs = append(errs, fmt.Errorf("server.live_max_viewers: %d is not below server.max_connections %d, so live streams could hold every connection; lower it or raise server.max_connections", c.LiveMaxViewers, c.MaxConnections))
	}
	errs = append(errs, c.validateLive()...)
	if slices.Contains(c.Models, "") { // one error for every empty name: "," holds two
		errs = append(errs, fmt.Errorf("server.models: an empty folder name; list caption model folders, e.g. [models/flickr8k-merge-lstm]"))
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			errs = append(errs, fmt.Errorf("server.trusted_proxies: %q is neither an IP address nor a CIDR range (e.g. 10.0.0.1 or 10.0.0.0/8)", p))
		}
	}
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") {
			errs = append(errs, fmt.Errorf("server.allowed_hosts: %q is not a host name (e.g. captions.example.com, without scheme or port)", h))
		}
	}
	if c.MaxBeam < 1 || c.MaxBeam > MaxBeam {
		errs = append(errs, fmt.Errorf("server.max_beam: %d is outside 1..%d", c.MaxBeam, MaxBeam))
	}
	if c.ThumbSize < 16 || c.ThumbSize > 512 {
		errs = append(errs, fmt.Errorf("server.thumb_size: %d is outside 16..512 pixels", c.ThumbSize))
	}
	if c.MaxBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("server.max_body_bytes: %d is below 1024; images need room (e.g. 33554432 for 32 MiB)", c.MaxBodyBytes))
	}
	if c.MaxUploadBytes < c.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("server.max_upload_bytes: %d is less than server.max_body_bytes (%d): a request at the body limit could never be received", c.MaxUploadBytes, c.MaxBodyBytes))
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"server.max_queue_delay", c.MaxQueueDelay},
		{"server.request_timeout", c.RequestTimeout},
		{"server.max_request_timeout", c.MaxRequestTimeout},
		{"server.read_header_timeout", c.ReadHeaderTimeout},
		{"server.read_timeout", c.ReadTimeout},
		{"server.write_timeout", c.WriteTimeout},
		{"server.idle_timeout", c.IdleTimeout},
		{"server.shutdown_grace", c.ShutdownGrace},
	} {
		if err := positiveDuration(d.key, d.val); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MaxRequestTimeout < c.RequestTimeout {
		errs = append(errs, fmt.Errorf("server.max_request_timeout: %s is below server.request_timeout %s; raise it or lower the default", c.MaxRequestTimeout, c.RequestTimeout))
	}
	if c.WriteTimeout < c.MaxRequestTimeout {
		errs = append(errs, fmt.Errorf("server.write_timeout: %s is below server.max_request_timeout %s, so a slow request would be cut off before its deadline; raise it", c.WriteTimeout, c.MaxRequestTimeout))
	}
	return errs
}

// Secrets are the settings that hold tokens, which come from Secrets:
// PrintableMap shows them as HiddenToken when set, and HiddenToken is refused
// as their value (a file copied from that output would make it a token).
var Secrets = []string{"server.admin_token", "server.live_token"}

// HiddenToken is what PrintableMap shows for a secret that is set.
const HiddenToken = "(set; not shown)"

// PrintableMap is Map with each secret that is set shown as HiddenToken, for
// captioner config: `kubectl exec ... captioner config` printed the tokens.
func (c *Config) PrintableMap() map[string]any {
	m := c.Map()
	for _, key := range Secrets {
		if sec, name := settingIn(m, key); sec[name] != "" {
			sec[name] = HiddenToken
		}
	}
	return m
}

// hiddenTokens refuses HiddenToken as a secret's value.
func (c *Config) hiddenTokens() []error {
	m := c.Map()
	var errs []error
	for _, key := range Secrets {
		if sec, name := settingIn(m, key); sec[name] == HiddenToken {
			errs = append(errs, fmt.Errorf("%s: %q is what captioner config prints for a token it hides, not a token: set the real one (from your Secret), or remove the key", key, HiddenToken))
		}
	}
	return errs
}

// settingIn is the section of Map's m that holds key ("server.admin_token"),
// and the key's name in it.
func settingIn(m map[string]any, key string) (map[string]any, string) {
	section, name, _ := strings.Cut(key, ".")
	return m[section].(map[string]any), name
}

func (c Server) validateLive() []error {
	if err := oneOf("server.live", c.Live, "auto", "off", "public", "token"); err != nil {
		return []error{err}
	}
	switch {
	case c.Live == "token" && c.LiveToken == "":
		return []error{errors.New("server.live: token needs server.live_token: set it to a long random string (e.g. openssl rand -hex 16)")}
	case c.Live != "token" && c.LiveToken != "":
		return []error{fmt.Errorf("server.live_token is set but server.live is %s, so the token protects nothing; set server.live: token", c.Live)}
	}
	return nil
}

// Loopback reports whether Addr listens on the loopback interface only
// (127.0.0.0/8, ::1 or localhost), unreachable from other machines.
func (c Server) Loopback() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	return err == nil && LoopbackHost(host)
}

// LoopbackHost reports whether host (no port; an IPv6 address without
// brackets) names the loopback interface: localhost, 127.0.0.0/8 or ::1.
func LoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
}

// LiveMode is Live with auto resolved: on a loopback server "local" (the
// server's own machine sees it; a proxy on it does not pass it on), else off.
func (c Server) LiveMode() string {
	if c.Live != "auto" {
		return c.Live
	}
	if c.Loopback() {
		return "local"
	}
	return "off"
}
