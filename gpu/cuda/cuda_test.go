//go:build cuda

package cuda

import (
	"testing"

	"github.com/captioner/captioner/gpu/gputest"
)

// TestKernels runs the shared kernel suite on GPU 0. The test binary can only
// start on a machine with a GPU (see the package comment); elsewhere the
// untagged TestSuiteOnGPU reports the suite as skipped.
func TestKernels(t *testing.T) {
	dev, err := Open(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	t.Logf("device: %s", dev.Name())
	gputest.Run(t, dev)
}
