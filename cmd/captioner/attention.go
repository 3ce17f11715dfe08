package main

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/captioner/captioner/attnmap"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/pipeline"
)

// attentionMaps writes caption --attention's PNG strips into one folder.
type attentionMaps struct {
	dir  string
	used map[string]bool // file names written by this run
}

func newAttentionMaps(dir string) (*attentionMaps, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("caption --attention: %w", err)
	}
	return &attentionMaps{dir: dir, used: map[string]bool{}}, nil
}

// write draws the strip of r, the caption of the image file path, into
// DIR/NAME.png; a second image of the same NAME gets NAME-2.png, and so on,
// as does one whose NAME.png is a file other than a map (taken).
// A caption without words or without weights has no maps: a note on log says so.
func (a *attentionMaps) write(log io.Writer, pre pipeline.Preprocessor, path string, r pipeline.Result) error {
	words := strings.Fields(r.Caption)
	if len(words) == 0 {
		fmt.Fprintf(log, "caption --attention: %s: the caption has no words, so no attention maps\n", path)
		return nil
	}
	if r.Attention == nil { // a caption another search made, without weights
		fmt.Fprintf(log, "caption --attention: %s: the caption came without attention weights, so no maps\n", path)
		return nil
	}
	if len(r.Attention) != len(words) {
		return fmt.Errorf("caption --attention: %s: %d words but %d rows of attention weights", path, len(words), len(r.Attention))
	}
	im, err := pre.File(path)
	if err != nil {
		return err
	}
	grid := int(math.Round(math.Sqrt(float64(len(r.Attention[0])))))
	strip, err := attnmap.Strip(im.Decoded, words, r.Attention, grid)
	if err != nil {
		return fmt.Errorf("caption --attention: %s: %w", path, err)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	name := base + ".png"
	var why string
	switch {
	case a.used[name]:
		why = "an image named like it came first"
	case a.taken(name):
		why = name + " there is not a map this version of captioner drew, and stays"
	}
	for n := 2; a.used[name] || a.taken(name); n++ {
		name = fmt.Sprintf("%s-%d.png", base, n)
	}
	a.used[name] = true
	if why != "" {
		fmt.Fprintf(log, "caption --attention: %s: its maps are %s (%s)\n", path, filepath.Join(a.dir, name), why)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, strip); err != nil {
		return fmt.Errorf("caption --attention: %s: %w", path, err)
	}
	return atomicfile.WriteFile(filepath.Join(a.dir, name), markPNG(buf.Bytes(), attentionMark))
}

// taken says whether DIR/name is something other than an attention map
// (ownFile), which a map must not replace: --attention naming the photos'
// folder had drawn maps over the photos named NAME.png. An earlier run's map
// is replaced; a map from before maps carried their mark is kept too.
func (a *attentionMaps) taken(name string) bool {
	path := filepath.Join(a.dir, name)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return !ownFile(path, attentionMap)
}
