// Package testassets gives tests the shared assets folder (the MobileNetV2
// weights, Flickr8k and the sample photos): CAPTIONER_ASSETS when set, else a
// shared folder beside the repository (locate.Shared), else the test is
// skipped and Main reports how many were.
package testassets

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/captioner/captioner/internal/locate"
)

// skipped counts this package's tests skipped for want of the folder.
var skipped atomic.Int64

// Dir returns the shared assets folder, or skips tb saying what the test needs
// from it.
func Dir(tb testing.TB, needs string) string {
	tb.Helper()
	if dir := os.Getenv("CAPTIONER_ASSETS"); dir != "" {
		return dir
	}
	if dir, ok := locate.Shared(); ok {
		return dir
	}
	skipped.Add(1)
	tb.Skipf("%s: %s", why, needs)
	return ""
}

// why is the reason tests skip, and what to do about it.
const why = "no shared assets folder: CAPTIONER_ASSETS is not set and no shared/ holding models/mobilenet_v2 is beside the repository (point CAPTIONER_ASSETS at one)"

// Main runs the package's tests (from TestMain) and ends with one line saying
// how many were skipped and why, so that a run without the assets does not
// look like a full one. go test shows it with -v, in local directory mode and
// when the package fails.
func Main(m *testing.M) {
	code := m.Run()
	summary(os.Stdout, skipped.Load())
	os.Exit(code)
}

func summary(w io.Writer, n int64) {
	if n > 0 {
		fmt.Fprintf(w, "testassets: %d tests skipped: %s\n", n, why)
	}
}
