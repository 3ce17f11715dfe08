// Package pipeline is the one way from an image to a sentence: it preprocesses
// image bytes or files for the encoder (Preprocessor), resolves decode options
// against the configuration (Decoding), and runs the encoder and the caption
// decoder in device batches (Pipeline, CaptionFeatures). The server, the
// commands and the trainer's evaluation all go through it.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/selector"
	"github.com/captioner/captioner/internal/locate"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
)

// Files in a model folder besides the decoder's own.
const (
	VocabFile  = "vocab.json"
	ScoresFile = "scores.json" // dev-split scores written by captioner eval
)

// Alternative is one candidate caption.
type Alternative struct {
	Caption    string  `json:"caption"`
	Score      float64 `json:"score"`      // length-normalised log-probability
	Confidence float64 `json:"confidence"` // see Result.Confidence
}

// Result is one image's caption.
type Result struct {
	// Caption is the caption as a sentence (text.Sentence): "Dog runs.".
	Caption string `json:"caption"`
	// Tokens are the decoder's words, as evaluation scores them.
	Tokens []string `json:"tokens"`
	// Score is the length-normalised log-probability beam search ranks by.
	Score float64 `json:"score"`
	// Confidence is exp(mean log-probability per token, the end included),
	// in [0, 1]: the geometric mean of the probabilities of the choices that
	// made the caption, a guided noun's being its tag's (see confidence). On
	// the Flickr8k dev split, captions of higher confidence score higher
	// (models/flickr8k-merge-lstm/MODEL.md has the buckets).
	Confidence float64 `json:"confidence"`
	// Tags are the encoder's ImageNet nouns for the image (decode.tags).
	Tags []tags.Tag `json:"tags"`
	// Guided are the nouns guided decoding made the caption name; empty when
	// the caption is the plain beam search's.
	Guided       []string      `json:"guided,omitempty"`
	Alternatives []Alternative `json:"alternatives,omitempty"`
	// Attention is, when Options.Attention asks, each word's weights over the
	// image regions (words, regions: 49 for the 7x7 grid, row-major from the
	// top left), the weights of the step that chose the word.
	Attention [][]float32 `json:"attention,omitempty"`
}

// Info describes the loaded model for /v1/models and logs.
type Info struct {
	Model   string `json:"model"`   // folder name
	Version string `json:"version"` // first 12 hex digits of the decoder weights' SHA-256
	Encoder string `json:"encoder"` // encoder ID (weights hash + code version)
	Device  string `json:"device"`
	// Precision is what the encoder computes in: float32, or bfloat16 (see config.Config.Precision).
	Precision string             `json:"precision"`
	Vocab     int                `json:"vocab"`
	Scores    map[string]float64 `json:"scores,omitempty"` // from scores.json when present
	// Arch is decoder.ArchMerge or decoder.ArchAttention: only attention models answer Options.Attention.
	Arch string `json:"arch"`
}

// Pipeline is a loaded encoder + decoder. It is not safe for concurrent use: one
// goroutine (the batcher, or a command) calls it, except that when Overlaps, one
// goroutine may call Encode while another calls Decode.
type Pipeline struct {
	dev      gpu.Device // the decoder's
	encDev   gpu.Device // the encoder's: dev, or a device of its own (see Load)
	enc      imageEncoder
	dec      Decoder // its Tagger on dev
	info     Info
	maxBatch int
	feats    gpu.Buf // (maxBatch, F) host features uploaded by Decode
	// With a fine-tuned encoder (an *encoder.Branched), Encode appends to each
	// image's features the original encoder's pooled vector (tagDim values),
	// which Decode uploads into tagFeats for the Tagger.
	tagDim   int
	tagFeats gpu.Buf // (maxBatch, tagDim)
	decoding Decoding
	pre      Preprocessor
}

// imageEncoder is what Encode runs: an *encoder.Encoder, or for a model with
// fine-tuned encoder layers (encoder.TunedFile) an *encoder.Branched.
type imageEncoder interface {
	EncodeEach(images [][]float32) error
	Pooled() gpu.Buf
	Grid() gpu.Buf
	ImageLen() int
	Config() encoder.Config
	Close()
}

// OpenDevice opens the configured device through gpu/selector: the CPU with
// cfg.Threads threads, or CUDA, where "auto" hands over to the captioner-cuda
// binary when a GPU and that binary are present.
func OpenDevice(cfg *config.Config) (gpu.Device, error) {
	return selector.Open(selector.Options{Device: cfg.Device, Threads: cfg.Threads, CUDALibraryPath: cfg.CUDA.LibraryPath}, slog.Default())
}

