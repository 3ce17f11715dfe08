package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/internal/testassets"
)

// TestSetupDatasetChecksAFolderOfOnesOwn: setup --dataset with an assets
// folder of the user's own, which setup never writes into, fails when the
// folder has no Flickr8k, where it said "verified".
func TestSetupDatasetChecksAFolderOfOnesOwn(t *testing.T) {
	shared := testassets.Dir(t, "setup verifies the encoder weights")
	mine := t.TempDir()
	if err := os.Symlink(filepath.Join(shared, "models"), filepath.Join(mine, "models")); err != nil {
		t.Fatal(err)
	}
	resetFlags(t, "setup", "dataset")
	_, err := run(t, "setup", "--assets", mine, "--dataset")
	want := "setup --dataset: " + mine + " has no Flickr8k (" + filepath.Join(mine, "data", "flickr8k") + "): setup downloads only into its own cache; put the dataset there yourself, or run setup --dataset without --assets or CAPTIONER_ASSETS"
	if err == nil || err.Error() != want {
		t.Errorf("setup --dataset on a folder without Flickr8k: %v, want %q", err, want)
	}
	// Without --dataset, the folder's encoder weights are all it needs.
	if out, err := run(t, "setup", "--assets", mine, "--dataset=false"); err != nil || out != "assets: "+mine+" verified\n" {
		t.Errorf("setup on a folder without Flickr8k: %v (%q)", err, out)
	}
	if out, err := run(t, "setup", "--assets", shared, "--dataset"); err != nil {
		t.Errorf("setup --dataset on the shared assets, which have it: %v (%s)", err, out)
	}
}

// TestSetupReportsDamagedAndMissingFiles: setup on a folder of one's own
// checks every known file's SHA-256 and names each that is wrong or missing,
// where it would otherwise say "verified".
func TestSetupReportsDamagedAndMissingFiles(t *testing.T) {
	shared := testassets.Dir(t, "setup verifies the encoder weights")
	mine := t.TempDir()
	for i, f := range assets.Known {
		p := filepath.Join(mine, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch i {
		case 0: // damaged
			err = os.WriteFile(p, []byte("not the weights"), 0o644)
		case 1: // missing
		default:
			err = os.Symlink(filepath.Join(shared, filepath.FromSlash(f.Path)), p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resetFlags(t, "setup", "dataset")
	bad := filepath.Join(mine, filepath.FromSlash(assets.Known[0].Path))
	sum, _ := assets.FileSHA256(bad)
	want := "assets: " + bad + " has SHA-256 " + sum + ", want " + assets.Known[0].SHA256 + " (a different or damaged file: replace it with " + assets.Known[0].URL + ")\n" +
		"assets: " + assets.Known[1].Path + " is missing from " + mine + " (the public file: " + assets.Known[1].URL + ")\n" +
		"assets: the assets folder is one of your own (--assets, CAPTIONER_ASSETS, or a shared/ found beside the working directory or the repository), which captioner reads but never downloads into: put the files there yourself, or point --assets at a folder laid out like shared/ that has them; where no shared/ folder is found, setting neither makes `captioner setup` download into the cache"
	if out, err := run(t, "setup", "--assets", mine, "--dataset=false"); err == nil || err.Error() != want {
		t.Errorf("setup on a folder with a damaged and a missing file: %v (%q), want %q", err, out, want)
	}
}

// TestNoFlickr8kSaysHowToGetIt: train without --data reads Flickr8k from the
// assets; where it is not there, the error says how to get it (setup
// --dataset into the cache; into a folder of one's own, by hand) or to give a
// dataset of one's own, where it described the Flickr8k layout's files.
func TestNoFlickr8kSaysHowToGetIt(t *testing.T) {
	resetFlags(t, "train", "data", "features", "init", "out")
	mine := t.TempDir()
	_, err := run(t, "train", "--device", "cpu", "--assets", mine, "--data", "", "--init", "", "--out", t.TempDir())
	want := "no Flickr8k in " + filepath.Join(mine, "data", "flickr8k") + ", an assets folder of your own (--assets, CAPTIONER_ASSETS, or a shared/ beside the working directory or repository), which captioner never downloads into: put Flickr8k there, or give a dataset of your own with --data"
	if err == nil || err.Error() != want {
		t.Errorf("a folder of one's own:\n got %v\nwant %s", err, want)
	}
	cache := t.TempDir()
	t.Setenv("CAPTIONER_CACHE", cache)
	t.Setenv("CAPTIONER_ASSETS", "")
	t.Chdir(t.TempDir()) // no shared/ beside it
	_, err = run(t, "train", "--device", "cpu", "--assets", "", "--data", "", "--init", "", "--out", t.TempDir())
	want = "no Flickr8k in the assets cache (" + filepath.Join(cache, "assets", "data", "flickr8k") + ") yet: run `captioner setup --dataset` to download it, or give a dataset of your own with --data"
	if err == nil || err.Error() != want {
		t.Errorf("the cache:\n got %v\nwant %s", err, want)
	}
}
