package testassets

import (
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	var b strings.Builder
	summary(&b, 0)
	if b.Len() != 0 {
		t.Errorf("no skips printed %q", b.String())
	}
	summary(&b, 45)
	want := "testassets: 45 tests skipped: no shared assets folder: CAPTIONER_ASSETS is not set and no shared/ holding models/mobilenet_v2 is beside the repository (point CAPTIONER_ASSETS at one)\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// Beside /work/shared the folder is found without CAPTIONER_ASSETS; elsewhere
// the test is skipped and counted.
func TestDirFindsSharedOrCounts(t *testing.T) {
	t.Setenv("CAPTIONER_ASSETS", "")
	before := skipped.Load()
	var dir string
	t.Run("inner", func(t *testing.T) { dir = Dir(t, "the test checks the lookup") })
	switch {
	case dir != "" && skipped.Load() != before:
		t.Errorf("found %s yet counted a skip", dir)
	case dir == "" && skipped.Load() != before+1:
		t.Errorf("skipped without counting it")
	}
}
