package encoder

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/tflite"
)

// assetsDir returns the shared assets folder, skipping when the tests run
// without one (CI sets CAPTIONER_ASSETS).
func assetsDir(t testing.TB) string {
	t.Helper()
	dir := testassets.Dir(t, "the test needs the MobileNetV2 weights and sample photos")
	return dir
}

const (
	quantModel = "mobilenet_v2_1.0_224_quant.tflite"
	ptqModel   = "tf2_mobilenet_v2_1.0_224_ptq.tflite"
)

func modelFile(t testing.TB, name string) string {
	return filepath.Join(assetsDir(t), "models/mobilenet_v2", name)
}

// photo returns a sample photo preprocessed by imgproc: (224, 224, 3) in [-1, 1].
func photo(t testing.TB, name string) []float32 {
	img, err := imgproc.DecodeFile(filepath.Join(assetsDir(t), "samples", name), imgproc.Limits{MaxPixels: 50_000_000, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 224*224*3)
	imgproc.ToTensor(x, img, 224)
	return x
}

func newEncoder(t testing.TB, model string, maxBatch int) (*Encoder, *tflite.Model) {
	t.Helper()
	return newEncoderIn(t, model, maxBatch, gpu.Float32)
}

// newEncoderIn is newEncoder computing in precision p: on the CPU device, a
// oneDNN chain.
func newEncoderIn(t testing.TB, model string, maxBatch int, p gpu.Precision) (*Encoder, *tflite.Model) {
	t.Helper()
	return newEncoderOn(t, cpu.New(2), model, maxBatch, p)
}

// perLayer hides the CPU device's gpu.ConvPlanner, so that an encoder on it runs
// the per-layer kernels: the float32 reference the chain is checked against.
type perLayer struct{ gpu.Device }

// newKernelEncoder is newEncoder running the CPU device's per-layer kernels.
func newKernelEncoder(t testing.TB, model string, maxBatch int) (*Encoder, *tflite.Model) {
	t.Helper()
	return newEncoderOn(t, perLayer{cpu.New(2)}, model, maxBatch, gpu.Float32)
}

// newEncoderOn builds an encoder of model on dev, which it closes at the end of the test.
func newEncoderOn(t testing.TB, dev gpu.Device, model string, maxBatch int, p gpu.Precision) (*Encoder, *tflite.Model) {
	t.Helper()
	path := modelFile(t, model)
	w, err := ImportFile(path)
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	m, err := tflite.ReadFile(path)
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	e, err := New(dev, w, maxBatch, string(p))
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); dev.Close() })
	return e, m
}

// maxDiff returns max |a-b| / (1 + max |b|): relative to the tensor's scale.
func maxDiff(a, b []float32) float64 {
	var d, scale float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return d / (1 + scale)
}

// TestForwardMatchesNaiveInterpreter runs both TFLite files through the encoder
// on the CPU device and through refRun (plain loops over the file's own graph),
// on a photo and on noise, and compares the grid, the pooled features and the
// probabilities.
func TestForwardMatchesNaiveInterpreter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]float32, 224*224*3)
	for i := range noise {
		noise[i] = rng.Float32()*2 - 1
	}
	for _, c := range []struct {
		name string
		open func(testing.TB, string, int) (*Encoder, *tflite.Model)
	}{{"chain", newEncoder}, {"kernels", newKernelEncoder}} {
		for _, model := range []string{quantModel, ptqModel} {
			t.Run(c.name+"/"+model, func(t *testing.T) {
				e, m := c.open(t, model, 2)
				images := append(photo(t, "grace_hopper.bmp"), noise...)
				if err := e.Encode(images, 2); err != nil {
					t.Fatal(err)
				}
				probs := e.Classify()
				grid := make([]float32, 2*e.GridLen())
				pooled := make([]float32, 2*e.FeatureDim())
				p := make([]float32, 2*1001)
				if err := e.dev.Download(grid, e.Grid()); err != nil {
					t.Fatal(err)
				}
				if err := e.dev.Download(pooled, e.Pooled()); err != nil {
					t.Fatal(err)
				}
				if err := e.dev.Download(p, probs); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 2; i++ {
					ref, err := refRun(m, images[i*e.ImageLen():(i+1)*e.ImageLen()])
					if err != nil {
						t.Fatal(err)
					}
					gd := maxDiff(grid[i*e.GridLen():(i+1)*e.GridLen()], ref.grid)
					pd := maxDiff(pooled[i*1280:(i+1)*1280], ref.pooled)
					qd := maxDiff(p[i*1001:(i+1)*1001], ref.probs)
					t.Logf("image %d: max diff grid %.2g, pooled %.2g, probs %.2g", i, gd, pd, qd)
					if gd > 1e-4 || pd > 1e-4 || qd > 1e-5 {
						t.Errorf("image %d differs from the naive interpreter: grid %.2g, pooled %.2g, probs %.2g", i, gd, pd, qd)
					}
				}
			})
		}
	}
}

