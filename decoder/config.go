// Package decoder is the caption model on gpu.Device kernels, with
// teacher-forced training passes, batched greedy decoding, batched beam
// search and constrained beam search (captions that must contain given
// words, constrained.go). Two architectures:
//   - merge: the seed notebook's decoder (pooled image features -> dense+ReLU,
//     added to an LSTM over word embeddings, dense+ReLU, dense over the vocabulary);
//   - attention: Show, Attend and Tell's soft attention (Xu et al. 2015) over a
//     grid of image regions (attention.go).
//
// Dimension letters used in shape comments:
//
//	B batch (images or captions)   T time steps (tokens)   K beam width
//	F image feature size (D)       E word embedding size   H LSTM hidden size
//	M merge (mid) layer size       V vocabulary size
//	L image regions (attention)    A attention MLP size    R decoding rows (B*K)
//
// Activations are TIME-MAJOR, (T, B, .): row t*B+b is caption b at step t, so the
// LSTM's step t is a contiguous (B, .) block and the image branch (B, H), broadcast
// over T, is an ordinary bias of length B*H over T rows.
package decoder

import (
	"errors"
	"fmt"

	"github.com/captioner/captioner/text"
)

// Architectures.
const (
	ArchMerge     = "merge"
	ArchAttention = "attention"
)

// Config is the decoder's shape and regularisation. It is saved with the model
// (config.json) so a checkpoint always rebuilds the network it came from.
type Config struct {
	// Arch is ArchMerge or ArchAttention; a config.json without it is merge.
	Arch string `json:"arch,omitempty"`
	// Cleaning is how the training captions were tokenised; vocabulary and
	// evaluation follow it. A config.json without it is text.CleaningSeed.
	Cleaning text.Cleaning `json:"cleaning,omitempty"`
	// FeatDim is the image feature size: 1280 for MobileNetV2's pooled output
	// (merge) or for each of its grid's regions (attention).
	FeatDim int `json:"feat_dim"`
	// Embed is the word embedding size.
	Embed int `json:"embed"`
	// Hidden is the LSTM state size, which is also the image branch's output size
	// because the two are added.
	Hidden int `json:"hidden"`
	// Mid is the size of the dense ReLU layer after the merge (merge only).
	Mid int `json:"mid,omitempty"`
	// Regions is the number of image regions attended over: 49 for
	// MobileNetV2's 7x7 grid (attention only).
	Regions int `json:"regions,omitempty"`
	// Att is the attention MLP's size (attention only).
	Att int `json:"att,omitempty"`
	// AttPenalty is lambda of the doubly stochastic attention penalty,
	// lambda * mean over captions and regions of (1 - sum_t alpha)^2, which
	// pushes every region to be looked at over a caption (attention only).
	AttPenalty float32 `json:"att_penalty,omitempty"`
	// Vocab is the number of token ids, special tokens included.
	Vocab int `json:"vocab"`
	// Dropout is the drop probability during training: merge drops the image
	// features and the embeddings (the seed uses 0.5), attention the deep output's input.
	Dropout float32 `json:"dropout"`
	// CtxRank, when positive, is the rank of a factorized context weight
	// (attention only): the LSTM input's context columns (4H, F) are kept as
	// factors U (4H, CtxRank) and V (CtxRank, F), made by Factorize. Training
	// such a model trains the factors.
	CtxRank int `json:"ctx_rank,omitempty"`
}

// DefaultConfig is the seed notebook's architecture for a vocabulary of size vocab.
func DefaultConfig(vocab int) Config {
	return Config{Arch: ArchMerge, Cleaning: text.CleaningSeed, FeatDim: 1280, Embed: 256, Hidden: 256, Mid: 256, Vocab: vocab, Dropout: 0.5}
}

// DefaultAttentionConfig is Show, Attend and Tell over MobileNetV2's 7x7x1280
// grid with the sizes of the PyTorch peer (shared/bench/torch_captioner.py).
func DefaultAttentionConfig(vocab int) Config {
	return Config{Arch: ArchAttention, Cleaning: text.CleaningStandard, FeatDim: 1280, Regions: 49, Att: 512,
		Embed: 256, Hidden: 512, Vocab: vocab, Dropout: 0.5, AttPenalty: 1}
}

// WithDefaults fills what a config written before the fields existed leaves
// out: merge, seed cleaning.
func (c Config) WithDefaults() Config {
	if c.Arch == "" {
		c.Arch = ArchMerge
	}
	if c.Cleaning == "" {
		c.Cleaning = text.CleaningSeed
	}
	return c
}

