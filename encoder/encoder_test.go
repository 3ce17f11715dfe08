package encoder

import (
	"math"
	"math/rand/v2"
	"path/filepath"
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

// newEncoderIn is newEncoder computing in precision p.
func newEncoderIn(t testing.TB, model string, maxBatch int, p gpu.Precision) (*Encoder, *tflite.Model) {
	t.Helper()
	path := modelFile(t, model)
	w, err := ImportFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tflite.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(2)
	e, err := New(dev, w, maxBatch, string(p))
	if err != nil {
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
	for _, model := range []string{quantModel, ptqModel} {
		t.Run(model, func(t *testing.T) {
			e, m := newEncoder(t, model, 2)
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

// TestBatchMatchesSingleImages checks that a batch large enough to be split into
// chunks (early part per image, late blocks in chunks of 9 at 14x14x576) gives
// each image the features it gets alone.
func TestBatchMatchesSingleImages(t *testing.T) {
	const n = 11
	e, _ := newEncoder(t, quantModel, n)
	rng := rand.New(rand.NewPCG(3, 3))
	images := make([]float32, n*e.ImageLen())
	for i := range images {
		images[i] = rng.Float32()*2 - 1
	}
	_, batch, _ := encodeAll(t, e, images, n)
	for i := 0; i < n; i++ {
		_, one, _ := encodeAll(t, e, images[i*e.ImageLen():(i+1)*e.ImageLen()], 1)
		if d := maxDiff(batch[i*1280:(i+1)*1280], one); d > 1e-5 {
			t.Errorf("image %d: batched pooled features differ from single-image ones by %.2g", i, d)
		}
	}
	if e.chunks[len(e.chunks)-4] >= n {
		t.Errorf("late chunks %v: the test no longer splits the batch", e.chunks)
	}
}
