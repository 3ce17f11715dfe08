package decoder

import (
	"math"
	"slices"
	"testing"
)

// ctxBlock returns, from a model's flat parameters, where the context's
// columns of the LSTM input weight start and the row stride.
func ctxBlock(c Config) (off, stride int) {
	for _, t := range c.Tensors() {
		if t.Name == "lstm.weight_ih" {
			return t.Off + c.Embed, c.Embed + c.FeatDim
		}
	}
	panic("no lstm.weight_ih")
}

// product writes into full (a full model's parameters) the context weight
// U·V of the factorized model's parameters fl.
func product(fc Config, fl []float32, full []float32) {
	G, F, r := 4*fc.Hidden, fc.FeatDim, fc.CtxRank
	var u, v []float32
	for _, t := range fc.Tensors() {
		switch t.Name {
		case "lstm.ctx_u":
			u = fl[t.Off : t.Off+t.Len]
		case "lstm.ctx_v":
			v = fl[t.Off : t.Off+t.Len]
		}
	}
	c := fc
	c.CtxRank = 0
	off, stride := ctxBlock(c)
	for i := range G {
		for j := range F {
			var s float64
			for k := range r {
				s += float64(u[i*r+k]) * float64(v[k*F+j])
			}
			full[off+i*stride+j] = float32(s)
		}
	}
}

// TestFactorizedDecodesAsItsProduct checks Factorize against its definition:
// a context weight of rank 2 comes back exactly at rank 2, so the factorized
// model captions as the original; at any rank the factorized model captions
// as the full model holding U·V, the rest of its parameters untouched; and it
// survives a save and a load.
func TestFactorizedDecodesAsItsProduct(t *testing.T) {
	c := tinyAttentionConfig()
	m, host, feats := peakedModel(t, c)
	dev := m.Device()
	G, F := 4*c.Hidden, c.FeatDim
	off, stride := ctxBlock(c)
	opts := []DecodeOptions{
		{Start: 1, End: 2, MaxLen: 7, Beam: 1},
		{Start: 1, End: 2, MaxLen: 7, Beam: 3, Alpha: 0.7, NBest: 3},
	}
	same := func(what string, a, b *Model) {
		t.Helper()
		for _, o := range opts {
			ga, gb := generate(t, a, feats, o), generate(t, b, feats, o)
			for i := range ga {
				for k := range ga[i] {
					if !sameHyp(ga[i][k], gb[i][k]) {
						t.Errorf("%s, beam %d, image %d, hypothesis %d: %v against %v", what, o.Beam, i, k, ga[i][k], gb[i][k])
					}
				}
			}
		}
	}

	// A rank-2 context weight: the sum of two outer products.
	rank2 := slices.Clone(host)
	for i := range G {
		for j := range F {
			rank2[off+i*stride+j] = 0.9*float32(math.Sin(float64(i+1)))*float32(j%3-1) + 0.7*float32(math.Cos(float64(2*i)))*float32(j+1)/float32(F)
		}
	}
	if err := m.SetFlat(rank2); err != nil {
		t.Fatal(err)
	}
	f, err := Factorize(m, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Cfg.CtxRank != 2 || f.Cfg.NumParams() >= c.NumParams() {
		t.Fatalf("factorized config %+v, %d parameters against %d", f.Cfg, f.Cfg.NumParams(), c.NumParams())
	}
	fl, err := f.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	back := slices.Clone(rank2)
	product(f.Cfg, fl, back)
	for i := range back {
		if math.Abs(float64(back[i]-rank2[i])) > 1e-5 {
			t.Fatalf("rank 2 at rank 2: parameter %d is %g, was %g", i, back[i], rank2[i])
		}
	}
	same("rank-2 weight at rank 2", f, m)

	// Random weights at rank 3: the factors decode as their product.
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	f3, err := Factorize(m, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer f3.Close()
	fl3, err := f3.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	prod := slices.Clone(host)
	product(f3.Cfg, fl3, prod)
	g, _ := randomModel(t, dev, c, 1, 1)
	if err := g.SetFlat(prod); err != nil {
		t.Fatal(err)
	}
	same("rank 3 against U·V", f3, g)

	dir := t.TempDir()
	if err := f3.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	same("rank 3 saved and loaded", loaded, f3)
}

func TestFactorizeRefuses(t *testing.T) {
	dev := openCPU(t)
	merge, _ := randomModel(t, dev, tinyConfig(), 1, 0.5)
	att, _ := randomModel(t, dev, tinyAttentionConfig(), 1, 0.5)
	low, err := Factorize(att, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer low.Close()
	for _, tc := range []struct {
		m    *Model
		r    int
		want string
	}{
		{merge, 2, "decoder: only an attention model's context weight can be factorized; this model's arch is merge: factorize one trained with train --arch attention"},
		{att, 0, "decoder: rank 0 is outside 1..4: the context weight is 16x6 (96 multiply-adds a step), and factors of rank 5 or more cost as many"},
		{low, 2, "decoder: the model's context weight is factorized already (ctx_rank 2): factorize the full-rank model it came from (the shipped attention model's is the cross-entropy stage of scripts/recipe.sh)"},
		{att, 5, "decoder: rank 5 is outside 1..4: the context weight is 16x6 (96 multiply-adds a step), and factors of rank 5 or more cost as many"},
	} {
		f, err := Factorize(tc.m, tc.r)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Factorize(%s, %d): %v, want %q", tc.m.Cfg.Arch, tc.r, err, tc.want)
		}
		if f != nil {
			f.Close()
		}
	}
}
