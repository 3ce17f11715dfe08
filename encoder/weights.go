package encoder

import (
	"encoding/json"
	"fmt"

	"github.com/captioner/captioner/safetensors"
)

// Version changes whenever the features this package computes from the same
// weights and the same image would change (the forward pass, or the image
// preprocessing it expects), so that feature caches made before are not reused.
// Version 2: JPEGs are decoded by libjpeg-turbo (image/jpeg before), which moves
// the features by about 1%.
const Version = 2

// Format names the layout of an imported weights file.
const Format = "captioner-mobilenet_v2/1"

// Config is the architecture of an imported MobileNetV2 (any width multiplier):
// what the importer read from the TFLite graph, saved in the weights file.
type Config struct {
	Source    string  `json:"source"`     // file the weights came from
	SourceSHA string  `json:"source_sha"` // its SHA-256 (hex): part of the encoder's ID
	Input     int     `json:"input"`      // input height = width (224)
	Stem      int     `json:"stem"`       // stem conv output channels (32); 3x3 stride 2
	Blocks    []Block `json:"blocks"`
	Head      int     `json:"head"`    // final 1x1 conv channels (1280): the feature size
	Classes   int     `json:"classes"` // classifier outputs (1001, index 0 = background)
	// Tuned, for weights with fine-tuned layers from a model folder (WithTuned),
	// is the SHA-256 (hex) of that file: part of the ID, so their features are
	// never mistaken for the ImageNet weights'.
	Tuned string `json:"tuned,omitempty"`
}

// Block is one inverted residual block: expand 1x1 + ReLU6 (absent when
// Hidden == In), depthwise 3x3 + ReLU6 with stride Stride, project 1x1 linear, and
// a residual add when Residual (stride 1, In == Out).
type Block struct {
	In       int  `json:"in"`
	Hidden   int  `json:"hidden"`
	Out      int  `json:"out"`
	Stride   int  `json:"stride"`
	Expand   bool `json:"expand"`
	Residual bool `json:"residual"`
}

// GridSize is the side of the feature grid: the input halved five times (7 for 224).
func (c *Config) GridSize() int {
	s := ceilDiv(c.Input, 2)
	for _, b := range c.Blocks {
		s = ceilDiv(s, b.Stride)
	}
	return s
}

