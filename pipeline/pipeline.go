// Package pipeline is the one way from an image to a sentence: it preprocesses
// image bytes or files for the encoder (Preprocessor), resolves decode options
// against the configuration (Decoding), and runs the encoder and the caption
// decoder in device batches (Pipeline, CaptionFeatures). The server, the
// commands and the trainer's evaluation all go through it.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/selector"
	"github.com/captioner/captioner/internal/locate"
	"github.com/captioner/captioner/palette"
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
	// (each model's MODEL.md has the buckets).
	Confidence float64 `json:"confidence"`
	// Tags are the encoder's ImageNet nouns for the image (decode.tags).
	Tags []tags.Tag `json:"tags"`
	// Guided are the nouns guided decoding made the caption name; empty when
	// the caption is the plain beam search's.
	Guided []string `json:"guided,omitempty"`
	// LoneObject is, where the caption describes a photo of things alone
	// (objectCaption), how probable the lone-object probe found that: the
	// decoder's caption, which would have put a person or a dog into it, is
	// then among Alternatives.
	LoneObject   float64       `json:"lone_object,omitempty"`
	Alternatives []Alternative `json:"alternatives,omitempty"`
	// Attention is, when Options.Attention asks, each word's weights over the
	// image regions (words, regions: 49 for the 7x7 grid, row-major from the
	// top left), the weights of the step that chose the word.
	Attention [][]float32 `json:"attention,omitempty"`
}

// Info describes a loaded model for /v1/models and logs.
type Info struct {
	Model   string `json:"model"`   // folder name: what a request's Options.Model names
	Version string `json:"version"` // first 12 hex digits of the weights' SHA-256 (modelVersion)
	Encoder string `json:"encoder"` // encoder ID (weights hash + code version)
	Device  string `json:"device"`
	// Precision is what the encoder computes in: float32, bfloat16 or int8 (see config.Config.Precision).
	Precision string `json:"precision"`
	// DecoderPrecision is what the decoder's products compute in: float32,
	// bfloat16 or int8 (see decoderPrecision).
	DecoderPrecision string `json:"decoder_precision"`
	// PrecisionWhy says why, for logs: "requested", or auto's reason on this
	// device (auto's pick depends on the CPU, and bfloat16 changes some captions).
	PrecisionWhy string             `json:"-"`
	Vocab        int                `json:"vocab"`
	Scores       map[string]float64 `json:"scores,omitempty"` // from scores.json when present
	// Arch is decoder.ArchMerge or decoder.ArchAttention: only attention models answer Options.Attention.
	Arch string `json:"arch"`
}

// Pipeline is a loaded encoder + one or several caption decoders, which share
// the encoder, its weights and its Tagger. It is not safe for concurrent use:
// one goroutine (the batcher, or a command) calls it, except that when
// Overlaps, one goroutine may call Encode while another calls Decode.
type Pipeline struct {
	dev    gpu.Device // the decoders'
	encDev gpu.Device // the encoder's: dev, or a device of its own (see Load)
	enc    imageEncoder
	tagger *Tagger  // on dev, shared by the decoders
	models []served // the default first
	// Each image's features (Encode) hold the pooled vector (F) when a merge
	// model is loaded (or a model with fine-tuned encoder layers, whose tags
	// read it), then the grid (R*F) when an attention model is, then each
	// fine-tuned model's own input: each model reads its own part, exactly
	// what it would read loaded alone; last, the image's palette.Summary.
	pooled, grid bool
	maxBatch     int
	feats        gpu.Buf   // (maxBatch, the widest model input) host features uploaded by Decode
	tagFeats     gpu.Buf   // (maxBatch, F) the original pooled features, for a fine-tuned model's tags
	staging      []float32 // Decode's host side of an upload, kept between batches
	parted       []float32 // Encode's download of one part of a batch's features, kept between batches
	decoding     Decoding
	pre          Preprocessor
	precision    string // the precision setting: encoder.PrecisionAuto or a gpu.Precision
	precisionWhy string // Info.PrecisionWhy
}

// served is one loaded caption model.
type served struct {
	dec  Decoder // its Tagger is the pipeline's
	info Info
	off  int // where its input starts in an image's features
	// tuned, for a model with fine-tuned encoder layers (encoder.TunedFile),
	// is their index in the encoder.Branched (else -1); its tags read the
	// original pooled features at the start of an image's features.
	tuned int
}

