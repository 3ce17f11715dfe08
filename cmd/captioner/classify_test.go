package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
)

func sharedAssets(t *testing.T) string {
	t.Helper()
	dir := testassets.Dir(t, "classify needs the encoder weights and photos")
	t.Setenv("CAPTIONER_CACHE", t.TempDir()) // import into a fresh weights cache
	return dir
}

func TestClassifySamplePhotos(t *testing.T) {
	assets := sharedAssets(t)
	grace := filepath.Join(assets, "samples", "grace_hopper.bmp")
	cat := filepath.Join(assets, "samples", "cat_720p.jpg")
	out, err := run(t, "classify", "--json", "--top", "3", "--device", "cpu", "--assets", assets, grace, cat)
	if err != nil {
		t.Fatal(err)
	}
	var res []classResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("classify --json printed no JSON array: %v\n%s", err, out)
	}
	if len(res) != 2 || res[0].Image != grace || len(res[0].Labels) != 3 {
		t.Fatalf("results %+v", res)
	}
	if l := res[0].Labels[0]; l.Label != "military uniform" || l.Index != 653 || l.Prob < 0.5 {
		t.Errorf("grace_hopper.bmp: top-1 %+v, want military uniform (653)", l)
	}
	if l := res[1].Labels[0]; !strings.Contains(l.Label, "cat") || l.Index < 282 || l.Index > 286 {
		t.Errorf("cat_720p.jpg: top-1 %+v, want a cat class (282-286)", l)
	}

	// Text output; an unreadable file is reported and the others still classified.
	bad := filepath.Join(t.TempDir(), "notes.jpg")
	os.WriteFile(bad, []byte("not a photo"), 0o644)
	out, err = run(t, "classify", "--json=false", "--top", "1", "--device", "cpu", "--assets", assets, bad, grace)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 images could not be read") {
		t.Errorf("bad file: err = %v", err)
	}
	if !strings.Contains(out, grace+"\n") || !strings.Contains(out, "military uniform (653)") {
		t.Errorf("text output:\n%s", out)
	}
	// JSON has an element for the unreadable image too, in its place (as caption's).
	resetFlags(t, "classify", "top", "json")
	out, err = run(t, "classify", "--json", "--top", "1", "--device", "cpu", "--assets", assets, bad, grace)
	if err == nil || err.Error() != "1 of 2 images could not be read" {
		t.Errorf("a bad file and a photo: %v", err)
	}
	var mixed []map[string]any
	if jerr := json.Unmarshal([]byte(out), &mixed); jerr != nil || len(mixed) != 2 ||
		mixed[0]["image"] != bad || mixed[0]["error"] != "imgproc: unsupported image format: text, not an image; accepted formats are JPEG, PNG, GIF, BMP and WebP" || mixed[0]["labels"] != nil ||
		mixed[1]["image"] != grace || mixed[1]["labels"] == nil {
		t.Errorf("a bad file and a photo, JSON: %v\n%s", jerr, out)
	}
	if _, err = run(t, "classify", "--top", "1002", "--device", "cpu", "--assets", assets, grace); err == nil || err.Error() != "--top 1002: want 1..1001" {
		t.Errorf("--top 1002: %v", err)
	}
	// A folder stands for its photos, as with caption; standard input holds
	// one photo (the second - had been reported as an empty image).
	folder := t.TempDir()
	for _, p := range []string{grace, cat} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(folder, filepath.Base(p)), b, 0o644)
	}
	out, err = run(t, "classify", "--json", "--top", "1", "--device", "cpu", "--assets", assets, folder)
	res = nil
	if jerr := json.Unmarshal([]byte(out), &res); err != nil || jerr != nil || len(res) != 2 || res[0].Image != filepath.Join(folder, "cat_720p.jpg") || res[1].Labels[0].Index != 653 {
		t.Errorf("classify FOLDER: %v, %v, %+v", err, jerr, res)
	}
	if _, err = run(t, "classify", "--device", "cpu", "--assets", assets, "-", "-"); err == nil || err.Error() != "- (standard input) is given more than once, and holds one photo: give it once" {
		t.Errorf("classify - -: %v", err)
	}
	// A failed write is one error, not one per line (/dev/full had printed six).
	var w failingWriter
	err = printClassify(&w, []any{res[0], res[1]}, false)
	if w.calls != 1 || err == nil || err.Error() != "no space left on device" {
		t.Errorf("printing to a full disk: %d writes, error %v", w.calls, err)
	}
}

