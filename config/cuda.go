package config

import "github.com/spf13/viper"

// CUDA sets what the CUDA build (captioner-cuda) needs from the machine.
type CUDA struct {
	// LibraryPath lists extra folders, ':'-separated, to look for cuBLAS
	// (libcublas.so.13, .12 or .11) in before the dynamic loader's path and the
	// usual toolkit folders: e.g. a Python environment's nvidia/cublas/lib.
	// CAPTIONER_CUDA_LIBRARY_PATH sets it too.
	LibraryPath string `mapstructure:"library_path"`
	// TF32 runs the GPU's float32 GEMMs (the encoder's convolutions, the
	// decoder's products, training's too) on tensor cores with inputs rounded to TF32, a
	// 10-bit mantissa, accumulating in float32, on Ampere and newer GPUs, as
	// PyTorch's float32 convolutions do by default. Off by default: rounded
	// inputs move the features a little, and the GPU is checked against the
	// CPU (gpu-check.sh's parity) without it.
	TF32 bool `mapstructure:"tf32"`
}

func cudaDefaults(v *viper.Viper) {
	v.SetDefault("cuda.library_path", "")
	v.SetDefault("cuda.tf32", false)
}
