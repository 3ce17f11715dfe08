package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/testmodel"
	"github.com/captioner/captioner/server"
)

// TestServeHelperProcess is captioner (`captioner serve`, or the command
// CAPTIONER_SERVE_HELPER_ARGS names) run as a child process by the tests below
// and TestExitStatus (the os/exec tests' pattern): it does nothing in a
// normal run.
func TestServeHelperProcess(t *testing.T) {
	args := os.Getenv("CAPTIONER_SERVE_HELPER_ARGS")
	if args == "" {
		t.Skip("runs only as the child process of TestServeSignals")
	}
	rootCmd.SetArgs(strings.Fields(args))
	main() // exits with status 1 on an error
	os.Exit(0)
}

// serveProcess is a `captioner serve` child whose JSON log lines arrive on logs.
type serveProcess struct {
	cmd  *exec.Cmd
	logs chan map[string]any
	addr string
}

func startServe(t *testing.T, args string, env ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(os.Environ(), append(env, "CAPTIONER_SERVE_HELPER_ARGS="+args)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, logs: make(chan map[string]any, 1024)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.logs <- m
			} else {
				p.logs <- map[string]any{"msg": "non-JSON output", "line": sc.Text()}
			}
		}
		close(p.logs)
	}()
	return p
}

// waitLog returns the next log line whose msg is msg, failing on the process
// ending first.
func (p *serveProcess) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	for m := range p.logs {
		if m["msg"] == msg {
			return m
		}
		if m["msg"] == "non-JSON output" {
			t.Errorf("serve wrote a line that is not a JSON log record: %v", m["line"])
		}
		if m["level"] == "ERROR" {
			t.Logf("serve: %v", m)
		}
	}
	t.Fatalf("serve ended before logging %q", msg)
	return nil
}