// Load opens cfg.Device and loads the encoder (from cfg.Assets) and the caption
// model in cfg.Model. Where the device can fork (gpu.Forker: the CPU), the
// encoder gets a device of its own, so that Encode and Decode may run at the
// same time (Overlaps); elsewhere the two share one device.
func Load(cfg *config.Config) (*Pipeline, error) {
	dev, err := OpenDevice(cfg)
	if err != nil {
		return nil, err
	}
	encDev := dev
	if f, ok := dev.(gpu.Forker); ok {
		if encDev, err = f.Fork(); err != nil {
			dev.Close()
			return nil, err
		}
	}
	p, err := load(dev, encDev, cfg)
	if err != nil {
		if encDev != dev {
			encDev.Close()
		}
		dev.Close()
		return nil, err
	}
	return p, nil
}

// load builds the pipeline: the decoder on dev, the encoder on encDev.
func load(dev, encDev gpu.Device, cfg *config.Config) (*Pipeline, error) {
	vocab, dec, err := LoadModel(dev, cfg.Model)
	if err != nil {
		return nil, err
	}
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		dec.Close()
		return nil, err
	}
	if w.Config.Head != dec.Cfg.FeatDim {
		dec.Close()
		return nil, fmt.Errorf("pipeline: the encoder gives %d features, model %s expects %d", w.Config.Head, cfg.Model, dec.Cfg.FeatDim)
	}
	tagger, err := NewTagger(dev, w)
	if err != nil {
		dec.Close()
		return nil, err
	}
	p := &Pipeline{dev: dev, encDev: encDev, dec: Decoder{Model: dec, Vocab: vocab, Tagger: tagger}, maxBatch: cfg.Decode.BatchSize,
		decoding: NewDecoding(cfg.Decode, config.MaxBeam), pre: NewPreprocessor(w.Config, cfg.Image)}
	precision := gpu.Float32
	if tuned := filepath.Join(cfg.Model, encoder.TunedFile); fileExists(tuned) {
		// The fine-tuned layers run beside the original ones, whose pooled
		// features the tags keep reading (see encoder.Branched), in float32.
		tw, first, err := encoder.WithTuned(w, tuned)
		if err == nil {
			p.enc, err = encoder.NewBranched(encDev, w, []*encoder.Weights{tw}, first, p.maxBatch)
		}
		if err != nil {
			tagger.Close()
			dec.Close()
			return nil, fmt.Errorf("pipeline: model %s: %w", cfg.Model, err)
		}
		p.tagDim = w.Config.Head
		p.tagFeats = dev.Alloc(p.maxBatch * p.tagDim)
	} else {
		enc, err := encoder.New(encDev, w, p.maxBatch, cfg.Precision)
		if err != nil {
			tagger.Close()
			dec.Close()
			return nil, err
		}
		p.enc, precision = enc, enc.Precision()
	}
	if g := w.Config.GridSize(); dec.Cfg.Arch == decoder.ArchAttention && dec.Cfg.Regions != g*g {
		dec.Close()
		return nil, fmt.Errorf("pipeline: the encoder gives a %dx%d grid, model %s attends over %d regions", g, g, cfg.Model, dec.Cfg.Regions)
	}
	p.feats = dev.Alloc(p.maxBatch * dec.Cfg.InputDim())
	ec := p.enc.Config()
	if b, ok := p.enc.(*encoder.Branched); ok {
		ec = b.TunedConfig(0)
	}
	p.info = Info{Model: filepath.Base(filepath.Clean(cfg.Model)), Encoder: ec.ID(), Device: dev.Name(),
		Precision: string(precision), Vocab: vocab.Size(), Arch: dec.Cfg.Arch}
	if p.info.Version, err = modelVersion(filepath.Join(cfg.Model, decoder.WeightsFile)); err != nil {
		p.Close()
		return nil, err
	}
	if p.info.Scores, err = ReadScores(cfg.Model); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// LoadModel reads a model folder's vocabulary and decoder onto dev, checking
// that they agree. A missing folder is named with where it was looked for and
// the flag that fixes it.
func LoadModel(dev gpu.Device, dir string) (*text.Vocab, *decoder.Model, error) {
	dir, err := locate.Model(dir, config.DefaultModel)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w", err)
	}
	vocab, err := text.LoadVocab(filepath.Join(dir, VocabFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: model %s: %w", dir, err)
	}
	dec, err := decoder.Load(dev, dir)
	if err != nil {
		return nil, nil, err
	}
	if dec.Cfg.Vocab != vocab.Size() {
		dec.Close()
		return nil, nil, fmt.Errorf("pipeline: model %s: the vocabulary has %d words but the decoder was built for %d; the folder mixes two models", dir, vocab.Size(), dec.Cfg.Vocab)
	}
	return vocab, dec, nil
}

