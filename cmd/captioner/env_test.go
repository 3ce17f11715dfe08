package main

import (
	"slices"
	"testing"
)

// A misspelt setting in the environment is warned about, with the setting it
// resembles; other programs' variables, tests' and captioner's own are not.
func TestMisspeltEnv(t *testing.T) {
	got := misspeltEnv([]string{"PATH=/bin", "CAPTIONER_SERVER_ADDR=127.0.0.1:1", "CAPTIONER_SERVER_ADRR=0.0.0.0:80", "CAPTIONER_SERVE_HELPER_ARGS=x"})
	want := []string{"the environment variable CAPTIONER_SERVER_ADRR sets no setting and is ignored; did you mean CAPTIONER_SERVER_ADDR?"}
	if !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}
