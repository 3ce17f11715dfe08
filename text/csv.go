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
	"unicode/utf8"
)

// CSV column names LoadCSV accepts, lowercase, the usual first.
var (
	csvImageColumns   = []string{"image", "file", "filename", "file_name", "path", "photo"}
	csvCaptionColumns = []string{"caption", "text", "sentence", "description"}
	csvSplitColumns   = []string{"split", "subset", "set", "partition"}
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
// underscores: the photo (image, file, filename, file_name, path or photo:
// its path from the CSV file's folder, or an absolute one, '\' read as '/',
// which is also its name in the dataset), the caption (caption, text,
// sentence or description; every such column is a caption of the row's
// photo) and, optionally, the split (split, subset, set or partition: train,
// dev or val, test; a photo's rows may leave it empty but one); other columns
// are left alone. The separator is whichever of tab, ';' and ',' makes a
// header with those columns. The text must be UTF-8; fields may be quoted,
// across lines too; rows of empty fields (a spreadsheet's blank rows) are
// passed over. A photo's rows are its captions, in file order. Without a
// split column every tenth photo, by a hash of its name (so a photo stays
// where it is as the file grows), is dev, and, in a file of a few photos
// where none hashes so, the last. Rows naming something that is not an
// image file (IsImageName) are skipped with a warning; any other malformed
// row is an error naming the file and line.
func LoadCSV(path string) (*Dataset, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	return readCSV(raw, path)
}

// csvColumns are the columns LoadCSV reads, by index; split is -1 when
// there is none.
type csvColumns struct {
	image    int
	captions []int
	split    int
}

// readCSV is LoadCSV of the file at path that holds raw.
func readCSV(raw []byte, path string) (*Dataset, error) {
	// Line ends as LF alone: an old Mac's CR (and Excel's LF in a cell among
	// them) or Windows' CRLF.
	raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	if err := csvEncoding(raw, path); err != nil {
		return nil, err
	}
	raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
	seps := []rune{'\t', ';', ','}
	lineOffset := 0
	if first, rest, ok := bytes.Cut(raw, []byte("\n")); ok && len(first) == 5 && bytes.HasPrefix(first, []byte("sep=")) {
		seps, raw, lineOffset = []rune{rune(first[4])}, rest, 1 // Excel's "sep=;" line names the separator
	}
	r, names, cols, err := csvHeader(raw, path, seps, lineOffset)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	d := &Dataset{Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Source: path, Splits: map[string][]Image{}}
	imgs := map[string]*Image{}
	splitOf := map[string]string{} // name -> its split
	firstLine := map[string]int{}  // name -> the line of its first row
	var order, skipped []string
	need := max(cols.image, slices.Max(cols.captions)) + 1 // the split may be left off the end
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(path, err)
		}
		line, _ := r.FieldPos(0)
		line += lineOffset
		at := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
		}
		if !slices.ContainsFunc(row, func(f string) bool { return strings.TrimSpace(f) != "" }) {
			continue // an empty line, or a spreadsheet's blank row (",,,")
		}
		if len(row) < need {
			return nil, at("%d fields, and the header's columns need %d", len(row), need)
		}
		// Text past the header's columns is a caption cut at an unquoted
		// separator ("A man on a bike , riding down a street ."): read
		// as it is, the rest of the caption was lost without a word.
		if i := slices.IndexFunc(row[min(len(row), len(names)):], func(f string) bool { return strings.TrimSpace(f) != "" }); i >= 0 {
			return nil, at("%d fields, where the header has %d columns: %.40q is past them; a caption that holds the separator %q goes in double quotes (\"A dog%c running.\")",
				len(row), len(names), row[len(names)+i], r.Comma, r.Comma)
		}
		photo := strings.TrimSpace(row[cols.image])
		switch {
		case photo == "":
			return nil, at("no photo in the %s column", names[cols.image])
		case strings.Contains(photo, "://"):
			return nil, at("%s is a web address: captioner reads photo files; download them and give their paths", photo)
		}
		name := filepath.ToSlash(filepath.Clean(strings.ReplaceAll(photo, `\`, "/")))
		if !IsImageName(name) {
			skipped = append(skipped, fmt.Sprintf("%s (line %d)", name, line))
			continue
		}
		var captions []string
		for _, c := range cols.captions {
			if caption := strings.TrimSpace(row[c]); caption != "" {
				captions = append(captions, caption)
			}
		}
		if len(captions) == 0 {
			return nil, at("%s has an empty caption", name)
		}
		if cols.split >= 0 && cols.split < len(row) {
			if v := strings.TrimSpace(row[cols.split]); v != "" {
				split := csvSplits[strings.ToLower(v)]
				if split == "" {
					return nil, at("split %q of %s is not one of train, dev (or val, validation), test", v, name)
				}
				if prev, ok := splitOf[name]; ok && prev != split {
					return nil, at("%s is in split %s here and in %s on an earlier row", name, split, prev)
				}
				splitOf[name] = split
			}
		}
		img := imgs[name]
		if img == nil {
			img = &Image{Name: name, Path: filepath.FromSlash(name)}
			if !filepath.IsAbs(img.Path) {
				img.Path = filepath.Join(dir, img.Path)
			}
			imgs[name] = img
			firstLine[name] = line
			order = append(order, name)
		}
		for _, caption := range captions {
			img.Raw = append(img.Raw, caption)
			img.Captions = append(img.Captions, CleaningSeed.Clean(caption))
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%s: no captions of an image file (%d rows skipped)", path, len(skipped))
	}
	if len(skipped) > 0 {
		d.Warnings = append(d.Warnings, notImageNames(filepath.Base(path), len(skipped), "rows", skipped))
	}
	if cols.split < 0 {
		splitByHash(order, splitOf)
	}
	for _, name := range order {
		split, ok := splitOf[name]
		if !ok {
			return nil, fmt.Errorf("%s:%d: %s has no split: its rows leave the %s column empty; give one of them its split", path, firstLine[name], name, names[cols.split])
		}
		d.Splits[split] = append(d.Splits[split], *imgs[name])
	}
	return d, nil
}

// looksUTF16 says whether raw is UTF-16 text: it starts with a byte order
// mark, or, without one, its first KiB has NUL bytes in one half of every
// pair (the high bytes of ASCII letters) and hardly any in the other; a
// binary file has them in both.
func looksUTF16(raw []byte) bool {
	if bytes.HasPrefix(raw, []byte{0xff, 0xfe}) || bytes.HasPrefix(raw, []byte{0xfe, 0xff}) {
		return true
	}
	head := raw[:min(len(raw), 1024)]
	var nuls [2]int
	for i, b := range head {
		if b == 0 {
			nuls[i%2]++
		}
	}
	many, few := max(nuls[0], nuls[1]), min(nuls[0], nuls[1])
	return many > 0 && many >= len(head)/4 && few <= many/16
}

// csvEncoding refuses text that is not UTF-8, saying what to save it as:
// read as UTF-8, a Latin-1 "é" would be dropped from its word unseen.
func csvEncoding(raw []byte, path string) error {
	if looksUTF16(raw) {
		return fmt.Errorf("%s: the text is UTF-16 (a spreadsheet's \"Unicode Text\"; it holds NUL bytes): save it as \"CSV UTF-8\"", path)
	}
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return fmt.Errorf("%s: byte %d is NUL, which no text holds: this is not a CSV file (a photo or an archive?); give the captions file, saved as \"CSV UTF-8\"", path, i)
	}
	if utf8.Valid(raw) {
		return nil
	}
	line := 1
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		if r == utf8.RuneError && n <= 1 {
			break
		}
		if r == '\n' {
			line++
		}
		raw = raw[n:]
	}
	return fmt.Errorf("%s:%d: the text is not UTF-8 (Latin-1 or Windows-1252?): save it as \"CSV UTF-8\"", path, line)
}

// csvHeader reads the header row (line 1+lineOffset) with each separator of
// seps until one gives the photo and caption columns, and returns the reader
// positioned after it: a ';' in a column's name does not make a comma file
// ';'-separated.
func csvHeader(raw []byte, path string, seps []rune, lineOffset int) (*csv.Reader, []string, csvColumns, error) {
	var widest []string // the header as the separator that splits it most reads it
	var parseErr, columnsErr error
	for _, sep := range seps {
		r := csv.NewReader(bytes.NewReader(raw))
		r.Comma = sep
		r.FieldsPerRecord = -1 // checked by the caller, naming the line
		names, err := r.Read()
		if err != nil {
			parseErr = err // another separator may read it
			continue
		}
		cols, found, err := csvColumnsOf(names, path, 1+lineOffset)
		switch {
		case err != nil:
			columnsErr = err // unless another separator reads the columns
		case found:
			return r, names, cols, nil
		case len(names) > len(widest):
			widest = names
		}
	}
	switch {
	case columnsErr != nil:
		return nil, nil, csvColumns{}, columnsErr
	case widest == nil:
		return nil, nil, csvColumns{}, csvError(path, parseErr)
	}
	return nil, nil, csvColumns{}, fmt.Errorf("%s:%d: the first row names the columns %q; want one of %s for the photo and one of %s for the caption (and one of %s, optionally)",
		path, 1+lineOffset, widest, strings.Join(csvImageColumns, ", "), strings.Join(csvCaptionColumns, ", "), strings.Join(csvSplitColumns, ", "))
}

// csvColumnsOf finds the columns LoadCSV reads among names (of line line),
// and whether there are a photo column and a caption column; two photo or
// two split columns are an error.
func csvColumnsOf(names []string, path string, line int) (cols csvColumns, found bool, err error) {
	cols = csvColumns{image: -1, split: -1}
	norm := strings.NewReplacer(" ", "_", "-", "_") // "File Name" and "file-name" are file_name
	for i, n := range names {
		n = norm.Replace(strings.ToLower(strings.TrimSpace(n)))
		switch {
		case slices.Contains(csvImageColumns, n) && cols.image >= 0:
			return cols, false, fmt.Errorf("%s:%d: two photo columns, %q and %q: keep one", path, line, names[cols.image], names[i])
		case slices.Contains(csvImageColumns, n):
			cols.image = i
		case slices.Contains(csvCaptionColumns, captionColumn(n)):
			cols.captions = append(cols.captions, i)
		case slices.Contains(csvSplitColumns, n) && cols.split >= 0:
			return cols, false, fmt.Errorf("%s:%d: two split columns, %q and %q: keep one", path, line, names[cols.split], names[i])
		case slices.Contains(csvSplitColumns, n):
			cols.split = i
		}
	}
	return cols, cols.image >= 0 && len(cols.captions) > 0, nil
}

// captionColumn is a normalized column name without what numbers a
// spreadsheet's several caption columns: "caption_1", "captions", "caption2"
// are "caption".
func captionColumn(n string) string {
	n = strings.TrimRight(n, "0123456789")
	n = strings.TrimSuffix(n, "_")
	return strings.TrimSuffix(n, "s")
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
