package text

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeCSV(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "captions.csv")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadCSVAsASpreadsheetExportsIt: a byte order mark, CRLF lines, ';' as
// the separator, a quoted caption holding the separator, quotes and a line
// break, a column order of its own with an extra column, upper case in the
// header, a photo in a subfolder and one named with spaces: the images in
// file order, their captions in row order, where the split column puts them.
func TestLoadCSVAsASpreadsheetExportsIt(t *testing.T) {
	path := writeCSV(t, "\ufeffNotes;Caption;Split;File Name\r\n"+
		"x;\"Two friends; one \"\"café\"\".\";train;photos/a.JPG\r\n"+
		";A dog runs.;val;Team Day #0.jpg\r\n"+
		";\"A long\r\ncaption.\";train;photos/a.JPG\r\n"+
		";The sea.;test;c.png\r\n"+
		"\r\n"+
		";Notes on the day;train;notes.txt\r\n")
	d, err := LoadCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	train, dev, test := d.Splits[SplitTrain], d.Splits[SplitDev], d.Splits[SplitTest]
	if len(train) != 1 || train[0].Name != "photos/a.JPG" || train[0].Path != filepath.Join(dir, "photos", "a.JPG") ||
		!slices.Equal(train[0].Raw, []string{`Two friends; one "café".`, "A long\ncaption."}) {
		t.Errorf("train %+v", train)
	}
	if len(dev) != 1 || dev[0].Name != "Team Day #0.jpg" || !slices.Equal(dev[0].Captions[0], []string{"dog", "runs"}) {
		t.Errorf("dev %+v", dev)
	}
	if len(test) != 1 || test[0].Name != "c.png" {
		t.Errorf("test %+v", test)
	}
	if d.Name != "captions" || len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], "captions.csv: skipped 1 rows naming notes.txt (line 8): not an image file name") {
		t.Errorf("name %q, warnings %q", d.Name, d.Warnings)
	}
}

// TestLoadCSVAsOtherToolsExportIt: a sheet's blank rows (",,,", ";;"), an
// old Mac's CR line ends, Windows paths, a comma file with a ';' in a column's
// name, two caption columns (both captions of the row's photo) and a split
// column called subset, given on a photo's first row alone.
func TestLoadCSVAsOtherToolsExportIt(t *testing.T) {
	d, err := readCSV([]byte("image,caption,caption,notes; misc,subset\r"+
		`photos\a.jpg,A dog.,A dog runs.,x,Test`+"\r"+
		`photos\a.jpg,A brown dog.,,,`+"\r"+
		",,,,\r"+
		"b.jpg,A cat.,,,train\r,,,,\r"), "/data/f.csv")
	if err != nil {
		t.Fatal(err)
	}
	test, train := d.Splits[SplitTest], d.Splits[SplitTrain]
	if len(test) != 1 || test[0].Name != "photos/a.jpg" || test[0].Path != "/data/photos/a.jpg" ||
		!slices.Equal(test[0].Raw, []string{"A dog.", "A dog runs.", "A brown dog."}) {
		t.Errorf("test %+v", test)
	}
	if len(train) != 1 || train[0].Name != "b.jpg" || len(d.Splits) != 2 {
		t.Errorf("splits %+v", d.Splits)
	}
	if _, err := readCSV([]byte("image;caption\n;;\na.jpg;A dog.\nnotes.txt;N.\n"), "/data/g.csv"); err != nil {
		t.Error(err)
	}
	// An old Mac's CR rows with Excel's LF in a cell; Excel's "sep=" line; a
	// comma file whose column name holds ';' and what would be two photo
	// columns read with ';'; a row leaving its split off the end.
	for _, c := range []struct{ name, content string }{
		{"CR rows, LF in a cell", "image,caption\ra.jpg,\"l1\nl2\"\rb.jpg,x\r"},
		{"sep line", "sep=,\nimage,caption\na.jpg,A dog; a cat.\nb.jpg,x\n"},
		{"';' in a comma header", "image,caption,x;file;photo\na.jpg,A dog,z\nb.jpg,x,z\n"},
		{"split left off", "image,caption,split\na.jpg,A dog.,dev\nb.jpg,x\nb.jpg,y,train\n"},
		{"a byte order mark before the photo column", "\ufeffimage,caption\na.jpg,A dog.\nb.jpg,x\n"},
		{"a hyphen in a column name", "File-Name,caption\na.jpg,A dog.\nb.jpg,x\n"},
		// A spreadsheet numbers its caption columns (it had been refused).
		{"numbered caption columns", "Photo,Caption 1,Caption 2,captions3\na.jpg,A dog.,A dog runs.,x\nb.jpg,x,,\n"},
	} {
		d, err := readCSV([]byte(c.content), "/data/h.csv")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if n := len(d.Splits[SplitTrain]) + len(d.Splits[SplitDev]); n != 2 {
			t.Errorf("%s: %d photos, want 2: %+v", c.name, n, d.Splits)
		}
	}
	d, _ = readCSV([]byte("image;caption\na.jpg;A dog.\nnotes.txt;N.\n"), "/data/g.csv")
	if want := "g.csv: skipped 1 rows naming notes.txt (line 3): not an image file name"; len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], want) {
		t.Errorf("warnings %q, want %q...", d.Warnings, want)
	}
}

