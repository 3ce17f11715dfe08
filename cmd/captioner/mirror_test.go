package main

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/imgproc"
)

// TestExtractMirrorIsTheMirroredPhoto: extract --mirror stores, under the
// photo's name, the features a mirrored copy of the photo gets from a plain
// extract.
func TestExtractMirrorIsTheMirroredPhoto(t *testing.T) {
	assets := sharedAssets(t)
	resetFlags(t, "extract", "mirror", "grid")
	photo, err := imgproc.DecodeFile(filepath.Join(assets, "samples", "cat_720p.jpg"), imgproc.Limits{MaxPixels: 1 << 24, MaxBytes: 1 << 28})
	if err != nil {
		t.Fatal(err)
	}
	b := photo.Bounds()
	flipped := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			flipped.Set(b.Dx()-1-x, y, photo.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	imgs := t.TempDir()
	for name, im := range map[string]image.Image{"photo.png": photo, "flipped.png": flipped} {
		f, err := os.Create(filepath.Join(imgs, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, im); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	root := t.TempDir()
	args := []string{"extract", "--device", "cpu", "--assets", assets, "--images", imgs, "--out", root, "--batch", "2", "--split", "all", "--grid"}
	if _, err := run(t, args...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, append(args, "--mirror")...); err != nil {
		t.Fatal(err)
	}
	plain := extractedStore(t, root)
	mirrored, err := features.Open(features.MirroredDir(plain.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer mirrored.Close()
	if !mirrored.Manifest().Mirrored || plain.Manifest().Mirrored || len(mirrored.Manifest().Grid) != 3 {
		t.Fatalf("manifests: plain %+v, mirrored %+v", plain.Manifest(), mirrored.Manifest())
	}
	grid := func(s *features.Store, name string) []float32 {
		g := make([]float32, 7*7*1280)
		if err := s.Grid(g, name); err != nil {
			t.Fatal(err)
		}
		return g
	}
	meanDiff := func(a, b []float32) float64 {
		sum := 0.0
		for i := range a {
			sum += math.Abs(float64(a[i] - b[i]))
		}
		return sum / float64(len(a))
	}
	// Not equal: decoding and resizing round to 8-bit levels, and a tie can
	// round the other way in the flipped photo (measured: at most one level).
	same := meanDiff(grid(mirrored, "photo.png"), grid(plain, "flipped.png"))
	unlike := meanDiff(grid(mirrored, "photo.png"), grid(plain, "photo.png"))
	t.Logf("mean grid difference: %.4f from the flipped photo, %.4f from the photo", same, unlike)
	if same > 0.1*unlike {
		t.Errorf("the photo's mirrored features differ from the flipped photo's by %.4f on average, and from the photo's by %.4f; want under a tenth", same, unlike)
	}
}

// TestTrainMirrorNeedsMirroredFeatures: train --mirror without extract
// --mirror says what to run, the command whole; so does a photo replaced
// since its mirrored features were made, whose features (the old photo's,
// flipped) were trained on without a word.
func TestTrainMirrorNeedsMirroredFeatures(t *testing.T) {
	assets, data, feats, _ := sampleDataset(t, 6)
	resetFlags(t, "train", "mirror", "arch", "epochs", "out", "features", "data", "init", "resume")
	train := func() error {
		_, err := run(t, "train", "--device", "cpu", "--assets", assets, "--data", data, "--features", feats, "--arch", "attention",
			"--epochs", "1", "--out", t.TempDir(), "--mirror", "--init", "", "--resume=false")
		return err
	}
	err := train()
	st := extractedStore(t, feats)
	extract := "captioner extract --out " + feats + " --grid --data " + data + " --mirror --split train"
	want := "train.mirror: no features of the mirrored photos in " + features.MirroredDir(st.Path()) + ": run `" + extract + "` first"
	if err == nil || err.Error() != want {
		t.Errorf("train --mirror without mirrored features: %v\nwant %s", err, want)
	}

	resetFlags(t, "extract", "split", "images", "mirror", "grid") // as sampleDataset set them
	if _, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--data", data, "--out", feats, "--grid", "--mirror", "--split", "train"); err != nil {
		t.Fatal(err)
	}
	trainList, _ := os.ReadFile(filepath.Join(data, "Flickr_8k.trainImages.txt"))
	first := strings.Fields(string(trainList))[0]
	devList, _ := os.ReadFile(filepath.Join(data, "Flickr_8k.devImages.txt"))
	other := filepath.Join(data, "images", strings.Fields(string(devList))[0])
	if err := os.Remove(filepath.Join(data, "images", first)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(data, "images", first)); err != nil { // a dev photo's content under its name
		t.Fatal(err)
	}
	if _, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--data", data, "--out", feats, "--grid", "--mirror=false", "--split", "train"); err != nil {
		t.Fatal(err)
	}
	want = "train.mirror: 1 photos were replaced since their mirrored features were made (" + first + "): run `" + extract + "`"
	if err := train(); err == nil || err.Error() != want {
		t.Errorf("train --mirror, a photo replaced since extract --mirror: %v\nwant %s", err, want)
	}
}
