package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/tags"
	"github.com/captioner/captioner/text"
	"github.com/captioner/captioner/train"
)

// TestTrainThenSelfCritical runs the train command twice on the sample dataset:
// cross-entropy from scratch, then the cider objective starting from that model,
// which must keep its vocabulary (word ids) rather than build a new one.
func TestTrainThenSelfCritical(t *testing.T) {
	assets, data, feats, _ := sampleDataset(t, 7)
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "1")
	common := []string{"--device", "cpu", "--assets", assets, "--data", data, "--features", feats,
		"--epochs", "2", "--batch-size", "10", "--hidden", "16", "--seed", "4"}
	xe := t.TempDir()
	if out, err := run(t, append([]string{"train", "--out", xe}, common...)...); err != nil || !strings.Contains(out, "stopped by epochs after 2 epochs") {
		t.Fatalf("train: %v\n%s", err, out)
	}
	first := train.ModelDir(xe)
	// The model says what made it: its epoch and figures, the settings, the data.
	var made struct {
		Saved   string           `json:"saved"`
		Epoch   train.EpochStats `json:"epoch"`
		Train   map[string]any   `json:"train"`
		Dataset string           `json:"dataset"`
		Source  string           `json:"source"`
	}
	b, err := os.ReadFile(filepath.Join(first, train.TrainingFile))
	if err != nil || json.Unmarshal(b, &made) != nil {
		t.Fatalf("%s: %v\n%s", train.TrainingFile, err, b)
	}
	if _, err := time.Parse(time.RFC3339, made.Saved); err != nil || made.Epoch.Epoch < 1 || made.Epoch.Epoch > 2 || made.Train["hidden"] != 16.0 ||
		made.Train["seed"] != 4.0 || made.Dataset != filepath.Base(data) || made.Source != data || !strings.Contains(string(b), `"train_images": 7`) {
		t.Errorf("%s of the first run:\n%s", train.TrainingFile, b)
	}

	// The init's vocabulary (4 special tokens + 15 words, "a" among them with
	// the standard cleaning) wins even when this
	// run's settings would build another (min count 50: the special tokens alone).
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "50")
	var log bytes.Buffer
	rootCmd.SetErr(&log)
	sc := t.TempDir()
	// Without --hidden the run takes the init model's 16 (the flag is set back
	// to its default, as in a new process).
	cmd, _, _ := rootCmd.Find([]string{"train"})
	hidden := cmd.Flags().Lookup("hidden")
	hidden.Value.Set(hidden.DefValue)
	hidden.Changed = false
	h := slices.Index(common, "--hidden")
	args := append([]string{"train", "--out", sc, "--init", first, "--objective", "cider", "--lr", "1e-3"}, slices.Delete(slices.Clone(common), h, h+2)...)
	rootCmd.SetOut(&bytes.Buffer{})
	rootCmd.SetArgs(args)
	if err := rootCmd.Execute(); err != nil {
		t.Fatalf("train --objective cider: %v\n%s", err, log.String())
	}
	if want := "vocabulary 19 words (from " + first + ")"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
	for _, dir := range []string{train.ModelDir(sc), train.LastDir(sc)} {
		for _, f := range []string{pipeline.VocabFile, decoder.WeightsFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("self-critical run wrote no %s: %v", f, err)
			}
		}
	}
	a, _ := os.ReadFile(filepath.Join(first, pipeline.VocabFile))
	b, _ = os.ReadFile(filepath.Join(train.ModelDir(sc), pipeline.VocabFile))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the fine-tuned model's vocabulary differs from its init's")
	}
	csv, _ := os.ReadFile(filepath.Join(sc, train.CurvesCSV))
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) != 3 || strings.HasSuffix(lines[1], ",") {
		t.Errorf("curves.csv: want a header and 2 epochs with their sample reward:\n%s", csv)
	}

	// Distillation from the first model: its captions of the 7 train images
	// are training targets too, and they are eval's unguided captions of them.
	resetFlags(t, "train", "teacher", "cleaning", "init", "objective", "lr", "resume")
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "1")
	log.Reset()
	kd := t.TempDir()
	args = append([]string{"train", "--out", kd, "--teacher", first, "--init", "", "--objective", "xe", "--lr", "1e-3"}, common...)
	rootCmd.SetArgs(args)
	if err := rootCmd.Execute(); err != nil {
		t.Fatalf("train --teacher: %v\n%s", err, log.String())
	}
	// One word outside: the teacher's sentences write "an" before a word
	// that starts with a vowel, and these references never say "an".
	if want := "teacher " + first + ": its captions of the 7 train images are training targets too (1 of their words outside the vocabulary, trained as <unk>)"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
	checkTeacherCaptions(t, assets, data, feats, first)
	// Its checkpoint records the captions it trained on: resuming it without
	// the teacher would train on others.
	_, err = run(t, append([]string{"train", "--out", kd, "--resume", "--teacher", "", "--epochs", "3", "--init", "", "--objective", "xe"}, common...)...)
	if want := "train: checkpoint " + filepath.Join(kd, train.CheckpointFile) + " was made on other training captions than this run's (another dataset, cleaning or train.teacher, or a teacher decoding with other decode settings); use the same ones or another --out"; err == nil || err.Error() != want {
		t.Errorf("resume without the teacher: got %v, want %q", err, want)
	}
	_, err = run(t, append([]string{"train", "--out", t.TempDir(), "--teacher", first, "--cleaning", "seed", "--resume=false"}, common...)...)
	if want := "train.teacher: " + first + " writes standard-cleaned captions and this run trains on seed-cleaned ones: name a teacher of the run's cleaning"; err == nil || err.Error() != want {
		t.Errorf("teacher of another cleaning: got %v, want %q", err, want)
	}
	// With --init the run trains on the init model's cleaning: --cleaning
	// naming another is refused, rather than ignored.
	_, err = run(t, append([]string{"train", "--out", t.TempDir(), "--teacher", first, "--cleaning", "seed", "--init", first, "--epochs", "1"}, common...)...)
	if want := "train.cleaning: seed with train.init " + first + ", whose captions were cleaned the standard way"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("--init of another cleaning than --cleaning: got %v, want %q...", err, want)
	}
	resetFlags(t, "train", "cleaning")
	if _, err := run(t, append([]string{"train", "--out", t.TempDir(), "--teacher", first, "--init", first, "--epochs", "1"}, common...)...); err != nil {
		t.Errorf("teacher and init of the same cleaning: %v", err)
	}

	// A missing init folder is named.
	_, err = run(t, append([]string{"train", "--out", t.TempDir(), "--init", filepath.Join(sc, "nope"), "--objective", "cider", "--teacher", "", "--resume=false"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "train.init") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing init: got %v, want an error naming train.init and the folder", err)
	}
}

