package encoder

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/tflite"
)

func readModel(t *testing.T, name string) *tflite.Model {
	t.Helper()
	m, err := tflite.ReadFile(modelFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestImportBothFiles checks the architecture read from both TFLite files
// against MobileNetV2 1.0's published table (t, c, n, s).
func TestImportBothFiles(t *testing.T) {
	var want []Block
	in := 32
	for _, r := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		for i := 0; i < r[2]; i++ {
			s := 1
			if i == 0 {
				s = r[3]
			}
			want = append(want, Block{In: in, Hidden: in * r[0], Out: r[1], Stride: s, Expand: r[0] != 1, Residual: s == 1 && in == r[1]})
			in = r[1]
		}
	}
	for _, name := range []string{quantModel, ptqModel} {
		w, err := ImportFile(modelFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		c := w.Config
		if c.Input != 224 || c.Stem != 32 || c.Head != 1280 || c.Classes != 1001 || !slices.Equal(c.Blocks, want) || c.GridSize() != 7 {
			t.Errorf("%s: config %+v", name, c)
		}
		for _, p := range c.Params() {
			if len(w.Tensors[p.Name]) != numel(p.Shape) {
				t.Errorf("%s: %s has %d values, want shape %v", name, p.Name, len(w.Tensors[p.Name]), p.Shape)
			}
		}
		// The int8 chain's quantization: the image, the 52 layers, the classifier.
		if _, unranged := chainLayers(w, len(c.Blocks)); len(w.Quant) != 54 || len(unranged) > 0 {
			t.Errorf("%s: %d quantized layers, none for %v; want 54 and none", name, len(w.Quant), unranged)
		}
		for layer, q := range w.Quant {
			// The uint8 file quantizes weights per tensor, the int8 one per channel.
			if perTensor := q.WeightStep > 0; perTensor != (name == quantModel && layer != "input") {
				t.Errorf("%s: %s has weight step %g", name, layer, q.WeightStep)
			}
		}
	}
	// The uint8 file's ranges, as its tensors record them; a residual block's
	// projection is stored as the ADD's output (block 2), not the projection's
	// own ([-54.603043, 47.77766] there).
	w, err := ImportFile(modelFile(t, quantModel))
	if err != nil {
		t.Fatal(err)
	}
	for layer, want := range map[string][2]float32{"input": {-1, 0.9921875}, "stem": {0, 5.9997616},
		"blocks.1.project": {-32.824287, 37.513474}, "blocks.2.project": {-57.47847, 52.724613}} {
		if got := w.Quant[layer].Out; got != want {
			t.Errorf("%s: range %v, want %v", layer, got, want)
		}
	}
	// The int8 chain stores each at its larger end: block 2's projection
	// (layer 8) at its low one.
	layers, _ := chainLayers(w, len(w.Config.Blocks))
	if layers[0].InMax != 1 || layers[1].OutMax != 5.9997616 || layers[8].OutMax != 57.47847 {
		t.Errorf("chain ranges: input %g, block 0's depthwise %g, block 2's projection %g; want 1, 5.9997616, 57.47847",
			layers[0].InMax, layers[1].OutMax, layers[8].OutMax)
	}
}

// TestImportRejects edits the parsed uint8 model in memory and checks that each
// deviation from MobileNetV2 fails with a message naming the operator.
func TestImportRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(g *tflite.Subgraph)
		want string
	}{
		{"stem stride", func(g *tflite.Subgraph) { g.Operators[0].Options.(*tflite.Conv2DOptions).StrideH = 1 },
			"operator 0 (CONV_2D): stride 1x2, expected 2x2"},
		{"valid depthwise", func(g *tflite.Subgraph) {
			g.Operators[1].Options.(*tflite.DepthwiseConv2DOptions).Padding = tflite.Valid
		},
			"operator 1 (DEPTHWISE_CONV_2D): padding VALID"},
		{"activation", func(g *tflite.Subgraph) { g.Operators[2].Options.(*tflite.Conv2DOptions).Activation = tflite.ActRelu },
			"operator 2 (CONV_2D): fused activation RELU, expected NONE"},
		{"unsupported op", func(g *tflite.Subgraph) { g.Operators[62].Op = 17 },
			"operator 62 (MAX_POOL_2D): expected global average pooling"},
		{"rewired residual", func(g *tflite.Subgraph) { g.Operators[9].Inputs[1] = g.Operators[3].Inputs[0] },
			"operator 9 (ADD): a residual ADD must add"},
		{"dilation", func(g *tflite.Subgraph) { g.Operators[4].Options.(*tflite.DepthwiseConv2DOptions).DilationH = 2 },
			"operator 4 (DEPTHWISE_CONV_2D): dilation 2x1"},
		{"weight shape", func(g *tflite.Subgraph) { g.Tensors[g.Operators[3].Inputs[1]].Shape = []int{96, 1, 1, 15} },
			"operator 3 (CONV_2D): weight shape [96 1 1 15], expected (OC, 1, 1, 16)"},
		{"extra op", func(g *tflite.Subgraph) {
			g.Operators = append(g.Operators, tflite.Operator{Index: 66, Op: tflite.OpAdd, Inputs: []int{173, 173}, Outputs: []int{173}})
		}, "operator 66 (ADD): unexpected operator after the softmax"},
		{"truncated graph", func(g *tflite.Subgraph) { g.Operators = g.Operators[:63] }, "at the end of the graph: expected the classifier"},
		{"pool smaller than the grid", func(g *tflite.Subgraph) { g.Operators[62].Options.(*tflite.Pool2DOptions).FilterHeight = 6 },
			"operator 62 (AVERAGE_POOL_2D): expected a 7x7 VALID average pool over the whole grid"},
		{"residual with relu", func(g *tflite.Subgraph) { g.Operators[9].Options = &tflite.AddOptions{Activation: tflite.ActRelu} },
			"operator 9 (ADD): residual ADD with fused RELU; MobileNetV2's is linear"},
		{"softmax beta", func(g *tflite.Subgraph) { g.Operators[65].Options.(*tflite.SoftmaxOptions).Beta = 0.5 },
			"operator 65 (SOFTMAX): softmax with options &{Beta:0.5}; beta 1 expected"},
		{"output elsewhere", func(g *tflite.Subgraph) { g.Outputs[0] = 5 },
			"is not the graph output (tensor 5)"},
		{"non-square input", func(g *tflite.Subgraph) { g.Tensors[g.Inputs[0]].Shape = []int{1, 224, 225, 3} },
			"want a (1, S, S, 3) image"},
		{"fully connected with shuffled weights", func(g *tflite.Subgraph) {
			g.Operators[63].Op = tflite.OpFullyConnected
			g.Operators[63].Options = &tflite.FullyConnectedOptions{WeightsFormat: 1}
		}, "operator 63 (FULLY_CONNECTED): expected a linear FULLY_CONNECTED with plain weights"},
	}
	for _, c := range cases {
		m := readModel(t, quantModel)
		c.edit(&m.Subgraphs[0])
		_, err := Import(m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", c.name, err, c.want)
		}
	}
	// The int8 file pools with MEAN (operator 63): over H and W only.
	m := readModel(t, ptqModel)
	g := &m.Subgraphs[0]
	g.Tensors[g.Operators[63].Inputs[1]].Data = []byte{1, 0, 0, 0, 3, 0, 0, 0}
	if _, err := Import(m); err == nil || !strings.Contains(err.Error(), "operator 63 (MEAN): MEAN over axes [1 3] (<nil>); global pooling is over [1, 2]") {
		t.Errorf("MEAN over axes 1 and 3: %v", err)
	}
}

