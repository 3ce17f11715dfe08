//go:build cuda

package selector

// The CUDA build of this test binary stands in for captioner-cuda in
// TestHandoverToCUDABuild: it links the CUDA backend, as cmd/captioner's does.
import _ "github.com/captioner/captioner/gpu/cuda"
