package text

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/captioner/captioner/internal/listing"
)

// Split names. Every loader uses these, whatever its file calls them.
const (
	SplitTrain = "train"
	SplitDev   = "dev" // Karpathy's "val"
	SplitTest  = "test"
)

// splitMarks says how each layout puts a photo in a split, for the error of
// a dataset without it.
var splitMarks = map[string]string{
	SplitTrain: "a CSV's split column, " + Flickr8kTrain + ", or a Karpathy file's \"train\" or \"restval\"",
	SplitDev:   "a CSV's split column (dev or val), " + Flickr8kDev + ", or a Karpathy file's \"val\"",
	SplitTest:  "a CSV's split column, " + Flickr8kTest + ", or a Karpathy file's \"test\"",
}

// Image is one photo with its captions.
type Image struct {
	Name     string     // unique within a dataset: the file name ("1000268201_693b08cb0e.jpg"), a CSV's path, or a Karpathy file's filepath/filename when its file names repeat
	Path     string     // where the photo is: see the loaders for what it is relative to
	Raw      []string   // the captions as written
	Captions [][]string // Raw[i] cleaned: CleaningSeed after loading, see Dataset.Reclean
}

// Dataset is a captioning dataset split into train, dev and (if present) test.
type Dataset struct {
	Name     string             // a Flickr8k-layout folder's name ("flickr8k"), or the "dataset" field of a Karpathy JSON file
	Source   string             // what it was read from: the Flickr8k folder or the JSON file
	Splits   map[string][]Image // SplitTrain, SplitDev, SplitTest -> images in file order
	Warnings []string           // data quirks that were skipped, with counts
}

// Split returns the images of a split, or an error naming the splits there are.
func (d *Dataset) Split(name string) ([]Image, error) {
	if imgs, ok := d.Splits[name]; ok {
		return imgs, nil
	}
	var have []string
	for s := range d.Splits {
		have = append(have, s)
	}
	sort.Strings(have)
	mark, known := splitMarks[name]
	if !known {
		return nil, fmt.Errorf("there is no split %q: name %s, %s or %s (a CSV's or a Karpathy file's \"val\" is %s); dataset %s (%s) has: %s",
			name, SplitTrain, SplitDev, SplitTest, SplitDev, d.Name, d.Source, strings.Join(have, ", "))
	}
	return nil, fmt.Errorf("dataset %s (%s) has no %q split; it has: %s (a photo goes in %s by %s)", d.Name, d.Source, name, strings.Join(have, ", "), name, mark)
}

// Reclean re-tokenises every image's captions from Raw with c: loaders clean
// with CleaningSeed, and a model trained or evaluated with another cleaning
// calls this before building its vocabulary or references.
func (d *Dataset) Reclean(c Cleaning) {
	for _, imgs := range d.Splits {
		for i := range imgs {
			img := &imgs[i]
			img.Captions = make([][]string, len(img.Raw))
			for j, raw := range img.Raw {
				img.Captions[j] = c.Clean(raw)
			}
		}
	}
}

// DropWordless leaves out the captions that have no words once cleaned (one
// of punctuation alone), which training would learn as a caption that ends at
// once, and the images left without a caption; it says what it left out, or
// "" when nothing.
func (d *Dataset) DropWordless() string {
	captions, images, example := 0, 0, ""
	for _, split := range slices.Sorted(maps.Keys(d.Splits)) {
		kept := d.Splits[split][:0]
		for _, img := range d.Splits[split] {
			raw, caps := img.Raw[:0:0], img.Captions[:0:0]
			for j, c := range img.Captions {
				if len(c) > 0 {
					raw, caps = append(raw, img.Raw[j]), append(caps, c)
				} else if captions++; example == "" {
					example = img.Raw[j]
				}
			}
			img.Raw, img.Captions = raw, caps
			if len(caps) > 0 {
				kept = append(kept, img)
			} else {
				images++
			}
		}
		d.Splits[split] = kept
	}
	if captions == 0 {
		return ""
	}
	return fmt.Sprintf("%d captions have no words once cleaned (the first: %q) and are left out, and with them %d images that had no other caption", captions, example, images)
}

// Captions lists the cleaned captions of images, for BuildVocab.
func Captions(images []Image) [][]string {
	var out [][]string
	for _, img := range images {
		out = append(out, img.Captions...)
	}
	return out
}

