package main

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const setDir = "../../../testdata/ood"

// The photo set and its README agree, and the photos are as small as the
// README says.
func TestPhotoSet(t *testing.T) {
	photos, err := readSet(filepath.Join(setDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(photos) < 50 {
		t.Errorf("%d photos, issue 14 asks for at least 50", len(photos))
	}
	listed := map[string]bool{}
	for _, p := range photos {
		if listed[p.File] {
			t.Errorf("%s is listed twice", p.File)
		}
		listed[p.File] = true
		if p.Package == "" || p.Path == "" || p.Licence == "" || p.Shows == "" {
			t.Errorf("%s: row %+v lacks a package, path, licence or description", p.File, p)
		}
	}
	files, err := filepath.Glob(filepath.Join(setDir, "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		name := filepath.Base(f)
		if !listed[name] {
			t.Errorf("%s is not in the README", name)
		}
		delete(listed, name)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(b))
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if max(cfg.Width, cfg.Height) > 640 {
			t.Errorf("%s is %dx%d, want a long side <= 640", name, cfg.Width, cfg.Height)
		}
	}
	for name := range listed {
		t.Errorf("%s is in the README but not in %s", name, setDir)
	}
	if total > 15<<20 {
		t.Errorf("the set is %d bytes, want at most 15 MiB", total)
	}
}

func TestReadSetErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ readme, want string }{
		{"# set\n\n## Photos\n\n| a.jpg | pkg | /p | GPL | a cat |\n", "README.md:5: a photo row has 5 cells, want 6 (file, package, path, licence, shows, noun)"},
		{"# set\n\n| a.jpg | pkg | /p | GPL | a cat | cat |\n", `README.md: no photo rows under "## Photos" (| file.jpg | package | path | licence | shows | noun |)`},
	} {
		path := filepath.Join(dir, "README.md")
		if err := os.WriteFile(path, []byte(tc.readme), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readSet(path)
		if err == nil || strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)) != tc.want {
			t.Errorf("readSet(%q) = %v, want %q", tc.readme, err, tc.want)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// 286 Egyptian cat, 282 tabby, 968 espresso, 340 sorrel, 209 Labrador
	// retriever. The goat tagged as a dog and captioned "dog" is a confident
	// misrecognition written into the caption.
	classify := write("classify.json", `[
		{"image": "set/cat.jpg", "labels": [{"label": "Egyptian cat", "index": 286, "prob": 0.5}, {"label": "tabby", "index": 282, "prob": 0.3}]},
		{"image": "set/espresso.jpg", "labels": [{"label": "espresso", "index": 968, "prob": 0.98}]},
		{"image": "set/horse.jpg", "labels": [{"label": "sorrel", "index": 340, "prob": 0.4}]},
		{"image": "set/goat.jpg", "labels": [{"label": "Labrador retriever", "index": 209, "prob": 0.9}]}
	]`)
	captions := write("captions.json", `[
		{"image": "set/espresso.jpg", "caption": "little girl is playing in the sand", "score": -1},
		{"image": "set/cat.jpg", "caption": "a kitten sleeps on a bed", "score": -1},
		{"image": "set/horse.jpg", "caption": "black dog is running on the beach", "score": -1},
		{"image": "set/goat.jpg", "caption": "A dog stands on a rock.", "score": -1}
	]`)
	set := write("README.md", "## Photos\n\n| file | package | path | licence | shows | noun |\n| --- | --- | --- | --- | --- | --- |\n"+
		"| cat.jpg | p | /a | CC0 | a cat | cat |\n| espresso.jpg | p | /b | CC0 | a cup of coffee | cup |\n| horse.jpg | p | /c | CC0 | a horse | horse |\n"+
		"| goat.jpg | p | /d | CC0 | a goat on a rock | goat |\n")
	var out strings.Builder
	if err := run(&out, classify, captions, set, 0.6); err != nil {
		t.Fatal(err)
	}
	want := `| photo | top tag | prob | caption | names it |
| --- | --- | --- | --- | --- |
| cat.jpg | cat (Egyptian cat) | 0.80 | a kitten sleeps on a bed | yes |
| espresso.jpg | coffee (espresso) | 0.98 | little girl is playing in the sand | no |
| horse.jpg | horse (sorrel) | 0.40 | black dog is running on the beach | - |
| goat.jpg | dog (Labrador retriever) | 0.90 | A dog stands on a rock. | yes |

4 photos; 3 with a top tag at prob >= 0.60; their captions name the tag's noun in 2: mention rate 66.7%
those top tags are the photo's expected noun in 1 of 3 (33.3%)
captions naming the photo's expected noun: 1 of 4 (25.0%); naming a top tag at prob >= 0.60 that is not it: 1
`
	if out.String() != want {
		t.Errorf("run printed\n%s\nwant\n%s", out.String(), want)
	}

	missing := write("few.json", `[{"image": "set/cat.jpg", "caption": "a cat"}]`)
	if err := run(&out, classify, missing, "", 0.6); err == nil || !strings.Contains(err.Error(), "no caption for set/espresso.jpg") {
		t.Errorf("run with a missing caption = %v, want an error naming set/espresso.jpg", err)
	}
}
