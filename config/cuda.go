package config

import "github.com/spf13/viper"

// CUDA sets what the CUDA build (captioner-cuda) needs from the machine.
type CUDA struct {
	// LibraryPath lists extra folders, ':'-separated, to look for cuBLAS
	// (libcublas.so.13, .12 or .11) in before the dynamic loader's path and the
	// usual toolkit folders: e.g. a Python environment's nvidia/cublas/lib.
	// CAPTIONER_CUDA_LIBRARY_PATH sets it too.
	LibraryPath string `mapstructure:"library_path"`
}

func cudaDefaults(v *viper.Viper) {
	v.SetDefault("cuda.library_path", "")
}