// checkTeacherCaptions checks that teacherCaptions of the train split are
// the captions eval writes of it with guided decoding off.
func checkTeacherCaptions(t *testing.T, assets, data, feats, teacher string) {
	t.Helper()
	resetFlags(t, "eval", "split", "guide", "captions", "model")
	capPath := filepath.Join(t.TempDir(), "train.json")
	if _, err := run(t, "eval", "--split", "train", "--guide=false", "--captions", capPath, "--model", teacher,
		"--device", "cpu", "--assets", assets, "--data", data, "--features", feats); err != nil {
		t.Fatal(err)
	}
	var recs []struct{ Tokens []string }
	b, _ := os.ReadFile(capPath)
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(viper.New(), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Assets, cfg.Train.Features, cfg.Train.Teacher, cfg.Train.Cleaning, cfg.Train.Data = assets, feats, teacher, "standard", data
	ds, err := loadDataset(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ds.Reclean(text.CleaningStandard)
	imgs, _ := ds.Split(text.SplitTrain)
	dev := cpu.New(1)
	defer dev.Close()
	caps, err := teacherCaptions(context.Background(), cfg, dev, imgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != len(recs) || len(caps) != 7 {
		t.Fatalf("%d teacher captions, %d eval captions; want 7", len(caps), len(recs))
	}
	for i := range caps {
		if strings.Join(caps[i], " ") != strings.Join(recs[i].Tokens, " ") {
			t.Errorf("image %d: teacher caption %q, eval's %q", i, caps[i], recs[i].Tokens)
		}
	}
}

// TestDistilAddsTargetsNotReferences: a teacher's caption becomes a training
// example of its image, in the vocabulary's ids, and not a reference.
func TestDistilAddsTargetsNotReferences(t *testing.T) {
	vocab := text.BuildVocab([][]string{{"a", "dog", "runs"}, {"a", "cat"}}, 1)
	trn := &train.Split{Refs: [][][]string{{{"a", "dog", "runs"}}, {{"a", "cat"}}}}
	unknown := distil(trn, [][]string{{"a", "dog"}, {"a", "zebra", "runs"}}, vocab)
	if unknown != 1 {
		t.Errorf("%d unknown words, want 1 (zebra)", unknown)
	}
	want := []train.Example{
		{Image: 0, Words: []int32{int32(vocab.ID("a")), int32(vocab.ID("dog"))}},
		{Image: 1, Words: []int32{int32(vocab.ID("a")), text.UnkID, int32(vocab.ID("runs"))}},
	}
	if fmt.Sprint(trn.Examples) != fmt.Sprint(want) {
		t.Errorf("examples %v, want %v", trn.Examples, want)
	}
	if len(trn.Refs[1]) != 1 {
		t.Errorf("image 1 has %d references, want its 1: a teacher's caption is not a reference", len(trn.Refs[1]))
	}
}

// TestTrainFinetuneBlocks trains with --finetune-blocks on the sample dataset:
// the activations below the cut are cached once (a second run computes none),
// and the model folder gets the tuned layers beside the decoder.
func TestTrainFinetuneBlocks(t *testing.T) {
	assets, data, feats, _ := sampleDataset(t, 7)
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "1")
	args := func(out string) []string {
		return []string{"train", "--out", out, "--device", "cpu", "--assets", assets, "--data", data, "--features", feats,
			"--epochs", "1", "--batch-size", "10", "--hidden", "16", "--seed", "4", "--finetune-blocks", "2", "--finetune-lr", "1e-4",
			"--objective", "xe", "--init", "", "--lr", "1e-3"}
	}
	var log bytes.Buffer
	rootCmd.SetErr(&log)
	rootCmd.SetOut(&bytes.Buffer{})
	out := t.TempDir()
	rootCmd.SetArgs(args(out))
	if err := rootCmd.Execute(); err != nil {
		t.Fatalf("train --finetune-blocks 2: %v\n%s", err, log.String())
	}
	for _, want := range []string{"10 computed, 0 cached", "fine-tuning encoder blocks 15-16 and head"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	for _, f := range []string{encoder.TunedFile, decoder.WeightsFile} {
		if _, err := os.Stat(filepath.Join(train.ModelDir(out), f)); err != nil {
			t.Error(err)
		}
	}
	// The tuned model captions through the tuned layers, and its tags, from
	// the ImageNet layers, are the shipped model's for the same photo.
	photo := filepath.Join(assets, "samples", "flickr8k_fullres", "1019077836_6fc9b15408.jpg")
	var tagsOf [2][]tags.Tag
	resetFlags(t, "caption", "json", "precision")
	for i, model := range []string{train.ModelDir(out), shippedModel} {
		js, err := run(t, "caption", "--json", "--precision", "float32", "--device", "cpu", "--assets", assets, "--model", model, photo)
		var recs []captionRecord
		if err != nil || json.Unmarshal([]byte(js), &recs) != nil || len(recs) != 1 || recs[0].Caption == "" {
			t.Fatalf("caption --model %s: %v\n%s", model, err, js)
		}
		tagsOf[i] = recs[0].Tags
	}
	same := len(tagsOf[0]) > 0 && len(tagsOf[0]) == len(tagsOf[1])
	for i := 0; same && i < len(tagsOf[0]); i++ { // float32, up to summation order
		a, b := tagsOf[0][i], tagsOf[1][i]
		same = a.Noun == b.Noun && a.Label == b.Label && math.Abs(float64(a.Prob-b.Prob)) < 1e-4 && math.Abs(float64(a.LabelProb-b.LabelProb)) < 1e-4
	}
	if !same {
		t.Errorf("tags of the tuned model %+v, of the shipped model %+v", tagsOf[0], tagsOf[1])
	}
	log.Reset()
	rootCmd.SetErr(&log)
	// Continuing from the tuned model reads the same cache (the layers below
	// the cut are the ImageNet ones) and starts from its tuned layers.
	second := t.TempDir()
	rootCmd.SetArgs(append(args(second), "--init", train.ModelDir(out)))
	if err := rootCmd.Execute(); err != nil || !strings.Contains(log.String(), "0 computed, 10 cached") {
		t.Errorf("second run: %v, want every activation cached:\n%s", err, log.String())
	}
	if _, _, err := encoder.WithTuned(mustLoadDefault(t, assets), filepath.Join(train.ModelDir(second), encoder.TunedFile)); err != nil {
		t.Errorf("the continued run's tuned layers: %v", err)
	}
	// Tuning fewer blocks than the init model did is refused.
	rootCmd.SetArgs(append(args(t.TempDir()), "--init", train.ModelDir(out), "--finetune-blocks", "1"))
	if err := rootCmd.Execute(); err == nil || !strings.Contains(err.Error(), "fine-tune at least its 2 blocks") {
		t.Errorf("--finetune-blocks 1 from a model tuned from 2: %v", err)
	}
	// A tuned model cannot continue on the frozen features.
	_, err := run(t, "train", "--out", t.TempDir(), "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--epochs", "1", "--hidden", "16", "--finetune-blocks", "0", "--init", train.ModelDir(out))
	if err == nil || !strings.Contains(err.Error(), "has a fine-tuned encoder") {
		t.Errorf("frozen run from a tuned model: %v", err)
	}
}

func mustLoadDefault(t *testing.T, assets string) *encoder.Weights {
	t.Helper()
	w, err := encoder.LoadDefault(assets)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestFinetuneOnACSVDataset fine-tunes on a CSV dataset, whose rows name
// their photos by path: every format names its images, which fine-tuning
// reads (it refused all but a Flickr8k folder until 2026-12-07). It tunes all
// 17 blocks, whose activations below block 0 (112x112x32 a photo) the
// feature store had refused as a damaged manifest.
func TestFinetuneOnACSVDataset(t *testing.T) {
	assets, data, _, _ := sampleDataset(t, 7)
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "1")
	var rows strings.Builder
	rows.WriteString("image,caption,split\n")
	photos, _ := filepath.Glob(filepath.Join(data, "images", "*.jpg"))
	for i, p := range photos {
		split := "train"
		if i >= 7 {
			split = "dev"
		}
		fmt.Fprintf(&rows, "images/%s,A dog runs on the grass.,%s\nimages/%s,Two people are sitting outside.,%s\n", filepath.Base(p), split, filepath.Base(p), split)
	}
	csv := filepath.Join(data, "captions.csv")
	if err := os.WriteFile(csv, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	feats, out := t.TempDir(), t.TempDir()
	common := []string{"--device", "cpu", "--assets", assets, "--data", csv}
	resetFlags(t, "train", "finetune-blocks", "out", "data", "arch", "init", "objective", "features")
	_, log, err := runStderr(t, append([]string{"train", "--out", out, "--features", feats, "--arch", "merge", "--epochs", "1", "--batch-size", "10", "--hidden", "16",
		"--finetune-blocks", "17", "--objective", "xe", "--init", ""}, common...)...)
	if err != nil || !strings.Contains(log, "10 computed, 0 cached, 0 failed") {
		t.Fatalf("train --finetune-blocks 17 on a CSV dataset: %v, want the 10 photos' activations computed:\n%s", err, log)
	}
	if _, err := os.Stat(filepath.Join(train.ModelDir(out), encoder.TunedFile)); err != nil {
		t.Error(err)
	}
}

// TestTrainMixingFlagsReachTheConfiguration: --xe-weight and --feature-dropout
// set train.xe_weight and train.feature_dropout, whose validation names what
// each combines with (checked before any data is read).
func TestTrainMixingFlagsReachTheConfiguration(t *testing.T) {
	resetFlags(t, "train", "xe-weight", "feature-dropout", "out", "data", "arch", "objective", "finetune-blocks")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--xe-weight", "0.2", "--feature-dropout", "0"}, "train.xe_weight: 0.2 with train.objective xe; it mixes cross-entropy into the cider objective"},
		{[]string{"--xe-weight", "0", "--feature-dropout", "0.3"}, "train.feature_dropout: 0.3 with train.arch merge, train.objective xe, train.finetune_blocks 0;"},
	} {
		_, err := run(t, append([]string{"train", "--device", "cpu", "--out", t.TempDir(), "--init", ""}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("train %v: %v, want %q", c.args, err, c.want)
		}
	}
}

// TestSeedIsAnInt64Flag: train's --seed is an int64 flag, as viper and
// GetInt64 read it (a seed takes 64 bits), in plain decimal.
func TestSeedIsAnInt64Flag(t *testing.T) {
	resetFlags(t, "train", "seed")
	cmd, _, err := rootCmd.Find([]string{"train"})
	if err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags().Lookup("seed")
	if f == nil {
		t.Fatal("train has no --seed")
	}
	if f.Value.Type() != "int64" {
		t.Errorf("--seed is of type %q, want int64", f.Value.Type())
	}
	if err := cmd.Flags().Set("seed", "5000000000"); err != nil {
		t.Fatal(err)
	}
	if got, err := cmd.Flags().GetInt64("seed"); err != nil || got != 5000000000 {
		t.Errorf("GetInt64(seed) = %d, %v; want 5000000000", got, err)
	}
}

// TestInitGivesTheNetworkNotSet: train --init takes the model's architecture
// and sizes where the run left them at their defaults (an attention model's
// self-critical stage failed with "arch attention -> merge" unless --arch and
// --hidden were repeated), keeps those the user set (train.init then refuses
// a mismatch), and always the model's cleaning, which its vocabulary needs:
// a cleaning set to another is refused (it was ignored without a word).
func TestInitGivesTheNetworkNotSet(t *testing.T) {
	defaults := config.Train{Arch: "merge", Cleaning: "standard", Embed: 256, Hidden: 256, Mid: 256, Att: 256}
	attention := decoder.Config{Arch: decoder.ArchAttention, Cleaning: text.CleaningSeed, Embed: 128, Hidden: 512, Att: 64}
	for _, tc := range []struct {
		name string
		set  []string
		ic   decoder.Config
		want config.Train
	}{
		{"nothing set", nil, attention, config.Train{Arch: "attention", Cleaning: "seed", Embed: 128, Hidden: 512, Mid: 256, Att: 64}},
		{"hidden set", []string{"train.hidden"}, attention, config.Train{Arch: "attention", Cleaning: "seed", Embed: 128, Hidden: 256, Mid: 256, Att: 64}},
		{"cleaning set to the model's", []string{"train.cleaning"}, decoder.Config{Arch: decoder.ArchAttention, Cleaning: text.CleaningStandard, Embed: 128, Hidden: 512, Att: 64},
			config.Train{Arch: "attention", Cleaning: "standard", Embed: 128, Hidden: 512, Mid: 256, Att: 64}},
		{"a merge model of an old file", []string{"train.arch"}, decoder.Config{Embed: 32, Hidden: 48, Mid: 40}, config.Train{Arch: "merge", Cleaning: "seed", Embed: 32, Hidden: 48, Mid: 40, Att: 256}},
		{"mid set", []string{"train.mid"}, decoder.Config{Embed: 32, Hidden: 48, Mid: 40}, config.Train{Arch: "merge", Cleaning: "seed", Embed: 32, Hidden: 48, Mid: 256, Att: 256}},
		{"att and embed set", []string{"train.att", "train.embed"}, attention, config.Train{Arch: "attention", Cleaning: "seed", Embed: 256, Hidden: 512, Mid: 256, Att: 256}},
	} {
		got := defaults
		if err := inheritNetwork(&got, tc.ic, func(key string) bool { return slices.Contains(tc.set, key) }); err != nil || got != tc.want {
			t.Errorf("%s: %+v (%v), want %+v", tc.name, got, err, tc.want)
		}
	}
	got := defaults
	got.Init = "runs/seedy"
	err := inheritNetwork(&got, attention, func(key string) bool { return key == "train.cleaning" })
	want := "train.cleaning: standard with train.init runs/seedy, whose captions were cleaned the seed way: a run from a model keeps its vocabulary, and the cleaning that made its words; unset train.cleaning, or train from scratch (--init '')"
	if err == nil || err.Error() != want {
		t.Errorf("cleaning set to another than the model's: %v, want %q", err, want)
	}
}

// TestEmptyVocabularySaysWhy: a min count above every word's count left a
// vocabulary of the special tokens alone, which the decoder refused without
// naming the setting, after the device was opened.
func TestEmptyVocabularySaysWhy(t *testing.T) {
	assets, data, feats, _ := sampleDataset(t, 7)
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "100000")
	out := filepath.Join(t.TempDir(), "run")
	_, err := run(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--out", out, "--init", "", "--resume=false")
	// The sample captions: "a" starts each of the 7 photos' first and 3 of their second ones.
	want := `train.min_count: 100000 keeps no word of the train captions, whose most frequent, "a", appears 10 times: lower train.min_count (in the configuration file, or CAPTIONER_TRAIN_MIN_COUNT)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the refused run made %s (%v)", out, err)
	}
}

// TestTrainCaptionsWithoutWords: captions that clean to no words are left out
// with a warning (training learned them as a caption ending at once), a split
// left with none says so, and a min count above every word names the most
// frequent word's count. Each run fails after that (a vocabulary too small, the missing features).
func TestTrainCaptionsWithoutWords(t *testing.T) {
	assets := sharedAssets(t)
	data := ownFlickr8k(t, assets)
	train := func(tokens, minCount string) (string, error) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(data, "Flickr8k.token.txt"), []byte(tokens), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", minCount)
		_, log, err := runStderr(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", t.TempDir(),
			"--out", filepath.Join(t.TempDir(), "run"), "--init", "", "--resume=false", "--cleaning", "standard")
		return log, err
	}
	log, _ := train("cafe.jpg#0\t!!! ...\ndog.PNG#0\t?!\ndog.PNG#1\tDog .\npark.jpeg#0\tA park .\n", "1")
	for _, want := range []string{
		`warning: 2 captions have no words once cleaned (the first: "!!! ...") and are left out, and with them 1 images that had no other caption`,
		filepath.Base(data) + ": 1 train images, 1 dev images, vocabulary 5 words (min count 1)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if _, err := train("cafe.jpg#0\t!!! ...\ndog.PNG#0\t?!\npark.jpeg#0\tA park .\n", "1"); err == nil ||
		err.Error() != "train: no train image has a caption with words once cleaned: check the dataset's captions (train.data)" {
		t.Errorf("every train caption without words: %v", err)
	}
	_, err := train("cafe.jpg#0\tA dog runs .\ncafe.jpg#1\tA dog sits .\ndog.PNG#0\tA cat .\npark.jpeg#0\tA park .\n", "100")
	if want := `train.min_count: 100 keeps no word of the train captions, whose most frequent, "a", appears 3 times: lower train.min_count (in the configuration file, or CAPTIONER_TRAIN_MIN_COUNT)`; err == nil || err.Error() != want {
		t.Errorf("min count 100: %v, want %q", err, want)
	}
}

// TestSelfCriticalHintsAndRunFolders: a self-critical run at the
// cross-entropy default rate is warned about (a README command without --lr
// ran at 1e-3), and a run's folder given for its model/ is told as such, not
// as a missing config.json.
func TestSelfCriticalHintsAndRunFolders(t *testing.T) {
	assets, data, feats, _ := sampleDataset(t, 7)
	resetFlags(t, "train", "lr", "init", "objective")
	runDir := t.TempDir()
	os.MkdirAll(filepath.Join(runDir, "model"), 0o755)
	_, log, err := runStderr(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats,
		"--out", filepath.Join(t.TempDir(), "scst"), "--objective", "cider", "--init", runDir, "--teacher", "")
	if want := "warning: train.objective cider at train.lr 0.001, the cross-entropy default: self-critical fine-tuning usually needs a rate 20-50 times lower (the shipped model's: 5e-5); set --lr\n"; !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if want := "train.init: " + runDir + " is not a caption model folder: it has no config.json nor decoder.safetensors nor vocab.json; give a folder that holds a model's config.json, decoder.safetensors and vocab.json, as train writes them (OUT/model)"; err == nil || err.Error() != want {
		t.Errorf("--init of a run's folder: %v, want %q", err, want)
	}
	_, log, _ = runStderr(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats,
		"--out", filepath.Join(t.TempDir(), "scst"), "--objective", "cider", "--init", runDir, "--teacher", "", "--lr", "5e-5")
	if strings.Contains(log, "warning: train.objective cider") {
		t.Errorf("warned with --lr given:\n%s", log)
	}
	if _, err := run(t, "factorize", "--device", "cpu", "--rank", "2", "--out", filepath.Join(t.TempDir(), "f"), runDir); err == nil || !strings.HasSuffix(err.Error(), "is not a caption model folder: it has no config.json nor decoder.safetensors nor vocab.json; give a folder that holds a model's config.json, decoder.safetensors and vocab.json, as train writes them (OUT/model)") {
		t.Errorf("factorize of a run's folder: %v", err)
	}
}

// TestMissingFeaturesSayWhatToDo: an image of the dataset without features
// in the store gets the extract command that adds it (with --grid: the
// store keeps grids, whichever model reads it), and one whose photo is not
// there or does not decode, which extract skips run after run, is named as
// such, in train and in eval. Both used to say "run captioner extract",
// which cannot help the second.
func TestMissingFeaturesSayWhatToDo(t *testing.T) {
	resetFlags(t, "train", "arch", "data", "features", "init", "resume", "out")
	resetFlags(t, "eval", "from-images", "split", "model", "data", "features", "captions")
	assets, data, feats, _ := sampleDataset(t, 7)
	appendTo := func(file, text string) {
		f, err := os.OpenFile(filepath.Join(data, file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	photos, _ := filepath.Glob(filepath.Join(data, "images", "*.jpg"))
	if err := os.Symlink(photos[0], filepath.Join(data, "images", "new.jpg")); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(data, "images", "bad.jpg")
	if err := os.WriteFile(bad, []byte("not a photo"), 0o644); err != nil {
		t.Fatal(err)
	}
	appendTo("Flickr8k.token.txt", "new.jpg#0\tA dog runs on the grass .\ngone.jpg#0\tA dog runs on the grass .\nbad.jpg#0\tA dog runs .\n")
	appendTo("Flickr_8k.trainImages.txt", "new.jpg\n")
	stores, _ := filepath.Glob(filepath.Join(feats, "*"))
	if len(stores) != 1 {
		t.Fatalf("want the one store of the sample features in %s, found %v", feats, stores)
	}
	store := stores[0]
	extract := "captioner extract --out " + feats + " --grid --data " + data
	train := func() error {
		_, err := run(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--out", t.TempDir(), "--init", "", "--resume=false")
		return err
	}
	want := "features: 1 of 8 images have no features in " + store + " (new.jpg): run `" + extract + "`"
	if err := train(); err == nil || err.Error() != want {
		t.Errorf("train, a photo not extracted:\n got %v\nwant %s", err, want)
	}

	appendTo("Flickr_8k.devImages.txt", "gone.jpg\nbad.jpg\n")
	gone := filepath.Join(data, "images", "gone.jpg")
	wantDev := "features: 2 of 5 images have no features in " + store + " (gone.jpg, bad.jpg); 2 of them are not there or cannot be read as photos (" + gone + ", " + bad + "), which extract skips: replace those files and run `" + extract + "`, or take the images out of the dataset (their lines in the token file and split lists, their rows in the CSV, or their entries in the JSON)"
	_, err := run(t, "eval", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--model", shippedModel, "--split", "dev",
		"--captions", filepath.Join(t.TempDir(), "captions.json"))
	if err == nil || err.Error() != wantDev {
		t.Errorf("eval, listed photos that are not there or do not decode:\n got %v\nwant %s", err, wantDev)
	}
	resetFlags(t, "extract", "split", "images") // as sampleDataset set them
	if _, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--data", data, "--out", feats, "--grid"); err == nil || !strings.HasPrefix(err.Error(), "2 of 13 images could not be read") {
		t.Fatalf("extract with a photo missing and one that does not decode: %v, want 2 of 13 images could not be read", err)
	}
	if err := train(); err == nil || err.Error() != wantDev {
		t.Errorf("train, listed photos that are not there or do not decode:\n got %v\nwant %s", err, wantDev)
	}
}

// TestInterruptBeforeTheFirstEpoch: a run stopped before its first epoch
// has no checkpoint, and says so, where it pointed to one and to --resume.
func TestInterruptBeforeTheFirstEpoch(t *testing.T) {
	resetFlags(t, "train", "arch", "data", "features", "init", "resume", "out")
	assets, data, feats, _ := sampleDataset(t, 7)
	out := filepath.Join(t.TempDir(), "run")
	// The train command's own context: cobra hands the root's to a command
	// only while it has none, so the one it got in an earlier test stays.
	train, _, err := rootCmd.Find([]string{"train"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as Ctrl-C at once
	train.SetContext(ctx)
	t.Cleanup(func() { train.SetContext(context.Background()) })
	_, err = run(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--out", out, "--init", "", "--resume=false")
	want := "interrupted before the first epoch finished: there is no checkpoint to resume; run the same command to start again"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// TestOutsideVocab: the words of one's captions that a model to start from
// lacks are counted and named, the most frequent first (they train as <unk>,
// which the run did without a word), of those frequent enough for a
// vocabulary of these captions (train.min_count): rarer ones would be <unk>
// anyway (on Flickr8k, thousands of them).
func TestOutsideVocab(t *testing.T) {
	vocab := text.BuildVocab([][]string{{"a", "dog", "runs"}}, 1)
	captions := [][]string{{"a", "café", "dog"}, {"a", "mädchen", "café"}, {"zebra", "x", "y", "z", "w"}}
	want := "7 words that appear at least 1 times in the train captions are not in the vocabulary of train.init's model (café, mädchen, w, x, y and 2 more), 8 of their 11 words"
	if got := outsideVocab(captions, vocab, 1); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	want = "1 words that appear at least 2 times in the train captions are not in the vocabulary of train.init's model (café), 2 of their 11 words"
	if got := outsideVocab(captions, vocab, 2); got != want {
		t.Errorf("min count 2: got  %q\nwant %q", got, want)
	}
	if got := outsideVocab(captions, vocab, 3); got != "" {
		t.Errorf("min count 3: %q, want none", got)
	}
}

// TestTrainWarnsOfDataQuirks: a dev photo that is a train photo (the same
// content under another name, as extract's hashes show) is warned of, since
// the dev scores then flatter the model; so is a photo replaced under its
// name since extract read it (its features are the old photo's), in train and
// eval; and captions longer than train.max_len are said to be cut. All went
// without a word.
func TestTrainWarnsOfDataQuirks(t *testing.T) {
	resetFlags(t, "train", "arch", "data", "features", "init", "resume", "out", "epochs")
	resetFlags(t, "eval", "from-images", "split", "model", "data", "features", "captions")
	assets, data, feats, _ := sampleDataset(t, 7)
	trainList, _ := os.ReadFile(filepath.Join(data, "Flickr_8k.trainImages.txt"))
	first := strings.Fields(string(trainList))[0]
	if err := os.Symlink(filepath.Join(data, "images", first), filepath.Join(data, "images", "copy.jpg")); err != nil {
		t.Fatal(err)
	}
	for file, line := range map[string]string{"Flickr8k.token.txt": "copy.jpg#0\tA dog runs on the grass .\n", "Flickr_8k.devImages.txt": "copy.jpg\n"} {
		f, err := os.OpenFile(filepath.Join(data, file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(line)
		f.Close()
	}
	resetFlags(t, "extract", "split", "images") // as sampleDataset set them
	if _, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--data", data, "--out", feats, "--grid"); err != nil {
		t.Fatal(err)
	}
	// The second train photo replaced by another under its name.
	second := strings.Fields(string(trainList))[1]
	other, _ := filepath.Glob(filepath.Join(assets, "samples", "flickr8k_fullres", "*.jpg"))
	replacement := other[len(other)-1]
	if filepath.Base(replacement) == second {
		replacement = other[len(other)-2]
	}
	if err := os.Remove(filepath.Join(data, "images", second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(replacement, filepath.Join(data, "images", second)); err != nil {
		t.Fatal(err)
	}
	// The third copied in place: a new file's time, the same content, which
	// is no replacement.
	third := filepath.Join(data, "images", strings.Fields(string(trainList))[2])
	same, err := os.ReadFile(third)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(third); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(third, same, 0o644); err != nil {
		t.Fatal(err)
	}
	changed := "warning: 1 photos were replaced since extract read them (" + second + "): their features are the old photos'; run `captioner extract --out " + feats + " --grid --data " + data + "` to update them"
	_, evalLog, err := runStderr(t, "eval", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--model", shippedModel, "--split", "train", "--from-images=false", "--captions", filepath.Join(t.TempDir(), "captions.json"))
	if err != nil || !strings.Contains(evalLog, changed) {
		t.Errorf("eval: %v; its log lacks %q:\n%s", err, changed, evalLog)
	}
	t.Setenv("CAPTIONER_TRAIN_MAX_LEN", "5")
	out, log, err := runStderr(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--out", t.TempDir(), "--init", "", "--resume=false", "--epochs", "1")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	// One epoch of 7 photos matches no dev 4-gram: the last line says dev loss chose.
	if want := "; best epoch 1 (by dev loss: no dev 4-gram matched): dev BLEU-1..4 "; !strings.Contains(out, want) {
		t.Errorf("train printed %q, want it to say %q", out, want)
	}
	for _, want := range []string{
		"warning: 1 dev photos are the same as train photos (copy.jpg = " + first + "): the dev scores of photos the model trains on flatter it; take each out of one split",
		"note: 10 of the 14 train captions have more than train.max_len (5) words, up to 6: training reads their first 5",
		changed,
		// A dev split of a few photos chooses the best epoch by chance's 4-grams.
		"warning: the dev split has 4 photos: the best epoch is the one whose dev captions score the best BLEU-4",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