// wholeBatches is perLayer with a GPU's chunk bound: the per-layer kernels
// run every layer on the whole batch.
type wholeBatches struct{ perLayer }

func (wholeBatches) ChunkFloats() int { return math.MaxInt32 }

// TestBatchMatchesSingleImages checks that a batch large enough to be split
// gives each image the features it gets alone: on the per-layer kernels, into
// chunks (early part per image, late blocks in chunks of 9 at 14x14x576), and
// unsplit under a GPU's bound; on the chain, over two threads of 5 and 6
// images, each run image by image.
func TestBatchMatchesSingleImages(t *testing.T) {
	const n = 11
	kernels, _ := newKernelEncoder(t, quantModel, n)
	if kernels.earlyChunk != 1 || kernels.chunks[len(kernels.chunks)-4] >= n {
		t.Errorf("early chunk %d, late chunks %v: the test no longer splits the batch", kernels.earlyChunk, kernels.chunks)
	}
	whole, _ := newEncoderOn(t, wholeBatches{perLayer{cpu.New(2)}}, quantModel, n, gpu.Float32)
	if whole.earlyChunk != n || slices.ContainsFunc(whole.chunks, func(k int) bool { return k != n }) {
		t.Errorf("under a GPU's bound: early chunk %d, chunks %v; want the whole batch of %d", whole.earlyChunk, whole.chunks, n)
	}
	chain, _ := newEncoder(t, quantModel, n)
	rng := rand.New(rand.NewPCG(3, 3))
	images := make([]float32, n*chain.ImageLen())
	for i := range images {
		images[i] = rng.Float32()*2 - 1
	}
	for _, e := range []*Encoder{kernels, whole, chain} {
		_, batch, _ := encodeAll(t, e, images, n)
		for i := 0; i < n; i++ {
			_, one, _ := encodeAll(t, e, images[i*e.ImageLen():(i+1)*e.ImageLen()], 1)
			if d := maxDiff(batch[i*1280:(i+1)*1280], one); d > 1e-5 {
				t.Errorf("%s: image %d: batched pooled features differ from single-image ones by %.2g", e.Describe(), i, d)
			}
		}
	}
}

// NewFeatures computes New's features without holding the classifier, and
// says so if asked to classify.
func TestNewFeaturesHasNoClassifier(t *testing.T) {
	full, _ := newEncoder(t, quantModel, 1)
	w, err := ImportFile(modelFile(t, quantModel))
	if err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(2)
	defer dev.Close()
	feat, err := NewFeatures(dev, w, 1, string(gpu.Float32))
	if err != nil {
		t.Fatal(err)
	}
	defer feat.Close()
	img := photo(t, "grace_hopper.bmp")
	got, want := make([]float32, feat.GridLen()), make([]float32, full.GridLen())
	for _, c := range []struct {
		e   *Encoder
		out []float32
	}{{feat, got}, {full, want}} {
		if err := c.e.Encode(img, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.e.dev.Download(c.out, c.e.Grid()); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, want) {
		t.Error("NewFeatures' grid differs from New's on the same photo")
	}
	defer func() {
		const msg = "encoder: Classify on an encoder without a classifier (from NewBottom or NewFeatures)"
		if r := recover(); r != msg {
			t.Errorf("Classify on NewFeatures' encoder: panic %v, want %q", r, msg)
		}
	}()
	feat.Classify()
}
