package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	"image/png"
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
	resetFlags(t, "train", "init", "objective", "teacher", "finetune-blocks", "mirror")
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

	// caption --attention: per photo a strip of one panel per word of its
	// caption, named after the photo; a merge model has no maps to draw.
	maps := t.TempDir()
	// The in-process CLI keeps flag values between runs: later tests caption without maps.
	t.Cleanup(func() {
		if c, _, err := rootCmd.Find([]string{"caption"}); err == nil {
			c.Flags().Set("attention", "")
		}
	})
	var photos []string
	for _, r := range fromImgs[:3] {
		photos = append(photos, filepath.Join(data, "images", r.Image))
	}
	common := []string{"--beam", "3", "--json", "--precision", "float32", "--device", "cpu", "--assets", assets}
	printed, err := run(t, append(append([]string{"caption", "--attention", maps, "--model", model}, common...), photos...)...)
	if err != nil {
		t.Fatal(err)
	}
	var recs []captionRecord
	if err := json.Unmarshal([]byte(printed), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("caption --json: %v, %d records:\n%s", err, len(recs), printed)
	}
	for i, r := range recs {
		if r.Caption != fromImgs[i].Caption {
			t.Errorf("%s: caption %q with --attention, %q from eval", r.Image, r.Caption, fromImgs[i].Caption)
		}
		n := len(strings.Fields(r.Caption))
		if n == 0 {
			continue
		}
		f, err := os.Open(filepath.Join(maps, strings.TrimSuffix(filepath.Base(r.Image), ".jpg")+".png"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Panels of the photo at 224 high, at its aspect ratio, 6 pixels apart, under a 34-pixel band.
		im, _ := os.Open(r.Image)
		full, _, err := image.DecodeConfig(im)
		im.Close()
		if err != nil {
			t.Fatal(err)
		}
		pw := int(math.Round(224 * float64(full.Width) / float64(full.Height)))
		if cfg.Width != n*pw+(n-1)*6 || cfg.Height != 224+34 {
			t.Errorf("%s: strip %dx%d for %d words, want %dx%d", r.Image, cfg.Width, cfg.Height, n, n*pw+(n-1)*6, 224+34)
		}
	}
	// A second image of the same name gets NAME-2.png, and the log says so.
	twice := filepath.Join(t.TempDir(), "twice")
	_, log, err := runStderr(t, append(append([]string{"caption", "--attention", twice, "--model", model}, common...), photos[0], photos[0])...)
	second := filepath.Join(twice, strings.TrimSuffix(filepath.Base(photos[0]), ".jpg")+"-2.png")
	if want := "caption --attention: " + photos[0] + ": its maps are " + second + " (an image named like it came first)\n"; err != nil || !strings.Contains(log, want) {
		t.Errorf("an image named twice: %v, log lacks %q:\n%s", err, want, log)
	}
	if _, err := os.Stat(second); err != nil {
		t.Errorf("an image named twice: %v", err)
	}
	// A map replaces no other file: --attention naming the photos' folder had
	// drawn maps over the photos named NAME.png. A map of an earlier run is
	// replaced.
	photoDir := t.TempDir()
	photo := filepath.Join(photoDir, "holiday.png")
	writePNG(t, photos[0], photo)
	kept, _ := os.ReadFile(photo)
	for range 2 {
		_, log, err := runStderr(t, append(append([]string{"caption", "--attention", photoDir, "--model", model}, common...), photo)...)
		mapFile := filepath.Join(photoDir, "holiday-2.png")
		if want := "caption --attention: " + photo + ": its maps are " + mapFile + " (holiday.png there is not a map this version of captioner drew, and stays)\n"; err != nil || !strings.Contains(log, want) {
			t.Errorf("maps beside the photo: %v, log lacks %q:\n%s", err, want, log)
		}
		if after, _ := os.ReadFile(photo); !bytes.Equal(after, kept) {
			t.Fatal("caption --attention drew over the photo")
		}
		if _, err := os.Stat(mapFile); err != nil {
			t.Error(err)
		}
		if ents, _ := os.ReadDir(photoDir); len(ents) != 2 {
			t.Errorf("a second run should replace its map: %v", ents)
		}
	}
	none := filepath.Join(t.TempDir(), "none")
	_, err = run(t, append(append([]string{"caption", "--attention", none, "--model", mergeModel}, common...), photos[0])...)
	want := "--attention draws where an attention model looked, but " + mergeModel + " is a merge model, which has no attention weights: leave out --attention, or pass --model models/flickr8k-attention"
	if err == nil || err.Error() != want {
		t.Errorf("merge model with --attention: %v, want %q", err, want)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("the refused caption --attention made its folder %s (stat: %v)", none, err)
	}

	// A factorized model starts a training run, self-critical here, whose
	// model keeps the factorized context weight.
	low := filepath.Join(t.TempDir(), "low")
	if _, err := run(t, "factorize", "--device", "cpu", "--rank", "2", "--half=false", "--out", low, model); err != nil {
		t.Fatal(err)
	}
	tuned := t.TempDir()
	resetFlags(t, "train", "init", "objective")
	if log, err := run(t, "train", "--arch", "attention", "--out", tuned, "--init", low, "--objective", "cider", "--device", "cpu",
		"--assets", assets, "--data", data, "--features", grids, "--epochs", "1", "--batch-size", "10", "--hidden", "16", "--seed", "4"); err != nil {
		t.Fatalf("train from a factorized model: %v\n%s", err, log)
	}
	if m := loadDecoder(t, train.LastDir(tuned)); m.Cfg.CtxRank != 2 {
		t.Errorf("the trained model has ctx_rank %d, want its initial model's 2", m.Cfg.CtxRank)
	}
}

// writePNG writes the photo at src, decoded, as a PNG file dst.
func writePNG(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
