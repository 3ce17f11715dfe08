package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/internal/testmodel"
)

// severalModels configures the real pipeline with the shipped merge model
// (the default), a copy of it named second-merge and a small attention model
// named attention-test (server.models).
func severalModels(t *testing.T) *config.Config {
	t.Helper()
	cfg := pipelineConfig(t)
	cfg.Server.Models = []string{testmodel.Copy(t, cfg.Model, "second-merge"), attentionModel(t)}
	return cfg
}

// samplePhotos reads n Flickr8k sample photos as multipart image parts.
func samplePhotos(t *testing.T, n int) []part {
	t.Helper()
	dir := filepath.Join(testassets.Dir(t, "these tests caption real photos"), "samples", "flickr8k_fullres")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if len(paths) < n {
		t.Fatalf("want %d photos in %s, found %d", n, dir, len(paths))
	}
	parts := make([]part, n)
	for i, p := range paths[:n] {
		parts[i] = part{"image", filepath.Base(p), photo(t, filepath.Join("samples", "flickr8k_fullres", filepath.Base(p)))}
	}
	return parts
}

// captionsOf posts parts (images and form fields) and returns the captions.
func captionsOf(t *testing.T, url string, parts ...part) []map[string]any {
	t.Helper()
	return captionList(t, postParts(t, url, parts...))
}

// postParts posts parts (images and form fields) to /v1/captions; it may run
// in a goroutine of its own.
func postParts(t *testing.T, url string, parts ...part) response {
	body, ct := multipartBody(t, parts...)
	return do(t, "POST", url+"/v1/captions", ct, body)
}

// captionList is the captions of a 200 answer.
func captionList(t *testing.T, r response) []map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var out []map[string]any
	for _, c := range r.json["captions"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

// madeBy is the name and version of the model that made caption c.
func madeBy(c map[string]any) string {
	m := c["model"].(map[string]any)
	return m["name"].(string) + " " + m["version"].(string)
}

// decoded is what the decoder made of an image: a caption without its
// timings, its batch and its model.
func decoded(c map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"caption", "tokens", "score", "confidence", "tags", "guided", "alternatives", "attention"} {
		out[k] = c[k]
	}
	return out
}