// Flickr8k file names, as in the original Flickr8k_text.zip.
const (
	Flickr8kTokens = "Flickr8k.token.txt"
	Flickr8kTrain  = "Flickr_8k.trainImages.txt"
	Flickr8kDev    = "Flickr_8k.devImages.txt"
	Flickr8kTest   = "Flickr_8k.testImages.txt"
)

// imageExtensions are the file name extensions of the formats the image
// decoder reads (package imgproc), lower case.
var imageExtensions = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}

// IsImageName says whether name ends in the extension of a format the image
// decoder reads, in any case.
func IsImageName(name string) bool {
	return slices.Contains(imageExtensions, strings.ToLower(filepath.Ext(name)))
}

// flickr8kImageDirs are where the photos may be below the dataset folder: ours,
// and the folder name inside the original Flickr8k_Dataset.zip (sic).
var flickr8kImageDirs = []string{"images", "Flicker8k_Dataset", "Flickr8k_Dataset"}

// LoadFlickr8k reads a Flickr8k folder: Flickr8k.token.txt (lines
// "NAME.jpg#N<TAB>caption"), the split lists Flickr_8k.trainImages.txt and
// Flickr_8k.devImages.txt, and Flickr_8k.testImages.txt if present. Image.Path
// is dir/images/NAME (or the original zip's Flicker8k_Dataset folder if that is
// the one present); the photos themselves are not opened.
//
// Token lines naming something that is not an image file (imageExtensions)
// are skipped with a warning: the original file has five lines naming
// "2258277193_586949ec62.jpg.1", a photo that does not exist. Any other
// malformed line is an error naming the file and line.
func LoadFlickr8k(dir string) (*Dataset, error) {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, notAFolderError(dir)
	}
	// Named after its folder: Flickr8k's is "flickr8k", a dataset of one's
	// own in the layout its own (it was "flickr8k" too); "." is the working
	// directory's name.
	name := filepath.Clean(dir)
	if abs, err := filepath.Abs(dir); err == nil {
		name = abs
	}
	d := &Dataset{Name: filepath.Base(name), Source: dir, Splits: map[string][]Image{}}
	imgs, order, skipped, err := readFlickr8kTokens(filepath.Join(dir, Flickr8kTokens), d)
	if err != nil {
		return nil, err
	}
	imageDir := filepath.Join(dir, flickr8kImageDirs[0])
	for _, sub := range flickr8kImageDirs {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			imageDir = filepath.Join(dir, sub)
			break
		}
	}
	inSplit := map[string]string{} // image name -> "file:line" of its split entry
	for _, s := range []struct {
		split, file string
		optional    bool
	}{
		{SplitTrain, Flickr8kTrain, false},
		{SplitDev, Flickr8kDev, false},
		{SplitTest, Flickr8kTest, true},
	} {
		path := filepath.Join(dir, s.file)
		names, err := readSplitList(path, imgs, skipped, inSplit)
		if s.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		split := make([]Image, len(names))
		for i, n := range names {
			split[i] = *imgs[n]
			split[i].Path = filepath.Join(imageDir, n)
		}
		d.Splits[s.split] = split
	}
	var left []string
	for _, name := range order {
		if inSplit[name] == "" {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s: %d captioned images in no split list were left out: %s",
			Flickr8kTokens, len(left), listing.First(left, 3)))
	}
	return d, nil
}

// notAFolderError refuses a file given where the Flickr8k layout's folder
// goes (a CSV, a JSON-lines file, the token file itself), saying which two
// layouts there are.
func notAFolderError(path string) error {
	hint := "a dataset in one file is a CSV file (.csv, .tsv: a row of photo and caption each; another name: --dataset csv) or Karpathy's JSON layout (.json)"
	if filepath.Base(path) == Flickr8kTokens {
		hint = "give the folder that holds it, " + filepath.Dir(path)
	}
	return fmt.Errorf("flickr8k: %s is a file, and a dataset in the Flickr8k layout is a folder (%s/, %s, %s and %s); %s", path,
		flickr8kImageDirs[0], Flickr8kTokens, Flickr8kTrain, Flickr8kDev, hint)
}

