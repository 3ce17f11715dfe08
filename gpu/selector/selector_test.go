package selector

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu/cudaprobe"
)

// helperEnv makes the test binary act as a captioner binary (see TestMain):
// "pretend" opens auto as if a GPU had answered the probe (TestHandover), "real"
// opens auto on this machine and prints the device's name (TestHandoverToCUDABuild).
const helperEnv = "SELECTOR_TEST_HELPER"

func TestMain(m *testing.M) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	h := system
	if mode == "pretend" {
		h.probe = func() (int, error) { return 1, nil }
		h.backends = defaultBackends
	}
	dev, err := open(Options{Device: "auto", Threads: 1}, slog.New(slog.NewTextHandler(os.Stderr, nil)), h)
	if err != nil {
		os.Stderr.WriteString("open: " + err.Error() + "\n")
		os.Exit(3)
	}
	os.Stdout.WriteString("opened " + dev.Name() + "\n")
	os.Exit(0)
}

// defaultBackends are those of the default binary, which these tests act as
// also when they are built with the cuda tag (in the GPU bundle).
func defaultBackends() []string { return []string{"cpu"} }

// fakeHost is the default binary on the real machine with a probe that says
// what the test wants and the running binary placed at exe.
func fakeHost(gpus int, probeErr error, exe string, env ...string) host {
	h := system
	h.backends = defaultBackends
	h.probe = func() (int, error) { return gpus, probeErr }
	h.executable = func() (string, error) { return exe, nil }
	h.environ = func() []string { return env }
	return h
}

func logger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// openCPU opens through h, expects the CPU device, and returns the log.
func openCPU(t *testing.T, want string, h host) string {
	t.Helper()
	var log bytes.Buffer
	// Not the default of every core, so that the count asked for is seen to be kept.
	threads := runtime.GOMAXPROCS(0) + 1
	dev, err := open(Options{Device: want, Threads: threads}, logger(&log), h)
	if err != nil {
		t.Fatalf("open(%q): %v", want, err)
	}
	defer dev.Close()
	if !strings.HasPrefix(dev.Name(), "cpu (") || !strings.HasSuffix(dev.Name(), fmt.Sprintf(", %d threads)", threads)) {
		t.Fatalf("open(%q) gave %q, want the CPU device with %d threads", want, dev.Name(), threads)
	}
	if !strings.Contains(log.String(), `msg="device: `+dev.Name()) {
		t.Fatalf("log %q does not name the device %q", log.String(), dev.Name())
	}
	return log.String()
}

func TestOpenCPU(t *testing.T) {
	log := openCPU(t, "cpu", fakeHost(1, nil, "/nonexistent/captioner"))
	if !strings.Contains(log, "why=requested") {
		t.Fatalf("log %q", log)
	}
}

func TestOpenAutoWithoutGPU(t *testing.T) {
	_, noLib := cudaprobe.Probe("libcaptioner-no-such-lib.so.1")
	log := openCPU(t, "auto", fakeHost(0, noLib, "/nonexistent/captioner"))
	if !strings.Contains(log, `why="no GPU found (libcaptioner-no-such-lib.so.1`) {
		t.Fatalf("log %q does not say why: no GPU", log)
	}
}

func TestOpenAutoThisMachine(t *testing.T) {
	if n, err := Probe(); err == nil {
		t.Skipf("this machine has %d GPU(s): auto may hand over", n)
	}
	var log bytes.Buffer
	dev, err := Open(Options{Device: "auto", Threads: 1}, logger(&log))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if !strings.HasPrefix(dev.Name(), "cpu (") || !strings.Contains(log.String(), "no GPU found (libcuda.so.1") {
		t.Fatalf("Open(auto) on a machine without GPU: %s, log %q", dev.Name(), log.String())
	}
}

func TestOpenCUDAWithoutGPU(t *testing.T) {
	_, noLib := cudaprobe.Probe("libcaptioner-no-such-lib.so.1")
	_, err := open(Options{Device: "cuda", Threads: 1}, logger(io.Discard), fakeHost(0, noLib, "/nonexistent/captioner"))
	if err == nil || !strings.HasPrefix(err.Error(), "device cuda: no GPU found: libcaptioner-no-such-lib.so.1") ||
		!strings.HasSuffix(err.Error(), "; set device auto (a GPU when there is one, else the CPU) or cpu") {
		t.Fatalf("open(cuda) without GPU: %v", err)
	}
}

func TestGPUWithoutCUDABinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "captioner")
	want := "captioner-cuda binary not found next to " + exe + ": build it with `make build-cuda`"
	log := openCPU(t, "auto", fakeHost(1, nil, exe))
	if !strings.Contains(log, "1 GPU(s) found, but "+want) {
		t.Fatalf("log %q", log)
	}
	_, err := open(Options{Device: "cuda", Threads: 1}, logger(io.Discard), fakeHost(1, nil, exe))
	if err == nil || err.Error() != "device cuda: 1 GPU(s) found, but "+want {
		t.Fatalf("open(cuda): %v", err)
	}

	// A captioner-cuda that cannot be executed is no better, nor is a
	// folder of that name, whose search permission is no execute bit.
	for _, kind := range []string{"file", "folder"} {
		d := t.TempDir()
		exe := filepath.Join(d, "captioner")
		var err error
		if kind == "file" {
			err = os.WriteFile(filepath.Join(d, CUDABinary), []byte("not a program"), 0o644)
		} else {
			err = os.Mkdir(filepath.Join(d, CUDABinary), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = open(Options{Device: "cuda", Threads: 1}, logger(io.Discard), fakeHost(1, nil, exe))
		if want := "device cuda: 1 GPU(s) found, but " + filepath.Join(d, CUDABinary) + " is not an executable file"; err == nil || err.Error() != want {
			t.Fatalf("open(cuda) with a %s %s: %v, want %q", kind, CUDABinary, err, want)
		}
	}
}

func TestHandedOverWithoutCUDABackend(t *testing.T) {
	h := fakeHost(1, nil, "/nonexistent/captioner-cuda", HandoverEnv+"=1")
	log := openCPU(t, "auto", h)
	if !strings.Contains(log, "has no CUDA backend") {
		t.Fatalf("log %q", log)
	}
	_, err := open(Options{Device: "cuda", Threads: 1}, logger(io.Discard), h)
	if err == nil || !strings.Contains(err.Error(), "has no CUDA backend: rebuild it with `make build-cuda`") {
		t.Fatalf("open(cuda) after a hand-over: %v", err)
	}
}

func TestUnknownDevice(t *testing.T) {
	_, err := open(Options{Device: "tpu", Threads: 1}, logger(io.Discard), fakeHost(1, nil, "/nonexistent/captioner"))
	if err == nil || err.Error() != `device "tpu": want auto, cpu or cuda` {
		t.Fatalf("open(tpu): %v", err)
	}
}

// copySelf copies this test binary to dir/captioner and returns that path.
func copySelf(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "captioner")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestHandover runs a copy of this test binary as "captioner" next to a fake
// "captioner-cuda" script; told that a GPU answered, it must exec the script with
// its own arguments and environment plus the hand-over marker.
func TestHandover(t *testing.T) {
	dir := t.TempDir()
	exe := copySelf(t, dir)
	script := "#!/bin/sh\necho \"argv0=$0 args=$* marker=$" + HandoverEnv + " kept=$SELECTOR_TEST_KEPT\"\n"
	if err := os.WriteFile(filepath.Join(dir, CUDABinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "caption", "--device", "auto", "photo.jpg")
	cmd.Env = append(os.Environ(), helperEnv+"=pretend", "SELECTOR_TEST_KEPT=yes")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr: %s", exe, err, stderr.String())
	}
	want := "argv0=" + filepath.Join(dir, CUDABinary) + " args=caption --device auto photo.jpg marker=1 kept=yes\n"
	if string(out) != want {
		t.Fatalf("the hand-over ran %q, want %q; stderr: %s", out, want, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="device: handing over to the CUDA build" gpus=1 binary=`+filepath.Join(dir, CUDABinary)) {
		t.Fatalf("no hand-over log line in %q", stderr.String())
	}
}
