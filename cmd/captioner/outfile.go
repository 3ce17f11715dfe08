package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/internal/atomicfile"
)

// outputKind is a file a command writes. An existing file is replaced only
// when is recognises it as one that command wrote: a file merely of the same
// format may be the user's (describe --png naming a model's curves.png,
// import --out a model's decoder.safetensors).
type outputKind struct {
	what    string // "a captions file (a JSON array, as eval writes)"
	example string // a file name to suggest when a folder is named
	is      func(r io.Reader) bool
}

var (
	captionsOutput = outputKind{"a captions file (a JSON array of {\"image\": ...}, as eval writes)", "captions.json", isCaptionsJSON}
	describePNG    = outputKind{"a PNG that describe drew", "decoder.png", markedPNG(describeMark)}
	describeSVG    = outputKind{"an SVG that describe drew", "decoder.svg", func(r io.Reader) bool {
		return bytes.Contains(head(r, 512), []byte(svgMark))
	}}
	attentionMap  = outputKind{"an attention map", "", markedPNG(attentionMark)}
	importWeights = outputKind{"encoder weights that import wrote", "mobilenet_v2.safetensors", isEncoderWeights}
)

// head is the first n bytes r reads, or fewer.
func head(r io.Reader, n int) []byte {
	b := make([]byte, n)
	m, _ := io.ReadFull(r, b)
	return b[:m]
}

// isCaptionsJSON says whether r starts as eval's captions do: an array of
// records, the first naming its image.
func isCaptionsJSON(r io.Reader) bool {
	rest := head(r, 512)
	for _, want := range []string{"[", "{", `"image"`} {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if !bytes.HasPrefix(rest, []byte(want)) {
			return false
		}
		rest = rest[len(want):]
	}
	return true
}

// isEncoderWeights says whether r is a safetensors file whose metadata
// names encoder.Format, as import writes it.
func isEncoderWeights(r io.Reader) bool {
	var n uint64
	if binary.Read(r, binary.LittleEndian, &n) != nil || n > 64<<20 {
		return false
	}
	var header struct {
		Meta struct {
			Format string `json:"format"`
		} `json:"__metadata__"`
	}
	return json.NewDecoder(io.LimitReader(r, int64(n))).Decode(&header) == nil && header.Meta.Format == encoder.Format
}

// The marks that tell the PNGs and the SVG captioner draws from any other:
// a tEXt chunk (Software) right after a PNG's IHDR, a comment in an SVG.
const (
	attentionMark = "captioner attention map"
	describeMark  = "captioner describe"
	svgMark       = "<!-- captioner describe -->"
)

// pngHeaderLen is the PNG signature and the IHDR chunk (length, type, 13
// bytes, CRC), after which a marked PNG carries its mark.
const pngHeaderLen = 8 + 4 + 4 + 13 + 4

// pngMarkChunk is the tEXt chunk of mark.
func pngMarkChunk(mark string) []byte {
	data := []byte("tEXtSoftware\x00" + mark)
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)-4))
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(data))
}

// markPNG is the PNG png with mark's chunk after its IHDR.
func markPNG(png []byte, mark string) []byte {
	return slices.Concat(png[:pngHeaderLen], pngMarkChunk(mark), png[pngHeaderLen:])
}

// markedPNG recognises a PNG that markPNG marked with mark.
func markedPNG(mark string) func(io.Reader) bool {
	chunk := pngMarkChunk(mark)
	return func(r io.Reader) bool {
		h := head(r, pngHeaderLen+len(chunk))
		return len(h) == pngHeaderLen+len(chunk) && bytes.Equal(h[pngHeaderLen:], chunk)
	}
}

// markSVG is the SVG svg with svgMark after its XML declaration.
func markSVG(svg []byte) []byte {
	at := 0
	if bytes.HasPrefix(svg, []byte("<?xml")) {
		if end := bytes.Index(svg, []byte("?>")); end >= 0 {
			at = end + 2
		}
	}
	return slices.Concat(svg[:at], []byte("\n"+svgMark), svg[at:])
}

// ownFile says whether path names a regular file that k's command wrote, or
// an empty one. Only a regular file is opened: a pipe would block.
func ownFile(path string, k outputKind) bool {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	if st.Size() == 0 {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return k.is(f)
}

// checkOutput checks, before the work, that a command may write its output
// of kind k to path (flag names the option in messages): not an empty path
// nor a folder, in a folder the command can write, and not over a file k's
// command did not write, which would be lost (eval --captions naming a
// model's weights had replaced them with JSON, describe --png the decoder
// with a picture). A pipe or a device is written through, as it is. Found
// now, not after the work.
func checkOutput(flag, path string, k outputKind) error {
	if path == "" {
		return fmt.Errorf("%s is empty: name the file to write %s to, e.g. %s", flag, k.what, k.example)
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("%s %s is a folder: name the file to write %s to, e.g. %s", flag, path, k.what, filepath.Join(path, k.example))
	case err == nil && st.Mode().IsRegular() && !ownFile(path, k):
		return fmt.Errorf("%s %s exists and is not %s: it would be overwritten; name another file", flag, path, k.what)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return fmt.Errorf("%s %s: its folder %s does not exist; create it, or name a file in a folder that does", flag, path, filepath.Dir(path))
	}
	if err := atomicfile.CanWrite(path); err != nil {
		return fmt.Errorf("%s: %w; or name another file", flag, err)
	}
	return nil
}
