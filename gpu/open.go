package gpu

import (
	"fmt"
	"sort"
	"strings"
)

// Opener opens a backend's default device.
type Opener func() (Device, error)

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
func Open(name string) (Device, error) {
	open, ok := backends[name]
	if !ok {
		return nil, fmt.Errorf("gpu: no %q backend in this binary (it has: %s); the CUDA backend is in the captioner-cuda binary, built with `make build-cuda`",
			name, strings.Join(Backends(), ", "))
	}
	return open()
}
