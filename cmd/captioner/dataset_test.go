package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

// ownFlickr8k writes a dataset of one's own in the Flickr8k layout: three
// photos from the shared assets under other names (one a PNG name, whose
// bytes are still a JPEG: the decoder goes by content), captions and splits.
// It returns the dataset folder.
func ownFlickr8k(t *testing.T, assets string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(assets, "data", "flickr8k", "images")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	var tokens bytes.Buffer
	for i, name := range []string{"cafe.jpg", "dog.PNG", "park.jpeg"} {
		b, err := os.ReadFile(filepath.Join(src, entries[i].Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "images", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&tokens, "%s#0\tA photo at the café, number %d!\n", name, i)
	}
	tokens.WriteString("notes.txt#0\tNot a photo .\n")
	for file, body := range map[string]string{
		"Flickr8k.token.txt":        tokens.String(),
		"Flickr_8k.trainImages.txt": "cafe.jpg\ndog.PNG\n",
		"Flickr_8k.devImages.txt":   "park.jpeg\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestExtractOwnDataset: extract --data computes a split of one's own
// dataset, under the dataset's names (which train looks features up by), from
// the photos the dataset names; the loader's warning is shown.
func TestExtractOwnDataset(t *testing.T) {
	assets := sharedAssets(t)
	data, root := ownFlickr8k(t, assets), t.TempDir()
	resetFlags(t, "extract", "images", "out", "batch", "split", "grid", "data")
	var log bytes.Buffer
	rootCmd.SetErr(&log)
	rootCmd.SetOut(&bytes.Buffer{})
	rootCmd.SetArgs([]string{"extract", "--device", "cpu", "--assets", assets, "--data", data, "--images", "", "--split", "train", "--out", root, "--batch", "2", "--grid=false"})
	if err := rootCmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{
		"warning: Flickr8k.token.txt: skipped 1 lines naming notes.txt: not an image file name",
		"extract: 2 images: split train of dataset " + filepath.Base(data) + " (" + data + ")",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	st := extractedStore(t, root)
	if got := st.Names(); len(got) != 2 || got[0] != "cafe.jpg" || got[1] != "dog.PNG" {
		t.Errorf("stored names %v, want the train split's [cafe.jpg dog.PNG]", got)
	}
}

// TestExtractNamesFewFailures: a split whose photos are not where --images
// says names the first ten that cannot be read and counts the rest.
func TestExtractNamesFewFailures(t *testing.T) {
	assets := sharedAssets(t)
	resetFlags(t, "extract", "images", "out", "batch", "split", "grid", "data")
	var log bytes.Buffer
	rootCmd.SetErr(&log)
	rootCmd.SetOut(&bytes.Buffer{})
	rootCmd.SetArgs([]string{"extract", "--device", "cpu", "--assets", assets, "--data", "", "--images", t.TempDir(), "--split", "dev", "--out", t.TempDir(), "--grid=false"})
	err := rootCmd.Execute()
	if err == nil || !strings.HasPrefix(err.Error(), "none of the 1000 images could be read (the first listed above): is ") {
		t.Errorf("error %v", err)
	}
	if n := strings.Count(log.String(), "extract: skipping "); n != shownFailures {
		t.Errorf("%d failures named, want %d:\n%.2000s", n, shownFailures, log.String())
	}
	if !strings.Contains(log.String(), "more images cannot be read; counting them without naming them") {
		t.Errorf("no word that the rest are counted:\n%.2000s", log.String())
	}
}

// TestExtractImagesSources: where each --split and --images/--data
// combination takes its photos from, Karpathy paths included (relative to the
// JSON file's folder, which a .json --data alone selects).
func TestExtractImagesSources(t *testing.T) {
	assets := testassets.Dir(t, "the datasets copy photos from the shared assets")
	data := ownFlickr8k(t, assets)
	cfgFor := func(dataPath string) *config.Config {
		t.Helper()
		cfg, err := config.Load(viper.New(), "")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Assets, cfg.Train.Data = assets, dataPath
		if strings.HasSuffix(dataPath, ".json") {
			cfg.Train.Dataset = "karpathy" // what Load infers from the flag's value
		}
		return cfg
	}
	kdir := t.TempDir()
	kjson := filepath.Join(kdir, "dataset_mine.json")
	if err := os.WriteFile(kjson, []byte(`{"images": [
		{"filepath": "photos", "filename": "a.png", "split": "train", "sentences": [{"raw": "A dog."}]},
		{"filename": "b.jpg", "split": "val", "sentences": [{"raw": "A cat."}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	for _, tc := range []struct {
		name, data, split, images string
		want                      []imageFile
	}{
		{"own train split", data, "train", "", []imageFile{{"cafe.jpg", filepath.Join(data, "images", "cafe.jpg")}, {"dog.PNG", filepath.Join(data, "images", "dog.PNG")}}},
		{"own split, photos elsewhere", data, "dev", other, []imageFile{{"park.jpeg", filepath.Join(other, "park.jpeg")}}},
		{"all of own dataset", data, "all", "", []imageFile{{"cafe.jpg", filepath.Join(data, "images", "cafe.jpg")}, {"dog.PNG", filepath.Join(data, "images", "dog.PNG")}, {"park.jpeg", filepath.Join(data, "images", "park.jpeg")}}},
		{"a folder's image files", "", "all", filepath.Join(data, "images"), []imageFile{{"cafe.jpg", filepath.Join(data, "images", "cafe.jpg")}, {"dog.PNG", filepath.Join(data, "images", "dog.PNG")}, {"park.jpeg", filepath.Join(data, "images", "park.jpeg")}}},
		// --data and --images: the dataset's photos, there (not the folder's files).
		{"all of karpathy, photos elsewhere", kjson, "all", other, []imageFile{{"a.png", filepath.Join(other, "photos", "a.png")}, {"b.jpg", filepath.Join(other, "b.jpg")}}},
		{"karpathy train", kjson, "train", "", []imageFile{{"a.png", filepath.Join(kdir, "photos", "a.png")}}},
		{"karpathy dev", kjson, "dev", "", []imageFile{{"b.jpg", filepath.Join(kdir, "b.jpg")}}},
		{"karpathy, photos elsewhere", kjson, "train", other, []imageFile{{"a.png", filepath.Join(other, "photos", "a.png")}}},
	} {
		got, _, err := extractImages(cfgFor(tc.data), tc.split, tc.images, &bytes.Buffer{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := extractImages(cfgFor(""), "all", other, &bytes.Buffer{}); err == nil || err.Error() != "no image files in "+other {
		t.Errorf("a folder without images: %v", err)
	}
	// Subfolders are not searched: --images takes one folder, and a dataset
	// lists photos anywhere.
	if err := os.Mkdir(filepath.Join(other, "trip"), 0o755); err != nil {
		t.Fatal(err)
	}
	how := "give --images one of them, or --data a dataset that lists the photos in them"
	if _, _, err := extractImages(cfgFor(""), "all", other, &bytes.Buffer{}); err == nil || err.Error() != "no image files in "+other+", whose 1 subfolders are not searched: "+how {
		t.Errorf("a folder of a subfolder: %v", err)
	}
	os.Symlink(filepath.Join(assets, "samples", "cat_720p.jpg"), filepath.Join(other, "cat.jpg"))
	var warned bytes.Buffer
	if files, _, err := extractImages(cfgFor(""), "all", other, &warned); err != nil || len(files) != 1 || warned.String() != "warning: "+other+" has 1 subfolders, not searched: "+how+"\n" {
		t.Errorf("a photo beside a subfolder: %v, %v, warned %q", files, err, warned.String())
	}
	if _, _, err := extractImages(cfgFor(kjson), "test", "", &bytes.Buffer{}); err == nil || err.Error() != `dataset mine (`+kjson+`) has no "test" split; it has: dev, train (a photo goes in test by a CSV's split column, Flickr_8k.testImages.txt, or a Karpathy file's "test")` {
		t.Errorf("a split the dataset lacks: %v", err)
	}
	if _, _, err := extractImages(cfgFor(data), "val", "", &bytes.Buffer{}); err == nil || err.Error() != `--split "val": want all, train, dev or test` {
		t.Errorf("an unknown split: %v", err)
	}
}

// TestMissingFeatureStoreSaysHowToMakeIt: train and eval without extracted
// features name the command that makes them, with the folder.
func TestMissingFeatureStoreSaysHowToMakeIt(t *testing.T) {
	w, err := encoder.LoadDefault(sharedAssets(t))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cfg := &config.Config{Train: config.Train{Features: root}}
	id := featuresID(cfg, &w.Config)
	_, err = openFeaturesOf(cfg, &w.Config, false)
	want := "features: no feature store in " + features.Dir(root, id) + ": run `captioner extract --out " + root + "` first (that is Flickr8k's photos, the dataset without --data; for your own, give this command --data)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// A store given as the root is told as such (following the advice
	// above would nest a second store in it).
	st, err := features.Create(features.Dir(root, id), features.Manifest{Encoder: id, Dim: 1280})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	inStore := &config.Config{Train: config.Train{Features: features.Dir(root, id)}}
	_, err = openFeaturesOf(inStore, &w.Config, false)
	if want := "features: " + features.Dir(root, id) + " is a feature store, not the folder extract --out names, which holds one store per encoder: give its parent, " + root + ", as --features (train.features)"; err == nil || err.Error() != want {
		t.Errorf("a store as the root: got %v\nwant %s", err, want)
	}
	os.RemoveAll(features.Dir(root, id))
	// eval has another way, and says so; the command it gives is whole: the
	// shipped model reads grids, of the dataset in --data.
	assets, data, _, _ := sampleDataset(t, 1)
	// Every flag eval reads is given: the tests share rootCmd, and another
	// test's --from-images or --captions would otherwise stay set.
	_, err = run(t, "eval", "--device", "cpu", "--assets", assets, "--model", shippedModel, "--data", data, "--features", root,
		"--from-images=false", "--captions", filepath.Join(t.TempDir(), "captions.json"))
	want = "features: no feature store in " + features.Dir(root, id) + ": run `captioner extract --out " + root + " --grid --data " + data + "` first" +
		"; or run eval --from-images, which encodes the photos instead of reading them from a cache"
	if err == nil || err.Error() != want {
		t.Errorf("eval: got %v\nwant %s", err, want)
	}
}

// TestFeaturesOfOtherSizesAreRefused: a store whose manifest gives other
// sizes than its encoder's (edited, or damaged) had every record read at the
// wrong offset, and a model trained on them; eval with a model that reads
// other features than the encoder's panicked in a kernel.
func TestFeaturesOfOtherSizesAreRefused(t *testing.T) {
	w, err := encoder.LoadDefault(sharedAssets(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []features.Manifest{{Dim: 640}, {Dim: 1280, Grid: []int{7, 7, 640}}, {Dim: 1280, Grid: []int{6, 6, 1280}}} {
		cfg := &config.Config{Train: config.Train{Features: t.TempDir()}}
		dir := features.Dir(cfg.Train.Features, featuresID(cfg, &w.Config))
		m.Encoder = featuresID(cfg, &w.Config)
		st, err := features.Create(dir, m)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		want := fmt.Sprintf("features: %s says its features have %d values and grid %v, but its encoder gives 1280 and [7 7 1280]: the manifest is damaged; delete the folder and run captioner extract again", dir, m.Dim, m.Grid)
		if _, err := openFeaturesOf(cfg, &w.Config, len(m.Grid) > 0); err == nil || err.Error() != want {
			t.Errorf("manifest %+v: %v, want %q", m, err, want)
		}
	}

	// A store of the encoder's sizes opens, grids or none; one whose grid
	// file is gone is damage.
	for _, m := range []features.Manifest{{Dim: 1280}, {Dim: 1280, Grid: []int{7, 7, 1280}}} {
		cfg := &config.Config{Train: config.Train{Features: t.TempDir()}}
		m.Encoder = featuresID(cfg, &w.Config)
		dir := features.Dir(cfg.Train.Features, m.Encoder)
		st, err := features.Create(dir, m)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		st, err = openFeaturesOf(cfg, &w.Config, len(m.Grid) > 0)
		if err != nil {
			t.Errorf("manifest %+v: %v", m, err)
			continue
		}
		st.Close()
		if len(m.Grid) > 0 {
			os.Remove(filepath.Join(dir, "grid.f16"))
			_, err := openFeaturesOf(cfg, &w.Config, true)
			if want := "features: " + dir + " has no grid.f16, though its manifest keeps grids: the store is damaged; delete the folder and run captioner extract again"; err == nil || err.Error() != want {
				t.Errorf("a grids store without grid.f16: %v, want %q", err, want)
			}
		}
	}

	assets, data, feats, _ := sampleDataset(t, 1)
	model := t.TempDir()
	v := text.BuildVocab([][]string{{"a", "dog"}}, 1)
	if err := v.Save(filepath.Join(model, pipeline.VocabFile)); err != nil {
		t.Fatal(err)
	}
	dev := cpu.New(1)
	defer dev.Close()
	m, err := decoder.New(dev, decoder.Config{FeatDim: 640, Embed: 8, Hidden: 8, Mid: 8, Vocab: v.Size()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Save(model); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "eval", "--device", "cpu", "--assets", assets, "--model", model, "--data", data, "--features", feats,
		"--from-images=false", "--captions", filepath.Join(t.TempDir(), "captions.json"))
	if want := "pipeline: the encoder gives 1280 features, model " + model + " expects 640"; err == nil || err.Error() != want {
		t.Errorf("eval of a model of 640 features: %v, want %q", err, want)
	}
	photo := filepath.Join(assets, "samples", "cat_720p.jpg")
	if _, err := run(t, "caption", "--device", "cpu", "--assets", assets, "--model", model, photo); err == nil || !strings.Contains(err.Error(), "pipeline: the encoder gives 1280 features, model "+model+" expects 640") {
		t.Errorf("caption with a model of 640 features: %v", err)
	}
}

// TestFeaturesIDNamesWhatMovesFeatures: features decoded by Go's image/jpeg,
// or computed with TF32 GEMMs, go to stores of their own; this build's plain
// float32 features keep the encoder's ID, which stores made before had.
func TestFeaturesIDNamesWhatMovesFeatures(t *testing.T) {
	c := encoder.Config{SourceSHA: strings.Repeat("ab", 32)}
	want := c.ID()
	if imgproc.JPEGDecoder != "libjpeg-turbo" {
		want += "-gojpeg"
	}
	if got := featuresID(&config.Config{}, &c); got != want {
		t.Errorf("featuresID = %q, want %q (%s)", got, want, imgproc.JPEGDecoder)
	}
	var tf32 config.Config
	tf32.CUDA.TF32 = true
	if got := featuresID(&tf32, &c); got != want+"-tf32" {
		t.Errorf("featuresID with cuda.tf32 = %q, want %q", got, want+"-tf32")
	}
}

// TestExtractImagesNeedsOut: photos of a folder of one's own go to a cache of
// their own; the default one is Flickr8k's, whose records a photo of the
// same file name would take over.
func TestExtractImagesNeedsOut(t *testing.T) {
	resetFlags(t, "extract", "images", "out", "data")
	dir := t.TempDir()
	_, err := run(t, "extract", "--images", dir, "--out", "", "--data", "") // flags keep earlier tests' values
	want := "extract: --images " + dir + " without --data or --out would write into the Flickr8k feature cache; give --out DIR for a folder of photos of your own (train and eval then read it with --features DIR)"
	if err == nil || err.Error() != want {
		t.Errorf("extract --images alone: %v, want %q", err, want)
	}
}

// TestExtractReadsImageFilesAlone: in a folder of photos, a device linked as a
// .jpg (/dev/zero was read until memory ran out; /dev/null here, which ends),
// a named pipe (open waited for a writer forever) and a sparse file past the
// size limit with a JPEG's first bytes are each an unreadable image, named
// with why, and the photo beside them is stored.
func TestExtractReadsImageFilesAlone(t *testing.T) {
	assets := sharedAssets(t)
	dir := t.TempDir()
	photo, err := os.ReadFile(filepath.Join(assets, "samples", "cat_720p.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cat.jpg"), photo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(dir, "null.jpg")); err != nil {
		t.Fatal(err)
	}
	pipe := filepath.Join(dir, "pipe.jpg")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	// Were the pipe opened, this writer would end the wait (with an empty
	// image, a different error) rather than leave the test hanging.
	go func() {
		time.Sleep(20 * time.Second)
		if f, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}()
	big, err := os.Create(filepath.Join(dir, "big.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	big.Write(photo[:512])
	big.Truncate(64 << 20)
	big.Close()
	t.Setenv("CAPTIONER_IMAGE_MAX_DECODED_BYTES", fmt.Sprint(16<<20))

	resetFlags(t, "extract", "images", "out", "batch", "split", "grid", "data")
	var log bytes.Buffer
	rootCmd.SetErr(&log)
	rootCmd.SetOut(&bytes.Buffer{})
	out := t.TempDir()
	rootCmd.SetArgs([]string{"extract", "--device", "cpu", "--assets", assets, "--images", dir, "--split", "all", "--out", out, "--grid=false"})
	err = rootCmd.Execute()
	if want := "3 of 4 images could not be read (the first listed above); "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want it to start %q", err, want)
	}
	for _, want := range []string{
		"extract: skipping " + pipe + " is a named pipe, not an image file: move it out of the images folder\n",
		"extract: skipping " + filepath.Join(dir, "null.jpg") + " is a device, not an image file: move it out of the images folder\n",
		"extract: skipping " + filepath.Join(dir, "big.jpg") + ": imgproc: the file holds 64 MiB; an image may decode to at most 16 MiB (image.max_decoded_bytes)",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	st := extractedStore(t, out)
	if got := st.Names(); len(got) != 1 || got[0] != "cat.jpg" {
		t.Errorf("stored names %v, want [cat.jpg]", got)
	}
}

// extractedStore opens the one feature store that extract wrote under root
// (checked: exactly one), closed when the test ends.
func extractedStore(t *testing.T, root string) *features.Store {
	t.Helper()
	dirs, _ := os.ReadDir(root)
	if len(dirs) != 1 || !strings.HasPrefix(dirs[0].Name(), "mobilenet_v2-") {
		t.Fatalf("store folders %v, want one mobilenet_v2-*", dirs)
	}
	st, err := features.Open(filepath.Join(root, dirs[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestExtractComputesAPhotoOnce: two files of the same content are computed
// once, in one batch or in two (both were, and the summary's counts did not
// add up with its records).
func TestExtractComputesAPhotoOnce(t *testing.T) {
	assets := testassets.Dir(t, "extract needs the encoder weights")
	photos := t.TempDir()
	src := filepath.Join(assets, "samples", "flickr8k_fullres", "1019077836_6fc9b15408.jpg")
	for _, name := range []string{"a.jpg", "b copy.jpg"} {
		if err := os.Symlink(src, filepath.Join(photos, name)); err != nil {
			t.Fatal(err)
		}
	}
	resetFlags(t, "extract", "split", "images", "out", "grid", "batch")
	for _, batch := range []string{"32", "1"} {
		out := t.TempDir()
		printed, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--split", "all", "--images", photos, "--out", out, "--grid=false", "--batch", batch)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(printed, "2 images (1 computed at ") || !strings.Contains(printed, ", 1 already cached), 1 records") {
			t.Errorf("batch %s: extract printed %q; want 2 images, 1 computed, 1 already cached, 1 record", batch, printed)
		}
		// Again: all cached, said so (not "0 computed at 0.0 img/s").
		if printed, err = run(t, "extract", "--device", "cpu", "--assets", assets, "--split", "all", "--images", photos, "--out", out, "--grid=false", "--batch", batch); err != nil || !strings.Contains(printed, "2 images (none computed, 2 already cached), 1 records") {
			t.Errorf("batch %s, again: %v, extract printed %q", batch, err, printed)
		}
	}
}

// TestCSVDataset: a spreadsheet's CSV of photo and caption (no split column:
// a tenth of the photos, by name, are dev) is a dataset that extract, train
// and eval take by its file name alone.
func TestCSVDataset(t *testing.T) {
	resetFlags(t, "train", "arch", "data", "dataset", "features", "init", "resume", "out", "epochs")
	resetFlags(t, "eval", "from-images", "split", "model", "data", "dataset", "features", "captions")
	assets, data, _, _ := sampleDataset(t, 7)
	resetFlags(t, "extract", "split", "images", "data", "dataset", "out", "grid") // as sampleDataset set them
	photos, _ := filepath.Glob(filepath.Join(data, "images", "*.jpg"))
	var rows strings.Builder
	rows.WriteString("Image;Caption\n")
	for i, p := range photos {
		fmt.Fprintf(&rows, "images/%s;\"A dog runs; on the grass.\"\nimages/%s;Photo %d of the set.\n", filepath.Base(p), filepath.Base(p), i)
	}
	csvPath := filepath.Join(data, "mine.csv")
	if err := os.WriteFile(csvPath, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	feats := t.TempDir()
	if _, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--data", csvPath, "--out", feats, "--grid"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAPTIONER_TRAIN_MIN_COUNT", "1")
	out := t.TempDir()
	_, log, err := runStderr(t, "train", "--device", "cpu", "--assets", assets, "--data", csvPath, "--features", feats, "--out", out, "--init", "", "--resume=false", "--epochs", "1")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, log)
	}
	d, err := text.LoadCSV(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	nTrain, nDev := len(d.Splits[text.SplitTrain]), len(d.Splits[text.SplitDev])
	if want := fmt.Sprintf("mine: %d train images, %d dev images,", nTrain, nDev); nTrain+nDev != len(photos) || nDev == 0 || !strings.Contains(log, want) {
		t.Errorf("train's log lacks %q (of %d photos):\n%s", want, len(photos), log)
	}
	if _, err := run(t, "eval", "--device", "cpu", "--assets", assets, "--data", csvPath, "--features", feats, "--model", filepath.Join(out, "model"),
		"--split", "dev", "--captions", filepath.Join(t.TempDir(), "captions.json")); err != nil {
		t.Errorf("eval: %v", err)
	}
	// The photos elsewhere (--images): the CSV's paths below that folder.
	elsewhere := t.TempDir()
	if err := os.Symlink(filepath.Join(data, "images"), filepath.Join(elsewhere, "images")); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--data", csvPath, "--images", elsewhere, "--split", "train", "--out", t.TempDir(), "--grid=false"); err != nil || !strings.Contains(out, fmt.Sprintf("\n%d images (", nTrain)) {
		t.Errorf("extract --images: %v\n%s", err, out)
	}
	// A spreadsheet's tab-separated text export: another extension, --dataset csv.
	txt := filepath.Join(data, "mine.txt")
	if err := os.WriteFile(txt, []byte(strings.ReplaceAll(rows.String(), ";", "\t")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "eval", "--device", "cpu", "--assets", assets, "--data", txt, "--dataset", "csv", "--features", feats, "--model", filepath.Join(out, "model"),
		"--split", "dev", "--captions", filepath.Join(t.TempDir(), "captions.json")); err != nil {
		t.Errorf("eval --dataset csv of a .txt: %v", err)
	}
}

// treeImages walks a folder given as a link too, leaves hidden folders out
// (".thumbnails", "@eaDir": copies) and goes on past a subfolder it cannot
// read, saying so.
func TestTreeImages(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	for _, f := range []string{"a.jpg", "trip/b.jpg", ".thumbnails/a.jpg", "@eaDir/a.jpg", "locked/c.jpg"} {
		p := filepath.Join(real, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(real, "locked")
	want := []string{"a.jpg", "locked/c.jpg", "trip/b.jpg"}
	if os.Geteuid() != 0 { // root reads any folder
		os.Chmod(locked, 0)
		t.Cleanup(func() { os.Chmod(locked, 0o755) })
		want = []string{"a.jpg", "trip/b.jpg"}
	}
	var warned bytes.Buffer
	files, err := treeImages(link, &warned)
	var got []string
	for _, f := range files {
		rel, _ := filepath.Rel(link, f.Path)
		got = append(got, filepath.ToSlash(rel))
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("treeImages(link): %q, %v; want %q", got, err, want)
	}
	if os.Geteuid() != 0 && !strings.Contains(warned.String(), "locked: permission denied: left out") {
		t.Errorf("an unreadable subfolder: warned %q", warned.String())
	}
	if _, err := treeImages(filepath.Join(real, "@eaDir"), &warned); err != nil {
		t.Errorf("a hidden folder named itself is walked: %v", err)
	}
}
