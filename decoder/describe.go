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
	type node struct{ id, label, shape string }
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
	var b strings.Builder
	fmt.Fprintf(&b, "digraph merge_lstm {\n  label=\"merge-LSTM caption decoder: %d parameters\";\n  labelloc=t;\n", c.NumParams())
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
