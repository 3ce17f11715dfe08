package server

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/internal/testmodel"
	"github.com/captioner/captioner/pipeline"
)

// attentionModel writes a model folder with the shipped vocabulary and a
// small attention decoder (testmodel.Attention).
func attentionModel(t *testing.T) string {
	return testmodel.Attention(t, filepath.Join("..", config.DefaultModel, pipeline.VocabFile), "attention-test")
}

// TestCaptionAttentionWeights: with attention=1 an attention model's caption
// carries one row of 49 weights per word, each summing to 1, and matches the
// OpenAPI document; without it there are none; a merge model answers 400.
func TestCaptionAttentionWeights(t *testing.T) {
	cfg := pipelineConfig(t)
	cfg.Model = attentionModel(t)
	ts := startServer(t, testConfig(t, nil), PipelineLoader(cfg))
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
	want := "attention=1 asks for attention weights, but model flickr8k-merge-lstm is a merge model, which has none: leave attention out, or serve an attention model (server.models)"
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

// TestBrowserAttentionOnHover: on the upload page, with an attention model,
// the pointer over a word darkens the photo but for that word's regions: the
// overlay's alpha per cell is 200 * (1 - weight / the word's largest weight),
// the weights being the API's for the same photo and options.
func TestBrowserAttentionOnHover(t *testing.T) {
	photoPath := filepath.Join(testassets.Dir(t, "the browser uploads a real photo"), "samples", "flickr8k_fullres", "1000268201_693b08cb0e.jpg")
	cfg := pipelineConfig(t)
	cfg.Model = attentionModel(t)
	ts := startServer(t, testConfig(t, nil), PipelineLoader(cfg))
	data, err := os.ReadFile(photoPath)
	if err != nil {
		t.Fatal(err)
	}
	// The page's default options.
	api := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?attention=1&beam=3&max_len=20&alternatives=3", "image/jpeg", bytes.NewReader(data)))
	var want [][]int
	for _, row := range api["attention"].([]any) {
		var top float64
		for _, v := range row.([]any) {
			top = math.Max(top, v.(float64))
		}
		var alpha []int
		for _, v := range row.([]any) {
			alpha = append(alpha, int(math.Round(200*(1-v.(float64)/top))))
		}
		want = append(want, alpha)
	}

	w := startChromium(t)
	w.navigate(ts.url + "/")
	w.call("POST", "/element/"+w.find("#file")+"/value", map[string]string{"text": photoPath})
	got := w.await(`const done = arguments[arguments.length - 1];
		let finished = false; // hovering changes the page too: answer once
		const check = () => {
			if (finished) return true;
			const words = document.querySelectorAll("#results .caption .word"), e = document.getElementById("error");
			if (!e.hidden) { finished = true; done("ERROR: " + e.textContent); return true; }
			if (!words.length) return false;
			const canvas = document.querySelector("#results canvas.attention"), ctx = canvas.getContext("2d");
			const out = [];
			for (const word of words) {
				word.dispatchEvent(new MouseEvent("mouseenter"));
				const shown = canvas.classList.contains("on");
				word.dispatchEvent(new MouseEvent("mouseleave"));
				const alpha = [];
				const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
				for (let i = 3; i < px.length; i += 4) alpha.push(px[i]);
				out.push({shown: shown, hidden: !canvas.classList.contains("on"), alpha: alpha});
			}
			finished = true;
			done(JSON.stringify(out));
			return true;
		};
		if (!check()) new MutationObserver(check).observe(document.body, {childList: true, subtree: true, attributes: true});`)
	var shown []struct {
		Shown, Hidden bool
		Alpha         []int
	}
	if err := json.Unmarshal([]byte(got), &shown); err != nil {
		t.Fatalf("upload page: %s", got)
	}
	if len(shown) != len(want) {
		t.Fatalf("%d words on the page, %d rows of weights from the API", len(shown), len(want))
	}
	for i, s := range shown {
		if !s.Shown || !s.Hidden || len(s.Alpha) != len(want[i]) {
			t.Fatalf("word %d: overlay shown %v, hidden after %v, %d cells", i, s.Shown, s.Hidden, len(s.Alpha))
		}
		for j := range s.Alpha {
			if d := s.Alpha[j] - want[i][j]; d < -1 || d > 1 {
				t.Errorf("word %d cell %d: overlay alpha %d, want %d", i, j, s.Alpha[j], want[i][j])
			}
		}
	}
	w.await(`document.querySelector("#results .caption .word").dispatchEvent(new MouseEvent("mouseenter")); arguments[0]("")`)
	w.screenshot("attention-hover.png")
	w.checkConsole()
}
