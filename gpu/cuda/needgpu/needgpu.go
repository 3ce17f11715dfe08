// Package needgpu ends a binary that links the CUDA backend, before
// gorgonia.org/cu's package init can, when the machine has no usable NVIDIA
// GPU, saying why and what to run instead. cu's own init prints only the
// driver's error name and a link to NVIDIA's documentation ("Error in
// initialization, please refer to ... for details on: NoDevice") on standard
// output.
//
// gpu/cuda imports it for its init alone. Go initialises, in import path
// order, the first package whose imports are all initialised: this package's
// path sorts before gorgonia.org/cu's and its imports are ones cu needs too,
// so its init runs first (gpu/selector's TestHandoverToCUDABuild checks
// that it does).
package needgpu

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/captioner/captioner/gpu/cudaprobe"
)

func init() {
	if _, err := cudaprobe.Probe(cudaprobe.Driver); err != nil {
		fmt.Fprintf(os.Stderr, "%s: no usable NVIDIA GPU (%v): this is the CUDA build, which runs on a GPU only; "+
			"run captioner, the default build, which runs on the CPU here and hands over to the CUDA build where there is a GPU\n",
			filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
}
