package decoder

import (
	"fmt"
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGradientsMatchGorgonia builds the same merge-LSTM in gorgonia's graph ops
// (its reverse-mode automatic differentiation, on the CPU, float64), with the
// same weights, batch and dropout masks, and compares the loss and every
// gradient tensor by name with the device's hand-written backward pass.
//
// Only matrix products and elementwise ops are used in the graph, so what is
// checked is gorgonia's differentiation, not a shared reading of our kernels:
// embedding lookups are one-hot products, biases are ones·bias products, gate
// blocks are products with 0/1 selection matrices.
func TestGradientsMatchGorgonia(t *testing.T) {
	dev := openCPU(t)
	c := Config{FeatDim: 7, Embed: 5, Hidden: 6, Mid: 4, Vocab: 11, Dropout: 0.5}
	m, host := randomModel(t, dev, c, 2, 0.4)
	bt := tinyBatch(c, 8)
	const seed = 77
	loss, _, grads := runDevice(t, dev, m, bt, true, seed)

	F, E, H, V, B, T := c.FeatDim, c.Embed, c.Hidden, c.Vocab, bt.B, bt.T
	g := G.NewGraph()
	mat := func(name string, r, cols int, v []float64) *G.Node {
		return G.NewMatrix(g, tensor.Float64, G.WithShape(r, cols), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(r, cols), tensor.WithBacking(v))))
	}
	// Constants get unique names: gorgonia merges input nodes whose name, type
	// and shape hash alike, whatever their values.
	nconst := 0
	constant := func(name string, r, cols int, v []float64) *G.Node {
		nconst++
		return mat(fmt.Sprintf("%s%d", name, nconst), r, cols, v)
	}
	params := map[string]*G.Node{}
	var wrt G.Nodes
	for _, tn := range c.Tensors() {
		r, cols := 1, tn.Shape[0] // biases are (1, n) rows
		if len(tn.Shape) == 2 {
			r, cols = tn.Shape[0], tn.Shape[1]
		}
		n := mat(tn.Name, r, cols, toF64(host[tn.Off:tn.Off+tn.Len]))
		params[tn.Name] = n
		wrt = append(wrt, n)
	}
	must := func(n *G.Node, err error) *G.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ones := func(r int) *G.Node {
		v := make([]float64, r)
		for i := range v {
			v[i] = 1
		}
		return constant("ones", r, 1, v)
	}
	// dense: x (r, in) · wᵀ + ones (r, 1) · bias (1, out).
	dense := func(x *G.Node, w, b string, r int) *G.Node {
		xw := must(G.Mul(x, must(G.Transpose(params[w]))))
		return must(G.Add(xw, must(G.Mul(ones(r), params[b]))))
	}
	maskValue := func(s uint64, i int) float64 {
		if gpu.DropoutUniform(s, i) < c.Dropout {
			return 0
		}
		return float64(float32(1 / (1 - c.Dropout)))
	}
	// Image branch with the feature dropout mask applied to the constant input.
	xv := make([]float64, B*F)
	for i := range xv {
		xv[i] = float64(bt.feats[i]) * maskValue(seed, i)
	}
	img := must(G.Rectify(dense(constant("x", B, F, xv), "img.weight", "img.bias", B)))
	// Gate selection: sel[k] (4H, H) picks block k of the gate preactivations.
	sel := make([]*G.Node, 4)
	for k := range sel {
		v := make([]float64, 4*H*H)
		for j := 0; j < H; j++ {
			v[(k*H+j)*H+j] = 1
		}
		sel[k] = constant("sel", 4*H, H, v)
	}
	var h, cell *G.Node
	var total *G.Node
	ntok := 0
	for _, tg := range bt.targets {
		if tg >= 0 {
			ntok++
		}
	}
	for t := 0; t < T; t++ {
		// Embedding as onehot (B, V) · Embed, then the embedding dropout mask.
		oh := make([]float64, B*V)
		mask := make([]float64, B*E)
		for b := 0; b < B; b++ {
			oh[b*V+int(bt.ids[t*B+b])] = 1
			for j := 0; j < E; j++ {
				mask[b*E+j] = maskValue(seed^0xD1B54A32D192ED03, (t*B+b)*E+j)
			}
		}
		emb := must(G.HadamardProd(must(G.Mul(constant("onehot", B, V, oh), params["embed.weight"])), constant("mask", B, E, mask)))
		pre := dense(emb, "lstm.weight_ih", "lstm.bias", B)
		if h != nil {
			pre = must(G.Add(pre, must(G.Mul(h, must(G.Transpose(params["lstm.weight_hh"]))))))
		}
		block := func(k int) *G.Node { return must(G.Mul(pre, sel[k])) }
		ig, fg := must(G.Sigmoid(block(0))), must(G.Sigmoid(block(1)))
		gg, og := must(G.Tanh(block(2))), must(G.Sigmoid(block(3)))
		if cell == nil {
			cell = must(G.HadamardProd(ig, gg))
		} else {
			cell = must(G.Add(must(G.HadamardProd(fg, cell)), must(G.HadamardProd(ig, gg))))
		}
		h = must(G.HadamardProd(og, must(G.Tanh(cell))))
		mid := must(G.Rectify(dense(must(G.Add(h, img)), "dec.weight", "dec.bias", B)))
		logits := dense(mid, "out.weight", "out.bias", B)
		logp := must(G.LogSoftMax(logits))
		// Loss term: -1/ntok at each target, 0 on padding rows.
		pick := make([]float64, B*V)
		for b := 0; b < B; b++ {
			if tg := bt.targets[t*B+b]; tg >= 0 {
				pick[b*V+int(tg)] = -1 / float64(ntok)
			}
		}
		term := must(G.Sum(must(G.HadamardProd(logp, constant("pick", B, V, pick)))))
		if total == nil {
			total = term
		} else {
			total = must(G.Add(total, term))
		}
	}
	if _, err := G.Grad(total, wrt...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	gl := total.Value().Data().(float64)
	t.Logf("loss: device %.8f, gorgonia %.8f", loss, gl)
	if math.Abs(loss-gl) > 1e-5 {
		t.Errorf("loss: device %.8f, gorgonia %.8f", loss, gl)
	}
	for _, tn := range c.Tensors() {
		gv, err := params[tn.Name].Grad()
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
