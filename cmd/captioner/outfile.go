package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/captioner/captioner/internal/atomicfile"
)

// outputKind is what a command writes to an output file: an existing file
// is replaced only when is recognises its first bytes as one.
type outputKind struct {
	what    string // "a captions file (a JSON array, as eval writes)"
	example string // a file name to suggest when a folder is named
	is      func(head []byte) bool
}

var (
	captionsOutput = outputKind{"a captions file (a JSON array, as eval writes)", "captions.json", func(head []byte) bool {
		trimmed := bytes.TrimLeft(head, " \t\r\n")
		return len(trimmed) > 0 && trimmed[0] == '['
	}}
	pngOutput = outputKind{"a PNG image", "decoder.png", func(head []byte) bool {
		return bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n"))
	}}
	svgOutput = outputKind{"an SVG image", "decoder.svg", func(head []byte) bool {
		return bytes.Contains(head, []byte("<svg")) || bytes.Contains(head, []byte("<!DOCTYPE svg"))
	}}
	// safetensorsOutput: an 8-byte little-endian header length, then the
	// header's JSON object.
	safetensorsOutput = outputKind{"a safetensors file", "mobilenet_v2.safetensors", func(head []byte) bool {
		return len(head) > 8 && binary.LittleEndian.Uint64(head) > 1 && head[8] == '{'
	}}
)

// checkOutput checks, before the work, that a command may write its output
// of kind k to path (flag names the option in messages): not an empty path
// nor a folder, in a folder the command can write, and not over a file of
// another kind, which would be lost (eval --captions naming a model's
// weights had replaced them with JSON, describe --png the decoder with a
// picture). An empty file may be replaced. Found now, not after the work.
func checkOutput(flag, path string, k outputKind) error {
	if path == "" {
		return fmt.Errorf("%s is empty: name the file to write %s to, e.g. %s", flag, k.what, k.example)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s %s is a folder: name the file to write %s to, e.g. %s", flag, path, k.what, filepath.Join(path, k.example))
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return fmt.Errorf("%s %s: its folder %s does not exist; create it, or name a file in a folder that does", flag, path, filepath.Dir(path))
	}
	// Only a file is read: a pipe or a terminal (--captions /dev/stdout)
	// would block, and is written through, not replaced.
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		head := make([]byte, 512)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if n > 0 && !k.is(head[:n]) {
			return fmt.Errorf("%s %s exists and is not %s: it would be overwritten; name another file", flag, path, k.what)
		}
	}
	if err := atomicfile.CanWrite(path); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}
