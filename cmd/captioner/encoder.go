package main

import (
	"fmt"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/pipeline"
)

// loadEncoder builds the default encoder (imported from the assets folder's TFLite
// file on first use) on a newly opened device, for batches of up to maxBatch. It
// computes in float32 whatever the precision setting: extract's cached features
// train the caption model and must not depend on the machine, and classify
// reports the reference probabilities.
func loadEncoder(cfg *config.Config, maxBatch int) (*encoder.Encoder, gpu.Device, error) {
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		return nil, nil, err
	}
	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return nil, nil, err
	}
	e, err := encoder.New(dev, w, maxBatch, string(gpu.Float32))
	if err != nil {
		dev.Close()
		return nil, nil, fmt.Errorf("encoder on %s: %w", dev.Name(), err)
	}
	return e, dev, nil
}