func TestExtractIsResumableAndKeyedByContent(t *testing.T) {
	assets := sharedAssets(t)
	imgs, root := t.TempDir(), t.TempDir()
	src := filepath.Join(assets, "data", "flickr8k", "images")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries[:3] {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		os.WriteFile(filepath.Join(imgs, e.Name()), b, 0o644)
		names = append(names, e.Name())
	}
	args := []string{"extract", "--device", "cpu", "--assets", assets, "--images", imgs, "--out", root, "--batch", "2", "--split", "all", "--grid=false"}
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "3 images (3 computed") {
		t.Errorf("first run: %s", out)
	}
	// Replace one image's content: only it is recomputed.
	b, _ := os.ReadFile(filepath.Join(src, entries[5].Name()))
	os.WriteFile(filepath.Join(imgs, names[1]), b, 0o644)
	if out, err = run(t, args...); err != nil || !strings.Contains(out, "3 images (1 computed") {
		t.Errorf("second run: %v\n%s", err, out)
	}
	st := extractedStore(t, root)
	if st.Len() != 4 || len(st.Names()) != 3 {
		t.Errorf("%d records, names %v; want 4 records (one replaced image) and 3 names", st.Len(), st.Names())
	}
	feats, err := st.LoadPooled(names)
	if err != nil || len(feats) != 3*1280 {
		t.Fatalf("LoadPooled: %d values, %v", len(feats), err)
	}
	var sum float32
	for _, v := range feats {
		if v < 0 || v > 6 {
			t.Fatalf("pooled feature %g outside ReLU6's [0, 6]", v)
		}
		sum += v
	}
	if sum == 0 {
		t.Error("all-zero features")
	}
}

func TestExtractGridAveragesToPooled(t *testing.T) {
	assets := sharedAssets(t)
	root := t.TempDir()
	photo := filepath.Join(assets, "samples", "flickr8k_fullres")
	entries, err := os.ReadDir(photo)
	if err != nil {
		t.Fatal(err)
	}
	imgs := t.TempDir()
	name := entries[0].Name()
	b, _ := os.ReadFile(filepath.Join(photo, name))
	os.WriteFile(filepath.Join(imgs, name), b, 0o644)
	if _, err := run(t, "extract", "--device", "cpu", "--assets", assets, "--images", imgs, "--out", root, "--batch", "1", "--split", "all", "--grid"); err != nil {
		t.Fatal(err)
	}
	st := extractedStore(t, root)
	if g := st.Manifest().Grid; len(g) != 3 || g[0] != 7 || g[2] != 1280 {
		t.Fatalf("manifest grid %v", g)
	}
	grid := make([]float32, 7*7*1280)
	if err := st.Grid(grid, name); err != nil {
		t.Fatal(err)
	}
	pooled, err := st.Pooled(name)
	if err != nil {
		t.Fatal(err)
	}
	// The pooled vector is the mean of the grid over its 49 positions; the grid is
	// stored as float16, so the means agree to float16 precision.
	for c := 0; c < 1280; c++ {
		var s float32
		for p := 0; p < 49; p++ {
			s += grid[p*1280+c]
		}
		if d := s/49 - pooled[c]; d > 2e-3 || d < -2e-3 {
			t.Fatalf("channel %d: grid mean %g, pooled %g", c, s/49, pooled[c])
		}
	}
}
