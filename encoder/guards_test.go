package encoder

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/safetensors"
	"github.com/captioner/captioner/tflite"
)

// TestValidateNamesTheBadBlock: a config whose blocks do not chain, or whose
// flags disagree with their channels, is refused naming the block.
func TestValidateNamesTheBadBlock(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(b []Block)
		want string
	}{
		{"broken chain", func(b []Block) { b[1].In = 5 }, "encoder: block 1 takes 5 channels but the previous layer gives 4"},
		{"stride 3", func(b []Block) { b[1].Stride = 3 }, "encoder: block 1 has stride 3; 1 or 2 expected"},
		{"hidden without expand", func(b []Block) { b[0].Hidden = 16 }, "encoder: block 0 has 16 hidden channels for 8 inputs but no expand conv"},
		{"strided residual", func(b []Block) { b[2].Stride = 2 }, "encoder: block 2 is residual with stride 2, 6 -> 6 channels"},
	} {
		cfg := smallConfig
		cfg.Blocks = append([]Block(nil), smallConfig.Blocks...)
		c.edit(cfg.Blocks)
		if err := cfg.validate(); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestLoadWeightsRejects: LoadWeights refuses a file of another format, one
// whose saved architecture is invalid, and one holding a tensor the
// architecture has no place for, all with checksums that match.
func TestLoadWeightsRejects(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	dir := t.TempDir()

	tuned := filepath.Join(dir, TunedFile)
	if err := SaveTuned(tuned, w.Config, 2, w.Tensors); err != nil {
		t.Fatal(err)
	}
	want := "encoder: " + tuned + ` has format "captioner-mobilenet_v2-tuned/1", want "captioner-mobilenet_v2/1"; re-import it from the TFLite file (captioner import)`
	if _, err := LoadWeights(tuned); err == nil || err.Error() != want {
		t.Errorf("a tuned file: %v, want %q", err, want)
	}

	bad := *w
	bad.Config.Blocks = append([]Block(nil), w.Config.Blocks...)
	bad.Config.Blocks[1].Stride = 3 // the tensors' shapes do not depend on it
	path := filepath.Join(dir, "stride3.safetensors")
	if err := bad.Save(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeights(path); err == nil || err.Error() != "encoder: block 1 has stride 3; 1 or 2 expected (file "+path+")" {
		t.Errorf("stride 3: %v", err)
	}

	var ts []safetensors.Tensor
	for _, p := range w.Config.Params() {
		ts = append(ts, safetensors.FromFloat32(p.Name, p.Shape, w.Tensors[p.Name]))
	}
	ts = append(ts, safetensors.FromFloat32("blocks.9.dw.bias", []int{1}, []float32{0}))
	saved := filepath.Join(dir, "saved.safetensors")
	if err := w.Save(saved); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(dir, "extra.safetensors")
	if err := safetensors.WriteFile(extra, ts, safetensors.WithChecksum(ts, f.Metadata)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeights(extra); err == nil || err.Error() != "encoder: "+extra+": unexpected tensor blocks.9.dw.bias for this architecture" {
		t.Errorf("an extra tensor: %v", err)
	}
}

// TestCachedReimportsOtherSource: a cache file at the TFLite file's path that
// was made from other bytes (its recorded SHA-256 differs) is imported again,
// not trusted.
func TestCachedReimportsOtherSource(t *testing.T) {
	src := filepath.Join(t.TempDir(), "small.tflite")
	if err := os.WriteFile(src, syntheticTFLite(smallConfig, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, imported, err := Cached(src, dir)
	if err != nil || !imported {
		t.Fatalf("first Cached: imported %v, %v", imported, err)
	}
	_, other := importSynthetic(t, smallConfig, 8) // other weights, same architecture
	other.Config.SourceSHA = strings.Repeat("0", 64)
	if err := other.Save(CachePath(dir, w.Config.SourceSHA)); err != nil {
		t.Fatal(err)
	}
	got, imported, err := Cached(src, dir)
	if err != nil || !imported || got.Config.SourceSHA != w.Config.SourceSHA {
		t.Fatalf("Cached over another source's file: imported %v, source %s, %v; want a re-import of %s", imported, got.Config.SourceSHA, err, w.Config.SourceSHA)
	}
}

// TestBuildRejects: New and NewBottom refuse an empty batch, a missing
// weight and a cut past the last block with a message.
func TestBuildRejects(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	dev := cpu.New(1)
	defer dev.Close()
	if _, err := New(dev, w, 0, "float32"); err == nil || err.Error() != "encoder: max batch 0 must be positive" {
		t.Errorf("max batch 0: %v", err)
	}
	if _, err := NewBottom(dev, w, 4, 1); err == nil || err.Error() != "encoder: cut at block 4 of 4" {
		t.Errorf("cut at block 4: %v", err)
	}
	short := *w
	short.Tensors = map[string][]float32{}
	for k, v := range w.Tensors {
		short.Tensors[k] = v
	}
	short.Tensors["head.bias"] = short.Tensors["head.bias"][:23]
	if _, err := New(dev, &short, 1, "float32"); err == nil || err.Error() != "encoder: weight head.bias: have 23 values, want shape [24]" {
		t.Errorf("short head.bias: %v", err)
	}
}

// TestEncodePanicsOnMisuse: a batch above MaxBatch, or an image of the wrong
// length, is a programmer's mistake, reported as such (the image by its
// position).
func TestEncodePanicsOnMisuse(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	dev := cpu.New(1)
	defer dev.Close()
	e, err := New(dev, w, 2, "float32")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, c := range []struct {
		call func()
		want string
	}{
		{func() { e.Encode(make([]float32, 3*e.ImageLen()), 3) }, "encoder: Encode of 3 images (7569 floats); want 1..2 images of 2523 floats"},
		{func() { e.EncodeEach([][]float32{make([]float32, 2523), make([]float32, 2522)}) }, "encoder: EncodeEach: image 1 has 2522 floats, want 2523"},
	} {
		func() {
			defer func() {
				if r := recover(); r != c.want {
					t.Errorf("panic %v, want %q", r, c.want)
				}
			}()
			c.call()
		}()
	}
}

// TestWithTunedRejectsBadLayout: a tuned file whose first block is past the
// last one, or that holds more layers than its first block calls for, is
// refused.
func TestWithTunedRejectsBadLayout(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	dir := t.TempDir()
	write := func(name string, first int, params []Param) string {
		var ts []safetensors.Tensor
		for _, p := range params {
			ts = append(ts, safetensors.FromFloat32(p.Name, p.Shape, w.Tensors[p.Name]))
		}
		path := filepath.Join(dir, name)
		meta := map[string]string{"format": TunedFormat, "base": w.Config.ID(), "first": strconv.Itoa(first)}
		if err := safetensors.WriteFile(path, ts, meta); err != nil {
			t.Fatal(err)
		}
		return path
	}
	past := write("past.safetensors", 4, w.Config.TopParams(4))
	if _, _, err := WithTuned(w, past); err == nil || err.Error() != "encoder: "+past+`: bad first tuned block "4"` {
		t.Errorf("first block 4 of 4: %v", err)
	}
	more := write("more.safetensors", 3, w.Config.TopParams(2))
	if _, _, err := WithTuned(w, more); err == nil || !strings.Contains(err.Error(), "holds 14 tensors") || !strings.Contains(err.Error(), "want the 8 of blocks 3.. and the head") {
		t.Errorf("layers of block 2 in a file from block 3: %v", err)
	}
}

// TestFirstTuned: tuning the last n blocks starts at block len-n, for n from
// 1 to all of them.
func TestFirstTuned(t *testing.T) {
	c := smallConfig
	for n, want := range map[int]int{1: 3, 4: 0} {
		if got, err := c.FirstTuned(n); err != nil || got != want {
			t.Errorf("FirstTuned(%d) = %d, %v; want %d", n, got, err, want)
		}
	}
	for _, n := range []int{0, 5} {
		want := "encoder: cannot fine-tune the last " + strconv.Itoa(n) + " blocks of a network of 4; choose 1..4"
		if _, err := c.FirstTuned(n); err == nil || err.Error() != want {
			t.Errorf("FirstTuned(%d): %v, want %q", n, err, want)
		}
	}
}

// TestLoadLabelsTrailingNewline: a labels file ending in a newline (or CRLF)
// has one label per line, no empty last one.
func TestLoadLabelsTrailingNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(path, []byte("background\r\ntench\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := LoadLabels(path, 2); err != nil || len(l) != 2 || l[1] != "tench" {
		t.Errorf("LoadLabels = %q, %v; want [background tench]", l, err)
	}
	if _, err := LoadLabels(path, 3); err == nil || err.Error() != "encoder: "+path+" has 2 labels, the classifier has 3 classes" {
		t.Errorf("3 classes: %v", err)
	}
}

// TestNewBranchedWantsTheOriginal: tuned weights where the original belongs
// are refused.
func TestNewBranchedWantsTheOriginal(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	tw := tunedSynthetic(t, w, 3, 1.1)
	dev := cpu.New(1)
	defer dev.Close()
	if _, err := NewBranched(dev, tw, nil, 3, 1); err == nil || err.Error() != "encoder: NewBranched wants the original weights, not tuned ones ("+tw.Config.ID()+")" {
		t.Errorf("tuned weights as the original: %v", err)
	}
}

// TestTopSetStateChecksLengths: a state whose moments do not match the
// parameters is refused, not uploaded in part.
func TestTopSetStateChecksLengths(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	dev := cpu.New(1)
	defer dev.Close()
	top, err := NewTop(dev, w, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	n := top.NumParams()
	flat, m1, m2, _, err := top.State()
	if err != nil {
		t.Fatal(err)
	}
	want := "encoder: top state of " + strconv.Itoa(n) + ", " + strconv.Itoa(n) + " and " + strconv.Itoa(n-1) + " values for " + strconv.Itoa(n) + " parameters"
	if err := top.SetState(flat, m1, m2[1:], 1); err == nil || err.Error() != want {
		t.Errorf("short second moment: %v, want %q", err, want)
	}
	if err := top.SetState(flat, m1[:0], m2, 1); err == nil {
		t.Error("empty first moment accepted")
	}
	m1[0] = float32(math.Pi)
	if err := top.SetState(flat, m1, m2, 7); err != nil {
		t.Fatal(err)
	}
	if _, got, _, steps, err := top.State(); err != nil || got[0] != float32(math.Pi) || steps != 7 {
		t.Errorf("after SetState: m1[0] %g, steps %d, %v; want pi and 7", got[0], steps, err)
	}
}

// TestImportDropsRangeOfUnquantizedSum: when a residual ADD's output carries
// no range, the projection's own range is not kept in its place (the int8
// chain stores the sum, not the projection): the layer has none, and int8
// says so.
func TestImportDropsRangeOfUnquantizedSum(t *testing.T) {
	m := readModel(t, quantModel)
	g := &m.Subgraphs[0]
	g.Tensors[g.Operators[9].Outputs[0]].Type = tflite.Int32 // block 2's ADD: no uint8 range
	w, err := Import(m)
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := w.Quant["blocks.2.project"]; ok {
		t.Errorf("blocks.2.project keeps range %v, want none", q.Out)
	}
	if _, unranged := chainLayers(w, len(w.Config.Blocks)); len(unranged) != 1 || unranged[0] != "blocks.2.project" {
		t.Errorf("layers without a range: %v, want [blocks.2.project]", unranged)
	}
}
