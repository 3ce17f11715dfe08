// Package decoder is the caption model: the seed notebook's "merge" decoder
// (image features -> dense+ReLU, added to an LSTM over word embeddings, dense+ReLU,
// dense over the vocabulary) on gpu.Device kernels, with teacher-forced training
// passes, batched greedy decoding and batched beam search.
//
// Dimension letters used in shape comments:
//
//	B batch (images or captions)   T time steps (tokens)   K beam width
//	F image feature size           E word embedding size   H LSTM hidden size
//	M merge (mid) layer size       V vocabulary size
//
// Activations are TIME-MAJOR, (T, B, .): row t*B+b is caption b at step t, so the
// LSTM's step t is a contiguous (B, .) block and the image branch (B, H), broadcast
// over T, is an ordinary bias of length B*H over T rows.
package decoder

import (
	"errors"
	"fmt"
)

// Config is the decoder's shape and regularisation. It is saved with the model
// (config.json) so a checkpoint always rebuilds the network it came from.
type Config struct {
	// FeatDim is the image feature size: 1280 for MobileNetV2's pooled output.
	FeatDim int `json:"feat_dim"`
	// Embed is the word embedding size.
	Embed int `json:"embed"`
	// Hidden is the LSTM state size, which is also the image branch's output size
	// because the two are added.
	Hidden int `json:"hidden"`
	// Mid is the size of the dense ReLU layer after the merge.
	Mid int `json:"mid"`
	// Vocab is the number of token ids, special tokens included.
	Vocab int `json:"vocab"`
	// Dropout is the drop probability on the image features and on the embeddings
	// during training (the seed uses 0.5).
	Dropout float32 `json:"dropout"`
}

// DefaultConfig is the seed notebook's architecture for a vocabulary of size vocab.
func DefaultConfig(vocab int) Config {
	return Config{FeatDim: 1280, Embed: 256, Hidden: 256, Mid: 256, Vocab: vocab, Dropout: 0.5}
}

// Validate says which field is out of range and what to set instead.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"feat_dim", c.FeatDim}, {"embed", c.Embed}, {"hidden", c.Hidden}, {"mid", c.Mid}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("decoder: %s is %d; it must be positive", f.name, f.v))
		}
	}
	if c.Vocab < 5 {
		errs = append(errs, fmt.Errorf("decoder: vocab is %d; it must hold at least the 4 special tokens and one word", c.Vocab))
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		errs = append(errs, fmt.Errorf("decoder: dropout is %g; it must be in [0, 1)", c.Dropout))
	}
	return errors.Join(errs...)
}
