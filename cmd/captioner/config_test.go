package main

import (
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// `captioner config` prints values as the program reads them: an environment
// variable's number as a number, its comma-separated list as a list, a
// duration as a file would write it. It printed them as the strings they came
// as ("5", "a,b") before.
func TestConfigPrintsDecodedValues(t *testing.T) {
	t.Setenv("CAPTIONER_DECODE_BEAM", "5")
	t.Setenv("CAPTIONER_SERVER_MODELS", "models/a,models/b")
	t.Setenv("CAPTIONER_SERVER_IDLE_TIMEOUT", "90s")
	out, err := run(t, "config")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Decode struct{ Beam any }
		Server struct {
			Models        any
			IdleTimeout   any `yaml:"idle_timeout"`
			ShutdownGrace any `yaml:"shutdown_grace"`
		}
	}
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("config printed no YAML: %v\n%s", err, out)
	}
	if got.Decode.Beam != 5 {
		t.Errorf("decode.beam printed as %#v, want the number 5", got.Decode.Beam)
	}
	if want := []any{"models/a", "models/b"}; !reflect.DeepEqual(got.Server.Models, want) {
		t.Errorf("server.models printed as %#v, want the list %v", got.Server.Models, want)
	}
	if got.Server.IdleTimeout != "1m30s" || got.Server.ShutdownGrace != "30s" {
		t.Errorf("durations printed as %#v and %#v, want 1m30s and 30s", got.Server.IdleTimeout, got.Server.ShutdownGrace)
	}
}
