// Package selector turns the configured device (auto, cpu or cuda) into a
// gpu.Device, handing over to the captioner-cuda binary when that is where the
// device is. See gpu/README.md ("Device selection").
//
// gorgonia.org/cu exits the process in its package init when there is no GPU,
// so the default binary cannot link CUDA and fall back: it probes for a GPU
// without cgo (gpu/cudaprobe) and, when one is there and the CUDA build
// sits next to it, replaces itself with that build (same arguments and
// environment). The CUDA build resolves auto and cuda to the GPU.
package selector

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/gpu/cudaprobe"
)

// CUDABinary is the file name of the CUDA build (`make build-cuda`), looked for
// next to the running executable.
const CUDABinary = "captioner-cuda"

// HandoverEnv is set in the environment of the CUDA binary when the default
// binary hands over to it, so that a binary that turns out to lack the CUDA
// backend does not hand over again, forever.
const HandoverEnv = "CAPTIONER_CUDA_HANDOVER"

// Options say which device to open.
type Options struct {
	// Device is auto, cpu or cuda.
	Device string
	// Threads is the CPU device's thread count (0: every core).
	Threads int
	// CUDALibraryPath lists extra folders, ':'-separated, to look for cuBLAS in
	// (configuration key cuda.library_path).
	CUDALibraryPath string
	// CUDATF32 runs the GPU's float32 GEMMs on tensor cores (configuration
	// key cuda.tf32; see gpu.Options.TF32).
	CUDATF32 bool
}

// Open returns the device o names. It logs one line saying which device runs
// and why. When the device is a GPU and this binary lacks the CUDA backend, Open
// replaces the process with the CUDA binary and does not return.
func Open(o Options, log *slog.Logger) (gpu.Device, error) {
	return open(o, log, system)
}

// host is what selection needs from the machine; tests replace parts of it.
type host struct {
	probe      func() (int, error)    // usable GPUs, or why there are none
	executable func() (string, error) // the running binary
	environ    func() []string
	backends   func() []string // the gpu backends linked into this binary
}

var system = host{
	probe:      Probe,
	executable: os.Executable,
	environ:    os.Environ,
	backends:   gpu.Backends,
}

func open(o Options, log *slog.Logger, h host) (gpu.Device, error) {
	want := o.Device
	var why string
	switch want {
	case "cpu":
		why = "requested"
	case "auto", "cuda":
		if slices.Contains(h.backends(), "cuda") {
			return openCUDA(o, log, h)
		}
		if handedOver(h) {
			err := fmt.Errorf("device %s: this binary was started as %s by a hand-over but has no CUDA backend: rebuild it with `make build-cuda`", want, CUDABinary)
			if want == "cuda" {
				return nil, err
			}
			why = err.Error()
			break
		}
		n, err := h.probe()
		if err != nil {
			if want == "cuda" {
				return nil, fmt.Errorf("device cuda: no GPU found: %w; set device auto (a GPU when there is one, else the CPU) or cpu", err)
			}
			why = fmt.Sprintf("no GPU found (%v)", err)
			break
		}
		bin, err := cudaBinary(h)
		if err != nil {
			if want == "cuda" {
				return nil, fmt.Errorf("device cuda: %d GPU(s) found, but %w", n, err)
			}
			why = fmt.Sprintf("%d GPU(s) found, but %v", n, err)
			break
		}
		log.Info("device: handing over to the CUDA build", "gpus", n, "binary", bin)
		argv := append([]string{bin}, os.Args[1:]...)
		env := append(h.environ(), HandoverEnv+"=1")
		err = syscall.Exec(bin, argv, env) // returns only on failure
		return nil, fmt.Errorf("device %s: starting %s: %w", want, bin, err)
	default:
		return nil, fmt.Errorf("device %q: want auto, cpu or cuda", want)
	}
	dev := cpu.New(o.Threads)
	log.Info("device: "+dev.Name(), "why", why)
	return dev, nil
}

// openCUDA opens the GPU in a binary that has the CUDA backend.
func openCUDA(o Options, log *slog.Logger, h host) (gpu.Device, error) {
	want := o.Device
	dev, err := gpu.Open("cuda", gpu.Options{LibraryPath: o.CUDALibraryPath, TF32: o.CUDATF32})
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", want, err)
	}
	why := "requested"
	switch {
	case handedOver(h):
		why = "handed over by the default binary, which found a GPU"
	case want == "auto":
		why = "CUDA build"
	}
	log.Info("device: "+dev.Name(), "why", why)
	return dev, nil
}

func handedOver(h host) bool {
	return slices.Contains(h.environ(), HandoverEnv+"=1")
}

// cudaBinary returns the path of the executable CUDA build next to the running binary.
func cudaBinary(h host) (string, error) {
	self, err := h.executable()
	if err != nil {
		return "", fmt.Errorf("cannot locate the running binary to find %s next to it: %w", CUDABinary, err)
	}
	path := filepath.Join(filepath.Dir(self), CUDABinary)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%s binary not found next to %s: build it with `make build-cuda`", CUDABinary, self)
	case err != nil:
		return "", err
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return "", fmt.Errorf("%s is not an executable file", path)
	}
	return path, nil
}

// Probe returns the number of usable NVIDIA GPUs, or the reason there are
// none, without cgo (gpu/cudaprobe).
func Probe() (int, error) { return cudaprobe.Probe(cudaprobe.Driver) }
