package decoder

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/captioner/captioner/gpu"
)

// Average loads the models in dirs onto dev and returns one whose every
// parameter is their weighted mean (weights[i] for dirs[i]), with the first
// model's config. It is a "model soup" (Wortsman et al. 2022), and for two
// models, one of them fine-tuned from the other, an interpolation between
// them (WiSE-FT, Wortsman et al. 2021): models fine-tuned from one model stay
// close enough in weight space that their mean is a model of its own, often
// better than each (see models/flickr8k-attention/MODEL.md). The models must
// be one network: same architecture, sizes and vocabulary size; the
// training-only settings (dropout, the attention penalty) may differ.
func Average(dev gpu.Device, dirs []string, weights []float64) (*Model, error) {
	if len(dirs) < 2 {
		return nil, fmt.Errorf("decoder: averaging needs at least two models, got %d", len(dirs))
	}
	if len(weights) != len(dirs) {
		return nil, fmt.Errorf("decoder: %d weights for %d models; give one weight per model", len(weights), len(dirs))
	}
	total := 0.0
	for i, w := range weights {
		if !(w > 0) || math.IsInf(w, 1) {
			return nil, fmt.Errorf("decoder: weight %v of model %s: want a positive finite number", w, dirs[i])
		}
		total += w
	}
	if math.IsInf(total, 1) {
		return nil, fmt.Errorf("decoder: weights %v add up beyond float64's range; scale them down (only their ratios count)", weights)
	}
	first, err := ReadConfig(filepath.Join(dirs[0], ConfigFile))
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		c, err := ReadConfig(filepath.Join(dir, ConfigFile))
		if err != nil {
			return nil, err
		}
		if c.CtxRank > 0 { // a factorization is defined up to a rotation of its factors
			return nil, fmt.Errorf("decoder: model %s is factorized (ctx_rank %d), and factors of two models do not line up: average the full models, then factorize the average", dir, c.CtxRank)
		}
		if c.Network() != first.Network() {
			return nil, fmt.Errorf("decoder: model %s is a different network from %s (%+v against %+v): average models of one architecture, sizes and vocabulary, fine-tuned from one model", dir, dirs[0], c.Network(), first.Network())
		}
	}
	sum := make([]float64, first.NumParams())
	for i, dir := range dirs {
		m, err := Load(dev, dir)
		if err != nil {
			return nil, err
		}
		flat, err := m.FlatHost()
		m.Close()
		if err != nil {
			return nil, err
		}
		for j, x := range flat {
			sum[j] += weights[i] / total * float64(x)
		}
	}
	mean := make([]float32, len(sum))
	for j, x := range sum {
		mean[j] = float32(x)
	}
	return fromFlat(dev, first, mean)
}

// fromFlat returns a model of config c on dev holding the parameters flat.
func fromFlat(dev gpu.Device, c Config, flat []float32) (*Model, error) {
	m, err := alloc(dev, c)
	if err != nil {
		return nil, err
	}
	if err := m.SetFlat(flat); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
