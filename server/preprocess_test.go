package server

import (
	"bytes"
	"context"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/pipeline"
)

// sizedModel is the queue tests' double that also reports the length of every
// tensor it encodes.
type sizedModel struct {
	*stepModel
	lens chan int
}

func (m sizedModel) Encode(ctx context.Context, t [][]float32) ([][]float32, error) {
	for _, x := range t {
		m.lens <- len(x)
	}
	return m.stepModel.Encode(ctx, t)
}

// TestTensorsFollowTheModelsEncoder: the server sizes the warm-up's and the
// uploads' tensors by the model's preprocessor, not by a size of its own.
func TestTensorsFollowTheModelsEncoder(t *testing.T) {
	m := newStepModel("small")
	m.entered = nil
	m.pre = pipeline.NewPreprocessor(encoder.Config{Input: 16}, config.Image{MaxPixels: 1 << 20, MaxDecodedBytes: 1 << 30})
	sm := sizedModel{m, make(chan int, 64)}
	cfg := testConfig(t, nil)
	ts := startServer(t, cfg, modelLoader(sm))
	const want = 16 * 16 * 3
	for i := range 1 + cfg.Server.MaxBatch { // the warm-up: a batch of 1, a full batch
		if n := <-sm.lens; n != want {
			t.Fatalf("warm-up tensor %d has %d values, want %d", i, n, want)
		}
	}
	r := do(t, "POST", ts.url+"/v1/captions", "image/png", bytes.NewReader(photoPNG(40, 30)))
	if r.status != 200 {
		t.Fatalf("caption: %d %s", r.status, r.body)
	}
	if n := <-sm.lens; n != want {
		t.Errorf("the upload's tensor has %d values, want %d", n, want)
	}
}
