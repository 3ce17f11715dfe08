package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/numdiff"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/internal/testmodel"
	"github.com/captioner/captioner/palette"
	"github.com/captioner/captioner/text"
)

// testModel writes a model folder with a small vocabulary and a decoder whose
// weights are random (seeded), so captions are arbitrary but deterministic.
func testModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	caps := [][]string{{"a", "dog", "runs"}, {"a", "cat", "sits"}, {"two", "dogs", "play"}, {"a", "man", "rides", "a", "bike"}}
	vocab := text.BuildVocab(caps, 1)
	if err := vocab.Save(filepath.Join(dir, VocabFile)); err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(1)
	defer dev.Close()
	m, err := decoder.New(dev, decoder.Config{FeatDim: 1280, Embed: 16, Hidden: 16, Mid: 16, Vocab: vocab.Size(), Dropout: 0.5}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Larger weights than the initialiser's make the captions depend on the image.
	host, _ := m.FlatHost()
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range host {
		host[i] = float32(rng.NormFloat64() * 0.3)
	}
	m.SetFlat(host)
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testConfig(t *testing.T, model string, batch int) *config.Config {
	assets := testassets.Dir(t, "the pipeline needs the encoder weights")
	return &config.Config{Device: "cpu", Threads: 2, Precision: "auto", Assets: assets, Model: model,
		Decode: config.Decode{Beam: 3, MaxLen: 8, BatchSize: batch, Alpha: 0.7}, Image: config.Image{MaxPixels: 50_000_000, MaxDecodedBytes: 1 << 30}}
}

// loadTest loads the test model for device batches of batch images, closed when the test ends.
func loadTest(t *testing.T, batch int) (*Pipeline, *config.Config) {
	cfg := testConfig(t, testModel(t), batch)
	p, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, cfg
}

// photoPaths lists n of the sample photos.
func photoPaths(t *testing.T, assets string, n int) []string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(assets, "samples", "flickr8k_fullres", "*.jpg"))
	if len(paths) < n {
		t.Fatalf("want %d sample photos in %s/samples/flickr8k_fullres, found %d", n, assets, len(paths))
	}
	return paths[:n]
}