// readFlickr8kTokens parses the token file into images by name, in order of
// first appearance, with captions ordered by their #N, and counts the lines
// it skipped by name (not an image file name).
func readFlickr8kTokens(path string, d *Dataset) (map[string]*Image, []string, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("flickr8k: %w (a dataset folder in the Flickr8k layout holds %s, one caption a line as NAME#N<TAB>caption; a dataset in one file is a CSV file (.csv, .tsv) or Karpathy's JSON layout (.json))", err, Flickr8kTokens)
	}
	defer f.Close()
	imgs := map[string]*Image{}
	var order []string
	seen := map[string]int{} // "NAME#N" -> line
	nums := map[string][]int{}
	skipped := map[string]int{}
	err = eachLine(f, path, func(line string, n int) error {
		if line == "" {
			return nil
		}
		key, caption, ok := strings.Cut(line, "\t")
		if !ok {
			return fmt.Errorf("no tab: want NAME.jpg#N<TAB>caption")
		}
		// The number follows the last '#': a file name may hold one.
		hash := strings.LastIndexByte(key, '#')
		name, num := key[:max(hash, 0)], key[hash+1:]
		if hash < 0 || name == "" {
			return fmt.Errorf("%q has no #N caption number: want NAME.jpg#N<TAB>caption", key)
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 {
			return fmt.Errorf("caption number %q in %q is not a non-negative integer", num, key)
		}
		if !IsImageName(name) {
			skipped[name]++
			return nil
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s appears again (first on line %d)", key, prev)
		}
		seen[key] = n
		caption = strings.TrimSpace(caption)
		if caption == "" {
			return fmt.Errorf("%s has an empty caption", key)
		}
		img := imgs[name]
		if img == nil {
			img = &Image{Name: name}
			imgs[name] = img
			order = append(order, name)
		}
		// Keep captions sorted by #N, whatever the line order.
		at := sort.SearchInts(nums[name], i)
		nums[name] = insert(nums[name], at, i)
		img.Raw = insert(img.Raw, at, caption)
		img.Captions = insert(img.Captions, at, CleaningSeed.Clean(caption))
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	var names []string
	total := 0
	for name, c := range skipped {
		names = append(names, name)
		total += c
	}
	warning := ""
	if total > 0 {
		sort.Strings(names)
		warning = notImageNames(Flickr8kTokens, total, "lines", names)
	}
	switch {
	case len(imgs) == 0 && total > 0: // the warning would never be shown
		return nil, nil, nil, fmt.Errorf("%s: no captions of an image file: %s; a line is NAME.jpg#N<TAB>caption", path, warning)
	case len(imgs) == 0:
		return nil, nil, nil, fmt.Errorf("%s: no captions", path)
	case total > 0:
		d.Warnings = append(d.Warnings, warning)
	}
	return imgs, order, skipped, nil
}

// notImageNames is the warning of a dataset file whose n lines or rows
// (unit) named what is not an image file (IsImageName), names.
func notImageNames(file string, n int, unit string, names []string) string {
	return fmt.Sprintf("%s: skipped %d %s naming %s: not an image file name (%s)",
		file, n, unit, listing.First(names, 3), strings.Join(imageExtensions, " "))
}

func insert[T any](s []T, i int, v T) []T {
	s = append(s, v)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// readSplitList reads one image name per line and checks each against the
// captioned images, those whose caption lines were skipped, and the other
// splits (inSplit, updated).
func readSplitList(path string, imgs map[string]*Image, skipped map[string]int, inSplit map[string]string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("flickr8k: %w (a dataset folder in the Flickr8k layout lists the photos of each split, one file name a line: %s and %s, and optionally %s)", err, Flickr8kTrain, Flickr8kDev, Flickr8kTest)
	}
	defer f.Close()
	var names []string
	err = eachLine(f, path, func(line string, n int) error {
		name := strings.TrimSpace(line)
		if name == "" {
			return nil
		}
		if prev, dup := inSplit[name]; dup {
			return fmt.Errorf("%s is already listed at %s", name, prev)
		}
		if n := skipped[name]; n > 0 { // not an image file name, so not in imgs
			why := "it has no extension"
			if ext := filepath.Ext(name); ext != "" {
				why = fmt.Sprintf("%s is no image format's extension", ext)
			}
			return fmt.Errorf("%s's %d lines in %s were skipped: %s (%s); give the file its format's extension, here and there",
				name, n, Flickr8kTokens, why, strings.Join(imageExtensions, " "))
		}
		if imgs[name] == nil {
			return fmt.Errorf("%s has no captions in %s", name, Flickr8kTokens)
		}
		inSplit[name] = fmt.Sprintf("%s:%d", filepath.Base(path), n)
		names = append(names, name)
		return nil
	})
	if err == nil && len(names) == 0 {
		err = fmt.Errorf("%s: no image names", path)
	}
	return names, err
}

// maxLine bounds a line of a dataset's text files.
const maxLine = 1 << 20

// eachLine calls f for every line of r without its line ending (LF or CRLF)
// and, on the first line, without a UTF-8 byte order mark. An error from f is
// returned as "path:line: error".
func eachLine(r io.Reader, path string, f func(line string, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if err := f(line, n); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%s:%d: the line is longer than %d MiB; a line holds one caption or image name (is this the right file?)", path, n, maxLine>>20)
	} else if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// karpathyImage is one entry of "images" in Karpathy's dataset_*.json.
type karpathyImage struct {
	Filepath  string             `json:"filepath"` // COCO only: "train2014" or "val2014"
	Filename  string             `json:"filename"`
	Split     string             `json:"split"` // train, restval, val or test
	Sentences []karpathySentence `json:"sentences"`
	// COCOName is a COCO captions file's name field (file_name), which
	// tells that format, which this one is not, in the error.
	COCOName string `json:"file_name"`
}

// karpathySentence is a caption: {"raw": "A man ...", "tokens": [...]} as
// Karpathy's files have it (the tokens are not used: see LoadKarpathyJSON),
// or the caption alone as a string.
type karpathySentence struct {
	Raw string `json:"raw"`
}

func (s *karpathySentence) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &s.Raw)
	}
	var obj struct {
		Raw json.RawMessage `json:"raw"`
	}
	if err := json.Unmarshal(b, &obj); err == nil && len(obj.Raw) == 0 {
		return nil // no "raw": the image's check names it
	} else if err == nil && obj.Raw[0] == '"' {
		return json.Unmarshal(obj.Raw, &s.Raw)
	}
	return &sentenceError{got: string(b)}
}

