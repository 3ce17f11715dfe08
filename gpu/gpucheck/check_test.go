//go:build cuda

package gpucheck

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	_ "github.com/captioner/captioner/gpu/cuda" // registers the cuda backend
	"github.com/captioner/captioner/internal/benchinput"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

var (
	modelDir  = flag.String("check.model", "../../"+config.DefaultModel, "caption model folder: the one the benchmarks measure, and TestParity's default model")
	extra     = flag.String("check.models", "", "comma-separated caption model folders TestParity loads beside -check.model")
	photosDir = flag.String("check.photos", "", "folder of JPEG photos for parity (default: $CAPTIONER_ASSETS/samples/flickr8k_fullres)")
	maxPhotos = flag.Int("check.max-photos", 0, "use at most this many photos (0: all)")
	out       = flag.String("check.out", "", "write TestParity's results as JSON to this file")
	batches   = flag.String("check.batches", "1,8,64,256", "encoder batch sizes to benchmark")
	trainB    = flag.Int("check.train-batch", 64, "captions per training step")
	tf32      = flag.Bool("check.tf32", false, "TestParity with the GPU's GEMMs in TF32 (cuda.tf32): measures how far the features and captions move, without judging")
)

func loadConfig(t testing.TB, device string) *config.Config {
	t.Helper()
	cfg, err := config.Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Device, cfg.Precision, cfg.Model = device, "float32", *modelDir
	cfg.CUDA.TF32 = *tf32 && device == "cuda"
	cfg.Decode.BatchSize = 8
	return cfg
}

func photos(t testing.TB) []string {
	t.Helper()
	dir := *photosDir
	if dir == "" {
		assets := os.Getenv("CAPTIONER_ASSETS")
		if assets == "" {
			t.Skip("no photos: set -check.photos or CAPTIONER_ASSETS")
		}
		dir = filepath.Join(assets, "samples", "flickr8k_fullres")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .jpg photos in %s (%v)", dir, err)
	}
	slices.Sort(paths)
	if *maxPhotos > 0 && len(paths) > *maxPhotos {
		paths = paths[:*maxPhotos]
	}
	return paths
}

