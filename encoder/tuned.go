package encoder

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/safetensors"
)

// TunedFile is the file of a model folder that holds its fine-tuned encoder
// layers: the tensors of Config.TopParams(first) (blocks.<i>.{expand,dw,project}.
// {weight,bias} for i >= first, head.weight, head.bias; shapes as Params lists
// them), with metadata format TunedFormat, "base" (the ID of the ImageNet
// weights they were tuned from) and "first" (the first tuned block).
const (
	TunedFile   = "encoder.safetensors"
	TunedFormat = "captioner-mobilenet_v2-tuned/1"
)

// SaveTuned writes the fine-tuned layers tensors (a Top's Tensors) of the
// encoder base, from block first, to path.
func SaveTuned(path string, base Config, first int, tensors map[string][]float32) error {
	var ts []safetensors.Tensor
	for _, p := range base.TopParams(first) {
		v, ok := tensors[p.Name]
		if !ok || len(v) != numel(p.Shape) {
			return fmt.Errorf("encoder: saving %s: tensor %s has %d values, want shape %v", path, p.Name, len(v), p.Shape)
		}
		ts = append(ts, safetensors.FromFloat32(p.Name, p.Shape, v))
	}
	return safetensors.WriteFile(path, ts, map[string]string{"format": TunedFormat, "base": base.ID(), "first": strconv.Itoa(first)})
}

// WithTuned returns base's weights with the fine-tuned layers of the file at
// path (SaveTuned's) in place, their Config.Tuned set to the file's SHA-256,
// and the first tuned block. It fails when the file was tuned from other
// weights, or does not hold exactly the layers from its first block up.
func WithTuned(base *Weights, path string) (*Weights, int, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("encoder: %w", err)
	}
	if got := f.Metadata["format"]; got != TunedFormat {
		return nil, 0, fmt.Errorf("encoder: %s has format %q, want %q", path, got, TunedFormat)
	}
	if got, want := f.Metadata["base"], base.Config.ID(); got != want {
		return nil, 0, fmt.Errorf("encoder: %s was fine-tuned from encoder %s, but the encoder here is %s; use the MobileNetV2 weights it was trained from", path, got, want)
	}
	first, err := strconv.Atoi(f.Metadata["first"])
	if err != nil || first < 0 || first >= len(base.Config.Blocks) {
		return nil, 0, fmt.Errorf("encoder: %s: bad first tuned block %q", path, f.Metadata["first"])
	}
	w := &Weights{Config: base.Config, Tensors: maps.Clone(base.Tensors)}
	want := base.Config.TopParams(first)
	for _, p := range want {
		if w.Tensors[p.Name], err = f.Float32(p.Name, p.Shape...); err != nil {
			return nil, 0, fmt.Errorf("encoder: %s: %w", path, err)
		}
	}
	if len(f.Tensors) != len(want) {
		names := make([]string, len(f.Tensors))
		for i, t := range f.Tensors {
			names[i] = t.Name
		}
		return nil, 0, fmt.Errorf("encoder: %s holds %d tensors (%v), want the %d of blocks %d.. and the head", path, len(f.Tensors), slices.Sorted(slices.Values(names)), len(want), first)
	}
	if w.Config.Tuned, err = assets.FileSHA256(path); err != nil {
		return nil, 0, err
	}
	return w, first, nil
}