// ReadScores reads a model folder's scores.json; a missing file is no scores.
func ReadScores(dir string) (map[string]float64, error) {
	b, err := os.ReadFile(filepath.Join(dir, ScoresFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	var s map[string]float64
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", filepath.Join(dir, ScoresFile), err)
	}
	return s, nil
}

// Info describes the loaded model.
func (p *Pipeline) Info() Info { return p.info }

// Preprocessor prepares images for this pipeline's encoder.
func (p *Pipeline) Preprocessor() Preprocessor { return p.pre }

// Device is the device the decoder runs on.
func (p *Pipeline) Device() gpu.Device { return p.dev }

// Overlaps reports whether Encode and Decode may run at the same time, from two
// goroutines: true when the encoder has a device of its own.
func (p *Pipeline) Overlaps() bool { return p.encDev != p.dev }

// Close frees the models and the devices.
func (p *Pipeline) Close() error {
	if p.enc != nil {
		p.enc.Close()
	}
	for _, b := range []gpu.Buf{p.feats, p.tagFeats} {
		if b != nil {
			p.dev.Free(b)
		}
	}
	p.dec.Tagger.Close()
	p.dec.Model.Close()
	if p.Overlaps() {
		p.encDev.Close()
	}
	return p.dev.Close()
}

// CaptionImages captions images, each a Preprocessor tensor, in device batches
// of at most decode.batch_size.
func (p *Pipeline) CaptionImages(ctx context.Context, tensors [][]float32, o Options) ([]Result, error) {
	feats, err := p.Encode(ctx, tensors)
	if err != nil {
		return nil, err
	}
	return p.Decode(ctx, feats, o)
}

// Encode returns the features the model reads (InputDim each: the pooled vector,
// or the grid for an attention model) of preprocessed images; for a model with
// a fine-tuned encoder, followed by the original encoder's pooled vector,
// which the tags read.
func (p *Pipeline) Encode(ctx context.Context, tensors [][]float32) ([][]float32, error) {
	D := p.dec.Model.Cfg.InputDim()
	F := D + p.tagDim
	attention := p.dec.Model.Cfg.Arch == decoder.ArchAttention
	encoded := p.enc.Pooled
	if attention {
		encoded = p.enc.Grid
	}
	b, tuned := p.enc.(*encoder.Branched)
	if tuned { // the model reads its tuned top, the tags the original's pooled features
		encoded = func() gpu.Buf { return b.TunedPooled(0) }
		if attention {
			encoded = func() gpu.Buf { return b.TunedGrid(0) }
		}
	}
	out := make([][]float32, 0, len(tensors))
	for lo := 0; lo < len(tensors); lo += p.maxBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch := tensors[lo:min(lo+p.maxBatch, len(tensors))]
		for i, x := range batch {
			if len(x) != p.enc.ImageLen() {
				in := p.enc.Config().Input
				return nil, fmt.Errorf("pipeline: image %d has %d values, want %d (%dx%dx3 from Preprocessor)", lo+i, len(x), p.enc.ImageLen(), in, in)
			}
		}
		if err := p.enc.EncodeEach(batch); err != nil {
			return nil, err
		}
		n := len(batch)
		host := make([]float32, n*F)
		if err := p.encDev.Download(host[:n*D], encoded()); err != nil {
			return nil, err
		}
		if tuned {
			if err := p.encDev.Download(host[n*D:], b.Pooled()); err != nil {
				return nil, err
			}
		}
		for i := range n { // image i: its features, then its tag features
			v := make([]float32, 0, F)
			v = append(v, host[i*D:(i+1)*D]...)
			out = append(out, append(v, host[n*D+i*p.tagDim:n*D+(i+1)*p.tagDim]...))
		}
	}
	return out, nil
}

// Decode captions images from their pooled features (as Encode returns them).
// o is completed by the configuration's Decoding, whose beam may be up to
// config.MaxBeam: the server's narrower limit applies before, when it parses
// a request.
func (p *Pipeline) Decode(ctx context.Context, feats [][]float32, o Options) ([]Result, error) {
	plan, err := p.decoding.Plan(o)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	D := p.dec.Model.Cfg.InputDim()
	out := make([]Result, 0, len(feats))
	for lo := 0; lo < len(feats); lo += p.maxBatch {
		batch := feats[lo:min(lo+p.maxBatch, len(feats))]
		flat := make([]float32, 0, len(batch)*D)
		tagFlat := make([]float32, 0, len(batch)*p.tagDim)
		for i, f := range batch {
			if len(f) != D+p.tagDim {
				return nil, fmt.Errorf("pipeline: feature vector %d has %d values, want %d", lo+i, len(f), D+p.tagDim)
			}
			flat, tagFlat = append(flat, f[:D]...), append(tagFlat, f[D:]...)
		}
		buf := p.feats.Slice(0, len(flat))
		p.dev.Upload(buf, flat)
		tags := buf
		if p.tagDim > 0 {
			tags = p.tagFeats.Slice(0, len(tagFlat))
			p.dev.Upload(tags, tagFlat)
		}
		res, err := p.dec.generate(ctx, buf, tags, len(batch), plan)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// modelVersion names a model by its weights: the first 12 hex digits of their
// SHA-256, so a hot reload of different weights visibly changes the version.
func modelVersion(weights string) (string, error) {
	sum, err := assets.FileSHA256(weights)
	if err != nil {
		return "", fmt.Errorf("pipeline: %w", err)
	}
	return sum[:12], nil
}
