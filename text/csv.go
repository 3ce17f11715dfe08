package text

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/captioner/captioner/internal/listing"
)

// CSV column names LoadCSV accepts, lowercase, the usual first.
var (
	csvImageColumns   = []string{"image", "file", "filename", "file_name", "path", "photo"}
	csvCaptionColumns = []string{"caption", "text", "sentence", "description"}
	csvSplitColumns   = []string{"split"}
)

// csvSplits maps a split column's values onto the split names.
var csvSplits = map[string]string{"train": SplitTrain, "dev": SplitDev, "val": SplitDev, "validation": SplitDev, "test": SplitTest}

// csvDevEvery is how LoadCSV splits a file without a split column: an image
// whose name hashes to 0 modulo this is dev.
const csvDevEvery = 10

// LoadCSV reads a dataset from a CSV file of one caption a row, as a
// spreadsheet exports it:
//
//	image,caption,split
//	photos/cafe.jpg,"Two friends share coffee, at a café.",train
//
// The first row names the columns, in any case, with spaces or hyphens for
// underscores: the photo (image, file, filename, file_name, path or photo: its path from the CSV file's folder, or an
// absolute one, which is also its name in the dataset), the caption (caption, text, sentence or
// description) and, optionally, the split (train, dev or val, test); other
// columns are left alone. The separator is the first of tab, ';' and ','
// that the header row holds (a spreadsheet in a language that writes 0,5
// exports ';'); fields may be quoted, across lines too. A photo's rows are its
// captions, in file order. Without a split column every tenth photo, by a
// hash of its name (so a photo stays where it is as the file grows), is dev,
// and at least one is. Rows naming something that is not an image file
// (IsImageName) are skipped with a warning; any other malformed row is an
// error naming the file and line.
func LoadCSV(path string) (*Dataset, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	return readCSV(raw, path)
}

// readCSV is LoadCSV of the file at path that holds raw.
func readCSV(raw []byte, path string) (*Dataset, error) {
	raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
	header, _, _ := bytes.Cut(raw, []byte("\n"))
	r := csv.NewReader(bytes.NewReader(raw))
	r.Comma = ','
	for _, sep := range []rune{'\t', ';'} {
		if bytes.ContainsRune(header, sep) {
			r.Comma = sep
			break
		}
	}
	r.FieldsPerRecord = -1 // checked below, naming the line
	names, err := r.Read()
	if err != nil {
		return nil, csvError(path, err)
	}
	col := func(accepted []string) int {
		for i, n := range names { // "File Name" and "file-name" are file_name
			n = strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(strings.TrimSpace(n)))
			if slices.Contains(accepted, n) {
				return i
			}
		}
		return -1
	}
	imageCol, captionCol, splitCol := col(csvImageColumns), col(csvCaptionColumns), col(csvSplitColumns)
	if imageCol < 0 || captionCol < 0 {
		return nil, fmt.Errorf("%s:1: the first row names the columns %q; want one of %s for the photo and one of %s for the caption (and %s, optionally)",
			path, names, strings.Join(csvImageColumns, ", "), strings.Join(csvCaptionColumns, ", "), csvSplitColumns[0])
	}
	dir := filepath.Dir(path)
	d := &Dataset{Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Source: path, Splits: map[string][]Image{}}
	imgs := map[string]*Image{}
	splitOf := map[string]string{} // name -> its split, and the line that said it
	var order, skipped []string
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(path, err)
		}
		line, _ := r.FieldPos(0)
		at := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
		}
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue // an empty line
		}
		if len(row) <= max(imageCol, captionCol, splitCol) {
			return nil, at("%d fields, and the header's columns need %d", len(row), max(imageCol, captionCol, splitCol)+1)
		}
		photo := strings.TrimSpace(row[imageCol])
		if photo == "" {
			return nil, at("no photo in the %s column", names[imageCol])
		}
		name := filepath.ToSlash(filepath.Clean(photo))
		caption := strings.TrimSpace(row[captionCol])
		switch {
		case !IsImageName(name):
			skipped = append(skipped, name)
			continue
		case caption == "":
			return nil, at("%s has an empty caption", name)
		}
		split := ""
		if splitCol >= 0 {
			v := strings.ToLower(strings.TrimSpace(row[splitCol]))
			if split = csvSplits[v]; split == "" {
				return nil, at("split %q of %s is not one of train, dev (or val), test", row[splitCol], name)
			}
			if prev, ok := splitOf[name]; ok && prev != split {
				return nil, at("%s is in split %s here and in %s on an earlier row", name, split, prev)
			}
			splitOf[name] = split
		}
		img := imgs[name]
		if img == nil {
			img = &Image{Name: name, Path: filepath.FromSlash(name)}
			if !filepath.IsAbs(img.Path) {
				img.Path = filepath.Join(dir, img.Path)
			}
			imgs[name] = img
			order = append(order, name)
		}
		img.Raw = append(img.Raw, caption)
		img.Captions = append(img.Captions, CleaningSeed.Clean(caption))
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no captions of an image file (%d rows skipped)", path, len(skipped))
	}
	if len(skipped) > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s: skipped %d rows naming %s: not an image file name (%s)",
			filepath.Base(path), len(skipped), listing.First(skipped, 3), strings.Join(imageExtensions, " ")))
	}
	if splitCol < 0 {
		splitByHash(order, splitOf)
	}
	for _, name := range order {
		d.Splits[splitOf[name]] = append(d.Splits[splitOf[name]], *imgs[name])
	}
	return d, nil
}

// splitByHash puts every csvDevEvery-th name, by its FNV hash, in dev and the
// others in train; with none so, the last name (a dataset of a few photos).
func splitByHash(names []string, splitOf map[string]string) {
	dev := 0
	for _, name := range names {
		h := fnv.New32a()
		h.Write([]byte(name))
		splitOf[name] = SplitTrain
		if h.Sum32()%csvDevEvery == 0 {
			splitOf[name] = SplitDev
			dev++
		}
	}
	if dev == 0 {
		splitOf[names[len(names)-1]] = SplitDev
	}
}

// csvError names the file and line of a CSV reading error.
func csvError(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %v", path, pe.StartLine, pe.Err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty: want a first row naming the columns (image,caption[,split])", path)
	}
	return fmt.Errorf("csv: %w", err)
}
