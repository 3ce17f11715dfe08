package server

import (
	"context"
	"time"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/pipeline"
)

// Model is what the batcher runs: *pipeline.Pipeline in production, a test double
// in the queue tests. One goroutine calls Encode and one calls Decode; they are the
// same goroutine, so the two never overlap, unless the model is an Overlapper.
type Model interface {
	// Preprocessor turns uploaded images into the tensors Encode takes.
	Preprocessor() pipeline.Preprocessor
	// Encode turns preprocessed tensors into image features, one per tensor: what
	// the model's decoders read, opaque to the server.
	Encode(ctx context.Context, tensors [][]float32) ([][]float32, error)
	// Decode captions features with one set of options, among them the model
	// (opts.Model, "" for the default) where the Model holds several (Lister).
	Decode(ctx context.Context, feats [][]float32, opts Options) ([]Result, error)
	// Info describes the (default) model for /v1/models and for each caption.
	Info() Info
	// Close releases the model's device memory.
	Close() error
}

// Overlapper is implemented by models whose Encode and Decode may run at the same
// time (each still from one goroutine): the pipeline on the CPU, where the encoder
// and the decoder have devices of their own.
type Overlapper interface {
	Overlaps() bool
}

// Lister is implemented by models that hold several caption models behind one
// encoder (the pipeline with server.models): Encode serves them all, and each
// request picks the one that decodes by name (Options.Model).
type Lister interface {
	// Models describes every model, the default first.
	Models() []Info
}

// served describes the models m holds, the default first.
func served(m Model) []Info {
	if l, ok := m.(Lister); ok {
		return l.Models()
	}
	return []Info{m.Info()}
}

// modelNamed is the model named name (Info.Model) among infos (served), the
// default for "".
func modelNamed(infos []Info, name string) (Info, bool) {
	if name == "" {
		return infos[0], true
	}
	for _, i := range infos {
		if i.Model == name {
			return i, true
		}
	}
	return Info{}, false
}

// Loader loads (and does not yet warm) the configured model or models; serve
// calls it at start and on every reload, which so reloads them all.
type Loader func(ctx context.Context) (Model, error)

// PipelineLoader loads the configured encoder and caption models (model, then
// server.models); every reload reads the model folders again, so new weights
// copied there are picked up. The pipeline is sized for server.max_batch, the
// largest batch the server forms, not for decode.batch_size (caption's and
// eval's): at the default 32 its input and feature buffers would hold 26 MB
// that serving never touches.
func PipelineLoader(cfg *config.Config) Loader {
	sized := *cfg
	sized.Decode.BatchSize = cfg.Server.MaxBatch
	return func(context.Context) (Model, error) { return pipeline.Load(&sized, cfg.Server.Models...) }
}

// Captioned is one image's answer: the model's result plus who made it and when.
type Captioned struct {
	Result
	Model, Version string
	QueueWait      time.Duration // arrival in the queue to the start of its batch
	Encode, Decode time.Duration // of the whole batch the image was in
	BatchSize      int
}
