package decoder

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/f16"
	"github.com/captioner/captioner/text"
)

// An independent, naive float64 implementation of the attention decoder:
// caption by caption, step by step, region by region, plain loops over (out, in)
// weights, none of the device code's batching, gathers or Gemm tricks.

// tinyAttentionConfig has every size distinct, so a swapped dimension cannot go
// unnoticed, and small enough for finite differences over every parameter.
func tinyAttentionConfig() Config {
	return Config{Arch: ArchAttention, Cleaning: text.CleaningStandard, FeatDim: 6, Regions: 3, Att: 7,
		Embed: 5, Hidden: 4, Vocab: 9, Dropout: 0.5, AttPenalty: 0.7}
}

type refParams struct {
	c    Config
	flat []float64
	off  map[string]int
}

func newRefParams(c Config, flat []float64) refParams {
	r := refParams{c: c, flat: flat, off: map[string]int{}}
	for _, t := range c.Tensors() {
		r.off[t.Name] = t.Off
	}
	return r
}

// at is element {i, j} of the named (rows, cols) tensor (cols 1 for a vector).
func (r refParams) at(name string, i, j, cols int) float64 { return r.flat[r.off[name]+i*cols+j] }

// dense returns w (out, in) · x + b (out); b "" means no bias.
func (r refParams) dense(w, b string, x []float64, out int) []float64 {
	y := make([]float64, out)
	for o := range y {
		if b != "" {
			y[o] = r.at(b, o, 0, 1)
		}
		for i, v := range x {
			y[o] += r.at(w, o, i, len(x)) * v
		}
	}
	return y
}

// refAttImage is one image's regions (L, F) and their attention term (L, A).
type refAttImage struct{ feats, pf [][]float64 }

// attStart returns an image's regions and initial state; feat is (L, F).
func (r refParams) attStart(feat []float32) (refAttImage, refState) {
	c := r.c
	F, H, L := c.FeatDim, c.Hidden, c.Regions
	im := refAttImage{feats: make([][]float64, L), pf: make([][]float64, L)}
	mean := make([]float64, F)
	for l := range im.feats {
		im.feats[l] = toF64(feat[l*F : (l+1)*F])
		for j, v := range im.feats[l] {
			mean[j] += v / float64(L)
		}
		im.pf[l] = r.dense("att_f.weight", "att_f.bias", im.feats[l], c.Att)
	}
	s := refState{h: r.dense("init_h.weight", "init_h.bias", mean, H), c: r.dense("init_c.weight", "init_c.bias", mean, H)}
	for j := range s.h {
		s.h[j], s.c[j] = math.Tanh(s.h[j]), math.Tanh(s.c[j])
	}
	return im, s
}

// attStep feeds token tok and returns the next state, the attention weights
// (L) and the logits (V); mask(j) scales the deep output's element j.
func (r refParams) attStep(im refAttImage, s refState, tok int, mask func(j int) float64) (refState, []float64, []float64) {
	c := r.c
	F, E, H, A := c.FeatDim, c.Embed, c.Hidden, c.Att
	hp := r.dense("att_h.weight", "", s.h, A)
	score := make([]float64, len(im.feats))
	for l := range score {
		for k := 0; k < A; k++ {
			score[l] += r.at("att_v.weight", k, 0, 1) * math.Tanh(im.pf[l][k]+hp[k])
		}
	}
	alpha := softmax64(score)
	beta := r.dense("gate.weight", "gate.bias", s.h, F)
	gz := make([]float64, F)
	for j := range gz {
		for l := range alpha {
			gz[j] += alpha[l] * im.feats[l][j]
		}
		gz[j] *= sigmoid(beta[j])
	}
	emb := make([]float64, E)
	for j := range emb {
		emb[j] = r.at("embed.weight", tok, j, E)
	}
	pre := r.dense("lstm.weight_ih", "lstm.bias", append(slices.Clone(emb), gz...), 4*H)
	if k := r.c.CtxRank; k > 0 { // the embedding's columns, then U (V gz)
		pre = r.dense("lstm.weight_ih", "lstm.bias", emb, 4*H)
		for j, v := range r.dense("lstm.ctx_u", "", r.dense("lstm.ctx_v", "", gz, k), 4*H) {
			pre[j] += v
		}
	}
	n := refCell(pre, r.dense("lstm.weight_hh", "", s.h, 4*H), s)
	deep := r.dense("out_h.weight", "out_h.bias", n.h, E)
	oz := r.dense("out_z.weight", "", gz, E)
	for j := range deep {
		deep[j] = (deep[j] + oz[j] + emb[j]) * mask(j)
	}
	return n, alpha, r.dense("out.weight", "out.bias", deep, c.Vocab)
}