// TestSeveralModelsServed: /v1/models lists every served model, the default
// marked; a request picks one by name (query or form field) and its captions
// carry that model's name and version; an unknown name and attention=1 of a
// merge model are refused by name; a reload reloads them all; the default
// model's captions are those of a server that holds it alone.
func TestSeveralModelsServed(t *testing.T) {
	ts := startServer(t, testConfig(t, nil), PipelineLoader(severalModels(t)))
	r := do(t, "GET", ts.url+"/v1/models", "", nil)
	sp := loadSpec(t)
	for _, e := range sp.validate(t, sp.responseSchema(t, "/v1/models", "get", 200), anyJSON(t, r.body), "$") {
		t.Error(e)
	}
	version := map[string]string{}
	var listed []string
	var device any
	for _, m := range r.json["models"].([]any) {
		m := m.(map[string]any)
		version[m["name"].(string)], device = m["version"].(string), m["device"]
		listed = append(listed, fmt.Sprintf("%s %s %v", m["name"], m["arch"], m["default"]))
	}
	if want := []string{"flickr8k-merge-lstm merge true", "second-merge merge false", "attention-test attention false"}; !reflect.DeepEqual(listed, want) {
		t.Fatalf("/v1/models lists %q, want %q", listed, want)
	}
	// The request limits, which the upload page splits photos by.
	if got, want := r.json["limits"], map[string]any{"max_images": 16.0, "max_body_bytes": float64(32 << 20), "max_beam": 8.0, "max_len": float64(config.MaxCaptionLen)}; !reflect.DeepEqual(got, want) {
		t.Errorf("/v1/models limits %v, want %v (the defaults)", got, want)
	}
	if v := version["second-merge"]; v != version["flickr8k-merge-lstm"] || v == version["attention-test"] {
		t.Errorf("versions %v: the copy should have the shipped model's, the attention model its own", version)
	}

	cat := photo(t, catPhoto)
	plain := firstCaption(t, do(t, "POST", ts.url+"/v1/captions", "image/jpeg", bytes.NewReader(cat)))
	second := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?model=second-merge", "image/jpeg", bytes.NewReader(cat)))
	att := captionsOf(t, ts.url, part{"image", "cat.jpg", cat}, part{"model", "", []byte("attention-test")}, part{"attention", "", []byte("1")})[0]
	for _, tc := range []struct {
		what string
		c    map[string]any
		want string
	}{
		{"no model", plain, "flickr8k-merge-lstm " + version["flickr8k-merge-lstm"]},
		{"model=second-merge (query)", second, "second-merge " + version["flickr8k-merge-lstm"]},
		{"model=attention-test (form)", att, "attention-test " + version["attention-test"]},
	} {
		if got := madeBy(tc.c); got != tc.want {
			t.Errorf("%s: made by %q, want %q", tc.what, got, tc.want)
		}
	}
	if second["caption"] != plain["caption"] || len(att["attention"].([]any)) == 0 {
		t.Errorf("the copy captions %q, the default %q; the attention model gave %d rows of weights", second["caption"], plain["caption"], len(att["attention"].([]any)))
	}

	do(t, "POST", ts.url+"/v1/captions?model=flickr8k-attention", "image/jpeg", bytes.NewReader(cat)).wantExact(t, "unknown model", 400,
		`{"error":"model=\"flickr8k-attention\" is not served here; the models are flickr8k-merge-lstm, second-merge, attention-test (the first is the default; GET /v1/models describes them)"}`)
	do(t, "POST", ts.url+"/v1/captions?attention=1&model=second-merge", "image/jpeg", bytes.NewReader(cat)).wantExact(t, "attention=1 of a merge model", 400,
		`{"error":"attention=1 asks for attention weights, but model second-merge is a merge model, which has none: leave attention out, or ask for an attention model: model=attention-test"}`)

	// A reload reloads every model; the answer describes the default.
	if r := do(t, "POST", ts.url+"/admin/reload", "", nil); r.status != 200 || r.json["name"] != "flickr8k-merge-lstm" || r.json["default"] != true {
		t.Errorf("reload: %d %s, want 200 and the default model", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/v1/models", "", nil); len(r.json["models"].([]any)) != 3 {
		t.Errorf("after a reload /v1/models lists %s, want the 3 models", r.body)
	}
	if c := firstCaption(t, do(t, "POST", ts.url+"/v1/captions?model=attention-test", "image/jpeg", bytes.NewReader(cat))); madeBy(c) != "attention-test "+version["attention-test"] {
		t.Errorf("after a reload model=attention-test is answered by %s", madeBy(c))
	}
	m := string(do(t, "GET", ts.url+"/metrics", "", nil).body)
	for name, v := range version {
		if want := fmt.Sprintf(`captioner_model_info{device=%q,model=%q,version=%q} 1`, device, name, v); !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The merge model reads the same features beside an attention model as
	// alone: the same captions, scores, confidences and tags.
	photos := append(samplePhotos(t, 3), part{"image", "cat.jpg", cat})
	alone := startServer(t, testConfig(t, nil), captionLoader(t))
	want, got := captionsOf(t, alone.url, photos...), captionsOf(t, ts.url, photos...)
	for i := range photos {
		if !reflect.DeepEqual(decoded(got[i]), decoded(want[i])) {
			t.Errorf("photo %d beside other models: %v\nalone: %v", i, decoded(got[i]), decoded(want[i]))
		}
	}
}

// TestMixedModelsShareABatchNotADecode: requests for two models queued
// together are encoded in one batch and decoded apart, each by its model: the
// batch has two decode groups, and each request gets the captions its model
// gives when its images fill a batch alone.
func TestMixedModelsShareABatchNotADecode(t *testing.T) {
	cfg := pipelineConfig(t)
	cfg.Server.Models = []string{attentionModel(t)}
	// A batch forms only when 4 images are queued (while a place is held).
	ts := startServer(t, testConfig(t, func(c *config.Config) { c.Server.MaxBatch, c.Server.MaxQueueDelay = 4, time.Hour }), PipelineLoader(cfg))
	photos := samplePhotos(t, 2)
	model := func(name string) part { return part{"model", "", []byte(name)} }
	// Each model alone: a request of 4 images is a batch of its own.
	four := append(append([]part{}, photos...), photos...)
	// A batch is recorded before its replies go out.
	batch := func(what string) BatchStats {
		select {
		case st := <-ts.batches:
			return st
		default:
			t.Fatalf("%s answered but no batch recorded", what)
			panic("unreachable")
		}
	}
	wantMerge := captionsOf(t, ts.url, append(four, model("flickr8k-merge-lstm"))...)
	wantAtt := captionsOf(t, ts.url, append(four, model("attention-test"))...)
	for _, what := range []string{"merge-only batch", "attention-only batch"} {
		if st := batch(what); st.Size != 4 || st.Groups != 1 {
			t.Fatalf("%s: %d images in %d decode groups, want 4 in 1", what, st.Size, st.Groups)
		}
	}

	// Two images for each model, at once: one batch of 4. A place held
	// until all four are queued makes the first request's images wait for
	// the second's (without it, nothing on its way would start them alone).
	for len(ts.queued) > 0 {
		<-ts.queued
	}
	b := ts.batcher.Load()
	if err := b.Reserve(1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mergeAnswer, attAnswer response
	wg.Go(func() { mergeAnswer = postParts(t, ts.url, photos...) }) // the default model
	wg.Go(func() { attAnswer = postParts(t, ts.url, append(photos, model("attention-test"))...) })
	for range 4 {
		<-ts.queued
	}
	b.Release(1)
	wg.Wait()
	if st := batch("the mixed batch"); st.Size != 4 || st.Groups != 2 {
		t.Errorf("mixed batch: %d images in %d decode groups, want 4 in 2 (one per model)", st.Size, st.Groups)
	}
	merge, att := captionList(t, mergeAnswer), captionList(t, attAnswer)
	for _, tc := range []struct {
		name      string
		got, want []map[string]any
	}{{"flickr8k-merge-lstm", merge, wantMerge}, {"attention-test", att, wantAtt}} {
		for i, c := range tc.got {
			if c["model"].(map[string]any)["name"] != tc.name || c["batch_size"] != 4.0 || c["caption"] != tc.want[i]["caption"] {
				t.Errorf("%s, photo %d: %q by %s in a batch of %v, want %q by %s in a batch of 4",
					tc.name, i, c["caption"], madeBy(c), c["batch_size"], tc.want[i]["caption"], tc.name)
			}
		}
	}
	if merge[0]["caption"] == att[0]["caption"] {
		t.Errorf("both models captioned %q: the test cannot tell them apart", merge[0]["caption"])
	}
}

// listedModel is the queue tests' double holding several models (Lister).
type listedModel struct {
	*stepModel
	names []string
}

func (m listedModel) Models() []Info {
	out := make([]Info, len(m.names))
	for i, n := range m.names {
		out[i] = Info{Model: n, Version: "v-" + n}
	}
	return out
}

// The model is part of what groups a batch's Decodes: jobs for two models in
// one batch are encoded once and decoded once per model, and each reply names
// the model of its Decode.
func TestBatchDecodesEachModelApart(t *testing.T) {
	m := listedModel{newStepModel("a"), []string{"a", "b"}}
	b, _ := startBatcher(t, BatcherConfig{MaxBatch: 3, MaxDelay: time.Hour, QueueSize: 8}, m)
	forA, forB := greedy, greedy
	forA.Model, forB.Model = "a", "b"
	// The three places held first: the batcher waits for the jobs of places
	// held, so they make one batch however slowly they arrive (submitting
	// one at a time, a slow run, under the race detector, had encoded the
	// first alone).
	reserve(t, b, 3)
	r0 := submitReserved(t, b, context.Background(), 0, forA)
	r1 := submitReserved(t, b, context.Background(), 1, forB)
	r2 := submitReserved(t, b, context.Background(), 2, forA)
	if got := <-m.entered; !equalIDs(got, []int{0, 1, 2}) {
		t.Fatalf("encoded %v, want one batch [0 1 2]", got)
	}
	for i, tc := range []struct {
		ch    <-chan reply
		model string
	}{{r0, "a"}, {r1, "b"}, {r2, "a"}} {
		if r := wantCaption(t, tc.ch, fmt.Sprintf("image %d beam 1", i)); r.Model != tc.model || r.Version != "v-"+tc.model {
			t.Errorf("image %d answered by %s %s, want %s", i, r.Model, r.Version, tc.model)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.decodes) != 2 || m.decodes[0] != forA || m.decodes[1] != forB {
		t.Errorf("decode calls %+v, want one for model a then one for b", m.decodes)
	}
}
