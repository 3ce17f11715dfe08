package server

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/pipeline"
)

// photoPNG is a w x h PNG with a colour gradient, for tests that need a valid
// image but not a photo.
func photoPNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(255 * x / max(1, w-1)), uint8(255 * y / max(1, h-1)), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// testEncoder is the input of the shipped encoder (MobileNetV2, 224x224), which
// the test double shares so that it takes the real pipeline's tensors.
var testEncoder = encoder.Config{Input: 224}

// testPreprocessor prepares images for testEncoder, refusing more than maxPixels.
func testPreprocessor(maxPixels int) pipeline.Preprocessor {
	return pipeline.NewPreprocessor(testEncoder, config.Image{MaxPixels: maxPixels, MaxDecodedBytes: 1 << 40})
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// captionLoader loads the real pipeline (MobileNetV2 + the shipped caption model
// on the CPU) for the HTTP tests, once per test binary: loading is the slow part,
// and every server of a test gets the same weights anyway.
func captionLoader(t testing.TB) Loader {
	t.Helper()
	return PipelineLoader(pipelineConfig(t))
}

// pipelineConfig is the configuration the real pipeline runs with in tests.
func pipelineConfig(t testing.TB) *config.Config {
	t.Helper()
	assets := testassets.Dir(t, "the HTTP tests run the real encoder and decoder")
	return testConfig(t, func(c *config.Config) {
		c.Device = "cpu"
		c.Threads = 2
		c.Assets = assets
		c.Model = mergeModel
	})
}

// mergeModel is the shipped merge model, the real pipeline of these tests:
// they check the server, and it is the faster of the two shipped models
// (the default, flickr8k-attention, is served beside it in the tests of
// several models and in the attention ones through a small attention model).
var mergeModel = filepath.Join("..", "models", "flickr8k-merge-lstm")
