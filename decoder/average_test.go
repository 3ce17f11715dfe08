package decoder

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

// saved saves a freshly initialised model of c (seed) into a folder of its own.
func saved(t *testing.T, c Config, seed uint64) (string, []float32) {
	t.Helper()
	m, err := New(openCPU(t), c, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := filepath.Join(t.TempDir(), fmt.Sprint("seed", seed))
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	flat, err := m.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	return dir, flat
}

// averageOf returns the parameters and config of Average(dirs, weights).
func averageOf(t *testing.T, dirs []string, weights []float64) ([]float32, Config) {
	t.Helper()
	m, err := Average(openCPU(t), dirs, weights)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	flat, err := m.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	return flat, m.Cfg
}

func TestAverageIsTheWeightedMean(t *testing.T) {
	c := tinyAttentionConfig()
	a, fa := saved(t, c, 1)
	tuned := c
	tuned.Dropout, tuned.AttPenalty = 0, 0 // as self-critical training saves it
	b, fb := saved(t, tuned, 2)
	got, cfg := averageOf(t, []string{a, b}, []float64{1, 3})
	if cfg != c.WithDefaults() {
		t.Errorf("config %+v, want the first model's %+v", cfg, c)
	}
	differ := 0
	for i := range got {
		want := (float64(fa[i]) + 3*float64(fb[i])) / 4
		if math.Abs(float64(got[i])-want) > 1e-7*math.Max(1, math.Abs(want)) {
			t.Fatalf("parameter %d: %v, want %v (a %v, b %v)", i, got[i], want, fa[i], fb[i])
		}
		if fa[i] != fb[i] {
			differ++
		}
	}
	if differ < len(got)/2 {
		t.Fatalf("only %d of %d parameters differ between the two models: the test cannot tell a mean from a copy", differ, len(got))
	}
}

// TestAverageOfAFactorizedModelAndItsFineTuning averages a factorized model
// with a copy of it moved a little, as training moves it: factor by factor,
// the weighted mean of every parameter.
func TestAverageOfAFactorizedModelAndItsFineTuning(t *testing.T) {
	c := tinyAttentionConfig()
	c.CtxRank = 2
	a, fa := saved(t, c, 1)
	m, err := New(openCPU(t), c, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fb := make([]float32, len(fa))
	for i, x := range fa {
		fb[i] = x * (1 + 0.01*float32(math.Sin(float64(i))))
	}
	if err := m.SetFlat(fb); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(t.TempDir(), "tuned")
	if err := m.Save(b); err != nil {
		t.Fatal(err)
	}
	got, _ := averageOf(t, []string{a, b}, []float64{1, 2})
	for i := range got {
		want := (float64(fa[i]) + 2*float64(fb[i])) / 3
		if math.Abs(float64(got[i])-want) > 1e-7*math.Max(1, math.Abs(want)) {
			t.Fatalf("parameter %d: %v, want %v", i, got[i], want)
		}
	}
}

// naiveFactorDrift is, for two factorized models' parameters a and b averaged
// 1:1, |(Ua+Ub)/2·(Va+Vb)/2 - (Ua·Va + Ub·Vb)/2| / |(Ua·Va + Ub·Vb)/2| in plain
// loops.
func naiveFactorDrift(c Config, a, b []float32) float64 {
	off := map[string]Tensor{}
	for _, t := range c.Tensors() {
		off[t.Name] = t
	}
	U, V := off["lstm.ctx_u"], off["lstm.ctx_v"]
	G, r, F := U.Shape[0], U.Shape[1], V.Shape[1]
	var num, den float64
	for i := range G {
		for j := range F {
			var pa, pb, pm float64
			for k := range r {
				ua, ub := float64(a[U.Off+i*r+k]), float64(b[U.Off+i*r+k])
				va, vb := float64(a[V.Off+k*F+j]), float64(b[V.Off+k*F+j])
				pa, pb, pm = pa+ua*va, pb+ub*vb, pm+(ua+ub)/2*(va+vb)/2
			}
			want := (pa + pb) / 2
			num, den = num+(pm-want)*(pm-want), den+want*want
		}
	}
	return math.Sqrt(num / den)
}

func TestAverageRefuses(t *testing.T) {
	c := tinyAttentionConfig()
	a, _ := saved(t, c, 1)
	b, _ := saved(t, c, 2)
	wider := c
	wider.Hidden++
	w, _ := saved(t, wider, 3)
	low := c
	low.CtxRank = 2
	f1, ff1 := saved(t, low, 4)
	f2, ff2 := saved(t, low, 5)
	drift := naiveFactorDrift(low, ff1, ff2)
	for _, tc := range []struct {
		dirs    []string
		weights []float64
		want    string
	}{
		{[]string{a}, []float64{1}, "decoder: averaging needs at least two models, got 1"},
		{[]string{a, b}, []float64{1}, "decoder: 1 weights for 2 models; give one weight per model"},
		{[]string{a, b}, []float64{1, 0}, "decoder: weight 0 of model " + b + ": want a positive finite number"},
		{[]string{a, b}, []float64{math.NaN(), 1}, "decoder: weight NaN of model " + a + ": want a positive finite number"},
		{[]string{a, b}, []float64{1e308, 1e308}, "decoder: weights [1e+308 1e+308] add up beyond float64's range; scale them down (only their ratios count)"},
		{[]string{f1, f2}, []float64{1, 1}, fmt.Sprintf("decoder: models %v are factorized (ctx_rank 2) and their factors do not line up: averaged factor by factor, their context weight is %.0f%% off the average of theirs (at most 5%%); average a factorized model only with models trained from it, or average the full models and factorize the average", []string{f1, f2}, 100*drift)},
		{[]string{a, w}, []float64{1, 1}, fmt.Sprintf("decoder: model %s is a different network from %s (hidden %d -> %d: this model's -> the first's): average models of one architecture, sizes and vocabulary, fine-tuned from one model", w, a, wider.Hidden, c.Hidden)},
	} {
		m, err := Average(openCPU(t), tc.dirs, tc.weights)
		if err == nil {
			m.Close()
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("Average(%d models, weights %v): %v, want %q", len(tc.dirs), tc.weights, err, tc.want)
		}
	}
}
