package gpu

import (
	"fmt"
	"sort"
	"strings"
)

// Options are settings a backend may need to open its device.
type Options struct {
	// LibraryPath lists extra folders, ':'-separated, where a backend looks for
	// the native libraries it loads at run time (cuda: cuBLAS) before the usual
	// places.
	LibraryPath string
	// TF32 lets a GPU backend run float32 GEMMs (the decoder's products and the
	// encoder's convolutions) on tensor cores with inputs rounded to TF32 (a
	// 10-bit mantissa), as PyTorch's float32 convolutions do by default.
	TF32 bool
}

// Opener opens a backend's default device.
type Opener func(Options) (Device, error)

var backends = map[string]Opener{}

// Register makes a backend available to Open under name. Backends register from
// their package init; the CUDA backend does so only in binaries built with the
// cuda tag, because gorgonia.org/cu exits the process when no GPU is present.
func Register(name string, open Opener) {
	if _, dup := backends[name]; dup {
		panic("gpu: backend registered twice: " + name)
	}
	backends[name] = open
}

// Backends lists the registered backend names, sorted.
func Backends() []string {
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens a device by backend name ("cpu", "cuda"). Device selection including
// "auto" is resolved by the caller (see package gpu/selector) before Open is called.
func Open(name string, o Options) (Device, error) {
	open, ok := backends[name]
	if !ok {
		return nil, fmt.Errorf("gpu: no %q backend in this binary (it has: %s); the CUDA backend is in the captioner-cuda binary, built with `make build-cuda`",
			name, strings.Join(Backends(), ", "))
	}
	return open(o)
}
