package main

import (
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/captioner/captioner/attnmap"
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
// DIR/NAME.png; a second image of the same NAME gets NAME-2.png, and so on.
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
	for n := 2; a.used[name]; n++ {
		name = fmt.Sprintf("%s-%d.png", base, n)
	}
	a.used[name] = true
	if name != base+".png" {
		fmt.Fprintf(log, "caption --attention: %s: its maps are %s (an image named like it came first)\n", path, filepath.Join(a.dir, name))
	}
	f, err := os.Create(filepath.Join(a.dir, name))
	if err != nil {
		return fmt.Errorf("caption --attention: %w", err)
	}
	if err := png.Encode(f, strip); err != nil {
		f.Close()
		return fmt.Errorf("caption --attention: %s: %w", f.Name(), err)
	}
	return f.Close()
}
