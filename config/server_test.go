package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

func TestServerDefaultsAreValid(t *testing.T) {
	c, err := Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBatch != 8 || c.Server.QueueSize != 64 || c.Server.MaxRequestTimeout < c.Server.RequestTimeout {
		t.Errorf("server defaults %+v", c.Server)
	}
}

func TestServerValidation(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"server:\n  addr: localhost\n", `server.addr: "localhost" is not HOST:PORT`},
		{"server:\n  admin_token: \"(set; not shown)\"\n", `server.admin_token: "(set; not shown)" is what captioner config prints for a token it hides, not a token: set the real one (from your Secret), or remove the key`},
		{"server:\n  addr: localhost:99999\n", `server.addr: "localhost:99999": port "99999" is not a number in 0..65535 (0: any free port) nor a service name`},
		{"server:\n  queue_size: 0\n", "server.queue_size: 0 must be positive"},
		{"server:\n  max_beam: 40\n", "server.max_beam: 40 is outside 1..32"},
		{"server:\n  thumb_size: 8\n", "server.thumb_size: 8 is outside 16..512 pixels"},
		{"server:\n  max_body_bytes: 10\n", "server.max_body_bytes: 10 is below 1024"},
		{"server:\n  shutdown_grace: 0s\n", "server.shutdown_grace: 0s must be a positive duration"},
		{"server:\n  request_timeout: 5m\n", "server.max_request_timeout: 2m0s is below server.request_timeout 5m0s"},
		{"server:\n  max_request_timeout: 10m\n", "server.write_timeout: 3m0s is below server.max_request_timeout 10m0s"},
		{"server:\n  live: on\n", `server.live: "on" is not one of auto, off, public, token`},
		{"server:\n  live: token\n", "server.live: token needs server.live_token: set it to a long random string (e.g. openssl rand -hex 16)"},
		{"server:\n  live_token: abc\n", "server.live_token is set but server.live is auto, so the token protects nothing; set server.live: token"},
		{"server:\n  live_max_per_client: 0\n", "server.live_max_per_client: 0 must be positive"},
		{"server:\n  queue_size: 8\n  max_images: 16\n", "server.max_images: 16 is above server.queue_size 8, so a request of more images than the queue holds would be refused as busy (429) however often it is retried; lower it or raise server.queue_size"},
		{"server:\n  max_connections: 256\n", "server.live_max_viewers: 256 is not below server.max_connections 256, so live streams could hold every connection; lower it or raise server.max_connections"},
		{"server:\n  models: [models/a, \"\"]\n", "server.models: an empty folder name; list caption model folders, e.g. [models/flickr8k-merge-lstm]"},
		{"server:\n  trusted_proxies: [10.0.0.1, 10.0.0.0/8, proxy.local]\n", `server.trusted_proxies: "proxy.local" is neither an IP address nor a CIDR range (e.g. 10.0.0.1 or 10.0.0.0/8)`},
	} {
		file := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(file, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(viper.New(), file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
}

func TestGPUConfigLoads(t *testing.T) {
	c, err := Load(viper.New(), filepath.Join("..", "configs", "gpu.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Device != "cuda" || c.Server.MaxBatch != 64 || c.Server.QueueSize != 512 {
		t.Errorf("gpu.yaml: device %s max_batch %d queue_size %d", c.Device, c.Server.MaxBatch, c.Server.QueueSize)
	}
}

func TestLoopbackAndLiveMode(t *testing.T) {
	for _, tc := range []struct {
		addr, live string
		loopback   bool
		mode       string
	}{
		{"127.0.0.1:8080", "auto", true, "local"},
		{"127.1.2.3:8080", "auto", true, "local"},
		{"[::1]:8080", "auto", true, "local"},
		{"localhost:8080", "auto", true, "local"},
		{"LocalHost:8080", "auto", true, "local"}, // host names are case-insensitive
		{":8080", "auto", false, "off"},
		{"0.0.0.0:8080", "auto", false, "off"},
		{"[::]:8080", "auto", false, "off"},
		{"192.168.1.5:8080", "auto", false, "off"},
		{"0.0.0.0:8080", "public", false, "public"},
		{"127.0.0.1:8080", "off", true, "off"},
		{"0.0.0.0:8080", "token", false, "token"},
	} {
		c := Server{Addr: tc.addr, Live: tc.live}
		if c.Loopback() != tc.loopback || c.LiveMode() != tc.mode {
			t.Errorf("addr %s live %s: loopback %v mode %s, want %v %s", tc.addr, tc.live, c.Loopback(), c.LiveMode(), tc.loopback, tc.mode)
		}
	}
}

// A flag's list drops the spaces around its items too (--models "a, b").
func TestListFromAFlagIsTrimmed(t *testing.T) {
	v := viper.New()
	v.Set("server.models", []string{"models/a", " models/b "}) // as pflag's string slice reaches viper
	c, err := LoadWithFlags(v, "", map[string]string{"server.models": "models"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Server.Models, "|"); got != "models/a|models/b" {
		t.Errorf("server.models %q, want models/a|models/b", got)
	}
}

// An empty string where a list goes, in a file, is an empty list.
func TestEmptyListInFile(t *testing.T) {
	c, err := Load(viper.New(), writeYAML(t, "server:\n  trusted_proxies: \"\"\n  allowed_hosts: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Server.TrustedProxies) != 0 || len(c.Server.AllowedHosts) != 0 {
		t.Errorf("empty lists: %q and %q", c.Server.TrustedProxies, c.Server.AllowedHosts)
	}
}

// List keys take comma-separated environment variables, spaces around the
// items dropped (a space after a comma was refused).
func TestListsFromEnvironment(t *testing.T) {
	t.Setenv("CAPTIONER_SERVER_MODELS", "models/flickr8k-merge-lstm,/srv/models/other")
	t.Setenv("CAPTIONER_SERVER_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16 ")
	c, err := Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Server.Models, " "); got != "models/flickr8k-merge-lstm /srv/models/other" {
		t.Errorf("server.models %q", got)
	}
	if got := strings.Join(c.Server.TrustedProxies, " "); got != "10.0.0.1 192.168.0.0/16" {
		t.Errorf("trusted proxies %q", got)
	}
}
