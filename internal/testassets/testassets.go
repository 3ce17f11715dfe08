// Package testassets gives tests the shared assets folder (CAPTIONER_ASSETS: the
// MobileNetV2 weights, Flickr8k and the sample photos), skipping the test with one
// clear message when it is not set.
package testassets

import (
	"os"
	"testing"
)

// Dir returns CAPTIONER_ASSETS, or skips tb saying what the test needs from it.
func Dir(tb testing.TB, needs string) string {
	tb.Helper()
	dir := os.Getenv("CAPTIONER_ASSETS")
	if dir == "" {
		tb.Skipf("CAPTIONER_ASSETS is not set (point it at the shared assets folder, ../shared): %s", needs)
	}
	return dir
}
