//go:build cuda

package selector

import (
	"bytes"
	"strings"
	"testing"

	// The CUDA build of this test binary stands in for captioner-cuda in
	// TestHandoverToCUDABuild and runs on GPU machines (the GPU bundle): it links
	// the CUDA backend, as cmd/captioner's does.
	_ "github.com/captioner/captioner/gpu/cuda"
)

// TestCUDABuildOpensTheGPU runs where this build can start, so where a GPU (or
// the stand-in driver) is: auto and cuda open it, and the log says which GPU,
// its driver and cuBLAS, and why.
func TestCUDABuildOpensTheGPU(t *testing.T) {
	for want, why := range map[string]string{"auto": `why="CUDA build"`, "cuda": "why=requested"} {
		var log bytes.Buffer
		dev, err := Open(Options{Device: want}, logger(&log))
		if err != nil {
			t.Fatalf("Open(%s): %v", want, err)
		}
		name := dev.Name()
		dev.Close()
		if !strings.HasPrefix(name, "cuda (") || !strings.Contains(name, ", cuBLAS ") || !strings.Contains(name, ", driver ") {
			t.Errorf("Open(%s) gave %q, want the GPU with its driver and cuBLAS", want, name)
		}
		if !strings.Contains(log.String(), `msg="device: `+name+`" `+why) {
			t.Errorf("Open(%s) logged %q, want the device and %s", want, log.String(), why)
		}
		t.Logf("%s: %s", want, name)
	}
}
