package decoder

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Factorize returns m, an attention decoder, with the context's columns of
// its LSTM input weight (4H, F), the largest matrix a decoding step
// multiplies, replaced by their best rank-r approximation (truncated SVD,
// Eckart-Young), kept as the factors U·S (4H, r) and V (r, F). A step then
// costs r·(4H+F) multiply-adds for the context instead of 4H·F: at r = 128,
// 0.43 M instead of 2.62 M of its 5.7 M. Trained weights leave most of their
// rank unused: see models/flickr8k-attention/MODEL.md for what ranks cost
// the captions. Every other parameter of the result is m's; it decodes, and
// trains its factors.
func Factorize(m *Model, r int) (*Model, error) {
	c := m.Cfg
	switch {
	case c.Arch != ArchAttention:
		return nil, fmt.Errorf("decoder: only an attention model's context weight can be factorized; this model's arch is %s: factorize one trained with train --arch attention", c.Arch)
	case c.CtxRank != 0:
		return nil, fmt.Errorf("decoder: the model's context weight is factorized already (ctx_rank %d): factorize the full-rank model it came from (the shipped attention model's is the cross-entropy stage of scripts/recipe.sh)", c.CtxRank)
	}
	E, F, G := c.Embed, c.FeatDim, 4*c.Hidden
	// The factors cost r·(G+F) multiply-adds a step against the weight's G·F.
	if most := (G*F - 1) / (G + F); r < 1 || r > most {
		return nil, fmt.Errorf("decoder: rank %d is outside 1..%d: the context weight is %dx%d (%d multiply-adds a step), and factors of rank %d or more cost as many", r, most, G, F, G*F, most+1)
	}
	fc := c
	fc.CtxRank = r
	flat, err := m.FlatHost()
	if err != nil {
		return nil, err
	}
	old := map[string]Tensor{}
	for _, t := range c.Tensors() {
		old[t.Name] = t
	}
	wx := flat[old["lstm.weight_ih"].Off:]
	ctx := mat.NewDense(G, F, nil)
	for i := range G {
		for j := range F {
			ctx.Set(i, j, float64(wx[i*(E+F)+E+j]))
		}
	}
	var svd mat.SVD
	if !svd.Factorize(ctx, mat.SVDThin) {
		return nil, fmt.Errorf("decoder: the SVD of the context weight did not converge")
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	s := svd.Values(nil)

	out := make([]float32, fc.NumParams())
	for _, t := range fc.Tensors() {
		dst := out[t.Off : t.Off+t.Len]
		switch t.Name {
		case "lstm.weight_ih": // the embedding's columns
			for i := range G {
				copy(dst[i*E:(i+1)*E], wx[i*(E+F):i*(E+F)+E])
			}
		case "lstm.ctx_u":
			for i := range G {
				for k := range r {
					dst[i*r+k] = float32(u.At(i, k) * s[k])
				}
			}
		case "lstm.ctx_v":
			for k := range r {
				for j := range F {
					dst[k*F+j] = float32(v.At(j, k))
				}
			}
		default:
			o := old[t.Name]
			copy(dst, flat[o.Off:o.Off+o.Len])
		}
	}
	return fromFlat(m.dev, fc, out)
}
