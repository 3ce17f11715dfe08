package decoder

import (
	"fmt"
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// These tests build the decoders in gorgonia's graph ops (its reverse-mode
// automatic differentiation, on the CPU, float64), with the same weights, batch
// and dropout masks, and compare the loss and every gradient tensor by name with
// the device's hand-written backward pass.
//
// Only matrix products and elementwise ops are used in the graphs, so what is
// checked is gorgonia's differentiation, not a shared reading of our kernels:
// embedding lookups are one-hot products, biases are ones·bias products, gate
// blocks are products with 0/1 selection matrices.

// graph is a gorgonia graph over a model's parameters.
type graph struct {
	t      *testing.T
	c      Config
	g      *G.ExprGraph
	nconst int
	params map[string]*G.Node
	wrt    G.Nodes
}

// newGraph makes a graph with one (rows, cols) node per parameter tensor,
// biases and vectors as (1, n) rows.
func newGraph(t *testing.T, c Config, host []float32) *graph {
	x := &graph{t: t, c: c, g: G.NewGraph(), params: map[string]*G.Node{}}
	for _, tn := range c.Tensors() {
		r, cols := 1, tn.Shape[0]
		if len(tn.Shape) == 2 {
			r, cols = tn.Shape[0], tn.Shape[1]
		}
		n := x.mat(tn.Name, r, cols, toF64(host[tn.Off:tn.Off+tn.Len]))
		x.params[tn.Name] = n
		x.wrt = append(x.wrt, n)
	}
	return x
}

func (x *graph) mat(name string, r, cols int, v []float64) *G.Node {
	return G.NewMatrix(x.g, tensor.Float64, G.WithShape(r, cols), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(r, cols), tensor.WithBacking(v))))
}

// constant gets a unique name: gorgonia merges input nodes whose name, type
// and shape hash alike, whatever their values.
func (x *graph) constant(name string, r, cols int, v []float64) *G.Node {
	x.nconst++
	return x.mat(fmt.Sprintf("%s%d", name, x.nconst), r, cols, v)
}

// filled is a constant (r, cols) matrix of v.
func (x *graph) filled(r, cols int, v float64) *G.Node {
	vs := make([]float64, r*cols)
	for i := range vs {
		vs[i] = v
	}
	return x.constant("fill", r, cols, vs)
}

func (x *graph) must(n *G.Node, err error) *G.Node {
	x.t.Helper()
	if err != nil {
		x.t.Fatal(err)
	}
	return n
}

// mulT is a · wᵀ for the named parameter w.
func (x *graph) mulT(a *G.Node, w string) *G.Node {
	return x.must(G.Mul(a, x.must(G.Transpose(x.params[w]))))
}

// dense is in (r, n) · wᵀ + ones (r, 1) · bias (1, out).
func (x *graph) dense(in *G.Node, w, b string, r int) *G.Node {
	return x.must(G.Add(x.mulT(in, w), x.must(G.Mul(x.filled(r, 1, 1), x.params[b]))))
}

// lstm applies the cell to preactivations pre (r, 4H) and the previous cell
// (nil: zero) and returns h and c.
func (x *graph) lstm(pre, cell *G.Node) (*G.Node, *G.Node) {
	H := x.c.Hidden
	block := func(k int) *G.Node { // pre · sel_k, sel_k (4H, H) picking gate block k
		v := make([]float64, 4*H*H)
		for j := 0; j < H; j++ {
			v[(k*H+j)*H+j] = 1
		}
		return x.must(G.Mul(pre, x.constant("sel", 4*H, H, v)))
	}
	ig, fg := x.must(G.Sigmoid(block(0))), x.must(G.Sigmoid(block(1)))
	gg, og := x.must(G.Tanh(block(2))), x.must(G.Sigmoid(block(3)))
	next := x.must(G.HadamardProd(ig, gg))
	if cell != nil {
		next = x.must(G.Add(x.must(G.HadamardProd(fg, cell)), next))
	}
	return x.must(G.HadamardProd(og, x.must(G.Tanh(next)))), next
}

