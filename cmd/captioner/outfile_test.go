package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestIsCaptionsJSON: a captions file is an array of records whose first
// names its image, as eval writes it; an array of other records is not one,
// even with a field of its own first.
func TestIsCaptionsJSON(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{`[{"image": "a.jpg", "caption": "a dog"}]`, true},
		{"\n [\n  {\t\"image\": \"a.jpg\"}]", true},
		{`[{"id": 1}]`, false},
		{`[{"caption": "a dog", "image": "a.jpg"}]`, false},
		{`[1, 2, 3]`, false},
		{`{"image": "a.jpg"}`, false},
		{``, false},
	} {
		if got := isCaptionsJSON(strings.NewReader(tc.text)); got != tc.want {
			t.Errorf("isCaptionsJSON(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

// TestOwnFileOfAShortFile: a file shorter than a PNG's header is not one
// describe drew, and reading it does not run past its end.
func TestOwnFileOfAShortFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.png")
	if err := os.WriteFile(p, []byte("\x89PNG\r"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ownFile(p, describePNG) {
		t.Errorf("a 5-byte file is taken for %s", describePNG.what)
	}
}

// TestMarkSVGAfterTheDeclaration: the mark goes after the XML declaration,
// which must stay whole and first, on a line of its own.
func TestMarkSVGAfterTheDeclaration(t *testing.T) {
	for _, tc := range []struct{ svg, want string }{
		{`<?xml version="1.0"?><svg/>`, "<?xml version=\"1.0\"?>\n<!-- captioner describe --><svg/>"},
		{`<svg/>`, "\n<!-- captioner describe --><svg/>"},
	} {
		if got := string(markSVG([]byte(tc.svg))); got != tc.want {
			t.Errorf("markSVG(%q) = %q, want %q", tc.svg, got, tc.want)
		}
	}
}

// TestOwnFileOfAPipe: a pipe is no command's own file, whatever its name, and
// it is not opened (opening it would wait for a writer).
func TestOwnFileOfAPipe(t *testing.T) {
	pipe := filepath.Join(t.TempDir(), "x.png")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	if ownFile(pipe, attentionMap) {
		t.Errorf("a pipe named x.png is taken for %s", attentionMap.what)
	}
}

// TestCheckOutputPassesDevicesAndPipes: a device or a pipe is written through
// (eval --captions /dev/null, or a pipe to another program), not refused as a
// file the command did not write.
func TestCheckOutputPassesDevicesAndPipes(t *testing.T) {
	pipe := filepath.Join(t.TempDir(), "captions")
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{os.DevNull, pipe} {
		if err := checkOutput("--captions", p, captionsOutput); err != nil {
			t.Errorf("checkOutput(--captions %s): %v", p, err)
		}
	}
}