// refAttentionLoss is Forward's loss (mean cross-entropy per target token plus
// the attention penalty) under flat parameters, with the device's dropout mask
// when drop is set.
func refAttentionLoss(c Config, flat []float64, bt batch, drop bool, seed uint64) float64 {
	r := newRefParams(c, flat)
	E, L, B := c.Embed, c.Regions, bt.B
	var ce, pen float64
	ntok := 0
	for b := 0; b < B; b++ {
		im, s := r.attStart(bt.feats[b*c.InputDim() : (b+1)*c.InputDim()])
		alphaSum := make([]float64, L)
		for t := 0; t < bt.T; t++ {
			mask := func(j int) float64 {
				if !drop {
					return 1
				}
				if gpu.DropoutUniform(seed, (t*B+b)*E+j) < c.Dropout {
					return 0
				}
				return float64(float32(1 / (1 - c.Dropout)))
			}
			var alpha, logits []float64
			s, alpha, logits = r.attStep(im, s, int(bt.ids[t*B+b]), mask)
			target := bt.targets[t*B+b]
			if target < 0 {
				continue
			}
			ce -= math.Log(softmax64(logits)[target])
			ntok++
			for l := range alpha {
				alphaSum[l] += alpha[l]
			}
		}
		for _, v := range alphaSum {
			pen += (1 - v) * (1 - v)
		}
	}
	return ce/float64(ntok) + float64(c.AttPenalty)*pen/float64(B*L)
}

func softmax64(x []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, v)
	}
	out := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		out[i] = math.Exp(v - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// attentionConfigs are the tiny attention decoder with a full context weight
// and with one factorized at rank 2 (Config.CtxRank), which trains too.
func attentionConfigs() map[string]Config {
	full, low := tinyAttentionConfig(), tinyAttentionConfig()
	low.CtxRank = 2
	return map[string]Config{"full": full, "ctx_rank=2": low}
}

func TestAttentionForwardMatchesNaiveReference(t *testing.T) {
	dev := openCPU(t)
	for name, c := range attentionConfigs() {
		t.Run(name, func(t *testing.T) {
			m, host := randomModel(t, dev, c, 5, 0.5)
			bt := tinyBatch(c, 3)
			for _, train := range []bool{false, true} {
				loss, _, _ := runDevice(t, dev, m, bt, train, 11)
				want := refAttentionLoss(c, toF64(host), bt, train, 11)
				t.Logf("dropout=%v: loss %.7f, reference %.7f", train, loss, want)
				if !(math.Abs(loss-want) <= 1e-5) { // NaN fails too
					t.Errorf("dropout=%v: loss %.7f, reference %.7f", train, loss, want)
				}
			}
		})
	}
}

// TestAttentionGradientsMatchFiniteDifferences checks every parameter's
// gradient against central differences of the float64 reference loss, with
// dropout, the attention penalty and padded captions in the batch, for a full
// and a factorized context weight.
func TestAttentionGradientsMatchFiniteDifferences(t *testing.T) {
	dev := openCPU(t)
	for name, c := range attentionConfigs() {
		t.Run(name, func(t *testing.T) {
			m, host := randomModel(t, dev, c, 9, 0.5)
			bt := tinyBatch(c, 4)
			const seed = 21
			_, _, grads := runDevice(t, dev, m, bt, true, seed)
			compareFiniteDifferences(t, c, grads, toF64(host), func(flat []float64) float64 {
				return refAttentionLoss(c, flat, bt, true, seed)
			})
		})
	}
}

// TestDecodedAttentionMatchesReference: greedy and beam search return, for
// every word of every hypothesis, the attention weights of the step that chose
// it: (L) summing to 1, equal to the naive reference's step; none unasked.
func TestDecodedAttentionMatchesReference(t *testing.T) {
	c := tinyAttentionConfig()
	m, host, feats := peakedModel(t, c)
	ref := newRefDecoder(m.Cfg, host)
	F, L := c.InputDim(), c.Regions
	words := 0
	for _, k := range []int{1, 3} {
		o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: k, NBest: k, Alpha: 0.7, Attention: true}
		got := generate(t, m, feats, o)
		for b := range got {
			want := ref.beam(feats[b*F:(b+1)*F], o)
			for i, h := range got[b] {
				if !sameHyp(h, want[i]) || len(h.Attention) != len(h.Tokens) {
					t.Fatalf("K=%d image %d hypothesis %d: %v with %d attention rows, reference %v", k, b, i, h, len(h.Attention), want[i])
				}
				for w, row := range h.Attention {
					var sum float64
					for l, v := range row {
						sum += float64(v)
						if math.Abs(float64(v-want[i].Attention[w][l])) > 1e-5 {
							t.Errorf("K=%d image %d hypothesis %d word %d region %d: weight %g, reference %g", k, b, i, w, l, v, want[i].Attention[w][l])
						}
					}
					if len(row) != L || math.Abs(sum-1) > 1e-5 {
						t.Errorf("K=%d image %d hypothesis %d word %d: %d weights summing to %g, want %d summing to 1", k, b, i, w, len(row), sum, L)
					}
					words++
				}
			}
		}
		o.Attention = false
		if h := generate(t, m, feats, o)[0][0]; h.Attention != nil {
			t.Errorf("K=%d: attention weights returned unasked", k)
		}
	}
	if words < 20 {
		t.Errorf("only %d words checked", words)
	}
}

