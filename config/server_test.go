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
		{"server:\n  queue_size: 0\n", "server.queue_size: 0 must be positive"},
		{"server:\n  max_beam: 40\n", "server.max_beam: 40 is outside 1..32"},
		{"server:\n  thumb_size: 8\n", "server.thumb_size: 8 is outside 16..512 pixels"},
		{"server:\n  max_body_bytes: 10\n", "server.max_body_bytes: 10 is below 1024"},
		{"server:\n  shutdown_grace: 0s\n", "server.shutdown_grace: 0s must be a positive duration"},
		{"server:\n  request_timeout: 5m\n", "server.max_request_timeout: 2m0s is below server.request_timeout 5m0s"},
		{"server:\n  max_request_timeout: 10m\n", "server.write_timeout: 3m0s is below server.max_request_timeout 10m0s"},
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
