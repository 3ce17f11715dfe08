//go:build cgo

package cublas

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/captioner/captioner/gpu/cuda/fakedriver"
)

// fakeCublas builds stand-in cuBLAS libraries (gpu/cuda/fakedriver) into a new
// folder: soname -> version.
func fakeCublas(t *testing.T, libs map[string]int) string {
	t.Helper()
	if err := fakedriver.Toolkit(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	for soname, v := range libs {
		if err := fakedriver.BuildCublas(dir, "../..", soname, v); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// only searches dirs, not the loader's path or this machine's toolkit (which
// has a real libcublas.so.11).
func only(dirs ...string) Search { return Search{Sonames: Sonames, Dirs: dirs} }

func version(t *testing.T, l *Library) string {
	t.Helper()
	h, err := l.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Destroy()
	v, err := h.Version()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadPrefersTheNewestVersion(t *testing.T) {
	old := fakeCublas(t, map[string]int{"libcublas.so.12": 120403, "libcublas.so.11": 111103})
	newer := fakeCublas(t, map[string]int{"libcublas.so.13": 130002})
	l, err := Load(only(old, newer))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if want := filepath.Join(newer, "libcublas.so.13"); l.Path() != want {
		t.Errorf("loaded %s, want %s", l.Path(), want)
	}
	if v := version(t, l); v != "13.0.2" {
		t.Errorf("version %s, want 13.0.2", v)
	}
}

func TestLoadSkipsABrokenLibrary(t *testing.T) {
	dir := fakeCublas(t, map[string]int{"libcublas.so.11": 111103})
	if err := os.WriteFile(filepath.Join(dir, "libcublas.so.13"), []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Load(only(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v := version(t, l); v != "11.11.3" {
		t.Errorf("version %s, want 11.11.3 (libcublas.so.13 is broken)", v)
	}
}

func TestLoadNamesEveryPlace(t *testing.T) {
	empty := t.TempDir()
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "libcublas.so.12"), []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(empty, "no-such-folder")
	_, err := Load(Search{Sonames: Sonames, Dirs: []string{empty, broken, missing}, Usual: []string{"/nonexistent-captioner-cuda-*/lib64"}})
	if err == nil {
		t.Fatal("Load found a cuBLAS in folders without one")
	}
	msg := err.Error()
	for _, want := range []string{
		"cuBLAS (libcublas.so.13, libcublas.so.12, libcublas.so.11) not found; looked in:",
		filepath.Join(empty, "libcublas.so.13") + ": not there",
		filepath.Join(empty, "libcublas.so.11") + ": not there",
		filepath.Join(missing, "libcublas.so.12") + ": not there",
		filepath.Join(broken, "libcublas.so.12") + ": " + filepath.Join(broken, "libcublas.so.12") + ": file too short",
		"set cuda.library_path (env CAPTIONER_CUDA_LIBRARY_PATH)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n  "); n != 9 {
		t.Errorf("error lists %d attempts, want 9 (3 sonames x 3 folders):\n%s", n, msg)
	}
}

// TestLoadSearchOrder: the places are looked in as documented, each once:
// Dirs, the dynamic loader, then Usual's matches newest first (cuda-12.10
// before cuda-12.4, and python3.12's site-packages before python3.9's).
func TestLoadSearchOrder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"python3.12", "python3.9", 1}, {"cuda-12.10", "cuda-12.4", 1}, {"cuda-12.04", "cuda-12.4", 0}, {"a1", "a1b", -1}, {"lib", "lib64", -1}, {"x9", "y1", -1}} {
		if got := versionCompare(c.a, c.b); got != c.want {
			t.Errorf("versionCompare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	dir, root := t.TempDir(), t.TempDir()
	for _, v := range []string{"cuda-12.1", "cuda-12.4", "cuda-12.10"} {
		if err := os.MkdirAll(filepath.Join(root, v, "lib64"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const name = "libcublas-captioner-none.so.1"
	_, err := Load(Search{Sonames: []string{name}, Dirs: []string{dir, dir + "/"}, Loader: true,
		Usual: []string{filepath.Join(root, "cuda-*", "lib64"), dir}})
	if err == nil {
		t.Fatal("Load found a library that is nowhere")
	}
	want := []string{
		filepath.Join(dir, name) + ": not there",
		name + " via the dynamic loader (LD_LIBRARY_PATH=",
		filepath.Join(root, "cuda-12.10", "lib64", name) + ": not there", // newest by version, not by string
		filepath.Join(root, "cuda-12.4", "lib64", name) + ": not there",
		filepath.Join(root, "cuda-12.1", "lib64", name) + ": not there",
	}
	got := strings.Split(err.Error(), "\n  ")[1:]
	got[len(got)-1], _, _ = strings.Cut(got[len(got)-1], "\n")
	if len(got) != len(want) {
		t.Fatalf("error lists %d attempts, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("attempt %d is %q, want %q...", i+1, got[i], want[i])
		}
	}
}

// TestLoadFindsCublasLtBeside: a cuBLAS outside the loader's path (a Python
// wheel's folder) loads although it needs the libcublasLt beside it, which the
// loader would not look for there.
func TestLoadFindsCublasLtBeside(t *testing.T) {
	dir := fakeCublas(t, nil)
	for _, args := range [][]string{
		{"-o", filepath.Join(dir, "libcublasLt.so.13"), "-Wl,-soname,libcublasLt.so.13", "-x", "c", os.DevNull},
		{"-DFAKE_CUBLAS_VERSION=130100", "-o", filepath.Join(dir, "libcublas.so.13"), "-Wl,-soname,libcublas.so.13",
			"../testdata/fakedriver/fakecublas.c", "-L" + dir, "-Wl,--no-as-needed", "-l:libcublasLt.so.13"},
	} {
		if err := fakedriver.CompileShared(args...); err != nil {
			t.Fatal(err)
		}
	}
	l, err := Load(only(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v := version(t, l); v != "13.1.0" {
		t.Errorf("version %s, want 13.1.0", v)
	}
}

func TestLoadByTheLoadersSearch(t *testing.T) {
	_, err := Load(Search{Sonames: []string{"libcublas-captioner-none.so.1"}, Loader: true})
	if err == nil || !strings.Contains(err.Error(), "libcublas-captioner-none.so.1 via the dynamic loader (LD_LIBRARY_PATH=") ||
		!strings.Contains(err.Error(), "cannot open shared object file") {
		t.Fatalf("error %v, want the loader's own message for the missing file", err)
	}
}

// TestLoadByTheLoaderNamesTheFile: a cuBLAS the dynamic loader found (the
// toolkit's, or a stand-in an earlier test loaded, which stays loaded and is
// found first by its soname, as a process's cuBLAS is) names the file it came
// from, not only its soname.
func TestLoadByTheLoaderNamesTheFile(t *testing.T) {
	l, err := Load(Search{Sonames: Sonames, Loader: true})
	if err != nil {
		t.Skipf("no cuBLAS on the loader's path: %v", err)
	}
	defer l.Close()
	if !filepath.IsAbs(l.Path()) {
		t.Errorf("loaded from %q, want the file's path", l.Path())
	}
}

func TestDefaultSearchReadsTheEnvironment(t *testing.T) {
	t.Setenv(LibraryPathEnv, "/from/env::/also/env")
	s := DefaultSearch([]string{"/from/config"})
	if want := []string{"/from/config", "/from/env", "/also/env"}; !slices.Equal(s.Dirs, want) {
		t.Errorf("Dirs %q, want %q", s.Dirs, want)
	}
	if !s.Loader || !slices.Equal(s.Sonames, Sonames) || len(s.Usual) == 0 {
		t.Errorf("default search %+v", s)
	}
}

func TestForDriver(t *testing.T) {
	for major, want := range map[int][]string{
		13: {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"},
		12: {"libcublas.so.12", "libcublas.so.11"},
		11: {"libcublas.so.11"},
		10: nil,
	} {
		if got := ForDriver(Sonames, major); !slices.Equal(got, want) {
			t.Errorf("ForDriver(CUDA %d) = %q, want %q", major, got, want)
		}
	}
}

func TestFormatVersion(t *testing.T) {
	for v, want := range map[int]string{111103: "11.11.3", 120904: "12.9.4", 130100: "13.1.0"} {
		if got := FormatVersion(v); got != want {
			t.Errorf("FormatVersion(%d) = %s, want %s", v, got, want)
		}
	}
}

// TestSgemm checks the call's argument order against a column-major product
// computed here; the stand-in's device memory is host memory.
func TestSgemm(t *testing.T) {
	h := fakeHandle(t, "libcublas.so.12", 120000)
	// C (m=3, n=2) = 2 A^T B + 0.5 C with A stored (k=4, m=3), lda 5; B (k, n), ldb 4; ldc 3.
	const m, n, k, lda, ldb, ldc = 3, 2, 4, 5, 4, 3
	a := filled(lda*m, func(i int) float32 { return float32(i%7) - 3 })
	b := filled(ldb*n, func(i int) float32 { return float32(i%5) * 0.5 })
	c := filled(ldc*n, func(i int) float32 { return float32(i) })
	want := make([]float32, len(c))
	for j := range n {
		for i := range m {
			var s float32
			for p := range k {
				s += a[p+i*lda] * b[p+j*ldb]
			}
			want[i+j*ldc] = 2*s + 0.5*c[i+j*ldc]
		}
	}
	addr := func(s []float32) uintptr { return uintptr(unsafe.Pointer(&s[0])) }
	if err := h.Sgemm(Trans, NoTrans, m, n, k, 2, addr(a), lda, addr(b), ldb, 0.5, addr(c), ldc); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	if !slices.Equal(c, want) {
		t.Errorf("C = %v, want %v", c, want)
	}
	err := h.Sgemm(NoTrans, NoTrans, m, n, k, 1, addr(a), 1, addr(b), ldb, 0, addr(c), ldc)
	if err == nil || err.Error() != "cublasSgemm(m=3 n=2 k=4 lda=1 ldb=4 ldc=3): CUBLAS_STATUS_INVALID_VALUE" {
		t.Errorf("lda < m: error %v", err)
	}
}

// TestSgemmStridedBatched checks the strided call's argument order: A, B and C
// each at a stride of its own, against column-major products computed here.
func TestSgemmStridedBatched(t *testing.T) {
	h := fakeHandle(t, "libcublas.so.13", 130100)
	// C_q (m=2, n=3) = A_q (m, k=2) B_q^T, B stored (n, k); strides 5, 7 and 9.
	const m, n, k, batch, sa, sb, sc = 2, 3, 2, 3, 5, 7, 9
	a := filled(sa*batch, func(i int) float32 { return float32(i%11) - 5 })
	b := filled(sb*batch, func(i int) float32 { return float32(i%6) * 0.25 })
	c := make([]float32, sc*batch)
	want := make([]float32, len(c))
	for q := range batch {
		for j := range n {
			for i := range m {
				var s float32
				for p := range k {
					s += a[q*sa+i+p*m] * b[q*sb+j+p*n]
				}
				want[q*sc+i+j*m] = s
			}
		}
	}
	addr := func(s []float32) uintptr { return uintptr(unsafe.Pointer(&s[0])) }
	if err := h.SgemmStridedBatched(NoTrans, Trans, m, n, k, 1, addr(a), m, sa, addr(b), n, sb, 0, addr(c), m, sc, batch); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	if !slices.Equal(c, want) {
		t.Errorf("C = %v, want %v", c, want)
	}
	err := h.SgemmStridedBatched(NoTrans, Trans, m, n, k, 1, addr(a), m, sa, addr(b), n, sb, 0, addr(c), m, sc, -1)
	if err == nil || err.Error() != "cublasSgemmStridedBatched(m=2 n=3 k=2 lda=2 ldb=3 ldc=2 strides 5 7 9 batch=-1): CUBLAS_STATUS_INVALID_VALUE" {
		t.Errorf("batch -1: error %v", err)
	}
}

// TestNewHandleFails: cublasCreate's failure is NewHandle's error, named.
func TestNewHandleFails(t *testing.T) {
	l, err := Load(only(fakeCublas(t, map[string]int{"libcublas.so.13": 130100})))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("FAKECUBLAS_CREATE_FAILS", "1")
	want := "cublasCreate (" + l.Path() + "): CUBLAS_STATUS_NOT_INITIALIZED (no CUDA context, or the driver is too old for this cuBLAS)"
	if h, err := l.NewHandle(); err == nil || err.Error() != want {
		t.Errorf("NewHandle: %v, %v; want the error %s", h, err, want)
	}
}

// filled returns n values f(0), ..., f(n-1).
func filled(n int, f func(i int) float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

// TestMathMode sets the tensor-core math mode and reads it back; a new handle
// computes in float32, and the stand-in, like cuBLAS, refuses an unknown mode.
func TestMathMode(t *testing.T) {
	h := fakeHandle(t, "libcublas.so.13", 130100)
	if m, err := h.MathMode(); err != nil || m != DefaultMath {
		t.Fatalf("a new handle's math mode: %d, %v; want %d", m, err, DefaultMath)
	}
	if err := h.SetMathMode(TF32Math); err != nil {
		t.Fatal(err)
	}
	if m, err := h.MathMode(); err != nil || m != TF32Math {
		t.Errorf("math mode after setting TF32: %d, %v; want %d", m, err, TF32Math)
	}
	if err := h.SetMathMode(7); err == nil || err.Error() != "cublasSetMathMode(7): CUBLAS_STATUS_INVALID_VALUE" {
		t.Errorf("math mode 7: error %v", err)
	}
}

// fakeHandle loads a stand-in cuBLAS of that soname and version and makes a
// handle, both released when the test ends.
func fakeHandle(t *testing.T, soname string, version int) *Handle {
	t.Helper()
	l, err := Load(only(fakeCublas(t, map[string]int{soname: version})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	h, err := l.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Destroy() })
	return h
}

// TestCloseKeepsTheLibraryMapped: cuBLAS's own CUDA runtime must not be torn
// down by an unload while the process runs (cublas.c), so the library a
// Library loaded is still in the process's memory map after Close; one that
// Load refused (here: it lacks the functions) is not, so that it cannot be
// found again by name.
func TestCloseKeepsTheLibraryMapped(t *testing.T) {
	maps := func() string {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skip(err)
		}
		return string(b)
	}
	dir := fakeCublas(t, map[string]int{"libcublas.so.13": 130002})
	refused := filepath.Join(dir, "libcublas.so.12")
	if err := fakedriver.CompileShared("-o", refused, "-Wl,-soname,libcublas.so.12", "-x", "c", os.DevNull); err != nil {
		t.Fatal(err)
	}
	l, err := Load(only(dir))
	if err != nil {
		t.Fatal(err)
	}
	path := l.Path()
	l.Close()
	if !strings.Contains(maps(), path) {
		t.Errorf("%s is no longer mapped after Close: a dlclose unloaded it", path)
	}
	if _, err := Load(Search{Sonames: []string{"libcublas.so.12"}, Dirs: []string{dir}}); err == nil || !strings.Contains(err.Error(), refused+": ") {
		t.Fatalf("Load of a library without cuBLAS's functions: %v, want its refusal", err)
	}
	if strings.Contains(maps(), refused) {
		t.Errorf("%s, refused, is still mapped", refused)
	}
}

// TestLoadFromPythonEnvironments: a cuBLAS wheel pip put into the active
// virtualenv, or into the per-user site-packages, is found without
// configuration (it is on no library path).
func TestLoadFromPythonEnvironments(t *testing.T) {
	env := map[string]string{"VIRTUAL_ENV": "/v", "CONDA_PREFIX": "/c", "HOME": "/h"}
	want := []string{
		"/v/lib/python3*/site-packages/nvidia/cu13/lib", "/v/lib/python3*/site-packages/nvidia/cublas/lib",
		"/c/lib/python3*/site-packages/nvidia/cu13/lib", "/c/lib/python3*/site-packages/nvidia/cublas/lib",
		"/h/.local/lib/python3*/site-packages/nvidia/cu13/lib", "/h/.local/lib/python3*/site-packages/nvidia/cublas/lib",
		"/c/lib",
	}
	if got := EnvironmentDirs(func(k string) string { return env[k] }); !slices.Equal(got, want) {
		t.Errorf("EnvironmentDirs = %q\nwant %q", got, want)
	}
	if got := EnvironmentDirs(func(string) string { return "" }); len(got) != 0 {
		t.Errorf("EnvironmentDirs without the variables = %q, want none", got)
	}

	venv := t.TempDir()
	wheel := filepath.Join(venv, "lib", "python3.12", "site-packages", "nvidia", "cu13", "lib")
	if err := os.MkdirAll(wheel, 0o755); err != nil {
		t.Fatal(err)
	}
	built := fakeCublas(t, map[string]int{"libcublas.so.13": 130100})
	if err := os.Rename(filepath.Join(built, "libcublas.so.13"), filepath.Join(wheel, "libcublas.so.13")); err != nil {
		t.Fatal(err)
	}
	home := map[string]string{"HOME": venv + "/nohome", "VIRTUAL_ENV": venv}
	l, err := Load(Search{Sonames: Sonames, Usual: EnvironmentDirs(func(k string) string { return home[k] })})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if want := filepath.Join(wheel, "libcublas.so.13"); l.Path() != want {
		t.Errorf("loaded %s, want the virtualenv's %s", l.Path(), want)
	}
}
