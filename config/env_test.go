package config

import (
	"slices"
	"testing"
)

// UnknownEnv names the prefixed variables that set nothing; Misspelt those of
// them close to a setting, with the setting. Settings, captioner's other
// variables and other programs' variables are neither.
func TestUnknownAndMisspeltEnv(t *testing.T) {
	names := []string{"HOME", "CAPTIONER_SERVER_ADDR", "CAPTIONER_CONFIG", "CAPTIONER_CACHE", "CAPTIONER_CUDA_HANDOVER",
		"CAPTIONER_DECODE_GUIDE_TRESHOLD", "CAPTIONER_SERVER_ADRR", "CAPTIONER_SERVE_HELPER_ARGS", "CAPTIONER_HOME"}
	if got, want := UnknownEnv(names), []string{"CAPTIONER_DECODE_GUIDE_TRESHOLD", "CAPTIONER_SERVER_ADRR", "CAPTIONER_SERVE_HELPER_ARGS", "CAPTIONER_HOME"}; !slices.Equal(got, want) {
		t.Errorf("UnknownEnv = %q, want %q", got, want)
	}
	misspelt, meant := Misspelt(names)
	if want := []string{"CAPTIONER_DECODE_GUIDE_TRESHOLD", "CAPTIONER_SERVER_ADRR"}; !slices.Equal(misspelt, want) {
		t.Errorf("misspelt %q, want %q", misspelt, want)
	}
	if want := []string{"CAPTIONER_DECODE_GUIDE_THRESHOLD", "CAPTIONER_SERVER_ADDR"}; !slices.Equal(meant, want) {
		t.Errorf("meant %q, want %q", meant, want)
	}
	if EnvName("server.addr") != "CAPTIONER_SERVER_ADDR" {
		t.Errorf("EnvName(server.addr) = %s", EnvName("server.addr"))
	}
}
