// Package train fits the merge-LSTM decoder to captioned image features:
// teacher-forced mini-batches with Adam(W), gradient clipping and dropout, a dev
// evaluation (loss and BLEU) after every epoch, early stopping on dev BLEU-4,
// atomic checksummed checkpoints that a killed run resumes from, and loss/BLEU
// curves as CSV, PNG and SVG.
package train

import (
	"context"
	"io"
	"path/filepath"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

// Split is one dataset split ready for training.
type Split struct {
	// Feats are the image features, (Images, decoder.Config.InputDim()):
	// pooled, or grids for attention; with train.finetune_blocks, the
	// activations at the cut instead, (Images, encoder.Config.CutLen(first)).
	Feats []float32
	// Mirrored are the features of the same photos flipped left to right,
	// laid out as Feats (train.mirror; nil without it), and MirrorWords the
	// word ids their captions swap (text.Vocab.MirrorWords).
	Mirrored    []float32
	MirrorWords map[int32]int32
	Examples    []Example    // one per (image, caption)
	Refs        [][][]string // per image, its reference captions as words (for BLEU)
}

// Images is the number of images in the split.
func (s *Split) Images() int { return len(s.Refs) }

// Vocab is what training needs from the vocabulary (*text.Vocab); the special
// tokens have text's fixed ids.
type Vocab interface {
	Size() int
	// Save writes the vocabulary where the run's models go (pipeline.VocabFile).
	Save(path string) error
	// Words are the words of generated token ids (the sampled captions'
	// rewards, the dev evaluation's captions).
	pipeline.Vocab
}

// Options configure a run.
type Options struct {
	config.Train
	Vocab Vocab
	// Decode is the decoding used for the per-epoch dev BLEU; its Beam is
	// replaced by Train.EvalBeam.
	Decode decoder.DecodeOptions
	// BLEU returns corpus BLEU-1..4 of hypotheses against references, and
	// the clipped n-gram matches of each order (metrics.BLEUMatches).
	BLEU func(hyps [][]string, refs [][][]string) (bleu [4]float64, matched [4]int)
	// Log receives the progress bars and one line per epoch.
	Log io.Writer
	// Regions is the number of grid regions per image in the features of an
	// attention decoder (49 for 7x7).
	Regions int
	// Encoder, with train.finetune_blocks, is the encoder whose last blocks the
	// run fine-tunes from their weights here (the splits' Feats are then the
	// activations at their input).
	Encoder *encoder.Weights
	// Provenance is what the caller knows of the run (its settings, the
	// dataset), written beside each saved model in TrainingFile.
	Provenance map[string]any
}

// EpochStats is one row of the training curves.
type EpochStats struct {
	Epoch int     `json:"epoch"` // 1-based
	LR    float64 `json:"lr"`
	// EncoderLR is the fine-tuned encoder layers' learning rate (train.finetune_lr,
	// decayed as LR is); 0 with a frozen encoder.
	EncoderLR float64    `json:"encoder_lr,omitempty"`
	TrainLoss float64    `json:"train_loss"`
	DevLoss   float64    `json:"dev_loss"`
	BLEU      [4]float64 `json:"bleu"`
	// DevFourGrams is how many of the dev captions' 4-grams matched a
	// reference (clipped, as BLEU counts them): with none, BLEU-4 is the
	// smoothing's value alone, and dev loss ranks the epoch. Nil in
	// checkpoints from before it, whose BLEU-4 tells (MatchedFourGrams).
	DevFourGrams *int    `json:"dev_4grams_matched,omitempty"`
	TokensPerSec float64 `json:"tokens_per_s"`
	// TrainReward is the mean CIDEr-D of the captions sampled for training
	// (objective cider only).
	TrainReward float64 `json:"train_reward,omitempty"`
	Seconds     float64 `json:"seconds"`
}

// Result summarises a finished run.
type Result struct {
	History   []EpochStats
	Best      EpochStats // the epoch whose model is in ModelDir
	Seconds   float64    // training wall time, all resumed runs included
	ModelDir  string
	StoppedBy string // "patience" or "epochs"
}

// ModelDir is where the selected (best dev BLEU-4) model is written inside out.
func ModelDir(out string) string { return filepath.Join(out, "model") }

// LastDir is where the last epoch's model is written inside out, whatever its
// score: self-critical training raises CIDEr-D while dev BLEU-4, which selects
// ModelDir, stays level or falls, and averaging a model with its fine-tuning
// (captioner average) wants the fine-tuning's end.
func LastDir(out string) string { return filepath.Join(out, "last") }

// ModelConfig is the decoder configuration the options ask for. Self-critical
// training runs the decoder without dropout (its gradient pass must score the
// captions with the network that sampled them; it drops image features itself)
// and without the attention penalty, whose gradient the rewards would not weigh.
// featDim is the number of feature values per image.
func (o Options) ModelConfig(featDim int) decoder.Config {
	c := decoder.Config{Arch: o.Arch, Cleaning: text.Cleaning(o.Cleaning), FeatDim: featDim, Embed: o.Embed, Hidden: o.Hidden, Mid: o.Mid,
		Vocab: o.Vocab.Size(), Dropout: float32(o.Dropout)}
	if o.Arch == decoder.ArchAttention {
		c.Mid, c.FeatDim, c.Regions, c.Att, c.AttPenalty = 0, featDim/max(o.Regions, 1), o.Regions, o.Att, float32(o.AttPenalty)
	}
	if o.Objective == "cider" {
		c.Dropout, c.AttPenalty = 0, 0
	}
	return c.WithDefaults()
}

// objectiveName is a train.objective value with the empty one (options built in
// code, checkpoints from before objectives existed) meaning the default, xe.
func objectiveName(s string) string {
	if s == "" {
		return "xe"
	}
	return s
}

// dropoutSeed gives every optimiser step its own dropout masks, determined by
// the run's seed alone.
func dropoutSeed(seed int64, step int) uint64 {
	return uint64(seed)*0x9E3779B97F4A7C15 + uint64(step)*0xBF58476D1CE4E5B9
}

// truncate caps each caption at maxLen words.
func truncate(ex []Example, maxLen int) []Example {
	out := make([]Example, len(ex))
	for i, e := range ex {
		out[i] = Example{Image: e.Image, Words: e.Words[:min(len(e.Words), maxLen)]}
	}
	return out
}

// evalLoss is the mean per-token loss over examples without dropout, batched in
// length order.
func evalLoss(ctx context.Context, ts *decoder.TrainState, feats, batchFeats gpu.Buf, ex []Example, featDim int, o Options) (float64, error) {
	var sum float64
	var ntok int
	for _, idx := range epochOrder(ex, o.BatchSize, o.Seed, 0) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		bt := makeBatch(ex, idx, text.StartID, text.EndID, text.PadID)
		bf := batchFeats.Slice(0, bt.B*featDim)
		ts.Model().Device().EmbeddingForward(bf, feats, bt.Images, featDim)
		loss, n, err := ts.Forward(bf, bt.IDs, bt.Targets, bt.B, bt.T, false, 0)
		if err != nil {
			return 0, err
		}
		sum += loss * float64(n)
		ntok += n
	}
	return sum / float64(ntok), nil
}

func evalBLEU(ctx context.Context, m *decoder.Model, feats gpu.Buf, dv *Split, o Options) (bleu [4]float64, matched [4]int, err error) {
	d := o.Decode
	d.Beam = o.EvalBeam
	res, err := pipeline.CaptionFeatures(ctx, pipeline.NewDecoder(m, o.Vocab, nil), feats, dv.Images(), pipeline.Plan{DecodeOptions: d})
	if err != nil {
		return bleu, matched, err
	}
	hyps := make([][]string, len(res))
	for i, r := range res {
		hyps[i] = r.Tokens
	}
	bleu, matched = o.BLEU(hyps, dv.Refs)
	return bleu, matched, nil
}
