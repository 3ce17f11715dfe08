package check

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
)

// repo is the repository root, relative to this package.
const repo = "../.."

// Variables of captioner's that are not configuration keys: the configuration file (the
// --config flag's default), and the folder of imported encoder weights (encoder.CacheDir;
// TestCacheEnv holds the encoder to it).
const (
	configEnv = config.EnvPrefix + "_CONFIG"
	cacheEnv  = config.EnvPrefix + "_CACHE"
)

// checkEnvNames reports every CAPTIONER_* variable that names no configuration key:
// viper ignores those silently, so a misspelt one would never take effect.
func checkEnvNames(env map[string]string) error {
	var errs []error
	for _, name := range config.UnknownEnv(sortedKeys(env)) {
		errs = append(errs, fmt.Errorf("environment variable %s sets no configuration key (keys: %s)",
			name, strings.Join(config.Keys(), ", ")))
	}
	return errors.Join(errs...)
}

// checkFileKeys reports every key of a YAML configuration file that config.Keys()
// does not list.
func checkFileKeys(data []byte) error {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return err
	}
	known := config.Keys()
	var errs []error
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, k := range sortedKeys(m) {
			if sub, ok := m[k].(map[string]any); ok {
				walk(prefix+k+".", sub)
			} else if !slices.Contains(known, prefix+k) {
				errs = append(errs, fmt.Errorf("%s is not a configuration key (keys: %s)", prefix+k, strings.Join(known, ", ")))
			}
		}
	}
	walk("", m)
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// runConfig returns the configuration captioner builds inside a container whose
// configuration file (CAPTIONER_CONFIG) holds data and whose environment is env, through
// config.Load itself, after checking every key and variable name. The test process's own
// CAPTIONER_* variables are cleared for the test so that only the container's count.
func runConfig(t *testing.T, where string, data []byte, env map[string]string) *config.Config {
	t.Helper()
	if err := checkFileKeys(data); err != nil {
		t.Errorf("%s: configuration file: %v", where, err)
	}
	if err := checkEnvNames(env); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix+"_") {
			t.Setenv(name, "") // registers the old value to restore after the test
			os.Unsetenv(name)
		}
	}
	for name, val := range env {
		if name != configEnv {
			t.Setenv(name, val)
		}
	}
	file := filepath.Join(t.TempDir(), "captioner.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(viper.New(), file)
	if err != nil {
		t.Fatalf("%s: the configuration does not load: %v", where, err)
	}
	return cfg
}

// listenPort returns the port of server.addr, and an error unless the host is a
// wildcard: in a container, published ports, probes and Services all arrive on the
// container's own address, never on its loopback.
func listenPort(addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("server.addr %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, fmt.Errorf("server.addr %q: port %q is not a number", addr, port)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		return n, fmt.Errorf("server.addr %q listens on %s only; in a container use 0.0.0.0:%s so that probes and published ports reach it", addr, host, port)
	}
	return n, nil
}

// mustPort is listenPort for a configuration that must be servable from a container.
func mustPort(t *testing.T, where string, cfg *config.Config) int {
	t.Helper()
	port, err := listenPort(cfg.Server.Addr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return port
}

func TestConfigChecksRejectMistakes(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"misspelt variable", checkEnvNames(map[string]string{"CAPTIONER_SERVER_ADRR": "0.0.0.0:1", "HOME": "/"}),
			"environment variable CAPTIONER_SERVER_ADRR sets no configuration key"},
		{"misspelt file key", checkFileKeys([]byte("server:\n  adr: 0.0.0.0:1\n")),
			"server.adr is not a configuration key"},
		{"section as a value", checkFileKeys([]byte("server: 8080\n")),
			"server is not a configuration key"},
		{"loopback listener", func() error { _, err := listenPort("127.0.0.1:8080"); return err }(),
			`server.addr "127.0.0.1:8080" listens on 127.0.0.1 only`},
		{"named port", func() error { _, err := listenPort("0.0.0.0:http"); return err }(),
			`port "http" is not a number`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, tc.err, tc.want)
		}
	}
	for _, good := range []error{
		checkEnvNames(map[string]string{config.EnvName("server.addr"): "0.0.0.0:1", configEnv: "/etc/x.yaml"}),
		checkFileKeys([]byte("device: cpu\nserver:\n  addr: 0.0.0.0:1\n")),
	} {
		if good != nil {
			t.Errorf("a correct name was rejected: %v", good)
		}
	}
	if port, err := listenPort("0.0.0.0:9090"); err != nil || port != 9090 {
		t.Errorf("listenPort(0.0.0.0:9090) = %d, %v", port, err)
	}
}

func TestCacheEnv(t *testing.T) {
	t.Setenv(cacheEnv, "/opt/x")
	if dir, err := encoder.CacheDir(); err != nil || dir != "/opt/x/models" {
		t.Errorf("with %s=/opt/x, encoder.CacheDir() = %q, %v; the images rely on /opt/x/models", cacheEnv, dir, err)
	}
}
