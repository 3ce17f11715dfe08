//go:build cuda

package main

// The captioner-cuda binary (`make build-cuda`) links the CUDA backend; the
// default binary hands over to it when it finds a GPU (gpu/selector).
import _ "github.com/captioner/captioner/gpu/cuda"