// imageEncoder is what Encode runs: an *encoder.Encoder, or when a loaded
// model has fine-tuned encoder layers an *encoder.Branched.
type imageEncoder interface {
	EncodeEach(images [][]float32) error
	Pooled() gpu.Buf
	Grid() gpu.Buf
	ImageLen() int
	FeatureDim() int
	GridLen() int
	Precision() gpu.Precision
	Config() encoder.Config
	Close()
}

// OpenDevice opens the configured device through gpu/selector: the CPU with
// cfg.Threads threads, or CUDA, where "auto" hands over to the captioner-cuda
// binary when a GPU and that binary are present.
func OpenDevice(cfg *config.Config) (gpu.Device, error) {
	return selector.Open(selector.Options{Device: cfg.Device, Threads: cfg.Threads, CUDALibraryPath: cfg.CUDA.LibraryPath, CUDATF32: cfg.CUDA.TF32}, slog.Default())
}

// Load opens cfg.Device and loads the encoder (from cfg.Assets), the caption
// model in cfg.Model, which is the default, and the caption models in the
// extra folders (serve passes server.models). Each extra model costs its
// decoder only (its weights and decoding buffers): the encoder and the Tagger
// are loaded once. Where
// the device can fork (gpu.Forker: the CPU), the encoder gets a device of its
// own, so that Encode and Decode may run at the same time (Overlaps); elsewhere
// the two share one device.
func Load(cfg *config.Config, extra ...string) (*Pipeline, error) {
	dev, err := OpenDevice(cfg)
	if err != nil {
		return nil, err
	}
	return loadOn(dev, cfg, extra)
}

// loadOn is Load on dev, which it owns from then on. A load that fails, or
// panics (a model folder no check foresaw; the server recovers and keeps its
// old models), closes the devices and what it got to: a CUDA context and its
// memory, the CPU's oneDNN plans, held in C memory. Only a load that returns
// a Pipeline leaves them open.
func loadOn(dev gpu.Device, cfg *config.Config, extra []string) (*Pipeline, error) {
	p := &Pipeline{dev: dev, encDev: dev, maxBatch: cfg.Decode.BatchSize, decoding: NewDecoding(cfg.Decode, config.MaxBeam)}
	loaded := false
	defer func() {
		if !loaded {
			p.Close()
		}
	}()
	if f, ok := dev.(gpu.Forker); ok {
		encDev, err := f.Fork()
		if err != nil {
			return nil, err
		}
		p.encDev = encDev
	}
	if err := p.load(cfg, append([]string{cfg.Model}, extra...)); err != nil {
		return nil, err
	}
	loaded = true
	return p, nil
}

// load loads the encoder on p.encDev and the Tagger and the models in dirs on
// p.dev; Close frees whatever it got to. It replaces each entry of dirs with
// the folder found for it.
func (p *Pipeline) load(cfg *config.Config, dirs []string) error {
	// Every folder is looked for first, once, so that a missing one is named
	// with the setting that lists it, and a folder listed twice is told as such;
	// loadEncoder and loadModel then read the folders found.
	found := map[string]bool{} // absolute folders
	for i, dir := range dirs {
		setting := "model (--model)"
		if i > 0 {
			setting = "server.models (--models)"
		}
		at, err := locate.Model(dir, config.DefaultModel)
		if err != nil {
			return fmt.Errorf("pipeline: %s: %w", setting, err)
		}
		dirs[i] = at
		if abs, err := filepath.Abs(at); err == nil {
			if found[abs] {
				return fmt.Errorf("pipeline: model folder %s is listed twice in model and server.models (--model, --models): list each folder once", abs)
			}
			found[abs] = true
		}
	}
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		return err
	}
	wc := w.Config
	p.pre = NewPreprocessor(wc, cfg.Image)
	if p.tagger, err = NewTagger(p.dev, w); err != nil {
		return err
	}
	tuned, err := p.loadEncoder(w, cfg.Precision, dirs)
	if err != nil {
		return err
	}
	names := map[string]string{} // model name -> its folder
	widest := 0
	for i, dir := range dirs {
		m, err := p.loadModel(dir, wc)
		if err != nil {
			return err
		}
		m.tuned = tuned[i]
		p.models = append(p.models, m)
		if other, ok := names[m.info.Model]; ok {
			return fmt.Errorf("pipeline: model folders %s and %s are both named %s, and a request picks a model by its folder's name: rename one (model, server.models)", other, dir, m.info.Model)
		}
		names[m.info.Model] = dir
		switch {
		case m.tuned >= 0:
			p.pooled = true // the tags'
			tc := p.enc.(*encoder.Branched).TunedConfig(m.tuned)
			m.info.Encoder = tc.ID()
			p.models[i] = m
		case m.info.Arch == decoder.ArchAttention:
			p.grid = true
		default:
			p.pooled = true
		}
		widest = max(widest, m.dec.Model.Cfg.InputDim())
	}
	// Offsets in featureParts' order: pooled, grid, then the tuned models'.
	off := 0
	if p.pooled {
		off += wc.Head
	}
	for i := range p.models {
		if p.models[i].tuned < 0 && p.models[i].info.Arch == decoder.ArchAttention {
			p.models[i].off = off
		}
	}
	if p.grid {
		off += p.enc.GridLen()
	}
	for i := range p.models {
		if p.models[i].tuned >= 0 {
			p.models[i].off = off
			off += p.models[i].dec.Model.Cfg.InputDim()
		}
	}
	p.feats = p.dev.Alloc(p.maxBatch * widest)
	if len(p.fineTuned()) > 0 {
		p.tagFeats = p.dev.Alloc(p.maxBatch * wc.Head)
	}
	return nil
}

