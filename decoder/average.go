package decoder

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/structdiff"
	"gonum.org/v1/gonum/mat"
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
//
// Factorized models (Config.CtxRank) average factor by factor, which is the
// average of their context weights only while the factors line up, as they do
// between a factorized model and its fine-tunings (the shipped recipe's
// cross-entropy model at rank 128 and its self-critical stage: 0.1% apart),
// and not between two factorizations made apart (46-52%): Average refuses
// models whose factor-wise mean is more than maxFactorDrift off.
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
		if c.Network() != first.Network() {
			return nil, fmt.Errorf("decoder: model %s is a different network from %s (%s: this model's -> the first's): average models of one architecture, sizes and vocabulary, fine-tuned from one model", dir, dirs[0], structdiff.Join(structdiff.Fields(c.Network(), first.Network())))
		}
	}
	sum := make([]float64, first.NumParams())
	var us, vs []*mat.Dense // factorized models' factors
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
		if first.CtxRank > 0 {
			u, v := contextFactors(first, flat)
			us, vs = append(us, u), append(vs, v)
		}
	}
	mean := make([]float32, len(sum))
	for j, x := range sum {
		mean[j] = float32(x)
	}
	if first.CtxRank > 0 {
		u, v := contextFactors(first, mean)
		if d := factorDrift(u, v, us, vs, weights, total); d > maxFactorDrift {
			return nil, fmt.Errorf("decoder: models %v are factorized (ctx_rank %d) and their factors do not line up: averaged factor by factor, their context weight is %.0f%% off the average of theirs (at most %.0f%%); average a factorized model only with models trained from it, or average the full models and factorize the average",
				dirs, first.CtxRank, 100*d, 100*maxFactorDrift)
		}
	}
	return fromFlat(dev, first, mean)
}

// maxFactorDrift is how far (relative Frobenius norm) the product of averaged
// factors may be from the average of the factors' products.
const maxFactorDrift = 0.05

// contextFactors returns the factors U (4H, r) and V (r, F) of a factorized
// model's parameters flat.
func contextFactors(c Config, flat []float32) (u, v *mat.Dense) {
	dense := func(t Tensor) *mat.Dense {
		d := make([]float64, t.Len)
		for i := range d {
			d[i] = float64(flat[t.Off+i])
		}
		return mat.NewDense(t.Shape[0], t.Shape[1], d)
	}
	for _, t := range c.Tensors() {
		switch t.Name {
		case "lstm.ctx_u":
			u = dense(t)
		case "lstm.ctx_v":
			v = dense(t)
		}
	}
	return u, v
}

// factorDrift is |u·v - Σ w_i u_i·v_i| / |Σ w_i u_i·v_i| (Frobenius norms,
// weights w_i/total): how far the averaged factors' product is from the
// average of the models' products.
func factorDrift(u, v *mat.Dense, us, vs []*mat.Dense, weights []float64, total float64) float64 {
	var want, p mat.Dense
	for i := range us {
		p.Mul(us[i], vs[i])
		p.Scale(weights[i]/total, &p)
		if i == 0 {
			want.CloneFrom(&p)
		} else {
			want.Add(&want, &p)
		}
	}
	p.Mul(u, v)
	p.Sub(&p, &want)
	if w := mat.Norm(&want, 2); w > 0 {
		return mat.Norm(&p, 2) / w
	}
	return mat.Norm(&p, 2) // zero weights: any product is all drift
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