// Network is c without its training-only settings (dropout, the attention
// penalty), defaults filled: two configs with the same Network have
// parameters of the same names and shapes, which mean the same, so one's
// weights can start, or be averaged with, the other's.
func (c Config) Network() Config {
	c = c.WithDefaults()
	c.Dropout, c.AttPenalty = 0, 0
	return c
}

// InputDim is the number of image feature values per image: F (merge) or L*F
// (attention, regions row-major).
func (c Config) InputDim() int {
	if c.Arch == ArchAttention {
		return c.Regions * c.FeatDim
	}
	return c.FeatDim
}

// maxSize bounds every size of a decoder (vocab included) and maxParams its
// parameters: far beyond any trained here (the shipped models have 3-4
// million), and low enough that a damaged config.json is an error, not an
// allocation that exhausts memory (a reload that took the server down).
const (
	maxSize   = 1 << 20
	maxParams = 1 << 28
)

// Validate says which field is out of range and what to set instead. An empty
// Arch or Cleaning is merge or seed, as in a config.json that predates them.
func (c Config) Validate() error {
	noArch := c.Arch == ""
	c = c.WithDefaults()
	var errs []error
	if noArch && c.Arch == ArchMerge && (c.Regions != 0 || c.Att != 0) {
		// Read as merge, as a config.json from before attention: its
		// errors would be merge's ("mid is 0") and not say why.
		return fmt.Errorf(`decoder: config.json has no arch, so it reads as a merge model, but it has an attention model's regions and att: add "arch": "attention"`)
	}
	type size struct {
		name string
		v    int
	}
	sizes := []size{{"feat_dim", c.FeatDim}, {"embed", c.Embed}, {"hidden", c.Hidden}}
	switch c.Arch {
	case ArchMerge:
		sizes = append(sizes, size{"mid", c.Mid})
	case ArchAttention:
		sizes = append(sizes, size{"regions", c.Regions}, size{"att", c.Att})
		if c.AttPenalty < 0 {
			errs = append(errs, fmt.Errorf("decoder: att_penalty is %g; it must be at least 0", c.AttPenalty))
		}
	default:
		errs = append(errs, fmt.Errorf("decoder: arch is %q; it must be %q or %q", c.Arch, ArchMerge, ArchAttention))
	}
	if _, err := text.ParseCleaning(string(c.Cleaning)); err != nil {
		errs = append(errs, fmt.Errorf("decoder: %w", err))
	}
	for _, f := range append(sizes, size{"vocab", c.Vocab}) {
		switch {
		case f.v <= 0 && f.name != "vocab": // vocab's own check says more
			errs = append(errs, fmt.Errorf("decoder: %s is %d; it must be positive", f.name, f.v))
		case f.v > maxSize:
			errs = append(errs, fmt.Errorf("decoder: %s is %d, more than the %d any size may be", f.name, f.v, maxSize))
		}
	}
	if len(errs) == 0 {
		// Sizes within maxSize keep every product in an int; the parameters
		// are counted before anything of that size is allocated.
		if n := c.NumParams(); n > maxParams {
			errs = append(errs, fmt.Errorf("decoder: these sizes make %d parameters, more than the %d (%d MiB in float32) a decoder may have", n, maxParams, maxParams*4>>20))
		}
	}
	switch full := min(4*c.Hidden, c.FeatDim); {
	case c.CtxRank != 0 && c.Arch != ArchAttention:
		errs = append(errs, fmt.Errorf("decoder: ctx_rank is %d on a %s model; only attention has a context weight to factorize: remove it", c.CtxRank, c.Arch))
	case c.CtxRank < 0 || c.CtxRank >= full && c.CtxRank != 0:
		errs = append(errs, fmt.Errorf("decoder: ctx_rank is %d; it must be 0 (a full weight) or 1..%d (below the context weight's %dx%d)",
			c.CtxRank, full-1, 4*c.Hidden, c.FeatDim))
	}
	if c.Vocab < 5 {
		errs = append(errs, fmt.Errorf("decoder: vocab is %d; it must hold at least the 4 special tokens and one word", c.Vocab))
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		errs = append(errs, fmt.Errorf("decoder: dropout is %g; it must be in [0, 1)", c.Dropout))
	}
	return errors.Join(errs...)
}