func TestAttentionDOT(t *testing.T) {
	c := DefaultAttentionConfig(2541)
	dot := c.DOT()
	for _, want := range []string{"digraph attention_lstm", fmt.Sprintf("%d parameters", c.NumParams()),
		"softmax over 49", "(B, 49, 1280)", "LSTM 512 on [embedding, gated context]", "gate -> lstm;"} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %q:\n%s", want, dot)
		}
	}
}

// TestConfigDefaultsAndRoundTrip: a config.json from before arch and cleaning
// existed (the first shipped models') reads as merge with the seed cleaning; an
// attention config survives Save and Load; bad values are named.
func TestConfigDefaultsAndRoundTrip(t *testing.T) {
	legacy := filepath.Join(t.TempDir(), ConfigFile)
	os.WriteFile(legacy, []byte(`{"feat_dim": 1280, "embed": 256, "hidden": 512, "mid": 256, "vocab": 2532, "dropout": 0}`), 0o644)
	c, err := ReadConfig(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != ArchMerge || c.Cleaning != text.CleaningSeed || c.Hidden != 512 || c.Vocab != 2532 {
		t.Errorf("a config without arch and cleaning reads as %+v, want merge and seed with its sizes", c)
	}
	dev := openCPU(t)
	ac := tinyAttentionConfig()
	m, host := randomModel(t, dev, ac, 3, 0.5)
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	l, got := loadFlat(t, dev, dir)
	if l.Cfg != ac || !slices.Equal(got, host) {
		t.Errorf("loaded config %+v (want %+v) or weights differ", l.Cfg, ac)
	}
	bad := ac
	bad.Arch, bad.Regions, bad.AttPenalty = "transformer", 0, -1
	want := `decoder: arch is "transformer"; it must be "merge" or "attention"`
	if err := bad.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate: %v, want %s", err, want)
	}
	bad.Arch = ArchAttention
	want = "decoder: att_penalty is -1; it must be at least 0\ndecoder: regions is 0; it must be positive"
	if err := bad.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate: %v, want %s", err, want)
	}
	// A config.json with a factorized context weight (Factorize) of no use.
	for _, rank := range []int{-1, 6} {
		bad = ac
		bad.CtxRank = rank
		want = fmt.Sprintf("decoder: ctx_rank is %d; it must be 0 (a full weight) or 1..5 (below the context weight's 16x6)", rank)
		if err := bad.Validate(); err == nil || err.Error() != want {
			t.Errorf("Validate: %v, want %s", err, want)
		}
	}
	merge := tinyConfig()
	merge.CtxRank = 2
	want = "decoder: ctx_rank is 2 on a merge model; only attention has a context weight to factorize: remove it"
	if err := merge.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate: %v, want %s", err, want)
	}
}

