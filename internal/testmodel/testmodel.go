// Package testmodel writes caption model folders for tests: a small attention
// decoder beside a real vocabulary, and copies of a model under another name.
package testmodel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/text"
)

// Attention writes a new folder named name holding the vocabulary file vocab
// and a small attention decoder over MobileNetV2's 7x7x1280 grid, its weights
// the initialiser's (seeded): arbitrary captions, real attention weights. It
// returns the folder, removed when the test ends.
func Attention(tb testing.TB, vocab, name string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	v, err := text.LoadVocab(vocab)
	if err != nil {
		tb.Fatal(err)
	}
	if err := v.Save(filepath.Join(dir, filepath.Base(vocab))); err != nil {
		tb.Fatal(err)
	}
	dev := cpu.New(1)
	defer dev.Close()
	m, err := decoder.New(dev, decoder.Config{Arch: decoder.ArchAttention, Cleaning: text.CleaningStandard, FeatDim: 1280,
		Regions: 49, Att: 16, Embed: 16, Hidden: 16, Vocab: v.Size()}, 5)
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	if err := m.Save(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Copy copies the files of the model folder src into a new folder named name
// and returns it, removed when the test ends: the same model under another
// name.
func Copy(tb testing.TB, src, name string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		tb.Fatal(err)
	}
	return dir
}
