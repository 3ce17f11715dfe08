// Package cublas loads NVIDIA's cuBLAS at run time, whichever of cuBLAS 13, 12 or
// 11 a machine has and wherever it is, and calls the few routines the CUDA
// backend uses (SGEMM, strided batched SGEMM, the math mode and the version).
//
// Why not link it: a binary linked against libcublas.so.11 (what
// gorgonia.org/cu/blas does, and what Debian's toolkit provides) refuses to start
// on a machine with only cuBLAS 12 or 13, and cuBLAS often lives outside the
// loader's path (inside a Python environment's nvidia-cublas wheel, or
// /usr/local/cuda-X/lib64). The SGEMM ABI (cublasSgemm_v2 and
// cublasSgemmStridedBatched with int sizes) is the same in all three versions,
// so one binary serves them all.
//
// The package needs no CUDA headers and no GPU: tests run it against the
// stand-in library of package gpu/cuda/fakedriver.
package cublas

/*
#cgo CFLAGS: -O2 -std=gnu11
#include <stdlib.h>
#include "cublas.h"
*/
import "C"

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"
)

// Sonames are the cuBLAS versions the backend runs on, in order of preference.
var Sonames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

// LibraryPathEnv names extra folders to search, separated by ':' (like
// LD_LIBRARY_PATH); configuration key cuda.library_path sets it too.
const LibraryPathEnv = "CAPTIONER_CUDA_LIBRARY_PATH"

// UsualDirs are the folders where CUDA toolkits and Python's cuBLAS wheels put
// cuBLAS, searched after the dynamic loader's own path: nvidia-cublas-cu11 and
// -cu12 unpack to nvidia/cublas/lib, CUDA 13's nvidia-cublas to nvidia/cu13/lib,
// in the system Pythons' and conda's (NVIDIA's and PyTorch's images) package
// folders. Patterns are expanded, newest version first.
var UsualDirs = []string{
	"/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib",
	"/usr/local/cuda-*/lib64",
	"/opt/cuda/lib64",
	"/usr/local/lib/python3*/dist-packages/nvidia/cu13/lib",
	"/usr/local/lib/python3*/site-packages/nvidia/cu13/lib",
	"/usr/lib/python3/dist-packages/nvidia/cu13/lib",
	"/opt/conda/lib/python3*/site-packages/nvidia/cu13/lib",
	"/usr/local/lib/python3*/dist-packages/nvidia/cublas/lib",
	"/usr/local/lib/python3*/site-packages/nvidia/cublas/lib",
	"/usr/lib/python3/dist-packages/nvidia/cublas/lib",
	"/opt/conda/lib/python3*/site-packages/nvidia/cublas/lib",
}

// Library is a loaded cuBLAS.
type Library struct {
	l    *C.cap_cublas
	path string // the file it was loaded from
}

// Search says where Load looks for cuBLAS.
type Search struct {
	Sonames []string // file names, in order of preference
	Dirs    []string // folders searched first (configuration, environment)
	Loader  bool     // then the dynamic loader's own search by file name
	Usual   []string // then these folders or patterns
}

// DefaultSearch is the search for a library path from configuration: dirs (may
// be empty), then the folders in $CAPTIONER_CUDA_LIBRARY_PATH, then the dynamic
// loader's search, then the user's Python environments (EnvironmentDirs), then
// UsualDirs.
func DefaultSearch(dirs []string) Search {
	dirs = append(slices.Clip(dirs), SplitPath(os.Getenv(LibraryPathEnv))...)
	return Search{Sonames: Sonames, Dirs: dirs, Loader: true, Usual: append(EnvironmentDirs(os.Getenv), UsualDirs...)}
}

// EnvironmentDirs are the folders, as patterns, where pip and conda put cuBLAS
// in the environments of the user that getenv describes: the active
// virtualenv's and conda environment's site-packages (and conda's lib, where
// its own cuBLAS package goes) and the per-user site-packages of `pip install
// --user`. A `pip install nvidia-cublas-cu12` (or PyTorch's dependencies) is a
// common way to have cuBLAS without a toolkit, and such a folder is on no
// library path.
func EnvironmentDirs(getenv func(string) string) []string {
	var roots []string
	for _, root := range []string{getenv("VIRTUAL_ENV"), getenv("CONDA_PREFIX")} {
		if root != "" {
			roots = append(roots, root)
		}
	}
	if home := getenv("HOME"); home != "" {
		roots = append(roots, filepath.Join(home, ".local"))
	}
	var dirs []string
	for _, root := range roots {
		for _, wheel := range []string{"cu13", "cublas"} { // CUDA 13's wheel, then the -cu11 and -cu12 ones
			dirs = append(dirs, filepath.Join(root, "lib", "python3*", "site-packages", "nvidia", wheel, "lib"))
		}
	}
	if conda := getenv("CONDA_PREFIX"); conda != "" {
		dirs = append(dirs, filepath.Join(conda, "lib"))
	}
	return dirs
}

