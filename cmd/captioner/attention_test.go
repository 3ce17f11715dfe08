package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/text"
	"github.com/captioner/captioner/train"
)

// TestAttentionTrainAndEval trains the attention decoder on the sample
// dataset's grids (extract --grid), then captions the dev photos from the
// cached grids and through the encoder: the two paths must agree, and the
// model must record the standard cleaning that its references follow.
func TestAttentionTrainAndEval(t *testing.T) {
	assets, data, _, _ := sampleDataset(t, 5)
	grids := t.TempDir()
	if _, err := run(t, "extract", "--grid", "--split", "all", "--images", filepath.Join(data, "images"), "--out", grids,
		"--device", "cpu", "--assets", assets, "--model", shippedModel); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "1")
	t.Setenv("CAPTIONER_TRAIN_ATT", "8")
	out := t.TempDir()
	if log, err := run(t, "train", "--arch", "attention", "--out", out, "--device", "cpu", "--assets", assets, "--data", data,
		"--features", grids, "--epochs", "15", "--lr", "1e-2", "--batch-size", "10", "--hidden", "16", "--seed", "4"); err != nil {
		t.Fatalf("train: %v\n%s", err, log)
	}
	model := train.ModelDir(out)
	c, err := decoder.ReadConfig(filepath.Join(model, decoder.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch != decoder.ArchAttention || c.Cleaning != text.CleaningStandard || c.Regions != 49 || c.Att != 8 || c.FeatDim != 1280 {
		t.Fatalf("trained model config %+v, want attention over 49 regions of 1280, att 8, standard cleaning", c)
	}
	// The standard cleaning keeps "a": the vocabulary has it.
	if vocab, err := os.ReadFile(filepath.Join(model, "vocab.json")); err != nil || !strings.Contains(string(vocab), `"a"`) {
		t.Errorf("vocabulary lacks \"a\" (%v):\n%s", err, vocab)
	}
	captions := func(fromImages bool) []captionRecord {
		path := filepath.Join(t.TempDir(), "captions.json")
		if _, err := run(t, "eval", "--beam", "3", "--data", data, "--features", grids, "--captions", path,
			fmt.Sprintf("--from-images=%v", fromImages), "--precision", "float32", "--device", "cpu", "--assets", assets, "--model", model); err != nil {
			t.Fatal(err)
		}
		var recs []captionRecord
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Fatalf("captions file: %v", err)
		}
		return recs
	}
	fromGrids, fromImgs := captions(false), captions(true)
	if len(fromGrids) != 5 || len(fromImgs) != 5 {
		t.Fatalf("%d and %d captions for 5 dev images", len(fromGrids), len(fromImgs))
	}
	words := 0
	for i := range fromGrids {
		words += len(strings.Fields(fromGrids[i].Caption))
		a, b := fromGrids[i], fromImgs[i]
		// float16 grids against float32 ones: the same words, scores within 1e-2.
		if a.Image != b.Image || a.Caption != b.Caption || math.Abs(a.Score-b.Score) > 1e-2 {
			t.Errorf("image %d: from grids %+v, from images %+v", i, a, b)
		}
	}
	if words == 0 {
		t.Error("every caption is empty: the comparison is vacuous")
	}
}
