package decoder

import (
	"fmt"
	"strings"
)

// DOT returns the architecture as a Graphviz digraph: one node per layer with
// its output shape and parameter count, like the seed notebook's model.png.
// Shapes use B for the batch and T for caption length.
func (c Config) DOT() string {
	count := map[string]int{}
	for _, t := range c.Tensors() {
		count[strings.SplitN(t.Name, ".", 2)[0]] += t.Len
	}
	if c.Arch == ArchAttention {
		return c.attentionDOT(count)
	}
	nodes := []node{
		{"feats", "image features (MobileNetV2 pooled)", fmt.Sprintf("(B, %d)", c.FeatDim)},
		{"drop1", fmt.Sprintf("Dropout p=%g", c.Dropout), fmt.Sprintf("(B, %d)", c.FeatDim)},
		{"img", fmt.Sprintf("Dense %d, ReLU\\n%d params", c.Hidden, count["img"]), fmt.Sprintf("(B, %d)", c.Hidden)},
		{"words", "caption tokens <start> w1 .. wn", "(B, T)"},
		{"embed", fmt.Sprintf("Embedding %dx%d\\n%d params", c.Vocab, c.Embed, count["embed"]), fmt.Sprintf("(B, T, %d)", c.Embed)},
		{"drop2", fmt.Sprintf("Dropout p=%g", c.Dropout), fmt.Sprintf("(B, T, %d)", c.Embed)},
		{"lstm", fmt.Sprintf("LSTM %d (gates i,f,g,o)\\n%d params", c.Hidden, count["lstm"]), fmt.Sprintf("(B, T, %d)", c.Hidden)},
		{"add", "Add (image broadcast over T)", fmt.Sprintf("(B, T, %d)", c.Hidden)},
		{"dec", fmt.Sprintf("Dense %d, ReLU\\n%d params", c.Mid, count["dec"]), fmt.Sprintf("(B, T, %d)", c.Mid)},
		{"out", fmt.Sprintf("Dense %d (vocabulary)\\n%d params", c.Vocab, count["out"]), fmt.Sprintf("(B, T, %d)", c.Vocab)},
		{"softmax", "Softmax: next word", fmt.Sprintf("(B, T, %d)", c.Vocab)},
	}
	edges := [][2]string{{"feats", "drop1"}, {"drop1", "img"}, {"img", "add"}, {"words", "embed"},
		{"embed", "drop2"}, {"drop2", "lstm"}, {"lstm", "add"}, {"add", "dec"}, {"dec", "out"}, {"out", "softmax"}}
	return dot("merge_lstm", fmt.Sprintf("merge-LSTM caption decoder: %d parameters", c.NumParams()), nodes, edges)
}

// attentionDOT draws the attention decoder's step; count is the parameters per layer.
func (c Config) attentionDOT(count map[string]int) string {
	L, F, A, E, H, V := c.Regions, c.FeatDim, c.Att, c.Embed, c.Hidden, c.Vocab
	lstm := fmt.Sprintf("LSTM %d on [embedding, gated context]", H)
	if c.CtxRank > 0 {
		lstm += fmt.Sprintf(", its context weight at rank %d", c.CtxRank)
	}
	nodes := []node{
		{"feats", "image regions (MobileNetV2 grid)", fmt.Sprintf("(B, %d, %d)", L, F)},
		{"init", fmt.Sprintf("mean region, Dense %d tanh: h0, c0\n%d params", H, count["init_h"]+count["init_c"]), fmt.Sprintf("2 x (B, %d)", H)},
		{"attf", fmt.Sprintf("Dense %d (regions)\n%d params", A, count["att_f"]), fmt.Sprintf("(B, %d, %d)", L, A)},
		{"att", fmt.Sprintf("tanh(+ Dense %d of h), score, softmax over %d\n%d params", A, L, count["att_h"]+count["att_v"]), fmt.Sprintf("alpha (B, T, %d)", L)},
		{"ctx", "context: Σ alpha * region", fmt.Sprintf("(B, T, %d)", F)},
		{"gate", fmt.Sprintf("gate sigmoid(Dense %d of h) * context\n%d params", F, count["gate"]), fmt.Sprintf("(B, T, %d)", F)},
		{"words", "caption tokens <start> w1 .. wn", "(B, T)"},
		{"embed", fmt.Sprintf("Embedding %dx%d\n%d params", V, E, count["embed"]), fmt.Sprintf("(B, T, %d)", E)},
		{"lstm", fmt.Sprintf("%s\n%d params", lstm, count["lstm"]), fmt.Sprintf("(B, T, %d)", H)},
		{"deep", fmt.Sprintf("deep output: embedding + Dense(h) + Dense(context)\n%d params", count["out_h"]+count["out_z"]), fmt.Sprintf("(B, T, %d)", E)},
		{"drop", fmt.Sprintf("Dropout p=%g", c.Dropout), fmt.Sprintf("(B, T, %d)", E)},
		{"out", fmt.Sprintf("Dense %d (vocabulary)\n%d params", V, count["out"]), fmt.Sprintf("(B, T, %d)", V)},
		{"softmax", "Softmax: next word", fmt.Sprintf("(B, T, %d)", V)},
	}
	edges := [][2]string{{"feats", "init"}, {"feats", "attf"}, {"attf", "att"}, {"init", "lstm"}, {"lstm", "att"},
		{"att", "ctx"}, {"feats", "ctx"}, {"ctx", "gate"}, {"lstm", "gate"}, {"gate", "lstm"}, {"words", "embed"},
		{"embed", "lstm"}, {"embed", "deep"}, {"lstm", "deep"}, {"gate", "deep"}, {"deep", "drop"}, {"drop", "out"}, {"out", "softmax"}}
	return dot("attention_lstm", fmt.Sprintf("soft-attention LSTM caption decoder (Show, Attend and Tell): %d parameters", c.NumParams()), nodes, edges)
}

type node struct{ id, label, shape string }

// dot writes a Graphviz digraph of record nodes.
func dot(name, label string, nodes []node, edges [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  label=\"%s\";\n  labelloc=t;\n", name, label)
	b.WriteString("  node [shape=record, fontname=\"Helvetica\", fontsize=11];\n")
	// Record labels treat < > { } | as structure: escape them in the text.
	esc := strings.NewReplacer("<", "\\<", ">", "\\>", "{", "\\{", "}", "\\}", "|", "\\|")
	for _, n := range nodes {
		fmt.Fprintf(&b, "  %s [label=\"{%s|%s}\"];\n", n.id, esc.Replace(n.label), n.shape)
	}
	for _, e := range edges {
		fmt.Fprintf(&b, "  %s -> %s;\n", e[0], e[1])
	}
	b.WriteString("}\n")
	return b.String()
}
