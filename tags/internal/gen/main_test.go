package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/assets"
)

// The committed map is what the generator makes from WordNet today: run
// `go generate` in tags/ after changing the vocabulary or the overrides.
func TestCommittedMapIsUpToDate(t *testing.T) {
	const wordnet = "/usr/share/wordnet"
	if _, err := os.Stat(filepath.Join(wordnet, "data.noun")); err != nil {
		t.Skip("WordNet is not installed (Debian: apt-get install wordnet-base)")
	}
	dir := os.Getenv("CAPTIONER_ASSETS")
	if dir == "" {
		t.Skip("CAPTIONER_ASSETS is not set")
	}
	out := filepath.Join(t.TempDir(), "nouns.tsv")
	if err := run(wordnet, filepath.Join(dir, assets.ImageNetLabels), out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../imagenet_nouns.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("tags/imagenet_nouns.tsv is stale: run `go generate` in tags/")
	}
}

func TestReadSynsets(t *testing.T) {
	// Two synsets in wndb format: cat (hypernym feline) and feline.
	data := "  1 licence header\n" +
		"02121620 05 n 02 cat 0 true_cat 0 001 @ 02120997 n 0000 | feline mammal\n" +
		"02120997 05 n 02 feline 0 felid 0 000 | cats\n"
	path := filepath.Join(t.TempDir(), "data.noun")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readSynsets(path)
	if err != nil {
		t.Fatal(err)
	}
	cat := s["02121620"]
	if len(s) != 2 || len(cat.lemmas) != 2 || cat.lemmas[1] != "true cat" || len(cat.hypernyms) != 1 || cat.hypernyms[0] != "02120997" {
		t.Errorf("readSynsets = %+v", s)
	}
	if n, via := walk("n02121620", "cat", s); n != "cat" || via != "wordnet: cat" {
		t.Errorf("walk(cat) = %q, %q", n, via)
	}
	if n, via := walk("n02120997", "felid", s); n != "felid" || via != "own name" {
		t.Errorf("walk(feline) = %q, %q; want the class's own name", n, via)
	}
	if _, err := readSynsets(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("readSynsets(missing file) succeeded")
	}
}