// loadEncoder makes the encoder: an encoder.Branched when models in dirs (found
// folders, as load leaves them) have
// fine-tuned encoder layers (they must be tuned from one block: the cut they
// share), in float32 (precisions bfloat16 and int8 are refused), else a plain one in
// precision. It returns, for each folder, the index of its tuned layers in the
// Branched or -1.
func (p *Pipeline) loadEncoder(w *encoder.Weights, precision string, dirs []string) ([]int, error) {
	p.precision, p.precisionWhy = precision, "requested"
	if precision == encoder.PrecisionAuto {
		p.precisionWhy = strings.TrimSuffix("auto: "+gpu.BFloat16Why(p.encDev), ": ")
	}
	idx := make([]int, len(dirs))
	var tuned []*encoder.Weights
	first, tunedDir := -1, "" // the tuned models' cut, the first tuned model
	for i, dir := range dirs {
		idx[i] = -1
		path := filepath.Join(dir, encoder.TunedFile)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		tw, f, err := encoder.WithTuned(w, path)
		if err != nil {
			return nil, fmt.Errorf("pipeline: model %s: %w", dir, err)
		}
		if first >= 0 && f != first {
			return nil, fmt.Errorf("pipeline: model %s is fine-tuned from encoder block %d, another served model from block %d; serve models tuned from one block together", dir, f, first)
		}
		if first < 0 {
			tunedDir = dir
		}
		first, idx[i], tuned = f, len(tuned), append(tuned, tw)
	}
	// Only a made encoder goes into p.enc: a failed New returns a nil
	// pointer, which in the interface would not be nil for Close.
	if len(tuned) == 0 {
		enc, err := encoder.NewFeatures(p.encDev, w, p.maxBatch, precision)
		if err != nil {
			return nil, err
		}
		p.enc = enc
		return idx, nil
	}
	// The tuned tops run on the per-layer float32 kernels, and the bottom and
	// the original top with them, so that every model reads float32 features.
	switch {
	case precision == string(gpu.BFloat16) || precision == string(gpu.Int8):
		return nil, fmt.Errorf("pipeline: precision %s, but model %s has fine-tuned encoder layers (%s), and fine-tuned encoder layers run in float32; set precision float32 or auto", precision, tunedDir, encoder.TunedFile)
	case precision == encoder.PrecisionAuto && gpu.FastBFloat16(p.encDev):
		p.precisionWhy = "auto: float32, because a loaded model has fine-tuned encoder layers"
		slog.Warn("pipeline: the encoder runs in float32, not the bfloat16 that precision auto picks on this device, because a loaded model has fine-tuned encoder layers, which run in float32; every model's features are float32",
			"precision", precision, "device", p.encDev.Name(), "model", tunedDir)
	}
	enc, err := encoder.NewBranched(p.encDev, w, tuned, first, p.maxBatch)
	if err != nil {
		return nil, err
	}
	p.enc = enc
	return idx, nil
}