// TestLoadCSVSplitsWithoutASplitColumn: without a split column a tenth of the
// photos, by a hash of the name, are dev, the same ones however the file is
// ordered or grows; a file of a few photos still gets one.
func TestLoadCSVSplitsWithoutASplitColumn(t *testing.T) {
	var rows strings.Builder
	rows.WriteString("image,caption\n")
	for i := range 200 {
		rows.WriteString(filepath.Join("p", strings.Repeat("x", i%7)) + string(rune('a'+i%26)) + strings.Repeat("y", i/26) + ".jpg,A photo.\n")
	}
	d, err := LoadCSV(writeCSV(t, rows.String()))
	if err != nil {
		t.Fatal(err)
	}
	n := len(d.Splits[SplitTrain]) + len(d.Splits[SplitDev])
	if dev := len(d.Splits[SplitDev]); n != 200 || dev < 10 || dev > 30 {
		t.Errorf("%d photos, %d of them dev; want 200, about 20", n, dev)
	}
	devNames := func(d *Dataset) []string {
		var names []string
		for _, im := range d.Splits[SplitDev] {
			names = append(names, im.Name)
		}
		slices.Sort(names)
		return names
	}
	lines := strings.Split(strings.TrimSuffix(rows.String(), "\n"), "\n")
	slices.Reverse(lines[1:])
	more := strings.Join(lines, "\n") + "\nq/new.jpg,A new photo.\n"
	d2, err := LoadCSV(writeCSV(t, more))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := devNames(d), slices.DeleteFunc(devNames(d2), func(n string) bool { return n == "q/new.jpg" }); !slices.Equal(a, b) {
		t.Errorf("dev photos moved when the file was reordered and grew:\n%q\n%q", a, b)
	}
	// And the same ones from release to release: a photo that moved from dev
	// to train would leak into training a model scored on it before.
	var abc strings.Builder
	abc.WriteString("image,caption\n")
	for c := 'a'; c <= 't'; c++ {
		abc.WriteString(string(c) + ".jpg,A photo.\n")
	}
	pinned, err := LoadCSV(writeCSV(t, abc.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := devNames(pinned), []string{"d.jpg", "h.jpg", "l.jpg"}; !slices.Equal(got, want) {
		t.Errorf("dev photos of a.jpg..t.jpg: %q, want %q", got, want)
	}
	few, err := LoadCSV(writeCSV(t, "image,caption\na.jpg,A dog.\nb.jpg,A cat.\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(few.Splits[SplitDev]) != 1 || len(few.Splits[SplitTrain]) != 1 {
		t.Errorf("two photos: train %d, dev %d; want one each", len(few.Splits[SplitTrain]), len(few.Splits[SplitDev]))
	}
}

func TestLoadCSVErrors(t *testing.T) {
	for _, c := range []struct{ name, content, want string }{
		{"no columns", "name,words\na.jpg,A dog.\n", `:1: the first row names the columns ["name" "words"]; want one of image, file, filename, file_name, path, photo for the photo and one of caption, text, sentence, description for the caption (and one of split, subset, set, partition, optionally)`},
		{"empty", "", ": empty: want a first row naming the columns (image,caption[,split])"},
		{"short row", "image,caption,split\na.jpg,A dog.,train\nb.jpg\n", ":3: 1 fields, and the header's columns need 2"},
		{"no photo", "image,caption\na.jpg,A dog.\n ,A cat.\n", ":3: no photo in the image column"},
		{"empty caption", "image,caption\na.jpg,  \n", ":2: a.jpg has an empty caption"},
		{"bad split", "image,caption,split\na.jpg,A dog.,holdout\n", `:2: split "holdout" of a.jpg is not one of train, dev (or val, validation), test`},
		{"split nowhere", "image,caption,split\na.jpg,A dog.,train\nb.jpg,A cat.,\nb.jpg,A cat sleeps.,\n", ":3: b.jpg has no split: its rows leave the split column empty; give one of them its split"},
		{"two photo columns", "image,caption,file\na.jpg,A dog.,b.jpg\n", `:1: two photo columns, "image" and "file": keep one`},
		{"web address", "image,caption\nhttps://example.com/a.jpg,A dog.\n", ":2: https://example.com/a.jpg is a web address: captioner reads photo files; download them and give their paths"},
		{"latin-1", "image,caption\na.jpg,A dog.\nb.jpg,Un caf\xe9.\n", `:3: the text is not UTF-8 (Latin-1 or Windows-1252?): save it as "CSV UTF-8"`},
		{"utf-16", "\xff\xfei\x00m\x00", `: the text is UTF-16 (a spreadsheet's "Unicode Text"; it holds NUL bytes): save it as "CSV UTF-8"`},
		{"utf-16 without a mark", "i\x00m\x00", `: the text is UTF-16 (a spreadsheet's "Unicode Text"; it holds NUL bytes): save it as "CSV UTF-8"`},
		// A photo, say, is no UTF-16 (it had been called so).
		{"binary", "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb", `: byte 4 is NUL, which no text holds: this is not a CSV file (a photo or an archive?); give the captions file, saved as "CSV UTF-8"`},
		{"big-endian utf-16 without a mark", "\x00i\x00m\x00a\x00g\x00e", `: the text is UTF-16 (a spreadsheet's "Unicode Text"; it holds NUL bytes): save it as "CSV UTF-8"`},
		{"latin-1, CR lines", "image,caption\ra.jpg,A dog.\rb.jpg,Un caf\xe9.\r", `:3: the text is not UTF-8 (Latin-1 or Windows-1252?): save it as "CSV UTF-8"`},
		{"s3 address", "image,caption\ns3://bucket/a.jpg,A dog.\n", ":2: s3://bucket/a.jpg is a web address: captioner reads photo files; download them and give their paths"},
		{"sep line", "sep=;\nimage;caption\n;\na.jpg\n", ":4: 1 fields, and the header's columns need 2"},
		{"two splits", "image,caption,split\na.jpg,A dog.,train\nb.jpg,A cat.,dev\na.jpg,A dog runs.,test\n", ":4: a.jpg is in split test here and in train on an earlier row"},
		{"bad quote", "image,caption\na.jpg,\"A dog.\nb.jpg,A cat.\n", `:2: extraneous or missing " in quoted-field`},
		{"no image names", "image,caption\nnotes.txt,Notes.\n", ": no captions of an image file (1 rows skipped)"},
		// A caption cut at an unquoted comma lost its rest without a word.
		{"unquoted comma", "image,caption\na.jpg,A dog.\nb.jpg,A man on a bike , riding down a street .\n", `:3: 3 fields, where the header has 2 columns: " riding down a street ." is past them; a caption that holds the separator ',' goes in double quotes ("A dog, running.")`},
	} {
		path := writeCSV(t, c.content)
		_, err := LoadCSV(path)
		if err == nil || err.Error() != path+c.want {
			t.Errorf("%s: %v\nwant %s%s", c.name, err, path, c.want)
		}
	}
}

// FuzzLoadCSV: whatever the file holds, LoadCSV returns an error or a dataset
// whose every photo is in one split, once, with a caption.
func FuzzLoadCSV(f *testing.F) {
	f.Add("image,caption\na.jpg,A dog.\n")
	f.Add("\ufeffFile Name;Caption;Split\r\n\"b c.jpg\";\"A \"\"cat\"\";\nsleeps.\";val\r\n")
	f.Add("photo\ttext\n/abs/x.png\tThe sea.\n../up.gif\tA hill.\n")
	f.Fuzz(func(t *testing.T, content string) {
		d, err := readCSV([]byte(content), "/data/f.csv")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for split, imgs := range d.Splits {
			if split != SplitTrain && split != SplitDev && split != SplitTest {
				t.Fatalf("split %q", split)
			}
			for _, im := range imgs {
				if seen[im.Name] || len(im.Raw) == 0 || len(im.Raw) != len(im.Captions) || !IsImageName(im.Name) {
					t.Fatalf("image %+v (seen before: %v)", im, seen[im.Name])
				}
				seen[im.Name] = true
			}
		}
		if len(seen) == 0 {
			t.Fatal("a dataset without photos")
		}
	})
}