func photoBody(t *testing.T, assets string, n int) (*bytes.Buffer, string) {
	paths, _ := filepath.Glob(filepath.Join(assets, "samples", "flickr8k_fullres", "*.jpg"))
	if len(paths) < n {
		t.Fatalf("want %d photos in %s/samples/flickr8k_fullres", n, assets)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range paths[:n] {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fw, _ := w.CreateFormFile("image", filepath.Base(p))
		fw.Write(b)
	}
	w.Close()
	return &body, w.FormDataContentType()
}

func TestServeSignals(t *testing.T) {
	assets := sharedAssets(t)
	model, _ := filepath.Abs(filepath.Join("..", "..", "models", "flickr8k-merge-lstm"))
	p := startServe(t, "serve --addr 127.0.0.1:0 --device cpu --threads 2 --model "+model,
		"CAPTIONER_ASSETS="+assets, "CAPTIONER_SERVER_SHUTDOWN_GRACE=2m", "CAPTIONER_SERVER_MAX_BATCH=4", "CAPTIONER_PRECISION=auto")
	p.addr = p.waitLog(t, "listening")["addr"].(string)
	ready := p.waitLog(t, "model ready")
	url := "http://" + p.addr
	// The log names the encoder's precision, auto's pick for this CPU.
	d := cpu.New(1)
	defer d.Close()
	if want := map[bool]string{true: "bfloat16", false: "float32"}[gpu.FastBFloat16(d)]; ready["precision"] != want {
		t.Errorf("model ready logged precision %v, want %s (auto on this CPU)", ready["precision"], want)
	}
	// The server measured the bfloat16 rate in its own process: the same
	// reason, its figures a little apart (1.98x against 2.00x under load).
	rate := regexp.MustCompile(`[0-9.]+x`)
	why, _ := ready["precision_why"].(string)
	if want := "auto: " + gpu.BFloat16Why(d); rate.ReplaceAllString(why, "Nx") != rate.ReplaceAllString(want, "Nx") {
		t.Errorf("model ready logged precision_why %q, want %q", why, want)
	}

	// The server collects garbage at server.GCPercent unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" && (!metricAbove(url, "go_gc_gogc_percent", server.GCPercent-1) || metricAbove(url, "go_gc_gogc_percent", server.GCPercent)) {
		t.Errorf("go_gc_gogc_percent is not %d", server.GCPercent)
	}

	// SIGHUP reloads the model from its folder; the same weights keep their version.
	p.cmd.Process.Signal(syscall.SIGHUP)
	if m := p.waitLog(t, "model reloaded"); m["to"] != ready["version"] {
		t.Errorf("reload logged %v, want version %v", m, ready["version"])
	}

	// A request with 8 photos is accepted; SIGTERM arrives while it is queued.
	body, ct := photoBody(t, assets, 8)
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(url+"/v1/captions", ct, body)
		if err != nil {
			t.Errorf("the accepted request failed: %v", err)
		}
		answer <- resp
	}()
	deadline := time.Now().Add(time.Minute)
	for !metricAbove(url, "captioner_queue_places_taken", 0) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the queue")
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if m := p.waitLog(t, "shutting down"); m["grace"] != "2m0s" { // a duration, not nanoseconds
		t.Errorf("shutting down logged grace %v, want 2m0s", m["grace"])
	}
	// New connections are refused from now on, the accepted request is answered in full.
	for {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			break
		}
		c.Close()
	}
	resp := <-answer
	if resp == nil {
		t.FailNow()
	}
	var out struct {
		Captions []struct{ Caption string } `json:"captions"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(out.Captions) != 8 {
		t.Fatalf("accepted request after SIGTERM: %d with %d captions, want 200 with 8", resp.StatusCode, len(out.Captions))
	}
	for i, c := range out.Captions {
		if c.Caption == "" {
			t.Errorf("caption %d is empty", i)
		}
	}
	p.waitLog(t, "shutdown complete")
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want status 0", err)
	}
}

// metricAbove reports whether the unlabelled series name on url's /metrics exceeds v.
func metricAbove(url, name string, v float64) bool {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		var got float64
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			if _, err := fmt.Sscan(rest, &got); err == nil && got > v {
				return true
			}
		}
	}
	return false
}

// serve --models serves more models beside --model, one encoder for all: the
// start-up log and /v1/models name them, and a request picks one by name.
func TestServeSeveralModels(t *testing.T) {
	assets := sharedAssets(t)
	model, _ := filepath.Abs(filepath.Join("..", "..", "models", "flickr8k-merge-lstm"))
	second := testmodel.Copy(t, model, "second-merge")
	p := startServe(t, "serve --addr 127.0.0.1:0 --device cpu --threads 2 --model "+model+" --models "+second,
		"CAPTIONER_ASSETS="+assets)
	p.addr = p.waitLog(t, "listening")["addr"].(string)
	ready := p.waitLog(t, "model ready")
	if want := "second-merge " + ready["version"].(string); ready["model"] != "flickr8k-merge-lstm" || ready["also"] != want {
		t.Errorf("model ready: %v, want flickr8k-merge-lstm, also %q", ready, want)
	}
	url := "http://" + p.addr
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var models struct {
		Models []struct {
			Name    string
			Default bool
		}
	}
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if got := fmt.Sprint(models.Models); got != "[{flickr8k-merge-lstm true} {second-merge false}]" {
		t.Errorf("/v1/models: %s, want both models, the first the default", got)
	}
	body, ct := photoBody(t, assets, 1)
	resp, err = http.Post(url+"/v1/captions?model=second-merge", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Captions []struct{ Model struct{ Name string } }
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(out.Captions) != 1 || out.Captions[0].Model.Name != "second-merge" {
		t.Errorf("model=second-merge: %d %+v, want a caption by second-merge", resp.StatusCode, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "shutdown complete")
}

// TestServeRefusesADefaultBeamAboveMaxBeam: decode.beam above server.max_beam
// was served at max_beam without a word, while a request naming decode.beam's
// width was refused.
func TestServeRefusesADefaultBeamAboveMaxBeam(t *testing.T) {
	t.Setenv("CAPTIONER_DECODE_BEAM", "12")
	resetFlags(t, "serve", "addr")
	// decode.beam stays bound to the --beam of the last caption or eval run
	// in this process: one an earlier test set would outvote the variable.
	resetFlags(t, "caption", "beam")
	resetFlags(t, "eval", "beam")
	// An address in use: serve that let the beam through fails there, not serves on.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = run(t, "serve", "--addr", taken.Addr().String())
	want := "decode.beam 12 is above server.max_beam 8: a request naming no beam would be decoded at 8, and one naming 12 refused; lower decode.beam or raise server.max_beam"
	if err == nil || err.Error() != want {
		t.Errorf("serve: %v, want %q", err, want)
	}
}

// TestServeFailureIsLoggedAsJSON: serve's logs are JSON lines, and a failure
// after they start is one of them (it was a plain line after the JSON, which
// a log collector did not parse), and the exit status is 1.
func TestServeFailureIsLoggedAsJSON(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-model")
	p := startServe(t, "serve --addr 127.0.0.1:0 --device cpu --model "+missing)
	m := p.waitLog(t, "serve stopped")
	if err, _ := m["err"].(string); m["level"] != "ERROR" || !strings.Contains(err, "model folder "+missing+" not found") {
		t.Errorf("the failure's log line %v, want level ERROR and the missing folder", m)
	}
	for m := range p.logs {
		if m["msg"] == "non-JSON output" {
			t.Errorf("serve wrote a line that is not JSON after failing: %v", m["line"])
		}
	}
	var exit *exec.ExitError
	if err := p.cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
}