// fineTuned lists the models with fine-tuned encoder layers.
func (p *Pipeline) fineTuned() []*served {
	var out []*served
	for i := range p.models {
		if p.models[i].tuned >= 0 {
			out = append(out, &p.models[i])
		}
	}
	return out
}

// modelName is the name a request picks the model in dir by: the folder's
// name, except for the folders train writes (OUT/model, the selected epoch,
// and OUT/last), which are named after their run (OUT, OUT-last), so that two
// trained runs can be served side by side.
func modelName(dir string) string {
	dir = filepath.Clean(dir)
	base, run := filepath.Base(dir), filepath.Base(filepath.Dir(dir))
	if run == "." || run == string(filepath.Separator) || run == ".." {
		return base
	}
	switch base {
	case "model":
		return run
	case "last":
		return run + "-last"
	}
	return base
}

// loadModel loads the caption model in dir onto p.dev, checking that it reads
// what the encoder w gives.
func (p *Pipeline) loadModel(dir string, wc encoder.Config) (served, error) {
	vocab, dec, err := LoadModel(p.dev, dir)
	if err != nil {
		return served{}, err
	}
	m := served{dec: NewDecoder(dec, vocab, p.tagger), info: Info{Model: modelName(dir),
		Encoder: wc.ID(), Device: p.dev.Name(), Precision: string(p.enc.Precision()),
		PrecisionWhy: p.precisionWhy, Vocab: vocab.Size(), Arch: dec.Cfg.Arch}}
	fail := func(err error) (served, error) {
		dec.Close()
		return served{}, err
	}
	if err := CheckReads(wc, dec.Cfg, dir); err != nil {
		return fail(err)
	}
	if m.info.Version, err = modelVersion(dir); err != nil {
		return fail(err)
	}
	// scores.json is what /v1/models reports, not what captions: a damaged or
	// hand-edited one costs the report, not the model.
	if m.info.Scores, err = ReadScores(dir); err != nil {
		slog.Warn("pipeline: the model's scores are left out of its description; repair or delete the file (eval --save-scores writes it again)", "error", err)
	}
	// Packed last: a model the checks above refuse costs no packing.
	if dp := decoderPrecision(p.precision, p.enc.Precision(), p.dev); dp != gpu.Float32 {
		if err := dec.SetPrecision(dp); err != nil {
			slog.Warn("pipeline: the decoder multiplies in float32", "encoder", p.enc.Precision(), "model", dir, "why", err)
		}
	}
	m.info.DecoderPrecision = string(dec.Precision())
	return m, nil
}

// CheckReads checks that the model in dir, of config dc, reads the features
// the encoder of config wc gives.
func CheckReads(wc encoder.Config, dc decoder.Config, dir string) error {
	if wc.Head != dc.FeatDim {
		return fmt.Errorf("pipeline: the encoder gives %d features, model %s expects %d", wc.Head, dir, dc.FeatDim)
	}
	if g := wc.GridSize(); dc.Arch == decoder.ArchAttention && dc.Regions != g*g {
		return fmt.Errorf("pipeline: the encoder gives a %dx%d grid, model %s attends over %d regions", g, g, dir, dc.Regions)
	}
	return nil
}

// decoderPrecision is what a decoder on dev multiplies in for the precision
// setting requested, beside an encoder computing in enc. float32 and bfloat16
// ask for themselves. auto and int8 ask for speed: int8 where dev packs it
// (dynamic quantization, each row of activations quantized over its own range
// as it is multiplied; dev scores as float32's within noise: MODEL.md), else
// bfloat16 beside a bfloat16 encoder, or an int8 one where bfloat16 runs
// fast (the features are rounded already); else float32.
func decoderPrecision(requested string, enc gpu.Precision, dev gpu.Device) gpu.Precision {
	switch {
	case requested == string(gpu.Float32) || requested == string(gpu.BFloat16):
		return gpu.Precision(requested)
	case gpu.Packs(dev, gpu.Int8):
		return gpu.Int8
	case enc == gpu.BFloat16 || enc == gpu.Int8 && gpu.FastBFloat16(dev):
		return gpu.BFloat16
	}
	return gpu.Float32
}

