package text

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/internal/testassets"
)

func TestLoadFlickr8kFixture(t *testing.T) {
	d, err := LoadFlickr8k("testdata/flickr8k")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "flickr8k" || len(d.Splits) != 2 {
		t.Fatalf("name %q, splits %v", d.Name, d.Splits)
	}
	dir := writeFlickr8k(t, "", "", false)
	mine, err := LoadFlickr8k(dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	if mine.Name != filepath.Base(dir) {
		t.Errorf("a folder of one's own is named %q, want its folder's, %q", mine.Name, filepath.Base(dir))
	}
	t.Chdir(dir)
	here, err := LoadFlickr8k(".")
	if err != nil {
		t.Fatal(err)
	}
	if here.Name != filepath.Base(dir) {
		t.Errorf("the working directory is named %q, want %q", here.Name, filepath.Base(dir))
	}
	train, err := d.Split(SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 2 || train[0].Name != "1000_aaaa.jpg" || train[1].Name != "3000_cccc.jpg" {
		t.Fatalf("train = %+v", train)
	}
	if want := filepath.Join("testdata/flickr8k/images", "1000_aaaa.jpg"); train[0].Path != want {
		t.Errorf("path %q, want %q", train[0].Path, want)
	}
	want := [][]string{
		{"dog", "runs", "on", "the", "grass"},
		{"brown", "dog", "is", "running", "through", "field"},
		{"two", "dogs", "play", "in", "the", "park", "near", "trees"},
	}
	if !reflect.DeepEqual(train[0].Captions, want) {
		t.Errorf("captions %q, want %q", train[0].Captions, want)
	}
	if train[0].Raw[2] != "Two dogs play in the park, near 3 trees ." {
		t.Errorf("raw %q", train[0].Raw[2])
	}
	dev, _ := d.Split(SplitDev)
	// Lines #1 then #0 in the file: captions come out in #N order.
	if len(dev) != 1 || dev[0].Raw[0] != "A man in a T-shirt rides his bicycle ." ||
		!reflect.DeepEqual(dev[0].Captions[1], []string{"mans", "bike", "leans", "against", "wall"}) {
		t.Errorf("dev = %+v", dev)
	}
	if _, err := d.Split(SplitTest); err == nil || !strings.Contains(err.Error(), `no "test" split; it has: dev, train`) {
		t.Errorf("missing test split: %v", err)
	}
	// A name that is no split's says which are (it had read "a photo goes in val by ").
	if _, err := d.Split("val"); err == nil || err.Error() != `there is no split "val": name train, dev or test (a CSV's or a Karpathy file's "val" is dev); dataset `+d.Name+` (`+d.Source+`) has: dev, train` {
		t.Errorf("Split(val): %v", err)
	}
	wantWarnings := []string{
		"Flickr8k.token.txt: skipped 2 lines naming 2258277193_586949ec62.jpg.1: not an image file name (.jpg .jpeg .png .gif .bmp .webp)",
		"Flickr8k.token.txt: 1 captioned images in no split list were left out: 4000_dddd.jpg",
	}
	if !reflect.DeepEqual(d.Warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", d.Warnings, wantWarnings)
	}
	if got := len(Captions(train)); got != 5 {
		t.Errorf("Captions(train) has %d captions, want 5", got)
	}
}

// writeFlickr8k writes a Flickr8k folder from the fixture with one file replaced
// (content "" with remove deletes it).
func writeFlickr8k(t *testing.T, file, content string, remove bool) string {
	dir := t.TempDir()
	for _, f := range []string{Flickr8kTokens, Flickr8kTrain, Flickr8kDev} {
		b, err := os.ReadFile(filepath.Join("testdata/flickr8k", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == file {
			if remove {
				continue
			}
			b = []byte(content)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadFlickr8kFileNames: a '#' in a file name is part of the name (the
// caption number follows the last one: it was read as the number, "0.jpg#0"),
// and a photo in a split list whose caption lines were skipped for its name
// (not an image file name) says so, where it said it had no captions.
func TestLoadFlickr8kFileNames(t *testing.T) {
	dir := writeFlickr8k(t, "", "", false)
	appendTo := func(file, text string) {
		b, _ := os.ReadFile(filepath.Join(dir, file))
		if err := os.WriteFile(filepath.Join(dir, file), append(b, text...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(Flickr8kTokens, "Day #2.jpg#0\tA dog runs .\nDay #2.jpg#1\tA cat sleeps .\n9000.HEIC#0\tA dog .\n9000.HEIC#1\tA cat .\n")
	appendTo(Flickr8kDev, "Day #2.jpg\n")
	d, err := LoadFlickr8k(dir)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := d.Split(SplitDev)
	if last := dev[len(dev)-1]; last.Name != "Day #2.jpg" || !slices.Equal(last.Raw, []string{"A dog runs .", "A cat sleeps ."}) {
		t.Errorf("the last dev image is %q with %q, want Day #2.jpg with its two captions", last.Name, last.Raw)
	}
	appendTo(Flickr8kDev, "9000.HEIC\n")
	_, err = LoadFlickr8k(dir)
	want := `Flickr_8k.devImages.txt:3: 9000.HEIC's 2 lines in Flickr8k.token.txt were skipped: .HEIC is no image format's extension (.jpg .jpeg .png .gif .bmp .webp); give the file its format's extension, here and there`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("a listed photo whose lines were skipped: %v, want %q", err, want)
	}
}

func TestLoadFlickr8kErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		remove              bool
		want                string
	}{
		{"no tab", Flickr8kTokens, "1000_aaaa.jpg#0\tA dog .\n1000_aaaa.jpg#1 A dog .\n", false,
			"Flickr8k.token.txt:2: no tab: want NAME.jpg#N<TAB>caption"},
		{"no number", Flickr8kTokens, "1000_aaaa.jpg\tA dog .\n", false,
			`Flickr8k.token.txt:1: "1000_aaaa.jpg" has no #N caption number`},
		{"bad number", Flickr8kTokens, "\n\n1000_aaaa.jpg#x\tA dog .\n", false,
			`Flickr8k.token.txt:3: caption number "x" in "1000_aaaa.jpg#x" is not a non-negative integer`},
		{"duplicate", Flickr8kTokens, "1000_aaaa.jpg#0\tA dog .\r\n1000_aaaa.jpg#0\tA cat .\r\n", false,
			"Flickr8k.token.txt:2: 1000_aaaa.jpg#0 appears again (first on line 1)"},
		{"empty caption", Flickr8kTokens, "1000_aaaa.jpg#0\t  \n", false,
			"Flickr8k.token.txt:1: 1000_aaaa.jpg#0 has an empty caption"},
		{"no captions", Flickr8kTokens, "\n", false, "Flickr8k.token.txt: no captions"},
		{"no image names", Flickr8kTokens, "a #0\tA dog .\nb #0\tA cat .\nc #0\tA .\nd #0\tA .\nd #1\tA .\n", false,
			"Flickr8k.token.txt: no captions of an image file: Flickr8k.token.txt: skipped 5 lines naming a , b , c  and 1 more: not an image file name (.jpg .jpeg .png .gif .bmp .webp); a line is NAME.jpg#N<TAB>caption"},
		{"long line", Flickr8kTokens, "1000_aaaa.jpg#0\tA dog .\n1000_aaaa.jpg#1\t" + strings.Repeat("dog ", 300_000) + "\n", false,
			"Flickr8k.token.txt:2: the line is longer than 1 MiB; a line holds one caption or image name (is this the right file?)"},
		{"missing tokens", Flickr8kTokens, "", true, "Flickr8k.token.txt: no such file or directory (a dataset folder in the Flickr8k layout holds Flickr8k.token.txt, one caption a line as NAME#N<TAB>caption; a dataset in one file is a CSV file (.csv, .tsv) or Karpathy's JSON layout (.json))"},
		{"uncaptioned", Flickr8kTrain, "1000_aaaa.jpg\n9999_zzzz.jpg\n", false,
			"Flickr_8k.trainImages.txt:2: 9999_zzzz.jpg has no captions in Flickr8k.token.txt"},
		{"twice", Flickr8kDev, "\n2000_bbbb.jpg\n3000_cccc.jpg\n", false,
			"Flickr_8k.devImages.txt:3: 3000_cccc.jpg is already listed at Flickr_8k.trainImages.txt:2"},
		{"empty split", Flickr8kDev, "\n", false, "Flickr_8k.devImages.txt: no image names"},
		{"missing dev", Flickr8kDev, "", true, "Flickr_8k.devImages.txt: no such file or directory (a dataset folder in the Flickr8k layout lists the photos of each split, one file name a line: Flickr_8k.trainImages.txt and Flickr_8k.devImages.txt, and optionally Flickr_8k.testImages.txt)"},
	} {
		_, err := LoadFlickr8k(writeFlickr8k(t, tc.file, tc.content, tc.remove))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	// A file where the folder goes: a CSV of one's own, or the token file.
	dir := writeFlickr8k(t, "", "", false)
	for path, hint := range map[string]string{
		filepath.Join(dir, "captions.csv"): "a dataset in one file is a CSV file (.csv, .tsv: a row of photo and caption each; another name: --dataset csv) or Karpathy's JSON layout (.json)",
		filepath.Join(dir, Flickr8kTokens): "give the folder that holds it, " + dir,
	} {
		os.WriteFile(path, []byte("image,caption\na.jpg,A dog.\n"), 0o644)
		want := "flickr8k: " + path + " is a file, and a dataset in the Flickr8k layout is a folder (images/, Flickr8k.token.txt, Flickr_8k.trainImages.txt and Flickr_8k.devImages.txt); " + hint
		if _, err := LoadFlickr8k(path); err == nil || err.Error() != want {
			t.Errorf("LoadFlickr8k(%s): %v, want %q", path, err, want)
		}
	}
	// A test split list, if present, is read like the others; a BOM is ignored.
	dir = writeFlickr8k(t, "", "", false)
	if err := os.WriteFile(filepath.Join(dir, Flickr8kTest), []byte("\ufeff4000_dddd.jpg\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadFlickr8k(dir)
	if err != nil {
		t.Fatal(err)
	}
	if test, _ := d.Split(SplitTest); len(test) != 1 || test[0].Name != "4000_dddd.jpg" || len(d.Warnings) != 1 {
		t.Errorf("test split %+v, warnings %q", test, d.Warnings)
	}
}

// TestLoadFlickr8kImageTypes: a dataset of one's own in the Flickr8k layout
// may name photos of any type the decoder reads, in any case; a name of
// another type is skipped with a warning that names it.
func TestLoadFlickr8kImageTypes(t *testing.T) {
	dir := writeFlickr8k(t, Flickr8kTokens, "a.png#0\tA dog .\nb.JPEG#0\tA cat .\nc.WebP#0\tA bird .\nnotes.txt#0\tNot a photo .\n", false)
	for file, names := range map[string]string{Flickr8kTrain: "a.png\nb.JPEG\n", Flickr8kDev: "c.WebP\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(names), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := LoadFlickr8k(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, _ := d.Split(SplitTrain)
	dev, _ := d.Split(SplitDev)
	if len(train) != 2 || train[0].Name != "a.png" || train[1].Name != "b.JPEG" || len(dev) != 1 || dev[0].Name != "c.WebP" {
		t.Errorf("train %+v, dev %+v", train, dev)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "skipped 1 lines naming notes.txt: not an image file name") {
		t.Errorf("warnings %q", d.Warnings)
	}
}

// TestLoadFlickr8kReal loads the real dataset from the shared assets.
func TestLoadFlickr8kReal(t *testing.T) {
	assets := testassets.Dir(t, "the test reads its Flickr8k caption and split files")
	d, err := LoadFlickr8k(filepath.Join(assets, "data/flickr8k"))
	if err != nil {
		t.Fatal(err)
	}
	train, _ := d.Split(SplitTrain)
	dev, _ := d.Split(SplitDev)
	if len(train) != 6000 || len(dev) != 1000 || len(d.Splits) != 2 {
		t.Fatalf("train %d, dev %d, splits %d; want 6000, 1000, 2", len(train), len(dev), len(d.Splits))
	}
	for _, img := range append(train, dev...) {
		if len(img.Captions) != 5 || len(img.Raw) != 5 {
			t.Fatalf("%s has %d captions, want 5", img.Name, len(img.Captions))
		}
	}
	// 35,460 lines = 7,091 images x 5 + 5 lines naming 2258277193_586949ec62.jpg.1;
	// 91 captioned images are in neither list.
	want := []string{
		"Flickr8k.token.txt: skipped 5 lines naming 2258277193_586949ec62.jpg.1: not an image file name (.jpg .jpeg .png .gif .bmp .webp)",
		"Flickr8k.token.txt: 91 captioned images in no split list were left out: 1155138244_859fd6e079.jpg, 1468103286_96a6e07029.jpg, 1479857177_9d4a6f38fd.jpg and 88 more",
	}
	if !reflect.DeepEqual(d.Warnings, want) {
		t.Errorf("warnings %q, want %q", d.Warnings, want)
	}
	if _, err := os.Stat(train[0].Path); err != nil {
		t.Errorf("first train image: %v", err)
	}
	if train[0].Name != "2513260012_03d33305cf.jpg" {
		t.Errorf("first train image %s, want the split file's first line", train[0].Name)
	}
	v := BuildVocab(Captions(train), DefaultMinCount)
	t.Logf("train: %d captions, vocabulary with min count %d: %d ids (%q ... %q)",
		len(Captions(train)), DefaultMinCount, v.Size(), words(v)[4:9], v.Word(v.Size()-1))
	if v.Size() < 2000 || v.Size() > 3500 || v.Word(4) != "in" && v.Word(4) != "the" {
		t.Errorf("vocabulary of %d ids starting %q", v.Size(), words(v)[:8])
	}
}

func TestLoadKarpathyJSON(t *testing.T) {
	d, err := LoadKarpathyJSON("testdata/dataset_small.json", "/data/coco")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "coco" {
		t.Errorf("name %q", d.Name)
	}
	train, _ := d.Split(SplitTrain)
	dev, _ := d.Split(SplitDev)
	test, _ := d.Split(SplitTest)
	if len(train) != 2 || len(dev) != 1 || len(test) != 1 {
		t.Fatalf("splits: train %d dev %d test %d, want 2 1 1 (restval is train)", len(train), len(dev), len(test))
	}
	if train[1].Name != "b.jpg" || train[1].Path != "/data/coco/val2014/b.jpg" {
		t.Errorf("restval image %+v", train[1])
	}
	// Cleaned from "raw" like the notebook, not the file's tokens (which keep "a").
	if want := [][]string{{"dog", "runs"}, {"two", "dogs", "balls"}}; !reflect.DeepEqual(train[0].Captions, want) {
		t.Errorf("captions %q, want %q", train[0].Captions, want)
	}
	if train[0].Raw[1] != "Two dogs, 2 balls!" {
		t.Errorf("raw %q", train[0].Raw[1])
	}
	// Reclean re-tokenises every split from Raw.
	d.Reclean(CleaningStandard)
	if want := [][]string{{"a", "dog", "runs"}, {"two", "dogs", "2", "balls"}}; !reflect.DeepEqual(d.Splits[SplitTrain][0].Captions, want) {
		t.Errorf("standard captions %q, want %q", d.Splits[SplitTrain][0].Captions, want)
	}
	if want := [][]string{{"a", "cats", "nap"}}; !reflect.DeepEqual(d.Splits[SplitTrain][1].Captions, want) {
		t.Errorf("standard captions %q, want %q", d.Splits[SplitTrain][1].Captions, want)
	}
	if want := [][]string{{"the", "sea", "at", "night"}}; !reflect.DeepEqual(d.Splits[SplitTest][0].Captions, want) {
		t.Errorf("standard test captions %q, want %q", d.Splits[SplitTest][0].Captions, want)
	}
	// Without an image folder the path stays relative; the name falls back to
	// the file name. A sentence may be the caption alone, as a string.
	dir := t.TempDir()
	path := filepath.Join(dir, "dataset_flickr30k.json")
	os.WriteFile(path, []byte(`{"images": [{"filename": "x.jpg", "split": "val", "sentences": [{"raw": "A dog ."}, "A cat sleeps ."]}]}`), 0o644)
	d, err = LoadKarpathyJSON(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if dev, _ := d.Split(SplitDev); d.Name != "flickr30k" || dev[0].Path != "x.jpg" || !slices.Equal(dev[0].Raw, []string{"A dog .", "A cat sleeps ."}) {
		t.Errorf("name %q, dev %+v", d.Name, dev)
	}
	// An absolute filepath is where the photo is, not a folder below the
	// image folder.
	os.WriteFile(path, []byte(`{"images": [{"filepath": "/srv/photos", "filename": "x.jpg", "split": "val", "sentences": ["A dog ."]}]}`), 0o644)
	if d, err = LoadKarpathyJSON(path, "/data"); err != nil {
		t.Fatal(err)
	}
	if dev, _ := d.Split(SplitDev); dev[0].Path != filepath.FromSlash("/srv/photos/x.jpg") {
		t.Errorf("an absolute filepath: path %q, want /srv/photos/x.jpg", dev[0].Path)
	}
}

// The same file name in two folders (a camera's IMG_0001.jpg on two trips)
// names every photo filepath/filename, with a warning; it had been refused
// as a duplicate.
func TestLoadKarpathyJSONNamesRepeatedFileNamesByFolder(t *testing.T) {
	valid, err := os.ReadFile("testdata/dataset_small.json")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trips.json")
	os.WriteFile(path, []byte(strings.Replace(string(valid), `"filename": "c.jpg"`, `"filename": "a.jpg"`, 1)), 0o644)
	d, err := LoadKarpathyJSON(path, "/data")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range []string{SplitTrain, SplitDev, SplitTest} {
		for _, im := range d.Splits[s] {
			names = append(names, im.Name)
		}
	}
	if want := []string{"train2014/a.jpg", "val2014/b.jpg", "val2014/a.jpg", "val2014/d.jpg"}; !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
	if want := []string{"trips.json: file names repeat across folders (a.jpg is images[0] and images[2]): photos are named filepath/filename, and features extracted under their file names alone are extracted again"}; !slices.Equal(d.Warnings, want) {
		t.Errorf("warnings %q, want %q", d.Warnings, want)
	}
}

func TestLoadKarpathyJSONErrors(t *testing.T) {
	valid, err := os.ReadFile("testdata/dataset_small.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"syntax", `"imgid": 1, "split"`, `"imgid": 1 "split"`, ":6: invalid JSON"},
		{"type", `"filename": "c.jpg"`, `"filename": 3`, ":8: images[2]: wrong type"},
		{"split", `"split": "test"`, `"split": "holdout"`, `:10: images[3]: d.jpg: split "holdout" is not one of train, restval, val, test`},
		{"filename", `"filename": "b.jpg", `, ``, `:6: images[1]: no "filename"`},
		{"raw type", `"raw": "A man on a bike"`, `"raw": 3`, `:8: images[2]: a sentence must be {"raw": "..."} or a string, not {"tokens": ["a", "man"], "raw": 3, "imgi...`},
		{"sentence type", `[{"tokens": ["a", "man"], "raw": "A man on a bike", "imgid": 2, "sentid": 3}]`, `[5]`, `:8: images[2]: a sentence must be {"raw": "..."} or a string, not 5`},
		{"coco", `"filename": "b.jpg", `, `"file_name": "b.jpg", "id": 2, `, `:6: images[1]: no "filename", but a "file_name": this looks like a COCO captions file`},
		{"duplicate", `"filename": "c.jpg"`, `"filename": "b.jpg"`, ":8: images[2]: val2014/b.jpg is also images[1]"},
		{"no sentences", `[{"tokens": ["a", "man"], "raw": "A man on a bike", "imgid": 2, "sentid": 3}]`, `[]`, ":8: images[2]: c.jpg has no sentences"},
		{"empty raw", `"raw": "The sea at night ."`, `"raw": " "`, `:10: images[3]: d.jpg: sentences[0] has an empty "raw"`},
		{"truncated", string(valid), string(valid[:300]), "the JSON ends early (truncated file?)"},
		{"dataset type", `"dataset": "coco"`, `"dataset": 5`, `:14: wrong type: json: cannot unmarshal number`},
		{"no images", `"images"`, `"pictures"`, `:1: no "images" array`},
		{"images not array", string(valid), `{"images": {}}`, `"images" must be an array`},
		{"empty images", string(valid), `{"images": []}`, `"images" is empty`},
		{"not object", string(valid), `[1, 2]`, `:1: want a JSON object`},
	} {
		data := strings.Replace(string(valid), tc.old, tc.new, 1)
		if data == string(valid) {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		path := filepath.Join(t.TempDir(), "dataset_coco.json")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKarpathyJSON(path, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err %v, want one naming %s and containing %q", tc.name, err, path, tc.want)
		}
	}
	if _, err := LoadKarpathyJSON(filepath.Join(t.TempDir(), "missing.json"), ""); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestDropWordless: captions of punctuation alone clean to no words, which
// training learned as a caption ending at once; they go, and an image left
// without a caption with them.
func TestDropWordless(t *testing.T) {
	d := &Dataset{Splits: map[string][]Image{
		SplitTrain: {
			{Name: "a.jpg", Raw: []string{"A dog .", "!!! ... ???"}},
			{Name: "b.jpg", Raw: []string{"?!", "..."}},
		},
		SplitDev: {{Name: "c.jpg", Raw: []string{"Cat ."}}}, // one word is a caption
	}}
	d.Reclean(CleaningStandard)
	if got, want := d.DropWordless(), `3 captions have no words once cleaned (the first: "!!! ... ???") and are left out, and with them 1 images that had no other caption`; got != want {
		t.Errorf("DropWordless = %q, want %q", got, want)
	}
	train := d.Splits[SplitTrain]
	if len(train) != 1 || train[0].Name != "a.jpg" || len(train[0].Raw) != 1 || train[0].Raw[0] != "A dog ." || len(train[0].Captions) != 1 {
		t.Errorf("train split %+v", train)
	}
	if len(d.Splits[SplitDev]) != 1 || d.DropWordless() != "" {
		t.Errorf("dev split %+v, or a second call dropped more", d.Splits[SplitDev])
	}
}
