package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/assets"
)

// inputs is the generator's WordNet folder and labels file; the test is
// skipped where either is missing.
func inputs(t *testing.T) (wordnet, labels string) {
	t.Helper()
	wordnet = "/usr/share/wordnet"
	if _, err := os.Stat(filepath.Join(wordnet, "data.noun")); err != nil {
		t.Skip("WordNet is not installed (Debian: apt-get install wordnet-base)")
	}
	dir := os.Getenv("CAPTIONER_ASSETS")
	if dir == "" {
		t.Skip("CAPTIONER_ASSETS is not set")
	}
	return wordnet, filepath.Join(dir, assets.ImageNetLabels)
}

// The committed map is what the generator makes from WordNet today: run
// `go generate` in tags/ after changing the vocabulary or the overrides.
func TestCommittedMapIsUpToDate(t *testing.T) {
	wordnet, labels := inputs(t)
	out := filepath.Join(t.TempDir(), "nouns.tsv")
	if err := run(wordnet, labels, out); err != nil {
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

// An override of a noun that no class has (a typo, or a class's noun since
// changed) is an error, and no table is written.
func TestRunRejectsAnOverrideOfNoClass(t *testing.T) {
	wordnet, labels := inputs(t)
	defer func(saved map[string]struct{ role, why string }) { roleOverrides = saved }(roleOverrides)
	roleOverrides = maps.Clone(roleOverrides)
	roleOverrides["unicorn"] = struct{ role, why string }{roleHeld, "a toy"}
	out := filepath.Join(t.TempDir(), "nouns.tsv")
	err := run(wordnet, labels, out)
	if want := `role override for "unicorn", which names no class`; err == nil || err.Error() != want {
		t.Errorf("run with an override for \"unicorn\": %v, want %q", err, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("run with an override for \"unicorn\" wrote %s (%v)", out, err)
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

func TestRoles(t *testing.T) {
	// A tiny WordNet: clothing <- hairpiece <- wig; structure <- tower;
	// container <- bucket; and a ball and a tank under neither. The tank is
	// also a container, which structure's role comes before.
	s := map[string]synset{
		"03051540": {lemmas: []string{"clothing"}},
		"00000001": {lemmas: []string{"hairpiece"}, hypernyms: []string{"03051540"}},
		"00000002": {lemmas: []string{"wig"}, hypernyms: []string{"00000001"}},
		"04341686": {lemmas: []string{"structure"}},
		"03094503": {lemmas: []string{"container"}},
		"00000003": {lemmas: []string{"tank"}, hypernyms: []string{"03094503", "04341686"}},
		"00000004": {lemmas: []string{"bucket"}, hypernyms: []string{"03094503"}},
		"00000005": {lemmas: []string{"ball"}},
	}
	for _, tc := range []struct {
		index int
		id    string
		want  string
	}{
		{1, "n00000005", roleAnimal}, // the ILSVRC animal subtree goes by index
		{398, "n00000005", roleAnimal},
		{399, "n00000002", roleWorn},
		{400, "n00000003", roleThing},
		{401, "n00000004", roleContainer},
		{402, "n00000005", roleHeld},
	} {
		if got := classRole(tc.index, tc.id, s); got != tc.want {
			t.Errorf("classRole(%d, %s) = %s, want %s", tc.index, tc.id, got, tc.want)
		}
	}

	// Class 1 (wnids[0]) is an animal's, 400 and 401 are a bucket and a wig.
	wnids := make([]string, 401)
	wnids[0], wnids[399], wnids[400] = "n00000005", "n00000004", "n00000002"
	defer func(saved map[string]struct{ role, why string }) { roleOverrides = saved }(roleOverrides)
	roleOverrides = map[string]struct{ role, why string }{}
	if r, err := nounRole("pail", []int{399}, wnids, s); r != roleContainer || err != nil {
		t.Errorf("nounRole(pail) = %q, %v; want container", r, err)
	}
	if _, err := nounRole("pail", []int{399, 400}, wnids, s); err == nil || err.Error() != `the classes of "pail" take roles [container worn] from WordNet: give it one in roleOverrides` {
		t.Errorf("nounRole of classes of two roles: %v", err)
	}
	if r, err := nounRole("fish", []int{0, 399}, wnids, s); r != roleAnimal || err != nil {
		t.Errorf("nounRole(fish) = %q, %v; want animal: a noun with an animal's class is one", r, err)
	}
	roleOverrides["pail"] = struct{ role, why string }{roleThing, "people stand on it"}
	if r, err := nounRole("pail", []int{399, 400}, wnids, s); r != roleThing || err != nil {
		t.Errorf("nounRole(pail) overridden = %q, %v; want thing", r, err)
	}
	roleOverrides["pail"] = struct{ role, why string }{roleContainer, "it holds water"}
	if _, err := nounRole("pail", []int{399}, wnids, s); err == nil || err.Error() != `role override for "pail" gives container, as WordNet does: remove it` {
		t.Errorf("nounRole with an override WordNet agrees with: %v", err)
	}
	roleOverrides["fish"] = struct{ role, why string }{roleHeld, "caught"}
	if _, err := nounRole("fish", []int{0}, wnids, s); err == nil || err.Error() != `role override for "fish", an animal's noun: remove it` {
		t.Errorf("nounRole with an override of an animal's noun: %v", err)
	}
}