// LoadModel reads a model folder's vocabulary and decoder onto dev, checking
// that they agree. A missing folder is named with where it was looked for and
// the flag that fixes it.
func LoadModel(dev gpu.Device, dir string) (*text.Vocab, *decoder.Model, error) {
	dir, err := locate.Model(dir, config.DefaultModel)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: %w", err)
	}
	if err := CheckModelFolder(dir); err != nil {
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

// CheckModelFolder checks that dir holds a caption model's files, naming those
// it lacks: a run's folder given for its model/ said only that a file was
// missing.
func CheckModelFolder(dir string) error {
	var lacks []string
	for _, f := range []string{decoder.ConfigFile, decoder.WeightsFile, VocabFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			lacks = append(lacks, f)
		}
	}
	if len(lacks) == 0 {
		return nil
	}
	return fmt.Errorf("%s is not a caption model folder: it has no %s; give a folder that holds a model's %s, %s and %s, as train writes them (OUT/model)",
		dir, strings.Join(lacks, " nor "), decoder.ConfigFile, decoder.WeightsFile, VocabFile)
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

// Info describes the default model.
func (p *Pipeline) Info() Info { return p.models[0].info }

// Models describes every loaded model, the default first.
func (p *Pipeline) Models() []Info {
	out := make([]Info, len(p.models))
	for i, m := range p.models {
		out[i] = m.info
	}
	return out
}

// Preprocessor prepares images for this pipeline's encoder.
func (p *Pipeline) Preprocessor() Preprocessor { return p.pre }

// Device is the device the decoders run on.
func (p *Pipeline) Device() gpu.Device { return p.dev }

// Overlaps reports whether Encode and Decode may run at the same time, from two
// goroutines: true when the encoder has a device of its own.
func (p *Pipeline) Overlaps() bool { return p.encDev != p.dev }

// Close frees the models and the devices.
func (p *Pipeline) Close() error {
	if p.enc != nil {
		p.enc.Close()
	}
	gpu.FreeAll(p.dev, p.feats, p.tagFeats)
	if p.tagger != nil {
		p.tagger.Close()
	}
	for _, m := range p.models {
		m.dec.Model.Close()
	}
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

// featureParts are the encoder outputs each image's features hold, in order:
// the pooled (F) features and the (R*F) grid, each when a loaded model reads
// it, then each fine-tuned model's input from its own top.
func (p *Pipeline) featureParts() []encoderOutput {
	var parts []encoderOutput
	if p.pooled {
		parts = append(parts, encoderOutput{p.enc.Pooled, p.enc.FeatureDim()})
	}
	if p.grid {
		parts = append(parts, encoderOutput{p.enc.Grid, p.enc.GridLen()})
	}
	for _, m := range p.fineTuned() {
		b, i := p.enc.(*encoder.Branched), m.tuned
		part := encoderOutput{func() gpu.Buf { return b.TunedPooled(i) }, p.enc.FeatureDim()}
		if m.info.Arch == decoder.ArchAttention {
			part = encoderOutput{func() gpu.Buf { return b.TunedGrid(i) }, p.enc.GridLen()}
		}
		parts = append(parts, part)
	}
	return parts
}

// featureLen is the length of an image's features: the encoder's parts, then
// its palette.Summary.
func (p *Pipeline) featureLen() int {
	L := palette.Len
	for _, part := range p.featureParts() {
		L += part.per
	}
	return L
}

// encoderOutput is a view of the last Encode's results, (n, per).
type encoderOutput struct {
	buf func() gpu.Buf
	per int
}

// Encode returns the features of preprocessed images: each image's pooled
// vector when a merge model is loaded, followed by its grid when an attention
// model is (a single model's input, InputDim, when one is loaded), then its
// palette.Summary, measured on the host from the tensor, which a caption of
// things alone names colours from (objectCaption). The encoder's parts come
// from the device as it computed them, so a model reads the same features
// whatever models are loaded beside it.
func (p *Pipeline) Encode(ctx context.Context, tensors [][]float32) ([][]float32, error) {
	parts, L := p.featureParts(), p.featureLen()
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
		// The palettes are measured on the host while the encoder runs.
		looks := make([]palette.Summary, len(batch))
		measured := make(chan struct{})
		go func() {
			defer close(measured)
			for i, x := range batch {
				looks[i] = palette.Measure(x, p.enc.Config().Input)
			}
		}()
		err := p.enc.EncodeEach(batch)
		<-measured
		if err != nil {
			return nil, err
		}
		n := len(batch)
		host := make([]float32, n*L)
		// (n, per) per part -> each image's parts side by side, (n, L).
		off := 0
		for _, part := range parts {
			if cap(p.parted) < n*part.per {
				p.parted = make([]float32, n*part.per)
			}
			all := p.parted[:n*part.per]
			if err := p.encDev.Download(all, part.buf()); err != nil {
				return nil, err
			}
			for i := range n {
				copy(host[i*L+off:], all[i*part.per:(i+1)*part.per])
			}
			off += part.per
		}
		for i, look := range looks {
			copy(host[i*L+off:], look)
			out = append(out, host[i*L:(i+1)*L:(i+1)*L])
		}
	}
	return out, nil
}

// Decode captions images from their features (as Encode returns them) with
// the model o.Model names, the default when it is empty. o is completed by the
// configuration's Decoding, whose beam may be up to config.MaxBeam: the
// server's narrower limit applies before, when it parses a request.
func (p *Pipeline) Decode(ctx context.Context, feats [][]float32, o Options) ([]Result, error) {
	m, err := p.model(o.Model)
	if err != nil {
		return nil, err
	}
	plan, err := p.decoding.Plan(o)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	F, L := m.dec.Model.Cfg.InputDim(), p.featureLen()
	out := make([]Result, 0, len(feats))
	for lo := 0; lo < len(feats); lo += p.maxBatch {
		batch := feats[lo:min(lo+p.maxBatch, len(feats))]
		for i, f := range batch {
			if len(f) != L {
				return nil, fmt.Errorf("pipeline: feature vector %d has %d values, want %d", lo+i, len(f), L)
			}
		}
		buf := p.upload(p.feats, batch, m.off, F)
		tags := buf
		if m.tuned >= 0 { // the original pooled features lead each image's
			tags = p.upload(p.tagFeats, batch, 0, p.enc.FeatureDim())
		}
		looks := make([]palette.Summary, len(batch))
		for i, f := range batch {
			looks[i] = f[L-palette.Len:]
		}
		res, err := m.dec.generate(ctx, buf, tags, len(batch), plan, looks)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// upload copies values [off, off+n) of each row, one after another, to the
// start of dst and returns that part of dst. The rows are gathered in
// p.staging, reused from batch to batch (a batch of grids is megabytes): every
// device has copied its source when Upload returns. Only Decode calls it.
func (p *Pipeline) upload(dst gpu.Buf, rows [][]float32, off, n int) gpu.Buf {
	if cap(p.staging) < len(rows)*n {
		p.staging = make([]float32, 0, len(rows)*n)
	}
	flat := p.staging[:0]
	for _, r := range rows {
		flat = append(flat, r[off:off+n]...)
	}
	buf := dst.Slice(0, len(flat))
	p.dev.Upload(buf, flat)
	return buf
}

// model is the loaded model named name (Info.Model), the default for "".
func (p *Pipeline) model(name string) (*served, error) {
	if name == "" {
		return &p.models[0], nil
	}
	names := make([]string, len(p.models))
	for i := range p.models {
		if p.models[i].info.Model == name {
			return &p.models[i], nil
		}
		names[i] = p.models[i].info.Model
	}
	return nil, fmt.Errorf("pipeline: no model named %q is loaded; the models are %s", name, strings.Join(names, ", "))
}

// modelVersion names the model in dir by its weights: the first 12 hex digits
// of the decoder weights' SHA-256, or for a fine-tuned model (encoder.TunedFile
// present) of the SHA-256 of both files' hashes, so a hot reload of different
// weights, the tuned encoder layers' alone included, visibly changes the version.
func modelVersion(dir string) (string, error) {
	sum, err := assets.FileSHA256(filepath.Join(dir, decoder.WeightsFile))
	if err != nil {
		return "", fmt.Errorf("pipeline: %w", err)
	}
	tuned, err := assets.FileSHA256(filepath.Join(dir, encoder.TunedFile))
	if errors.Is(err, os.ErrNotExist) {
		return sum[:12], nil
	}
	if err != nil {
		return "", fmt.Errorf("pipeline: %w", err)
	}
	both := sha256.Sum256([]byte(sum + tuned))
	return hex.EncodeToString(both[:])[:12], nil
}
