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
		"CAPTIONER_DECODE_GUIDE_TRESHOLD", "CAPTIONER_SERVER_ADRR", "CAPTIONER_SERVE_HELPER_ARGS", "CAPTIONER_HOME",
		"CAPTIONER_BEAM", "CAPTIONER_BATCH_SIZE", "CAPTIONER_ADDR_X"}
	if got, want := UnknownEnv(names), []string{"CAPTIONER_DECODE_GUIDE_TRESHOLD", "CAPTIONER_SERVER_ADRR", "CAPTIONER_SERVE_HELPER_ARGS", "CAPTIONER_HOME",
		"CAPTIONER_BEAM", "CAPTIONER_BATCH_SIZE", "CAPTIONER_ADDR_X"}; !slices.Equal(got, want) {
		t.Errorf("UnknownEnv = %q, want %q", got, want)
	}
	misspelt, meant := Misspelt(names)
	// A key without its section is one too: the section left out (CAPTIONER_BEAM).
	if want := []string{"CAPTIONER_DECODE_GUIDE_TRESHOLD", "CAPTIONER_SERVER_ADRR", "CAPTIONER_BEAM", "CAPTIONER_BATCH_SIZE"}; !slices.Equal(misspelt, want) {
		t.Errorf("misspelt %q, want %q", misspelt, want)
	}
	if want := []string{"CAPTIONER_DECODE_GUIDE_THRESHOLD", "CAPTIONER_SERVER_ADDR", "CAPTIONER_DECODE_BEAM", "CAPTIONER_DECODE_BATCH_SIZE or CAPTIONER_TRAIN_BATCH_SIZE"}; !slices.Equal(meant, want) {
		t.Errorf("meant %q, want %q", meant, want)
	}
	if EnvName("server.addr") != "CAPTIONER_SERVER_ADDR" {
		t.Errorf("EnvName(server.addr) = %s", EnvName("server.addr"))
	}
}
