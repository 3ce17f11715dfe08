package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/metrics"
)

// TestEvalFromFeaturesMatchesFromImages builds a 10-photo Flickr8k-format
// dataset (the full-resolution samples, nine as the dev split), extracts its features,
// and checks that eval from the feature cache and eval through the encoder give
// the same captions, and that the printed BLEU is the metrics package's BLEU of
// the written captions against the references.
func TestEvalFromFeaturesMatchesFromImages(t *testing.T) {
	assets := testassets.Dir(t, "eval needs the encoder weights")
	data := t.TempDir()
	photos, _ := filepath.Glob(filepath.Join(assets, "samples", "flickr8k_fullres", "*.jpg"))
	if len(photos) != 10 {
		t.Fatalf("want the 10 sample photos, found %d", len(photos))
	}
	os.Mkdir(filepath.Join(data, "images"), 0o755)
	var tokens, names strings.Builder
	refs := [][][]string{}
	for _, p := range photos {
		name := filepath.Base(p)
		if err := os.Symlink(p, filepath.Join(data, "images", name)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&tokens, "%s#0\tA dog runs on the grass .\n%s#1\tTwo people are sitting outside .\n", name, name)
		fmt.Fprintln(&names, name)
		refs = append(refs, [][]string{{"dog", "runs", "on", "the", "grass"}, {"two", "people", "are", "sitting", "outside"}})
	}
	os.WriteFile(filepath.Join(data, "Flickr8k.token.txt"), []byte(tokens.String()), 0o644)
	// The loader wants a non-empty train list: the first photo is in train, the rest in dev.
	first := filepath.Base(photos[0])
	os.WriteFile(filepath.Join(data, "Flickr_8k.trainImages.txt"), []byte(first+"\n"), 0o644)
	os.WriteFile(filepath.Join(data, "Flickr_8k.devImages.txt"), []byte(strings.TrimPrefix(names.String(), first+"\n")), 0o644)
	refs = refs[1:]

	feats := t.TempDir()
	common := []string{"--device", "cpu", "--assets", assets, "--model", shippedModel}
	if _, err := run(t, append([]string{"extract", "--split", "all", "--images", filepath.Join(data, "images"), "--out", feats}, common...)...); err != nil {
		t.Fatal(err)
	}
	captions := func(fromImages bool) (string, []captionRecord) {
		path := filepath.Join(t.TempDir(), "captions.json")
		args := append([]string{"eval", "--beam", "3", "--data", data, "--features", feats, "--captions", path,
			fmt.Sprintf("--from-images=%v", fromImages)}, common...)
		out, err := run(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		var recs []captionRecord
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Fatalf("captions file: %v", err)
		}
		return out, recs
	}
	outF, fromFeats := captions(false)
	_, fromImgs := captions(true)
	if len(fromFeats) != 9 || len(fromImgs) != 9 {
		t.Fatalf("%d and %d captions for 9 dev images", len(fromFeats), len(fromImgs))
	}
	hyps := make([][]string, 9)
	for i := range fromFeats {
		// Scores may differ in the last float32 bits: the encoder batches differently.
		a, b := fromFeats[i], fromImgs[i]
		if a.Image != b.Image || a.Caption != b.Caption || math.Abs(a.Score-b.Score) > 1e-5 {
			t.Errorf("image %d: from features %+v, from images %+v", i, fromFeats[i], fromImgs[i])
		}
		hyps[i] = strings.Fields(fromFeats[i].Caption)
	}
	b := metrics.BLEU(hyps, refs)
	if want := fmt.Sprintf("BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f", b[0], b[1], b[2], b[3]); !strings.Contains(outF, want) {
		t.Errorf("eval printed %q, want it to contain %q", outF, want)
	}
	if b[0] == 0 {
		t.Errorf("BLEU-1 is 0: no caption shares a word with the references; the test data is not exercising the metric")
	}
}