// sentenceError is a sentence that is neither {"raw": "..."} nor a string.
// The loader names the image it is in: a position inside the sentence would
// count from the sentence, not the file.
type sentenceError struct{ got string }

func (e *sentenceError) Error() string {
	got := e.got
	if r := []rune(got); len(r) > 40 {
		got = string(r[:40]) + "..."
	}
	return fmt.Sprintf(`a sentence must be {"raw": "..."} or a string, not %s`, got)
}

// karpathySplits maps Karpathy's split names onto ours: "restval" is the part of
// COCO's val2014 that the Karpathy split gives to training.
var karpathySplits = map[string]string{
	"train":   SplitTrain,
	"restval": SplitTrain,
	"val":     SplitDev,
	"test":    SplitTest,
}

// LoadKarpathyJSON reads a dataset in Karpathy's format (dataset_flickr8k.json,
// dataset_flickr30k.json, dataset_coco.json):
//
//	{"dataset": "coco", "images": [{"filepath": "val2014", "filename": "...jpg",
//	  "split": "restval", "sentences": [{"raw": "A man ...", "tokens": [...]}, ...]}, ...]}
//
// Splits: train and restval -> SplitTrain, val -> SplitDev, test -> SplitTest.
// Image.Path is imageDir/filepath/filename (relative when imageDir is ""), or
// filepath/filename when filepath is absolute.
// Captions are cleaned from raw, not the file's tokens, so every dataset gets the
// same cleaning (the seed notebook's, until Dataset.Reclean). Errors name the file and the line.
func LoadKarpathyJSON(path, imageDir string) (*Dataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("karpathy json: %w", err)
	}
	// fail names the line of the first byte at or after offset that is not
	// whitespace or a comma: the decoder's offsets point just past the previous token.
	fail := func(offset int64, format string, args ...any) error {
		offset = min(offset, int64(len(data)))
		for offset < int64(len(data)) && bytes.IndexByte([]byte(" \t\r\n,"), data[offset]) >= 0 {
			offset++
		}
		line := 1 + bytes.Count(data[:offset], []byte("\n"))
		return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	jsonErr := func(err error) error {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fail(se.Offset, "invalid JSON: %v", err)
		case errors.As(err, &te):
			// The offset counts from the start of the value, which the decoder has
			// just consumed: name the line where it ends.
			return fail(dec.InputOffset(), "wrong type: %v", err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fail(int64(len(data)), "the JSON ends early (truncated file?)")
		}
		return fail(dec.InputOffset(), "%v", err)
	}
	d := &Dataset{Source: path, Splits: map[string][]Image{}}
	if tok, err := dec.Token(); err != nil {
		return nil, jsonErr(err)
	} else if tok != json.Delim('{') {
		return nil, fail(0, "want a JSON object with \"images\" (and, optionally, \"dataset\")")
	}
	seenImages := false
	// A photo is named by its file name, or, when file names repeat across
	// folders (a camera's IMG_0001.jpg on two trips), by filepath/filename.
	byName, byPath := map[string]int{}, map[string]int{} // -> index in images
	type placed struct {
		split     string
		at        int    // in d.Splits[split]
		qualified string // filepath/filename
	}
	var all []placed
	repeated := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(err)
		}
		switch tok {
		case "dataset":
			if err := dec.Decode(&d.Name); err != nil {
				return nil, jsonErr(err)
			}
		case "images":
			seenImages = true
			if tok, err := dec.Token(); err != nil {
				return nil, jsonErr(err)
			} else if tok != json.Delim('[') {
				return nil, fail(dec.InputOffset(), "\"images\" must be an array")
			}
			for i := 0; dec.More(); i++ {
				start := dec.InputOffset()
				var ki karpathyImage
				if err := dec.Decode(&ki); err != nil {
					// A type error's offset counts from the start of this value.
					var te *json.UnmarshalTypeError
					var se *sentenceError
					if errors.As(err, &se) {
						return nil, fail(start, "images[%d]: %v", i, err)
					}
					if errors.As(err, &te) {
						return nil, fail(start+te.Offset, "images[%d]: wrong type: %v", i, err)
					}
					return nil, jsonErr(err)
				}
				img, split, err := ki.image(imageDir)
				if err != nil {
					return nil, fail(start, "images[%d]: %v", i, err)
				}
				q := filepath.ToSlash(filepath.Join(filepath.FromSlash(ki.Filepath), ki.Filename))
				if prev, dup := byPath[q]; dup {
					return nil, fail(start, "images[%d]: %s is also images[%d]", i, q, prev)
				}
				if prev, dup := byName[img.Name]; dup && repeated == "" {
					repeated = fmt.Sprintf("%s is images[%d] and images[%d]", img.Name, prev, i)
				}
				byPath[q], byName[img.Name] = i, i
				all = append(all, placed{split, len(d.Splits[split]), q})
				d.Splits[split] = append(d.Splits[split], img)
			}
			if _, err := dec.Token(); err != nil { // ]
				return nil, jsonErr(err)
			}
		default:
			var skip json.RawMessage // other keys are allowed and ignored
			if err := dec.Decode(&skip); err != nil {
				return nil, jsonErr(err)
			}
		}
	}
	if !seenImages {
		return nil, fail(0, "no \"images\" array: not a Karpathy-style dataset file")
	}
	if len(byPath) == 0 {
		return nil, fail(0, "\"images\" is empty")
	}
	if repeated != "" {
		for _, p := range all {
			d.Splits[p.split][p.at].Name = p.qualified
		}
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s: file names repeat across folders (%s): photos are named filepath/filename, and features extracted under their file names alone are extracted again", filepath.Base(path), repeated))
	}
	if d.Name == "" {
		d.Name = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "dataset_"), ".json")
	}
	return d, nil
}