// TestSaveHalf: SaveHalf stores each weight as its nearest float16, in about
// half of Save's bytes, and a model that peaks clearly captions alike.
func TestSaveHalf(t *testing.T) {
	m, host, feats := peakedModel(t, tinyAttentionConfig())
	full, half := t.TempDir(), t.TempDir()
	if err := m.Save(full); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveHalf(half); err != nil {
		t.Fatal(err)
	}
	l, got := loadFlat(t, m.Device(), half)
	for i, w := range host {
		if want := f16.ToFloat32(f16.FromFloat32(w)); got[i] != want {
			t.Fatalf("weight %d: %v loads as %v, want its float16 %v", i, w, got[i], want)
		}
	}
	size := func(dir string) int64 {
		st, err := os.Stat(filepath.Join(dir, WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	if f, h := size(full), size(half); h > f/2+4096 {
		t.Errorf("half weights are %d bytes against %d in float32, want about half", h, f)
	}
	o := DecodeOptions{Start: 1, End: 2, MaxLen: 7, Beam: 3, Alpha: 0.5}
	a, b := generate(t, m, feats, o), generate(t, l, feats, o)
	defer func() {
		// A weight float16 cannot hold is refused, not written as infinity.
		host[5] = 1e5
		if err := m.SetFlat(host); err != nil {
			t.Fatal(err)
		}
		if err := m.SaveHalf(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is 100000, beyond float16's range (65504)") {
			t.Errorf("SaveHalf of a weight of 1e5: %v", err)
		}
	}()
	for i := range a {
		if !slices.Equal(a[i][0].Tokens, b[i][0].Tokens) {
			t.Errorf("image %d: %v in float32, %v from float16 weights", i, a[i][0].Tokens, b[i][0].Tokens)
		}
	}
}

// loadFlat loads the model saved in dir (closed when the test ends) and its weights.
func loadFlat(t *testing.T, dev gpu.Device, dir string) (*Model, []float32) {
	t.Helper()
	l, err := Load(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	flat, err := l.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	return l, flat
}

// TestLoadRefusesNonFiniteWeights: a damaged weights file whose values read
// as NaN or infinity is refused at load, naming the tensor and the file,
// where it used to caption "<pad>." with exit status 0.
func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	m, host, _ := peakedModel(t, tinyAttentionConfig())
	for _, tn := range m.Cfg.Tensors() {
		if tn.Name == "out.weight" {
			host[tn.Off+3] = float32(math.Inf(1))
		}
	}
	if err := m.SetFlat(host); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	_, err := Load(m.Device(), dir)
	want := "decoder: tensor out.weight holds +Inf in " + filepath.Join(dir, WeightsFile) + ": the file is damaged"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load of a model with an infinite weight: %v, want %q...", err, want)
	}
}

// A config.json whose sizes are damaged is refused before anything of their
// size is allocated: a hidden of 1e8 panicked making the parameters, and a
// vocab of 1e8 exhausted memory, taking a reloading server down.
func TestLoadRefusesDamagedSizes(t *testing.T) {
	m, _, _ := peakedModel(t, tinyAttentionConfig())
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Hidden = 100_000_000 }, "decoder: hidden is 100000000, more than the 1048576 any size may be (in "},
		{func(c *Config) { c.Vocab = 100_000_000 }, "decoder: vocab is 100000000, more than the 1048576 any size may be (in "},
		{func(c *Config) { c.Vocab, c.Embed = 1<<20, 1<<10 }, "decoder: these sizes make "},
		{func(c *Config) { c.Arch = "" }, `decoder: config.json has no arch, so it reads as a merge model, but it has an attention model's regions and att: add "arch": "attention"`},
		// Within the bounds, but not the file's: refused by the tensors' shapes.
		{func(c *Config) { c.Embed *= 1000 }, "decoder: safetensors: tensor embed.weight has shape [9 5], want [9 5000]; the weights do not match config.json"},
	} {
		dir := t.TempDir()
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		c := m.Cfg
		tc.edit(&c)
		if err := c.WriteConfig(filepath.Join(dir, ConfigFile)); err != nil {
			t.Fatal(err)
		}
		_, err := Load(m.Device(), dir)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Load: %v, want %q...", err, tc.want)
		}
	}
}