// extraModels are the folders of -check.models.
func extraModels() []string {
	var dirs []string
	for _, d := range strings.Split(*extra, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// run captions the photos at paths on device with -check.model and
// -check.models, preprocessed by the pipeline's own door: the features, and
// every model's greedy and beam-3 captions.
func run(t *testing.T, device string, paths []string) captioned {
	t.Helper()
	p, err := pipeline.Load(loadConfig(t, device), extraModels()...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tensors, err := p.Preprocessor().Files(paths)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := captioned{device: p.Info().Device, models: p.Models()}
	if c.feats, err = p.Encode(ctx, tensors); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.models {
		greedy, err := p.Decode(ctx, c.feats, pipeline.Options{Beam: 1, Model: m.Model})
		if err != nil {
			t.Fatal(err)
		}
		beam, err := p.Decode(ctx, c.feats, pipeline.Options{Beam: 3, Model: m.Model})
		if err != nil {
			t.Fatal(err)
		}
		c.greedy, c.beam = append(c.greedy, greedy), append(c.beam, beam)
	}
	return c
}

// TestParity runs -check.model and -check.models on the photos on the GPU and
// on the CPU, both float32: features within FeatureTolerance, and each model's
// greedy and beam-3 captions the same. With -check.tf32 the GPU rounds its
// GEMMs' inputs to TF32, and the differences are measured and logged, not
// judged: how far they go is what the run is for.
func TestParity(t *testing.T) {
	paths := photos(t)
	g := run(t, "cuda", paths)
	c := run(t, "cpu", paths)
	differ := t.Errorf
	if *tf32 {
		differ = t.Logf
	}
	report := struct {
		GPU       string        `json:"gpu"`
		CPU       string        `json:"cpu"`
		TF32      bool          `json:"tf32"`
		Tolerance float64       `json:"feature_tolerance"`
		Photos    []PhotoParity `json:"photos"` // per model, per photo
	}{GPU: g.device, CPU: c.device, TF32: *tf32, Tolerance: FeatureTolerance}
	var diffs []string
	report.Photos, diffs = compare(g, c, paths)
	for _, d := range diffs {
		differ("%s", d)
	}
	for _, r := range report.Photos {
		t.Logf("%s, %s: rel L2 %.2g, %q", r.Model, r.Photo, r.FeatureRelL2, r.BeamGPU)
	}
	if *out != "" {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openGPU(b *testing.B) gpu.Device { return openGPUWith(b, gpu.Options{}) }

func openGPUWith(b *testing.B, o gpu.Options) gpu.Device {
	dev, err := gpu.Open("cuda", o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	return dev
}

func syncOrFail(b *testing.B, dev gpu.Device) {
	if err := dev.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEncode measures MobileNetV2 images/s at each batch size of
// -check.batches, timed to a Sync: float32, and float32 with its GEMMs (the
// convolutions but the depthwise ones) on tensor cores in TF32 (cuda.tf32).
func BenchmarkEncode(b *testing.B) {
	devs := map[string]gpu.Device{"float32": openGPU(b), "tf32": openGPUWith(b, gpu.Options{TF32: true})}
	w, err := encoder.LoadDefault(os.Getenv("CAPTIONER_ASSETS"))
	if err != nil {
		b.Fatal(err)
	}
	var sizes []int
	for _, f := range strings.Split(*batches, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			b.Fatalf("-check.batches: %q is not a batch size", f)
		}
		sizes = append(sizes, n)
	}
	for _, precision := range []string{"float32", "tf32"} {
		for _, batch := range sizes {
			benchEncode(b, devs[precision], w, precision, batch)
		}
	}
}

func benchEncode(b *testing.B, dev gpu.Device, w *encoder.Weights, precision string, batch int) {
	b.Run(fmt.Sprintf("precision=%s/batch=%d", precision, batch), func(b *testing.B) {
		encode, done := warmEncoder(b, dev, w, batch)
		defer done()
		syncOrFail(b, dev)
		b.ResetTimer()
		for range b.N {
			encode()
		}
		syncOrFail(b, dev)
		b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
	})
}

// warmEncoder makes a float32 encoder of batch images on dev and returns a
// call that encodes benchinput's images, made once already (the PTX JIT,
// cuBLAS's heuristics, scratch growth), and the encoder's Close.
func warmEncoder(tb testing.TB, dev gpu.Device, w *encoder.Weights, batch int) (encode, done func()) {
	e, err := encoder.New(dev, w, batch, "float32")
	if err != nil {
		tb.Fatal(err)
	}
	x := benchinput.Images(batch)
	encode = func() {
		if err := e.Encode(x, batch); err != nil {
			tb.Fatal(err)
		}
	}
	encode()
	return encode, func() { e.Close() }
}

// model loads -check.model, the decoder to benchmark, whatever its
// architecture: the benchmarks feed it inputs of its own width (InputDim: the
// pooled vector for merge, the grid for attention) and are named by its arch.
func model(b *testing.B, dev gpu.Device) *decoder.Model {
	_, m, err := pipeline.LoadModel(dev, *modelDir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

// BenchmarkDecode measures captions/s of greedy and beam-3 search at batch 1
// and 64, 16 words each (no early stop, so every run does the same work).
func BenchmarkDecode(b *testing.B) {
	dev := openGPU(b)
	m := model(b, dev)
	const words = 16
	for _, beam := range []int{1, 3} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("arch=%s/beam=%d/batch=%d", m.Cfg.Arch, beam, batch), func(b *testing.B) {
				feats := benchinput.Features(dev, batch, m.Cfg.InputDim())
				defer dev.Free(feats)
				o := decoder.DecodeOptions{Start: text.StartID, End: text.EndID, MaxLen: words, Beam: beam, NoEarlyStop: true}
				gen := func() {
					if _, err := m.Generate(context.Background(), feats, batch, o); err != nil {
						b.Fatal(err)
					}
				}
				gen()
				b.ResetTimer()
				for range b.N {
					gen()
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "captions/s")
			})
		}
	}
}

// BenchmarkTrain measures training tokens/s: forward, backward, clipping and
// AdamW on batches of -check.train-batch captions of 16 tokens.
func BenchmarkTrain(b *testing.B) {
	dev := openGPU(b)
	m := model(b, dev)
	if c := m.Cfg; c.CtxRank > 0 { // the recipe trains the full context weight and factorizes after: time that network
		c.CtxRank = 0
		full, err := decoder.New(dev, c, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(full.Close)
		m = full
	}
	B, T := *trainB, 16
	ts := m.NewTrainState(B, T)
	defer ts.Close()
	feats := benchinput.Features(dev, B, m.Cfg.InputDim())
	defer dev.Free(feats)
	ids, targets := benchinput.Tokens(T*B, m.Cfg.Vocab)
	adam := decoder.Adam{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	step := func(i int) {
		if err := ts.Step(5, adam, func() error {
			_, _, err := ts.Forward(feats, ids, targets, B, T, true, uint64(i))
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	step(0)
	syncOrFail(b, dev)
	b.Run(fmt.Sprintf("arch=%s/batch=%d", m.Cfg.Arch, B), func(b *testing.B) {
		for i := range b.N {
			step(i + 1)
		}
		syncOrFail(b, dev)
		b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}