// ForDriver keeps the sonames (libcublas.so.N) whose major version N is at most
// cudaMajor, the newest CUDA the driver supports: cuBLAS N needs a driver of
// CUDA N or newer.
func ForDriver(sonames []string, cudaMajor int) []string {
	var out []string
	for _, s := range sonames {
		var n int
		if _, err := fmt.Sscanf(s[strings.LastIndex(s, ".")+1:], "%d", &n); err == nil && n <= cudaMajor {
			out = append(out, s)
		}
	}
	return out
}

// SplitPath splits a ':'-separated folder list, dropping empty entries.
func SplitPath(s string) []string {
	var dirs []string
	for _, d := range strings.Split(s, ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// versionCompare orders a and b as strings, except that runs of digits
// compare as numbers: python3.12 after python3.9, cuda-12.10 after cuda-12.4.
func versionCompare(a, b string) int {
	for a != "" && b != "" {
		na, nb := digitRun(a), digitRun(b)
		if na > 0 && nb > 0 {
			// Numbers without leading zeros: the longer is the larger.
			x, y := strings.TrimLeft(a[:na], "0"), strings.TrimLeft(b[:nb], "0")
			if c := cmp.Or(cmp.Compare(len(x), len(y)), strings.Compare(x, y)); c != 0 {
				return c
			}
			a, b = a[na:], b[nb:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// digitRun is the length of s's leading run of ASCII digits.
func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// Load loads the first cuBLAS that s finds: every soname (newest first) is
// looked for in every place before the next soname is. The error names every
// place that was looked in and why each failed.
func Load(s Search) (*Library, error) {
	// A place is a folder, or "" for the dynamic loader's own search.
	places := dedupe(s.Dirs)
	if s.Loader {
		places = append(places, "")
	}
	for _, pattern := range s.Usual {
		matches, _ := filepath.Glob(pattern)
		slices.SortFunc(matches, func(a, b string) int { return versionCompare(b, a) })
		places = append(places, matches...)
	}
	places = dedupe(places)
	var tried []string
	for _, name := range s.Sonames {
		for _, dir := range places {
			if dir == "" {
				l, err := open(name)
				if err == nil {
					return l, nil
				}
				tried = append(tried, fmt.Sprintf("%s via the dynamic loader (LD_LIBRARY_PATH=%q, /etc/ld.so.cache, /lib, /usr/lib): %v",
					name, os.Getenv("LD_LIBRARY_PATH"), err))
				continue
			}
			path := filepath.Join(dir, name)
			if _, err := os.Stat(path); err != nil {
				tried = append(tried, path+": not there")
				continue
			}
			l, err := open(path)
			if err == nil {
				return l, nil
			}
			tried = append(tried, fmt.Sprintf("%s: %v", path, err))
		}
	}
	return nil, fmt.Errorf("cuBLAS (%s) not found; looked in:\n  %s\n"+
		"install cuBLAS 11.8 to 13 (the CUDA toolkit, or `pip install nvidia-cublas`) and set cuda.library_path "+
		"(env %s) to the folder that holds libcublas.so.N",
		strings.Join(s.Sonames, ", "), strings.Join(tried, "\n  "), LibraryPathEnv)
}

func dedupe(dirs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		c := d
		if c != "" {
			c = filepath.Clean(d)
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// open loads one library. Before a path, it loads the cublasLt of the same
// version from the same folder when there is one: cuBLAS needs it, and the
// loader would not look in a folder outside its path (a Python wheel's) for it.
func open(path string) (*Library, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cdep *C.char
	if strings.Contains(path, "/") {
		dep := filepath.Join(filepath.Dir(path), strings.Replace(filepath.Base(path), "libcublas.so", "libcublasLt.so", 1))
		if _, err := os.Stat(dep); err == nil {
			cdep = C.CString(dep)
			defer C.free(unsafe.Pointer(cdep))
		}
	}
	var msg [1024]C.char
	l := C.cap_cublas_open(cpath, cdep, &msg[0], C.size_t(len(msg)))
	if l == nil {
		return nil, errors.New(C.GoString(&msg[0]))
	}
	lib := &Library{l: l, path: path}
	var buf [4096]C.char
	if C.cap_cublas_origin(l, &buf[0], C.size_t(len(buf))) == 0 {
		if p := C.GoString(&buf[0]); p != "" {
			lib.path = p
		}
	}
	return lib, nil
}

// Path is the file the library was loaded from.
func (l *Library) Path() string { return l.path }

// Close releases the library; handles must be destroyed first. The process
// keeps it mapped (cublas.c says why), so a Load after it finds it loaded; a
// library Load refused is unloaded at once.
func (l *Library) Close() {
	if l.l != nil {
		C.cap_cublas_close(l.l)
		l.l = nil
	}
}

// Handle is a cuBLAS handle. It belongs to the CUDA context that was current
// on the calling thread when it was made, and its calls must run with that
// context current.
type Handle struct {
	lib *Library
	h   C.uintptr_t
}

// NewHandle creates a handle (cublasCreate) in the current CUDA context.
func (l *Library) NewHandle() (*Handle, error) {
	var h C.uintptr_t
	if s := C.cap_cublas_create(l.l, &h); s != 0 {
		return nil, fmt.Errorf("cublasCreate (%s): %w", l.path, Status(s))
	}
	return &Handle{lib: l, h: h}, nil
}

// Destroy releases the handle.
func (h *Handle) Destroy() error {
	if s := C.cap_cublas_destroy(h.lib.l, h.h); s != 0 {
		return fmt.Errorf("cublasDestroy: %w", Status(s))
	}
	return nil
}

// Version is the library's version as major.minor.patch.
func (h *Handle) Version() (string, error) {
	var v C.int
	if s := C.cap_cublas_version(h.lib.l, h.h, &v); s != 0 {
		return "", fmt.Errorf("cublasGetVersion: %w", Status(s))
	}
	return FormatVersion(int(v)), nil
}

// MathMode is how cuBLAS may compute float32 GEMMs (cublasMath_t).
type MathMode int

// The math modes the backend sets.
const (
	// DefaultMath computes float32 GEMMs in float32 (CUBLAS_DEFAULT_MATH).
	DefaultMath MathMode = 0
	// TF32Math lets cuBLAS round float32 GEMMs' inputs to TF32 (a 10-bit
	// mantissa) and run them on tensor cores, accumulating in float32, on GPUs
	// that have them (Ampere and newer) (CUBLAS_TF32_TENSOR_OP_MATH).
	TF32Math MathMode = 3
)

// SetMathMode sets the handle's math mode (cublasSetMathMode).
func (h *Handle) SetMathMode(m MathMode) error {
	if s := C.cap_cublas_set_math(h.lib.l, h.h, C.int(m)); s != 0 {
		return fmt.Errorf("cublasSetMathMode(%d): %w", m, Status(s))
	}
	return nil
}

// MathMode is the handle's math mode (cublasGetMathMode).
func (h *Handle) MathMode() (MathMode, error) {
	var m C.int
	if s := C.cap_cublas_get_math(h.lib.l, h.h, &m); s != 0 {
		return 0, fmt.Errorf("cublasGetMathMode: %w", Status(s))
	}
	return MathMode(m), nil
}

// FormatVersion turns cuBLAS's version number (major*10000 + minor*100 + patch
// since cuBLAS 11) into major.minor.patch.
func FormatVersion(v int) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// Op is a cuBLAS transpose operation.
type Op int

// cuBLAS's operations.
const (
	NoTrans Op = 0 // CUBLAS_OP_N
	Trans   Op = 1 // CUBLAS_OP_T
)

// Sgemm computes column-major C (m, n) = alpha op(A) op(B) + beta C on the legacy
// default stream. a, b and c are device addresses.
func (h *Handle) Sgemm(ta, tb Op, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	s := C.cap_cublas_sgemm(h.lib.l, h.h, C.int(ta), C.int(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(a), C.int(lda), C.uintptr_t(b), C.int(ldb), C.float(beta), C.uintptr_t(c), C.int(ldc))
	if s != 0 {
		return fmt.Errorf("cublasSgemm(m=%d n=%d k=%d lda=%d ldb=%d ldc=%d): %w", m, n, k, lda, ldb, ldc, Status(s))
	}
	return nil
}

// SgemmStridedBatched computes batch column-major products C_q (m, n) = alpha
// op(A_q) op(B_q) + beta C_q, where X_q starts strideX elements after X_(q-1),
// in one call (cublasSgemmStridedBatched), on the legacy default stream.
func (h *Handle) SgemmStridedBatched(ta, tb Op, m, n, k int, alpha float32, a uintptr, lda, strideA int, b uintptr, ldb, strideB int, beta float32, c uintptr, ldc, strideC, batch int) error {
	s := C.cap_cublas_sgemm_strided(h.lib.l, h.h, C.int(ta), C.int(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(a), C.int(lda), C.longlong(strideA), C.uintptr_t(b), C.int(ldb), C.longlong(strideB),
		C.float(beta), C.uintptr_t(c), C.int(ldc), C.longlong(strideC), C.int(batch))
	if s != 0 {
		return fmt.Errorf("cublasSgemmStridedBatched(m=%d n=%d k=%d lda=%d ldb=%d ldc=%d strides %d %d %d batch=%d): %w",
			m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch, Status(s))
	}
	return nil
}

// Status is a cublasStatus_t other than success.
type Status C.int

var statusNames = map[Status]string{
	1:  "CUBLAS_STATUS_NOT_INITIALIZED (no CUDA context, or the driver is too old for this cuBLAS)",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func (s Status) Error() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("cublasStatus %d", int(s))
}
