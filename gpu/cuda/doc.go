// Package cuda is captioner's NVIDIA GPU backend: gorgonia.org/cu for the
// context, memory and the kernels of gpu/kernels (loaded from their embedded
// PTX), and cuBLAS for GEMM, loaded at run time (package cublas: any of
// cuBLAS 11-13, where gorgonia.org/cu/blas would link one at build time). It
// registers the "cuda" backend.
//
// It is compiled only with the build tag cuda (the captioner-cuda binary, `make
// build-cuda`): gorgonia.org/cu initialises the CUDA driver in its package init
// and exits the process when there is no GPU, so the default binary must not
// link it. Package gpu/selector decides which binary runs; where this one runs
// without a GPU, gpu/cuda/needgpu ends it first, saying what to run instead.
package cuda
