package decoder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/safetensors"
)

// File names inside a model folder.
const (
	WeightsFile = "decoder.safetensors"
	ConfigFile  = "config.json"
)

// SafeTensors converts flat host parameters (NumParams, Tensors order) into named
// safetensors tensors with prefix before each name ("" for the weights file; the
// trainer's checkpoint also stores Adam's moments as "adam.m." and "adam.v.").
func (c Config) SafeTensors(prefix string, flat []float32) []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, t := range c.Tensors() {
		out = append(out, safetensors.FromFloat32(prefix+t.Name, t.Shape, flat[t.Off:t.Off+t.Len]))
	}
	return out
}

// halfTensors is SafeTensors in float16 (no prefix: only model folders are
// stored so); a weight beyond float16's range is an error, not an infinity.
func (c Config) halfTensors(flat []float32) ([]safetensors.Tensor, error) {
	var out []safetensors.Tensor
	for _, t := range c.Tensors() {
		w := flat[t.Off : t.Off+t.Len]
		if j := slices.IndexFunc(w, func(x float32) bool { return math.Abs(float64(x)) > maxFloat16 }); j >= 0 {
			return nil, fmt.Errorf("decoder: weight %d of %s is %g, beyond float16's range (%g): save this model in float32 (train.half_weights: false)", j, t.Name, w[j], maxFloat16)
		}
		out = append(out, safetensors.HalfFromFloat32(t.Name, t.Shape, w))
	}
	return out, nil
}

// FlatFrom reads every parameter tensor under prefix from f, checking shapes
// against the config, into one flat host slice (NumParams).
func (c Config) FlatFrom(f *safetensors.File, prefix string) ([]float32, error) {
	mismatch := func(err error) error {
		return fmt.Errorf("decoder: %w; the weights do not match config.json (was it trained with other sizes?)", err)
	}
	// Every shape is checked before the parameters are allocated: the file,
	// not config.json alone, vouches for their number.
	for _, t := range c.Tensors() {
		if err := f.CheckShape(prefix+t.Name, t.Shape...); err != nil {
			return nil, mismatch(err)
		}
	}
	flat := make([]float32, c.NumParams())
	for _, t := range c.Tensors() {
		v, err := f.Float32(prefix+t.Name, t.Shape...)
		if err != nil {
			return nil, mismatch(err)
		}
		copy(flat[t.Off:], v)
	}
	return flat, nil
}

// WriteConfig writes c as indented JSON to path.
func (c Config) WriteConfig(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

// ReadConfig reads and validates a config.json.
func ReadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("decoder: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("decoder: %s: %w", path, err)
	}
	if err := c.Validate(); err != nil { // before the defaults, which would hide a missing arch
		return c, fmt.Errorf("%w (in %s)", err, path)
	}
	return c.WithDefaults(), nil
}

// Save writes the weights (WeightsFile) and the config (ConfigFile) into dir.
func (m *Model) Save(dir string) error { return m.save(dir, false) }

// SaveHalf writes as Save does, with the weights in float16: half the size,
// each weight rounded to the nearest float16 (within 0.05% of itself from
// 6.1e-5 up, float16's subnormals below; Load widens them back). A weight
// beyond float16's range (65504) is an error, not an infinity. The shipped
// attention model is stored so (see its MODEL.md for what it costs).
func (m *Model) SaveHalf(dir string) error { return m.save(dir, true) }

// maxFloat16 is the largest finite float16.
const maxFloat16 = 65504.0

func (m *Model) save(dir string, half bool) error {
	flat, err := m.FlatHost()
	if err != nil {
		return err
	}
	var ts []safetensors.Tensor
	if half {
		if ts, err = m.Cfg.halfTensors(flat); err != nil {
			return err
		}
	} else {
		ts = m.Cfg.SafeTensors("", flat)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("decoder: %w", err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "captioner-" + m.Cfg.Arch + "-lstm"}); err != nil {
		return err
	}
	return m.Cfg.WriteConfig(filepath.Join(dir, ConfigFile))
}

// checkFinite returns an error naming the first tensor of flat (in Tensors
// order) that holds a NaN or an infinity: a model that has one captions
// "<pad>." or nonsense without any other sign.
func (c Config) checkFinite(flat []float32) error {
	for _, t := range c.Tensors() {
		for _, x := range flat[t.Off : t.Off+t.Len] {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("decoder: tensor %s holds %v", t.Name, x)
			}
		}
	}
	return nil
}

// Load reads a model saved by Save onto dev.
func Load(dev gpu.Device, dir string) (*Model, error) {
	cfg, err := ReadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, err
	}
	flat, err := cfg.FlatFrom(f, "")
	if err != nil {
		return nil, fmt.Errorf("%w (model %s)", err, dir)
	}
	if err := cfg.checkFinite(flat); err != nil {
		return nil, fmt.Errorf("%w in %s: the file is damaged (a training run that diverged, or a bad copy); use another copy, or the run's last/ or an earlier model", err, filepath.Join(dir, WeightsFile))
	}
	m, err := alloc(dev, cfg)
	if err != nil {
		return nil, err
	}
	return m, m.SetFlat(flat)
}
