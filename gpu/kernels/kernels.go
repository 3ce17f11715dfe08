// Package kernels holds captioner's CUDA kernels (the .cu files in this folder, and
// kernels.ptx compiled from them by `make ptx`) and Device, the gpu.Device that
// runs them through a Driver: the CUDA driver API in gpu/cuda, or the host
// emulator in gpu/cudaemu that executes the same kernel bodies as C on a CPU.
//
// Everything that decides how a kernel is launched (argument order, grid and
// block sizes, scratch memory, the host-side checks) lives here, once, so that the
// emulator tests exercise exactly what a GPU would be asked to do. See gpu/README.md.
package kernels

import (
	"embed"
	"fmt"
	"regexp"
	"strings"
)

// PTX is the kernel module for the compute_70 virtual architecture; the CUDA
// driver JIT-compiles it for the GPU it runs on (Volta and newer).
//
//go:embed kernels.ptx
var PTX string

var (
	ptxVersionRe = regexp.MustCompile(`(?m)^\.version (\d+)\.(\d+)$`)
	ptxTargetRe  = regexp.MustCompile(`(?m)^\.target sm_(\d+)$`)
)

// PTXVersion returns the PTX ISA version (major, minor) and the target
// architecture (70 for sm_70) that kernels.ptx declares. A driver loads PTX of
// an ISA version up to the CUDA version it supports (7.8: CUDA 11.8, driver
// R520) and JIT-compiles a target for any GPU of that compute capability or
// newer.
func PTXVersion() (major, minor, target int, err error) {
	v := ptxVersionRe.FindStringSubmatch(PTX)
	t := ptxTargetRe.FindStringSubmatch(PTX)
	if v == nil || t == nil {
		return 0, 0, 0, fmt.Errorf("gpu/kernels: kernels.ptx lacks a .version or .target line")
	}
	fmt.Sscan(v[1], &major)
	fmt.Sscan(v[2], &minor)
	fmt.Sscan(t[1], &target)
	return major, minor, target, nil
}

// PTXTarget describes kernels.ptx for messages: "PTX ISA 7.8 for sm_70".
func PTXTarget() string {
	major, minor, target, err := PTXVersion()
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("PTX ISA %d.%d for sm_%d", major, minor, target)
}

// Block is the block size of launches that use shared memory; it equals BLOCK in
// common.cuh (checked by the tests).
const Block = 256

//go:embed *.cu common.cuh
var sources embed.FS

// Kind is how a kernel parameter is passed.
type Kind byte

const (
	Pointer Kind = 'p' // a device pointer (float*, int*, double*)
	Int     Kind = 'i' // int (32-bit)
	Float   Kind = 'f' // float
	Uint64  Kind = 'u' // unsigned long long
)

// Param is one kernel parameter as declared in the .cu source.
type Param struct {
	Type string // C type, e.g. "const float *"
	Name string
	Kind Kind
}

// Signature is a kernel's name and parameter list.
type Signature struct {
	Name   string
	Params []Param
	// Cooperative is whether the kernel's body declares __shared__ memory, and
	// so may synchronise its block with __syncthreads.
	Cooperative bool
}

// Source returns the text of a kernel source file (e.g. "rows.cu").
func Source(name string) (string, error) {
	b, err := sources.ReadFile(name)
	return string(b), err
}

var (
	includeRe = regexp.MustCompile(`(?m)^#include "(\w+\.cu)"`)
	kernelRe  = regexp.MustCompile(`(?m)^KERNEL (\w+)\(([^)]*)\) \{`)
	paramRe   = regexp.MustCompile(`^(const )?(float|int|double|unsigned long long) ?(\*?) ?(\w+)$`)
)

// Signatures parses the kernels of kernels.cu (the files it includes, in order).
// Kernel declarations are single lines `KERNEL name(params) {` (see common.cuh).
func Signatures() ([]Signature, error) {
	top, err := Source("kernels.cu")
	if err != nil {
		return nil, err
	}
	var sigs []Signature
	for _, inc := range includeRe.FindAllStringSubmatch(top, -1) {
		src, err := Source(inc[1])
		if err != nil {
			return nil, err
		}
		decls := kernelRe.FindAllStringSubmatchIndex(src, -1)
		for i, at := range decls {
			end := len(src)
			if i+1 < len(decls) {
				end = decls[i+1][0]
			}
			name, params := src[at[2]:at[3]], src[at[4]:at[5]]
			sig := Signature{Name: name, Cooperative: strings.Contains(src[at[1]:end], "__shared__")}
			for _, p := range strings.Split(params, ",") {
				m := paramRe.FindStringSubmatch(strings.TrimSpace(p))
				if m == nil {
					return nil, fmt.Errorf("kernels: %s: kernel %s: cannot parse parameter %q (see common.cuh for the allowed types)", inc[1], name, p)
				}
				prm := Param{Type: strings.TrimSpace(m[1] + m[2] + " " + m[3]), Name: m[4]}
				switch {
				case m[3] == "*":
					prm.Kind = Pointer
				case m[2] == "int":
					prm.Kind = Int
				case m[2] == "float":
					prm.Kind = Float
				case m[2] == "unsigned long long":
					prm.Kind = Uint64
				default:
					return nil, fmt.Errorf("kernels: %s: kernel %s: parameter %q: pass doubles through memory", inc[1], name, p)
				}
				sig.Params = append(sig.Params, prm)
			}
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("kernels: no KERNEL declarations found in kernels.cu")
	}
	return sigs, nil
}