// ID identifies the features this encoder computes: weights and code version.
// Feature caches are keyed by it, and by what else of the build and
// configuration moves the features (captioner's featuresID).
func (c *Config) ID() string {
	sha := c.SourceSHA
	if len(sha) > 16 {
		sha = sha[:16]
	}
	id := fmt.Sprintf("mobilenet_v2-%s-v%d", sha, Version)
	if c.Tuned != "" {
		id += "-tuned-" + c.Tuned[:min(12, len(c.Tuned))]
	}
	return id
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Weights are the float32 parameters of the network, by name, with the shapes
// listed by Shapes. Convolution weights keep TFLite's layouts: (OC, KH, KW, C) for
// full convolutions (1x1 ones stored as (OC, C)) and (KH, KW, C) for depthwise.
type Weights struct {
	Config  Config
	Tensors map[string][]float32
	// Quant is what a quantized TFLite file says about its integers, by layer
	// name (stem, blocks.N.expand, blocks.N.dw, blocks.N.project, head, and the
	// unused classifier) and "input" (the image): what an int8 encoder stores
	// each layer in. Empty for a float file.
	Quant map[string]LayerQuant
}

// LayerQuant is one layer's quantization in a TFLite file.
type LayerQuant struct {
	// Out is the range [lo, hi] of the layer's output (of the residual add
	// when its block has one: the int8 chain adds in place and stores only
	// the sum).
	Out [2]float32 `json:"out"`
	// WeightStep is the weights' scale when the file quantizes them per
	// tensor (0 when per channel, or for "input"): the grid their dequantized
	// values lie on, which the int8 chain keeps where it can rather than
	// round them a second time.
	WeightStep float32 `json:"weight_step,omitempty"`
}

// Param is one named parameter and its shape.
type Param struct {
	Name  string
	Shape []int
}

// Params lists every parameter of the architecture in a fixed order: the names and
// shapes the weights file must hold.
func (c *Config) Params() []Param {
	ps := []Param{{"stem.weight", []int{c.Stem, 3, 3, 3}}, {"stem.bias", []int{c.Stem}}}
	for i, b := range c.Blocks {
		p := fmt.Sprintf("blocks.%d.", i)
		if b.Expand {
			ps = append(ps, Param{p + "expand.weight", []int{b.Hidden, b.In}}, Param{p + "expand.bias", []int{b.Hidden}})
		}
		ps = append(ps,
			Param{p + "dw.weight", []int{3, 3, b.Hidden}}, Param{p + "dw.bias", []int{b.Hidden}},
			Param{p + "project.weight", []int{b.Out, b.Hidden}}, Param{p + "project.bias", []int{b.Out}})
	}
	last := c.Stem
	if n := len(c.Blocks); n > 0 {
		last = c.Blocks[n-1].Out
	}
	return append(ps,
		Param{"head.weight", []int{c.Head, last}}, Param{"head.bias", []int{c.Head}},
		Param{"classifier.weight", []int{c.Classes, c.Head}}, Param{"classifier.bias", []int{c.Classes}})
}

// validate checks that the blocks chain (each block's input is the previous
// output) and that flags agree with channel counts, so a hand-edited or damaged
// weights file fails here rather than inside a kernel.
func (c *Config) validate() error {
	if c.Input <= 0 || c.Stem <= 0 || c.Head <= 0 || c.Classes <= 0 || len(c.Blocks) == 0 {
		return fmt.Errorf("encoder: incomplete config %+v", *c)
	}
	in := c.Stem
	for i, b := range c.Blocks {
		switch {
		case b.In != in:
			return fmt.Errorf("encoder: block %d takes %d channels but the previous layer gives %d", i, b.In, in)
		case b.Stride != 1 && b.Stride != 2:
			return fmt.Errorf("encoder: block %d has stride %d; 1 or 2 expected", i, b.Stride)
		case !b.Expand && b.Hidden != b.In:
			return fmt.Errorf("encoder: block %d has %d hidden channels for %d inputs but no expand conv", i, b.Hidden, b.In)
		case b.Residual && (b.Stride != 1 || b.In != b.Out):
			return fmt.Errorf("encoder: block %d is residual with stride %d, %d -> %d channels", i, b.Stride, b.In, b.Out)
		}
		in = b.Out
	}
	return nil
}

// Save writes w as a safetensors file whose metadata holds the Config as JSON.
func (w *Weights) Save(path string) error {
	cfg, err := json.Marshal(w.Config)
	if err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for _, p := range w.Config.Params() {
		v, ok := w.Tensors[p.Name]
		if !ok || len(v) != numel(p.Shape) {
			return fmt.Errorf("encoder: saving %s: tensor %s has %d values, want shape %v", path, p.Name, len(v), p.Shape)
		}
		ts = append(ts, safetensors.FromFloat32(p.Name, p.Shape, v))
	}
	meta := map[string]string{"format": Format, "config": string(cfg)}
	if len(w.Quant) > 0 {
		q, err := json.Marshal(w.Quant)
		if err != nil {
			return err
		}
		meta["quant"] = string(q)
	}
	return safetensors.WriteFile(path, ts, safetensors.WithChecksum(ts, meta))
}

// LoadWeights reads a weights file written by Save, checking its checksum and
// every tensor's shape against the saved architecture. A file without a
// checksum (from before it was recorded) is read unchecked.
func LoadWeights(path string) (*Weights, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if recorded, ok := f.Metadata[safetensors.ChecksumKey]; ok && safetensors.Checksum(f.Tensors, f.Metadata) != recorded {
		// A cache file damaged on disk gave captions of nonsense without a word.
		return nil, fmt.Errorf("encoder: %s is damaged: its contents do not match the checksum it was saved with; delete it (a cached import is made again from the TFLite file)", path)
	}
	if got := f.Metadata["format"]; got != Format {
		return nil, fmt.Errorf("encoder: %s has format %q, want %q; re-import it from the TFLite file (captioner import)", path, got, Format)
	}
	w := &Weights{Tensors: map[string][]float32{}}
	if err := json.Unmarshal([]byte(f.Metadata["config"]), &w.Config); err != nil {
		return nil, fmt.Errorf("encoder: %s: bad config metadata: %w", path, err)
	}
	if err := w.Config.validate(); err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	if q, ok := f.Metadata["quant"]; ok {
		if err := json.Unmarshal([]byte(q), &w.Quant); err != nil {
			return nil, fmt.Errorf("encoder: %s: bad quant metadata: %w", path, err)
		}
	}
	names := map[string]bool{}
	for _, p := range w.Config.Params() {
		v, err := f.Float32(p.Name, p.Shape...)
		if err != nil {
			return nil, fmt.Errorf("encoder: %s: %w", path, err)
		}
		w.Tensors[p.Name] = v
		names[p.Name] = true
	}
	for _, t := range f.Tensors {
		if !names[t.Name] {
			return nil, fmt.Errorf("encoder: %s: unexpected tensor %s for this architecture", path, t.Name)
		}
	}
	return w, nil
}
