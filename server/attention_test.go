package server

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

// attentionModel writes a model folder with the shipped vocabulary and a small
// attention decoder over MobileNetV2's 7x7x1280 grid, its weights the
// initialiser's (seeded): arbitrary captions, real attention weights.
func attentionModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	vocab, err := text.LoadVocab(filepath.Join("..", "models", "flickr8k-merge-lstm", pipeline.VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := vocab.Save(filepath.Join(dir, pipeline.VocabFile)); err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(1)
	defer dev.Close()
	m, err := decoder.New(dev, decoder.Config{Arch: decoder.ArchAttention, Cleaning: text.CleaningStandard, FeatDim: 1280,
		Regions: 49, Att: 16, Embed: 16, Hidden: 16, Vocab: vocab.Size()}, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCaptionAttentionWeights: with attention=1 an attention model's caption
// carries one row of 49 weights per word, each summing to 1, and matches the
// OpenAPI document; without it there are none; a merge model answers 400.
func TestCaptionAttentionWeights(t *testing.T) {
	cfg := pipelineConfig(t)
	cfg.Model = attentionModel(t)
	ts := startServer(t, testConfig(t, nil), pipelineLoader(cfg))
	cat := photo(t, catPhoto)
	r := do(t, "POST", ts.url+"/v1/captions?attention=1&beam=2&max_len=6", "image/jpeg", bytes.NewReader(cat))
	c := firstCaption(t, r)
	words := strings.Fields(c["caption"].(string))
	att, _ := c["attention"].([]any)
	if len(words) == 0 || len(att) != len(words) {
		t.Fatalf("%d words (%q) but %d rows of attention weights", len(words), c["caption"], len(att))
	}
	for i, row := range att {
		ws := row.([]any)
		var sum float64
		for _, w := range ws {
			sum += w.(float64)
		}
		if len(ws) != 49 || math.Abs(sum-1) > 1e-4 {
			t.Errorf("word %d (%q): %d weights summing to %g, want 49 summing to 1", i, words[i], len(ws), sum)
		}
	}
	sp := loadSpec(t)
	for _, e := range sp.validate(t, sp.responseSchema(t, "/v1/captions", "post", 200), anyJSON(t, r.body), "$") {
		t.Error(e)
	}
	if plain := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?beam=2&max_len=6", "image/jpeg", bytes.NewReader(cat))); plain["attention"] != nil || plain["caption"] != c["caption"] {
		t.Errorf("without attention=1: %v, want the same caption without weights", plain)
	}

	merge := startServer(t, testConfig(t, nil), captionLoader(t))
	r = do(t, "POST", merge.url+"/v1/captions?attention=1", "image/jpeg", bytes.NewReader(cat))
	want := "attention=1 asks for attention weights, but the loaded model is a merge model, which has none: leave attention out, or serve an attention model (decoder.arch: attention)"
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), want) {
		t.Errorf("merge model, attention=1: %d %s, want 400 %q", r.status, r.body, want)
	}
}

func anyJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