// photos preprocesses n sample photos for p's encoder.
func photos(t *testing.T, p *Pipeline, assets string, n int) [][]float32 {
	t.Helper()
	out, err := p.Preprocessor().Files(photoPaths(t, assets, n))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCaptionImagesBatchesAndAgreesWithEncodeDecode(t *testing.T) {
	p, cfg := loadTest(t, 2) // 5 images -> device batches of 2, 2, 1
	imgs := photos(t, p, cfg.Assets, 5)
	ctx := context.Background()
	opts := Options{Beam: 3, Alternatives: 3}
	got, err := p.CaptionImages(ctx, imgs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d results for 5 images", len(got))
	}
	feats, err := p.Encode(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	viaFeats, err := p.Decode(ctx, feats, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Features already on the device (eval, the trainer) caption the same:
	// the encoder's part of each image's features, without its palette.
	var flat []float32
	for _, f := range feats {
		flat = append(flat, f[:len(f)-palette.Len]...)
	}
	onDevice := p.Device().Alloc(len(flat))
	defer p.Device().Free(onDevice)
	p.Device().Upload(onDevice, flat)
	plan, err := p.decoding.Plan(opts)
	if err != nil {
		t.Fatal(err)
	}
	viaDevice, err := CaptionFeatures(ctx, p.models[0].dec, onDevice, len(imgs), plan)
	if err != nil {
		t.Fatal(err)
	}
	// One batch of 5 against batches of 2, 2, 1: the GEMMs sum in another order,
	// so scores may differ in the last bits.
	for i := range viaFeats {
		a, b := viaDevice[i], viaFeats[i]
		if len(a.Alternatives) != len(b.Alternatives) {
			t.Fatalf("image %d: CaptionFeatures %+v, Decode %+v", i, a, b)
		}
		for k := range a.Alternatives {
			x, y := a.Alternatives[k], b.Alternatives[k]
			if x.Caption != y.Caption || math.Abs(x.Score-y.Score) > 1e-4 {
				t.Errorf("image %d alternative %d: CaptionFeatures %+v, Decode %+v", i, k, x, y)
			}
		}
		if a.Caption != b.Caption || a.Score != a.Alternatives[0].Score {
			t.Errorf("image %d: CaptionFeatures %+v, Decode %+v", i, a, b)
		}
	}
	distinct := map[string]bool{}
	for i, r := range got {
		one, err := p.CaptionImages(ctx, imgs[i:i+1], opts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Caption != one[0].Caption || r.Caption != viaFeats[i].Caption {
			t.Errorf("image %d: batched %q, alone %q, via Encode+Decode %q", i, r.Caption, one[0].Caption, viaFeats[i].Caption)
		}
		if len(r.Alternatives) != 3 || r.Alternatives[0].Caption != r.Caption || r.Alternatives[0].Score != r.Score {
			t.Errorf("image %d: alternatives %+v should be 3, best first (= %q)", i, r.Alternatives, r.Caption)
		}
		if n := len(strings.Fields(r.Caption)); n > cfg.Decode.MaxLen {
			t.Errorf("image %d: %d words, max_len %d", i, n, cfg.Decode.MaxLen)
		}
		distinct[r.Caption] = true
	}
	if len(distinct) < 2 {
		t.Errorf("every photo got the same caption %v: the image does not reach the decoder", distinct)
	}
	info := p.Info()
	if info.Vocab != 15 || len(info.Version) != 12 || !strings.HasPrefix(info.Encoder, "mobilenet_v2-") {
		t.Errorf("info %+v", info)
	}
	d := cpu.New(1)
	defer d.Close()
	want := map[bool]string{true: "bfloat16", false: "float32"}[gpu.FastBFloat16(d)]
	wantDec := want
	if gpu.Packs(d, gpu.Int8) {
		wantDec = "int8"
	}
	if info.Precision != want || info.DecoderPrecision != wantDec {
		t.Errorf("precision auto gave the encoder %s and the decoder %s on this CPU, want %s and %s", info.Precision, info.DecoderPrecision, want, wantDec)
	}
	if want := "auto: " + gpu.BFloat16Why(d); info.PrecisionWhy != want {
		t.Errorf("precision auto's reason %q, want %q", info.PrecisionWhy, want)
	}
}

// TestEncodeOverlapsDecode runs Encode and Decode at the same time from two
// goroutines, as the server's two-stage batcher does on the CPU, many rounds, and
// checks every result equals the one computed alone: the encoder's device shares
// nothing with the decoder's.
func TestEncodeOverlapsDecode(t *testing.T) {
	p, cfg := loadTest(t, 4)
	if !p.Overlaps() {
		t.Fatal("a CPU pipeline should give the encoder a device of its own")
	}
	ctx := context.Background()
	imgs := photos(t, p, cfg.Assets, 4)
	opts := Options{Beam: 2, MaxLen: 8, Alternatives: 1}
	wantFeats, err := p.Encode(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	wantCaps, err := p.Decode(ctx, wantFeats, opts)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		var wg sync.WaitGroup
		var feats [][]float32
		var caps []Result
		var encErr, decErr error
		wg.Go(func() { feats, encErr = p.Encode(ctx, imgs) })
		wg.Go(func() { caps, decErr = p.Decode(ctx, wantFeats, opts) })
		wg.Wait()
		if encErr != nil || decErr != nil {
			t.Fatalf("round %d: %v, %v", round, encErr, decErr)
		}
		for i := range imgs {
			if !slices.Equal(feats[i], wantFeats[i]) || caps[i].Caption != wantCaps[i].Caption || caps[i].Score != wantCaps[i].Score {
				t.Fatalf("round %d, image %d: overlapped results differ from sequential ones", round, i)
			}
		}
	}
}

func TestPipelineErrors(t *testing.T) {
	p, cfg := loadTest(t, 4)
	_, err := p.CaptionImages(context.Background(), [][]float32{make([]float32, 10)}, Options{})
	if want := "pipeline: image 0 has 10 values, want 150528 (224x224x3 from Preprocessor)"; err == nil || err.Error() != want {
		t.Errorf("short tensor: got %v, want %q", err, want)
	}
	features := make([]float32, 1280+palette.Len)
	_, err = p.Decode(context.Background(), [][]float32{features}, Options{Beam: 2, Alternatives: 3})
	if want := "pipeline: alternatives=3 is more than beam=2: beam search keeps only beam candidates; raise beam or ask for fewer alternatives"; err == nil || err.Error() != want {
		t.Errorf("alternatives > beam: got %v, want %q", err, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Decode(ctx, [][]float32{features}, Options{}); err != context.Canceled {
		t.Errorf("cancelled context: got %v", err)
	}
	// A folder whose vocabulary does not match the decoder is refused by name.
	bad := t.TempDir()
	os.Link(filepath.Join(cfg.Model, decoder.WeightsFile), filepath.Join(bad, decoder.WeightsFile))
	os.Link(filepath.Join(cfg.Model, decoder.ConfigFile), filepath.Join(bad, decoder.ConfigFile))
	text.BuildVocab([][]string{{"x", "y"}}, 1).Save(filepath.Join(bad, VocabFile))
	cfg2 := *cfg
	cfg2.Model = bad
	if _, err := Load(&cfg2); err == nil || !strings.Contains(err.Error(), "the vocabulary has 6 words but the decoder was built for 15") {
		t.Errorf("mismatched vocabulary: got %v", err)
	}
	// A folder that is no model's says so, and what one holds.
	cfg4 := *cfg
	cfg4.Model = t.TempDir()
	os.Link(filepath.Join(cfg.Model, decoder.ConfigFile), filepath.Join(cfg4.Model, decoder.ConfigFile))
	if _, err := Load(&cfg4); err == nil || err.Error() != "pipeline: "+cfg4.Model+" is not a caption model folder: it has no decoder.safetensors nor vocab.json; give a folder that holds a model's config.json, decoder.safetensors and vocab.json, as train writes them (OUT/model)" {
		t.Errorf("a folder with a config.json alone: got %v", err)
	}
	// A damaged scores.json, which only describes the model, costs the
	// description its scores, with a warning, not the model.
	scored := testmodel.Copy(t, cfg.Model, "scored")
	if err := os.WriteFile(filepath.Join(scored, ScoresFile), []byte(`{"bleu4": 0.2, "note": "mine"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	cfg5 := *cfg
	cfg5.Model = scored
	if p5, err := Load(&cfg5); err != nil {
		t.Errorf("a model with a damaged scores.json: %v", err)
	} else {
		if s := p5.Info().Scores; s != nil {
			t.Errorf("scores %v from a damaged scores.json", s)
		}
		p5.Close()
	}
	if want := `level=WARN msg="pipeline: the model's scores are left out of its description; repair or delete the file (eval --save-scores writes it again)" error="pipeline: ` + filepath.Join(scored, ScoresFile) + `: json: cannot unmarshal string into Go value of type float64"`; !strings.Contains(logged.String(), want) {
		t.Errorf("log %q lacks %q", logged.String(), want)
	}
	// An encoder that cannot be made is its error, not a panic in Close.
	cfg3 := *cfg
	cfg3.Precision = "float16"
	if _, err := Load(&cfg3); err == nil || err.Error() != `encoder: precision "float16": want auto, float32, bfloat16 or int8` {
		t.Errorf("bad precision: got %v", err)
	}
}

// TestModelsShareTheEncoder loads the shipped merge model with an attention
// model beside it: Encode gives each image the merge-only pipeline's pooled
// features followed by the attention-only pipeline's grid, bit for bit, and
// each model, picked by name, captions exactly as it does loaded alone.
func TestModelsShareTheEncoder(t *testing.T) {
	cfg := testConfig(t, mergeModel, 4)
	cfg.Decode.Tags, cfg.Decode.TagThreshold, cfg.Decode.Guide, cfg.Decode.GuideThreshold = 5, 0.05, true, 0.6
	att := testmodel.Attention(t, filepath.Join(mergeModel, VocabFile), "attention-test")
	attCfg := *cfg
	attCfg.Model = att
	load := func(cfg *config.Config, extra ...string) *Pipeline {
		p, err := Load(cfg, extra...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	mergeOnly, attOnly, both := load(cfg), load(&attCfg), load(cfg, att)

	var names []string
	for _, i := range both.Models() {
		names = append(names, i.Model+" "+i.Arch)
	}
	if want := []string{"flickr8k-merge-lstm merge", "attention-test attention"}; !slices.Equal(names, want) {
		t.Fatalf("models %q, want %q (the default first)", names, want)
	}
	if d, m := both.Info(), mergeOnly.Info(); d.Model != m.Model || d.Version != m.Version {
		t.Errorf("default model %+v, want %+v", both.Info(), mergeOnly.Info())
	}

	ctx := context.Background()
	imgs := photos(t, mergeOnly, cfg.Assets, 6) // batches of 4 and 2
	encode := func(p *Pipeline) [][]float32 {
		f, err := p.Encode(ctx, imgs)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	pooled, grids, feats := encode(mergeOnly), encode(attOnly), encode(both)
	for i := range imgs {
		look := palette.Measure(imgs[i], 224)
		if len(pooled[i]) != 1280+palette.Len || len(grids[i]) != 49*1280+palette.Len {
			t.Fatalf("image %d: %d pooled and %d grid values, want 1280 and %d, each and its palette's %d", i, len(pooled[i]), len(grids[i]), 49*1280, palette.Len)
		}
		if !slices.Equal(pooled[i][1280:], look) || !slices.Equal(grids[i][49*1280:], look) {
			t.Fatalf("image %d: features end in %v and %v, not the photo's palette %v", i, pooled[i][1280:], grids[i][49*1280:], look)
		}
		if !slices.Equal(feats[i], slices.Concat(pooled[i][:1280], grids[i])) {
			t.Fatalf("image %d: features of both models are not the pooled vector, the grid and the palette of the single-model pipelines", i)
		}
	}

	decode := func(p *Pipeline, f [][]float32, o Options) []Result {
		r, err := p.Decode(ctx, f, o)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	opts := Options{Beam: 3, Alternatives: 2}
	wantMerge := decode(mergeOnly, pooled, opts)
	attOpts := opts
	attOpts.Attention = true
	wantAtt := decode(attOnly, grids, attOpts)
	byName := opts
	byName.Model = "flickr8k-merge-lstm"
	attOpts.Model = "attention-test"
	distinct := map[string]bool{}
	for _, tc := range []struct {
		what string
		got  []Result
		want []Result
	}{
		{"no model named", decode(both, feats, opts), wantMerge},
		{"model=flickr8k-merge-lstm", decode(both, feats, byName), wantMerge},
		{"model=attention-test", decode(both, feats, attOpts), wantAtt},
	} {
		for i := range imgs {
			g, w := tc.got[i], tc.want[i]
			if g.Caption != w.Caption || g.Score != w.Score || g.Confidence != w.Confidence || !slices.Equal(g.Tags, w.Tags) ||
				!slices.Equal(g.Alternatives, w.Alternatives) || !slices.EqualFunc(g.Attention, w.Attention, slices.Equal[[]float32]) {
				t.Errorf("%s, image %d: %+v, want the single-model pipeline's %+v", tc.what, i, g, w)
			}
			distinct[g.Caption] = true
		}
	}
	if len(wantAtt[0].Attention) == 0 || len(distinct) < 4 {
		t.Errorf("%d distinct captions, %d attention rows: the test compares nothing", len(distinct), len(wantAtt[0].Attention))
	}

	if _, err := both.Decode(ctx, feats, Options{Model: "flickr8k-attention"}); err == nil ||
		err.Error() != `pipeline: no model named "flickr8k-attention" is loaded; the models are flickr8k-merge-lstm, attention-test` {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := mergeOnly.Decode(ctx, feats, opts); err == nil || err.Error() != fmt.Sprintf("pipeline: feature vector 0 has %d values, want %d", 50*1280+palette.Len, 1280+palette.Len) {
		t.Errorf("features of another pipeline: %v", err)
	}
	// Two folders of one name could not be told apart by a request.
	twin := testmodel.Copy(t, mergeModel, "flickr8k-merge-lstm")
	if _, err := Load(cfg, twin); err == nil || err.Error() != fmt.Sprintf(
		"pipeline: model folders %s and %s are both named flickr8k-merge-lstm, and a request picks a model by its folder's name: rename one (model, server.models)", cfg.Model, twin) {
		t.Errorf("two models of one name: %v", err)
	}
	// A folder served beside the default is named with the setting that lists it.
	if _, err := Load(cfg, "runs/none"); err == nil || err.Error() != "pipeline: server.models (--models): model folder runs/none not found: give the folder of a trained model, or install the shipped one with `make install`" {
		t.Errorf("a missing model beside the default: %v", err)
	}
	abs, _ := filepath.Abs(cfg.Model)
	if _, err := Load(cfg, cfg.Model); err == nil || err.Error() != "pipeline: model folder "+abs+" is listed twice in model and server.models (--model, --models): list each folder once" {
		t.Errorf("one folder listed twice: %v", err)
	}
}

// TestModelVersionCoversTunedEncoder checks that a fine-tuned model's version
// changes when only its tuned encoder layers do, and that an untuned model's is
// its decoder weights' hash.
func TestModelVersionCoversTunedEncoder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version := func() string {
		v, err := modelVersion(dir)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	write(decoder.WeightsFile, "decoder weights")
	// sha256("decoder weights")
	if v := version(); v != "b1eff5cc882d" {
		t.Errorf("untuned version %s, want the decoder weights' hash", v)
	}
	write(encoder.TunedFile, "tuned layers")
	v1 := version()
	write(encoder.TunedFile, "other tuned layers")
	if v2 := version(); v2 == v1 || len(v2) != 12 {
		t.Errorf("versions %s then %s: replacing the tuned encoder layers must change the version", v1, v2)
	}
}

// TestTunedModelOfOriginalTopCaptionsAsUntuned serves the shipped merge model
// beside a copy of it whose encoder.safetensors holds the ImageNet weights of
// the last two blocks and the head unchanged: the copy runs on the Branched
// encoder's tuned top, and must caption as the untuned model does. Precision
// bfloat16 is refused beside a tuned model, and auto warns where it would
// have picked bfloat16.
func TestTunedModelOfOriginalTopCaptionsAsUntuned(t *testing.T) {
	cfg := testConfig(t, mergeModel, 4)
	cfg.Precision = "float32"
	tuned := testmodel.Copy(t, mergeModel, "tuned-test")
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		t.Fatal(err)
	}
	first, err := w.Config.FirstTuned(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := encoder.SaveTuned(filepath.Join(tuned, encoder.TunedFile), w.Config, first, w.Tensors); err != nil {
		t.Fatal(err)
	}

	for _, precision := range []string{"bfloat16", "int8"} {
		reduced := *cfg
		reduced.Precision = precision
		if _, err := Load(&reduced, tuned); err == nil || err.Error() != fmt.Sprintf("pipeline: precision %s, but model %s has fine-tuned encoder layers (encoder.safetensors), and fine-tuned encoder layers run in float32; set precision float32 or auto", precision, tuned) {
			t.Errorf("%s beside a tuned model: %v", precision, err)
		}
	}

	// Auto warns where it would have picked bfloat16.
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	auto := *cfg
	auto.Precision = "auto"
	p, err := Load(&auto, tuned)
	if err != nil {
		t.Fatal(err)
	}
	warned := strings.Contains(logged.String(), "level=WARN msg=\"pipeline: the encoder runs in float32, not the bfloat16 that precision auto picks on this device")
	wantDec := map[bool]string{true: "int8", false: "float32"}[gpu.Packs(p.dev, gpu.Int8)]
	if fast := gpu.FastBFloat16(p.encDev); warned != fast || p.Info().Precision != "float32" || p.Info().DecoderPrecision != wantDec {
		t.Errorf("precision auto beside a tuned model on a device with fast bfloat16 %v: precision %s, decoder %s, log %q", fast, p.Info().Precision, p.Info().DecoderPrecision, logged.String())
	} else if why := p.Info().PrecisionWhy; fast && why != "auto: float32, because a loaded model has fine-tuned encoder layers" {
		t.Errorf("precision auto beside a tuned model: reason %q", why)
	}
	p.Close()

	load := func(extra ...string) *Pipeline {
		p, err := Load(cfg, extra...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	untuned, both := load(), load(tuned)
	infos := both.Models()
	if infos[1].Model != "tuned-test" || infos[1].Version == infos[0].Version || infos[1].Encoder == infos[0].Encoder {
		t.Errorf("models %+v: want the tuned copy second, with its own version and encoder ID", infos)
	}

	ctx := context.Background()
	imgs := photos(t, untuned, cfg.Assets, 5) // batches of 4 and 1
	want, err := untuned.CaptionImages(ctx, imgs, Options{Beam: 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := both.CaptionImages(ctx, imgs, Options{Beam: 3, Model: "tuned-test"})
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for i := range imgs {
		// The tuned top runs on the per-layer kernels, the untuned encoder on a
		// planned chain: features equal up to summation order.
		g, w := got[i], want[i]
		if g.Caption != w.Caption || math.Abs(g.Score-w.Score) > 1e-3 {
			t.Errorf("image %d: tuned copy %q (score %.4f), untuned %q (score %.4f)", i, g.Caption, g.Score, w.Caption, w.Score)
		}
		distinct[g.Caption] = true
	}
	if len(distinct) < 3 {
		t.Errorf("%d distinct captions of %d images: the test compares nothing", len(distinct), len(imgs))
	}
}

// TestInt8Encoder loads the pipeline with precision int8 and checks that it
// says so and that its features of the sample photos stay near float32's
// (relative L2; measured 0.049-0.084; the encoder package tests the chain itself).
func TestInt8Encoder(t *testing.T) {
	features := map[string][][]float32{}
	for _, precision := range []string{"float32", "int8"} {
		cfg := testConfig(t, testModel(t), 5)
		cfg.Precision = precision
		p, err := Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The decoder follows int8 in int8 where the CPU packs it, else in
		// bfloat16 where bfloat16 is fast.
		wantDec := "float32"
		switch {
		case precision == "int8" && gpu.Packs(p.dev, gpu.Int8):
			wantDec = "int8"
		case precision == "int8" && gpu.FastBFloat16(p.dev):
			wantDec = "bfloat16"
		}
		if got := p.Info(); got.Precision != precision || got.DecoderPrecision != wantDec {
			t.Errorf("precision %s: Info says the encoder runs %s and the decoder %s (want %s)", precision, got.Precision, got.DecoderPrecision, wantDec)
		}
		if features[precision], err = p.Encode(context.Background(), photos(t, p, cfg.Assets, 5)); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	for i, want := range features["float32"] {
		rel := numdiff.RelL2(features["int8"][i], want)
		t.Logf("photo %d: int8 features %.3f from float32's (relative L2)", i, rel)
		if rel > 0.12 {
			t.Errorf("photo %d: int8 features are %.3f from float32's (relative L2), want <= 0.12", i, rel)
		}
	}
}

// Captioning applies decoding's bans that read the vocabulary: the shipped
// model says "A man is riding a bike on a dirt bike." and "A woman in a pink
// dress is sitting on a dress." of these Flickr8k dev photos when repeats are
// allowed (no_repeat 0, the premise), and never places a thing in itself with
// the default no_repeat. placesItself is a looser reading of the ban (any
// earlier word but a reusable one, within three words after on or in) that
// these captions meet.
func TestCaptionsPlaceNoThingInItself(t *testing.T) {
	cfg := testConfig(t, filepath.Join("..", filepath.FromSlash(config.DefaultModel)), 8)
	cfg.Precision = "float32"
	// The default decoding (configs/default.yaml).
	cfg.Decode.MaxLen, cfg.Decode.NoRepeat, cfg.Decode.Tags, cfg.Decode.TagThreshold, cfg.Decode.GuideThreshold = 20, 2, 5, 0.05, 0.8
	p, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	var paths []string
	for _, name := range []string{"2943334864_6bab479a3e", "2703155733_19ac6f97a8", "3356748019_2251399314", "3330102093_1d6e35e78d"} {
		paths = append(paths, filepath.Join(cfg.Assets, "data", "flickr8k", "images", name+".jpg"))
	}
	imgs, err := p.Preprocessor().Files(paths)
	if err != nil {
		t.Fatal(err)
	}
	placing := func(o Options) (n int, captions []string) {
		res, err := p.CaptionImages(context.Background(), imgs, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			captions = append(captions, r.Caption)
			if placesItself(r.Caption) {
				n++
			}
		}
		return n, captions
	}
	if n, captions := placing(Options{NoRepeat: NoRepeatOff, Guide: GuideOff}); n == 0 {
		t.Errorf("with repeats allowed no caption places a thing in itself, against the premise: %q", captions)
	}
	for _, guide := range []Guide{GuideOff, GuideOn} {
		if n, captions := placing(Options{Guide: guide}); n != 0 {
			t.Errorf("guide=%d: %d captions place a thing in itself: %q", guide-GuideOff, n, captions)
		}
	}
}

// placesItself says whether caption says a word again within three words
// after "on" or "in" that it said before them ("a bike on a dirt bike"),
// one of placement's reusable words aside ("a red shirt on a red bike").
func placesItself(caption string) bool {
	words := strings.Fields(strings.ToLower(strings.Trim(caption, ".")))
	for i, w := range words {
		if w != "on" && w != "in" {
			continue
		}
		for _, later := range words[i+1 : min(i+4, len(words))] {
			if !reusableInPlace[later] && slices.Contains(words[:i], later) {
				return true
			}
		}
	}
	return false
}

// TestModelName: a model is named after its folder, and a trained run's model
// and last epoch after the run.
func TestModelName(t *testing.T) {
	for dir, want := range map[string]string{
		"models/flickr8k-attention": "flickr8k-attention",
		"/srv/models/mine/":         "mine",
		"runs/mine/model":           "mine",
		"runs/mine/last":            "mine-last",
		"/runs/other/model/":        "other",
		"model":                     "model",
		"/model":                    "model",
		"runs/mine/model/../last":   "mine-last",
		"runs/flickr8k-merge-lstm":  "flickr8k-merge-lstm",
	} {
		if got := modelName(dir); got != want {
			t.Errorf("modelName(%q) = %q, want %q", dir, got, want)
		}
	}
}

// capabilities is a device that answers only what decoderPrecision asks:
// whether it packs int8 weights and whether its bfloat16 is fast.
type capabilities struct {
	gpu.Device
	gpu.ConvPlanner
	int8, fastBF16 bool
}

func (c capabilities) Packs(p gpu.Precision) bool { return p == gpu.Int8 && c.int8 }
func (c capabilities) FastBFloat16() bool         { return c.fastBF16 }
func (c capabilities) PackWeight(gpu.Buf, int, int, int, gpu.Precision) (gpu.PackedWeight, error) {
	panic("decoderPrecision packs nothing")
}

// TestDecoderPrecision checks the decoder's precision for each precision
// setting, encoder precision and CPU: explicit float32 and bfloat16 hold;
// auto and int8 take int8 where the device packs it, then bfloat16 beside a
// bfloat16 encoder or beside int8 where bfloat16 is fast.
func TestDecoderPrecision(t *testing.T) {
	for _, c := range []struct {
		requested      string
		enc            gpu.Precision
		int8, fastBF16 bool
		want           gpu.Precision
	}{
		{"float32", gpu.Float32, true, true, gpu.Float32},
		{"bfloat16", gpu.BFloat16, true, true, gpu.BFloat16},
		{"bfloat16", gpu.BFloat16, false, false, gpu.BFloat16},
		{"auto", gpu.BFloat16, true, true, gpu.Int8},
		{"auto", gpu.BFloat16, false, true, gpu.BFloat16},
		{"auto", gpu.Float32, true, false, gpu.Int8},
		{"auto", gpu.Float32, false, false, gpu.Float32},
		{"auto", gpu.Float32, false, true, gpu.Float32}, // a tuned model keeps the encoder float32
		{"int8", gpu.Int8, true, true, gpu.Int8},
		{"int8", gpu.Int8, false, true, gpu.BFloat16},
		{"int8", gpu.Int8, false, false, gpu.Float32},
	} {
		dev := capabilities{int8: c.int8, fastBF16: c.fastBF16}
		if got := decoderPrecision(c.requested, c.enc, dev); got != c.want {
			t.Errorf("precision %s, encoder %s, int8 weights %v, fast bfloat16 %v: decoder %s, want %s", c.requested, c.enc, c.int8, c.fastBF16, got, c.want)
		}
	}
}

// TestCheckReads: a model reads the encoder's features, of its length and,
// for attention, over its grid's regions (7x7 = 49 for MobileNetV2).
func TestCheckReads(t *testing.T) {
	wc := encoder.Config{Input: 224, Head: 1280, Blocks: []encoder.Block{{Stride: 1}, {Stride: 2}, {Stride: 2}, {Stride: 2}, {Stride: 2}}}
	if g := wc.GridSize(); g != 7 {
		t.Fatalf("the test's encoder has a %dx%d grid, want 7x7", g, g)
	}
	for _, c := range []struct {
		dc   decoder.Config
		want string
	}{
		{decoder.Config{FeatDim: 1280}, ""},
		{decoder.Config{Arch: decoder.ArchAttention, FeatDim: 1280, Regions: 49}, ""},
		{decoder.Config{FeatDim: 640}, "pipeline: the encoder gives 1280 features, model m expects 640"},
		{decoder.Config{Arch: decoder.ArchAttention, FeatDim: 1280, Regions: 36}, "pipeline: the encoder gives a 7x7 grid, model m attends over 36 regions"},
	} {
		err := CheckReads(wc, c.dc, "m")
		if got := fmt.Sprint(err); c.want == "" && err != nil || c.want != "" && got != c.want {
			t.Errorf("%+v: %v, want %q", c.dc, err, c.want)
		}
	}
}
