package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

// tinyModel saves a fresh attention model (seed) with vocabulary words into a
// folder of its own and returns the folder and its weights.
func tinyModel(t *testing.T, seed uint64, words ...string) (string, []float32) {
	t.Helper()
	v := text.BuildVocab([][]string{words}, 1)
	dev := cpu.New(1)
	defer dev.Close()
	c := decoder.Config{Arch: decoder.ArchAttention, Cleaning: text.CleaningStandard, FeatDim: 6, Regions: 3, Att: 7,
		Embed: 5, Hidden: 4, Vocab: v.Size(), Dropout: 0.5, AttPenalty: 1}
	m, err := decoder.New(dev, c, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := filepath.Join(t.TempDir(), fmt.Sprint("model", seed))
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := v.Save(filepath.Join(dir, pipeline.VocabFile)); err != nil {
		t.Fatal(err)
	}
	flat, err := m.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	return dir, flat
}

// loadDecoder loads the caption model in dir on a CPU, both closed when the test ends.
func loadDecoder(t *testing.T, dir string) *decoder.Model {
	t.Helper()
	dev := cpu.New(1)
	t.Cleanup(func() { dev.Close() })
	m, err := decoder.Load(dev, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestAverageWritesTheWeightedMean(t *testing.T) {
	a, fa := tinyModel(t, 1, "a", "dog", "runs")
	b, fb := tinyModel(t, 2, "a", "dog", "runs")
	out := filepath.Join(t.TempDir(), "soup")
	if _, err := run(t, "average", "--device", "cpu", "--out", out, "--weights", "1,3", "--half=true", a, b); err != nil {
		t.Fatal(err)
	}
	m := loadDecoder(t, out)
	got, err := m.FlatHost()
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		// float16 keeps 11 significant bits: within 2^-11 of the mean, relative.
		want := (float64(fa[i]) + 3*float64(fb[i])) / 4
		if math.Abs(float64(got[i])-want) > math.Max(math.Abs(want)/2048, 6e-8) {
			t.Fatalf("parameter %d: %v, want %v", i, got[i], want)
		}
	}
	if v, err := text.LoadVocab(filepath.Join(out, pipeline.VocabFile)); err != nil || v.ID("dog") == text.UnkID {
		t.Errorf("the averaged model's vocabulary: %v, %v; want the models' own", v, err)
	}
}

func TestAverageRefusesBadInput(t *testing.T) {
	a, _ := tinyModel(t, 1, "a", "dog", "runs")
	b, _ := tinyModel(t, 2, "a", "dog", "runs")
	other, _ := tinyModel(t, 3, "a", "cat", "runs")
	tuned, _ := tinyModel(t, 4, "a", "dog", "runs")
	if err := os.WriteFile(filepath.Join(tuned, encoder.TunedFile), []byte("layers"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "soup")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "", "--weights", "", a, b}, "--out: name the folder to write the averaged model into"},
		{[]string{"--out", out, "--weights", "1", a, b}, `--weights "1": 1 weights for 2 models; give one per model`},
		{[]string{"--out", out, "--weights", "1,x", a, b}, `--weights "1,x": "x" is not a number`},
		{[]string{"--out", out, "--weights", "1,-1", a, b}, `--weights "1,-1": "-1" is not a positive number`},
		{[]string{"--out", out, "--weights", "", a, tuned}, "model " + tuned + " has fine-tuned encoder layers (encoder.safetensors), which averaging would drop: average models trained with a frozen encoder (train.finetune_blocks 0)"},
		{[]string{"--out", tuned, "--weights", "", a, b}, "--out " + tuned + " is not empty: write the averaged model into a new folder (an input's files, or another model's, would be overwritten or left beside it)"},
		{[]string{"--out", a, "--weights", "", a, b}, "--out " + a + " is not empty: write the averaged model into a new folder (an input's files, or another model's, would be overwritten or left beside it)"},
		{[]string{"--out", filepath.Join(a, "config.json"), "--weights", "", a, b}, "--out " + filepath.Join(a, "config.json") + " is a file: name a new folder to write the averaged model into"},
		{[]string{"--out", out, "--weights", "", a, filepath.Join(b, "config.json")}, "model " + filepath.Join(b, "config.json") + " is a file, not a model folder: name the folder that holds config.json, decoder.safetensors and vocab.json"},
		{[]string{"--out", out, "--weights", "", a, other}, fmt.Sprintf(`model %s has another vocabulary than %s (id 5: "cat" against "dog"): average models fine-tuned from one model, which keep its vocabulary`, other, a)},
	} {
		_, err := run(t, append([]string{"average", "--device", "cpu", "--half=false"}, c.args...)...)
		if err == nil || err.Error() != c.want {
			t.Errorf("average %v: %v, want %q", c.args, err, c.want)
		}
	}
}