func TestWeightsSaveLoadAndCache(t *testing.T) {
	src := modelFile(t, quantModel)
	dir := t.TempDir()
	w, imported, err := Cached(src, dir)
	if err != nil || !imported {
		t.Fatalf("first Cached: imported %v, %v", imported, err)
	}
	w2, imported, err := Cached(src, dir)
	if err != nil || imported {
		t.Fatalf("second Cached: imported %v (want the cached file), %v", imported, err)
	}
	if !slices.Equal(w2.Config.Blocks, w.Config.Blocks) || w2.Config.ID() != w.Config.ID() {
		t.Fatalf("config changed through the cache: %+v", w2.Config)
	}
	if len(w.Quant) == 0 || !maps.Equal(w2.Quant, w.Quant) {
		t.Fatalf("quantization changed through the cache: %d layers, then %d", len(w.Quant), len(w2.Quant))
	}
	for name, v := range w.Tensors {
		if !slices.Equal(w2.Tensors[name], v) {
			t.Fatalf("%s changed through the cache", name)
		}
	}
	// A damaged cache file is re-imported, not trusted.
	path := CachePath(dir, w.Config.SourceSHA)
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, imported, err := Cached(src, dir); err != nil || !imported {
		t.Fatalf("after damage: imported %v, %v", imported, err)
	}
	// So is one whose bytes were changed in the middle, which still parses:
	// the checksum it was saved with no longer matches.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+4000; i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeights(path); err == nil || err.Error() != "encoder: "+path+" is damaged: its contents do not match the checksum it was saved with; delete it (a cached import is made again from the TFLite file)" {
		t.Errorf("LoadWeights of a file changed in the middle: %v", err)
	}
	w3, imported, err := Cached(src, dir)
	if err != nil || !imported || !slices.Equal(w3.Tensors["head.bias"], w.Tensors["head.bias"]) {
		t.Fatalf("after a change in the middle: imported %v, %v", imported, err)
	}
	// A file with a tensor of the wrong shape fails naming the tensor.
	w.Tensors["head.bias"] = w.Tensors["head.bias"][:10]
	bad := filepath.Join(dir, "bad.safetensors")
	if err := w.Save(bad); err == nil || !strings.Contains(err.Error(), "head.bias") {
		t.Fatalf("saving a short tensor: %v", err)
	}
}

// TestUnwritableCacheStillLoads: a cache folder that cannot be made (here
// below a file; a read-only home in a container) gives the imported weights
// all the same, with a *NotCachedError naming the folder and what to set, and
// LoadDefault, which caption and serve call, goes on with them.
func TestUnwritableCacheStillLoads(t *testing.T) {
	src := modelFile(t, quantModel)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "models")
	w, imported, err := Cached(src, dir)
	var nc *NotCachedError
	if !errors.As(err, &nc) || nc.Dir != dir || w == nil || !imported || len(w.Tensors["head.bias"]) != 1280 {
		t.Fatalf("Cached into %s: weights %v, imported %v, %v; want the weights and a *NotCachedError", dir, w != nil, imported, err)
	}
	if want := "encoder: the imported weights cannot be kept in the cache folder " + dir + " (mkdir " + file + ": not a directory); set CAPTIONER_CACHE (or XDG_CACHE_HOME) to a folder this user can write"; err.Error() != want {
		t.Errorf("error %q\nwant     %q", err, want)
	}
	t.Setenv("CAPTIONER_CACHE", file)
	if w, err := LoadDefault(assetsDir(t)); err != nil || w == nil {
		t.Errorf("LoadDefault with CAPTIONER_CACHE a file: %v", err)
	}
}