func (ki *karpathyImage) image(imageDir string) (Image, string, error) {
	if ki.Filename == "" && ki.COCOName != "" {
		return Image{}, "", fmt.Errorf("no \"filename\", but a \"file_name\": this looks like a COCO captions file (images with file_name and id, captions in \"annotations\"), and captioner reads Karpathy's layout, where each image has its filename, split and sentences: {\"images\": [{\"filename\": \"cafe.jpg\", \"split\": \"train\", \"sentences\": [{\"raw\": \"Two friends ...\"}]}]}")
	}
	if ki.Filename == "" {
		return Image{}, "", fmt.Errorf("no \"filename\"")
	}
	split, ok := karpathySplits[ki.Split]
	if !ok {
		return Image{}, "", fmt.Errorf("%s: split %q is not one of train, restval, val, test", ki.Filename, ki.Split)
	}
	if len(ki.Sentences) == 0 {
		return Image{}, "", fmt.Errorf("%s has no sentences", ki.Filename)
	}
	path := filepath.Join(filepath.FromSlash(ki.Filepath), ki.Filename)
	if !filepath.IsAbs(path) { // an absolute filepath had been put under imageDir
		path = filepath.Join(imageDir, path)
	}
	img := Image{Name: ki.Filename, Path: path}
	for j, s := range ki.Sentences {
		raw := strings.TrimSpace(s.Raw)
		if raw == "" {
			return Image{}, "", fmt.Errorf("%s: sentences[%d] has an empty \"raw\"", ki.Filename, j)
		}
		img.Raw = append(img.Raw, raw)
		img.Captions = append(img.Captions, CleaningSeed.Clean(raw))
	}
	return img, split, nil
}
