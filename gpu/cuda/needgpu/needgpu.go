// Package needgpu ends a binary that links the CUDA backend, before
// gorgonia.org/cu's package init can, when the machine has no usable NVIDIA
// GPU, saying why and what to run instead. cu's own init prints only the
// driver's error name and a link to NVIDIA's documentation ("Error in
// initialization, please refer to ... for details on: NoDevice") on standard
// output.
//
// gpu/cuda imports it for its init alone. Go initialises, in import path
// order, the first package whose imports are all initialised (the linker
// leaves out packages with nothing to initialise): this package's path sorts
// before gorgonia.org/cu's, and the packages it needs that cu does not are
// its own, purego's, and ones that sort before cu or have nothing to
// initialise, so its init runs first. Hence no path/filepath here: cu does
// not need it, and it sorts after cu. gpu/selector's TestHandoverToCUDABuild
// runs the CUDA build without a GPU and fails when cu's init runs first.
//
// It is stricter than cu's init, which calls cuInit alone: a driver that
// initialises but reports no device also ends the binary, which could not
// open a GPU anyway.
package needgpu

import (
	"fmt"
	"os"
	"strings"

	"github.com/captioner/captioner/gpu/cudaprobe"
)

func init() {
	if _, err := cudaprobe.Probe(cudaprobe.Driver); err != nil {
		fmt.Fprintf(os.Stderr, "%s: no usable NVIDIA GPU (%v): this is the CUDA build, which runs on a GPU only; "+
			"run captioner, the default build, which runs on the CPU here and hands over to the CUDA build where there is a GPU\n",
			os.Args[0][strings.LastIndexByte(os.Args[0], '/')+1:], err)
		os.Exit(1)
	}
}