// crossEntropy is the loss term of logits (r, V) for targets: -1/ntok at each
// target, 0 on padding.
func (x *graph) crossEntropy(logits *G.Node, targets []int32, ntok int) *G.Node {
	V := x.c.Vocab
	pick := make([]float64, len(targets)*V)
	for b, tg := range targets {
		if tg >= 0 {
			pick[b*V+int(tg)] = -1 / float64(ntok)
		}
	}
	logp := x.must(G.LogSoftMax(logits))
	return x.must(G.Sum(x.must(G.HadamardProd(logp, x.constant("pick", len(targets), V, pick)))))
}

// add returns total + term, or term when total is nil.
func (x *graph) add(total, term *G.Node) *G.Node {
	if total == nil {
		return term
	}
	return x.must(G.Add(total, term))
}

// onehot is (len(ids), V) with a 1 at each id.
func (x *graph) onehot(ids []int32) *G.Node {
	V := x.c.Vocab
	v := make([]float64, len(ids)*V)
	for b, id := range ids {
		v[b*V+int(id)] = 1
	}
	return x.constant("onehot", len(ids), V, v)
}

// compare differentiates total and checks it and every gradient against the device's.
func (x *graph) compare(total *G.Node, loss float64, grads []float32) {
	t := x.t
	if _, err := G.Grad(total, x.wrt...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(x.g, G.BindDualValues(x.wrt...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	gl := total.Value().Data().(float64)
	t.Logf("loss: device %.8f, gorgonia %.8f", loss, gl)
	if !(math.Abs(loss-gl) <= 1e-5) { // NaN fails too
		t.Errorf("loss: device %.8f, gorgonia %.8f", loss, gl)
	}
	for _, tn := range x.c.Tensors() {
		gv, err := x.params[tn.Name].Grad()
		if err != nil {
			t.Fatalf("%s: %v", tn.Name, err)
		}
		want := gv.Data().([]float64)
		maxDiff, maxG := 0.0, 0.0
		for i, w := range want {
			d := math.Abs(w - float64(grads[tn.Off+i]))
			maxDiff, maxG = math.Max(maxDiff, d), math.Max(maxG, math.Abs(w))
			if d > 1e-5+1e-4*math.Abs(w) {
				t.Errorf("%s[%d]: device %.7g, gorgonia %.7g", tn.Name, i, grads[tn.Off+i], w)
			}
		}
		t.Logf("%-15s max |device - gorgonia| %.2e (max |grad| %.3g)", tn.Name, maxDiff, maxG)
	}
}

func countTargets(targets []int32) int {
	n := 0
	for _, tg := range targets {
		if tg >= 0 {
			n++
		}
	}
	return n
}

// maskValue is the device's dropout mask element i for seed.
func maskValue(c Config, s uint64, i int) float64 {
	if gpu.DropoutUniform(s, i) < c.Dropout {
		return 0
	}
	return float64(float32(1 / (1 - c.Dropout)))
}

func TestGradientsMatchGorgonia(t *testing.T) {
	dev := openCPU(t)
	c := Config{FeatDim: 7, Embed: 5, Hidden: 6, Mid: 4, Vocab: 11, Dropout: 0.5}
	m, host := randomModel(t, dev, c, 2, 0.4)
	bt := tinyBatch(c, 8)
	const seed = 77
	loss, _, grads := runDevice(t, dev, m, bt, true, seed)

	F, E, B, T := c.FeatDim, c.Embed, bt.B, bt.T
	x := newGraph(t, c, host)
	// Image branch with the feature dropout mask applied to the constant input.
	xv := make([]float64, B*F)
	for i := range xv {
		xv[i] = float64(bt.feats[i]) * maskValue(c, seed, i)
	}
	img := x.must(G.Rectify(x.dense(x.constant("x", B, F, xv), "img.weight", "img.bias", B)))
	var h, cell, total *G.Node
	ntok := countTargets(bt.targets)
	for t := 0; t < T; t++ {
		// Embedding as onehot (B, V) · Embed, then the embedding dropout mask.
		mask := make([]float64, B*E)
		for i := range mask {
			mask[i] = maskValue(c, seed^0xD1B54A32D192ED03, t*B*E+i)
		}
		emb := x.must(G.HadamardProd(x.must(G.Mul(x.onehot(bt.ids[t*B:(t+1)*B]), x.params["embed.weight"])), x.constant("mask", B, E, mask)))
		pre := x.dense(emb, "lstm.weight_ih", "lstm.bias", B)
		if h != nil {
			pre = x.must(G.Add(pre, x.mulT(h, "lstm.weight_hh")))
		}
		h, cell = x.lstm(pre, cell)
		mid := x.must(G.Rectify(x.dense(x.must(G.Add(h, img)), "dec.weight", "dec.bias", B)))
		total = x.add(total, x.crossEntropy(x.dense(mid, "out.weight", "out.bias", B), bt.targets[t*B:(t+1)*B], ntok))
	}
	x.compare(total, loss, grads)
}

// TestAttentionGradientsMatchGorgonia builds the attention decoder caption by
// caption: regions (L, F) per image, attention weights (1, L) per step.
func TestAttentionGradientsMatchGorgonia(t *testing.T) {
	dev := openCPU(t)
	c := tinyAttentionConfig()
	m, host := randomModel(t, dev, c, 2, 0.5)
	bt := tinyBatch(c, 8)
	const seed = 77
	loss, _, grads := runDevice(t, dev, m, bt, true, seed)

	F, E, L, B, T := c.FeatDim, c.Embed, c.Regions, bt.B, bt.T
	x := newGraph(t, c, host)
	ntok := countTargets(bt.targets)
	var total *G.Node
	for b := 0; b < B; b++ {
		feats := x.constant("feats", L, F, toF64(bt.feats[b*L*F:(b+1)*L*F]))
		mean := x.must(G.Mul(x.filled(1, L, 1/float64(L)), feats))
		h := x.must(G.Tanh(x.dense(mean, "init_h.weight", "init_h.bias", 1)))
		cell := x.must(G.Tanh(x.dense(mean, "init_c.weight", "init_c.bias", 1)))
		pf := x.dense(feats, "att_f.weight", "att_f.bias", L)
		var alphaSum *G.Node
		for t := 0; t < T; t++ {
			hp := x.must(G.Mul(x.filled(L, 1, 1), x.mulT(h, "att_h.weight"))) // (L, A), h's term on every region
			e := x.must(G.Tanh(x.must(G.Add(pf, hp))))
			score := x.must(G.Transpose(x.mulT(e, "att_v.weight"))) // (1, L)
			alpha := x.must(G.SoftMax(score))
			z := x.must(G.Mul(alpha, feats))
			gz := x.must(G.HadamardProd(x.must(G.Sigmoid(x.dense(h, "gate.weight", "gate.bias", 1))), z))
			emb := x.must(G.Mul(x.onehot(bt.ids[t*B+b:t*B+b+1]), x.params["embed.weight"]))
			in := x.must(G.Concat(1, emb, gz))
			pre := x.must(G.Add(x.dense(in, "lstm.weight_ih", "lstm.bias", 1), x.mulT(h, "lstm.weight_hh")))
			h, cell = x.lstm(pre, cell)
			deep := x.must(G.Add(x.must(G.Add(emb, x.dense(h, "out_h.weight", "out_h.bias", 1))), x.mulT(gz, "out_z.weight")))
			mask := make([]float64, E)
			for j := range mask {
				mask[j] = maskValue(c, seed, (t*B+b)*E+j)
			}
			deep = x.must(G.HadamardProd(deep, x.constant("mask", 1, E, mask)))
			if bt.targets[t*B+b] < 0 {
				continue
			}
			total = x.add(total, x.crossEntropy(x.dense(deep, "out.weight", "out.bias", 1), bt.targets[t*B+b:t*B+b+1], ntok))
			alphaSum = x.add(alphaSum, alpha)
		}
		// Penalty: lambda/(B*L) * Σ_l (1 - Σ_t alpha)^2.
		miss := x.must(G.Sub(x.filled(1, L, 1), alphaSum))
		sq := x.must(G.HadamardProd(miss, miss))
		total = x.add(total, x.must(G.Sum(x.must(G.HadamardProd(sq, x.filled(1, L, float64(c.AttPenalty)/float64(B*L)))))))
	}
	x.compare(total, loss, grads)
}
