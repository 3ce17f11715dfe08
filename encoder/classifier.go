package encoder

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// Classifier is the encoder's ImageNet head on its own: for pooled features
// that are already on a device without the rest of the network, such as the
// caption decoder's device in the pipeline or eval's cached features.
type Classifier struct {
	dev gpu.Device
	cfg Config
	l   layer // weight (K, F), bias (K)
}

// NewClassifier uploads w's classifier to dev.
func NewClassifier(dev gpu.Device, w *Weights) (*Classifier, error) {
	c := w.Config
	wt, b := w.Tensors["classifier.weight"], w.Tensors["classifier.bias"]
	if len(wt) != c.Classes*c.Head || len(b) != c.Classes {
		return nil, fmt.Errorf("encoder: classifier weights have %d and %d values, want %dx%d and %d", len(wt), len(b), c.Classes, c.Head, c.Classes)
	}
	cl := &Classifier{dev: dev, cfg: c, l: layer{dev.Alloc(len(wt)), dev.Alloc(len(b))}}
	dev.Upload(cl.l.w, wt)
	dev.Upload(cl.l.b, b)
	return cl, nil
}

// Classes is the number of outputs (1001: background and ImageNet's 1000).
func (c *Classifier) Classes() int { return c.cfg.Classes }

// Features is the size F of the pooled features it reads.
func (c *Classifier) Features() int { return c.cfg.Head }

// Probs writes the class probabilities (n, K) of the pooled features (n, F).
func (c *Classifier) Probs(probs, pooled gpu.Buf, n int) {
	classify(c.dev, c.cfg, c.l, probs, pooled, n)
}

// Close frees the weights.
func (c *Classifier) Close() {
	c.dev.Free(c.l.w)
	c.dev.Free(c.l.b)
}

// classify is the head: probs (n, K) = softmax(pooled (n, F) · Wᵀ + b).
func classify(dev gpu.Device, c Config, l layer, probs, pooled gpu.Buf, n int) {
	// A 1x1 convolution on (n, 1, 1, F) is the dense layer, bias included.
	dev.Conv2D(probs, pooled, l.w, l.b, conv(n, 1, c.Head, c.Classes, 1, 1), gpu.ActNone)
	dev.Softmax(probs, probs, n, c.Classes)
}
