package text

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var vocabCaptions = [][]string{
	{"dog", "runs", "on", "grass"},
	{"dog", "plays", "on", "grass"},
	{"cat", "runs"},
	{"dog", "on", "sofa"},
}

func words(v *Vocab) []string {
	var out []string
	for id := 0; id < v.Size(); id++ {
		out = append(out, v.Word(id))
	}
	return out
}

func TestBuildVocab(t *testing.T) {
	// Counts: dog 3, on 3, grass 2, runs 2, cat 1, plays 1, sofa 1. Descending
	// count, ties alphabetical: dog before on, grass before runs.
	v := BuildVocab(vocabCaptions, 2)
	want := []string{"<pad>", "<start>", "<end>", "<unk>", "dog", "on", "grass", "runs"}
	if got := words(v); !reflect.DeepEqual(got, want) {
		t.Errorf("min count 2: words %q, want %q", got, want)
	}
	if v.Count(v.ID("dog")) != 3 || v.Count(v.ID("runs")) != 2 || v.Count(PadID) != 0 {
		t.Errorf("counts dog %d runs %d pad %d, want 3 2 0", v.Count(v.ID("dog")), v.Count(v.ID("runs")), v.Count(PadID))
	}
	v1 := BuildVocab(vocabCaptions, 1)
	want1 := append(want, "cat", "plays", "sofa")
	if got := words(v1); !reflect.DeepEqual(got, want1) {
		t.Errorf("min count 1: words %q, want %q", got, want1)
	}
	// The special tokens keep their ids even if a caption contains one.
	v2 := BuildVocab([][]string{{"<end>", "<end>", "dog"}}, 1)
	if got := words(v2); !reflect.DeepEqual(got, []string{"<pad>", "<start>", "<end>", "<unk>", "dog"}) {
		t.Errorf("captions containing <end>: words %q", got)
	}
	// The same captions in another order give the same ids.
	rev := [][]string{vocabCaptions[3], vocabCaptions[2], vocabCaptions[1], vocabCaptions[0]}
	if !reflect.DeepEqual(words(BuildVocab(rev, 1)), want1) {
		t.Error("caption order changed the ids")
	}
}

func TestVocabEncodeDecode(t *testing.T) {
	v := BuildVocab(vocabCaptions, 2)
	ids := v.Encode([]string{"dog", "chases", "cat", "on", "grass"})
	if want := []int{4, UnkID, UnkID, 5, 6}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Encode = %v, want %v", ids, want)
	}
	got := v.Decode([]int{StartID, 4, UnkID, 5, 6, EndID, 7, PadID})
	if want := []string{"dog", "<unk>", "on", "grass"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	if got := v.Decode([]int{PadID, 7, PadID}); !reflect.DeepEqual(got, []string{"runs"}) {
		t.Errorf("Decode without <end> = %q", got)
	}
	for _, id := range []int{-1, 8} {
		func() {
			defer func() {
				if p, _ := recover().(string); !strings.Contains(p, "outside the vocabulary 0..7") {
					t.Errorf("Word(%d) panic %q", id, p)
				}
			}()
			v.Word(id)
		}()
	}
}

func TestVocabSaveLoad(t *testing.T) {
	v := BuildVocab(vocabCaptions, 2)
	path := filepath.Join(t.TempDir(), "vocab.json")
	if err := v.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadVocab(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("loaded %+v, saved %+v", got, v)
	}
	// The documented layout.
	var f map[string]any
	if err := json.Unmarshal(must(os.ReadFile(path)), &f); err != nil {
		t.Fatal(err)
	}
	if f["format"] != "captioner-vocab" || f["version"] != 1.0 || f["min_count"] != 2.0 ||
		len(f["words"].([]any)) != 8 || f["counts"].([]any)[4] != 3.0 {
		t.Errorf("file layout %v", f)
	}
	// No temporary file is left beside it.
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries after Save, want 1", len(entries))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestLoadVocabErrors(t *testing.T) {
	valid := `{"format": "captioner-vocab", "version": 1, "min_count": 5,
		"words": ["<pad>", "<start>", "<end>", "<unk>", "dog", "cat"], "counts": [0, 0, 0, 0, 9, 7]}`
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"not json", valid, "hello", "not a vocabulary JSON file"},
		{"unknown field", `"version"`, `"extra": 1, "version"`, `unknown field "extra"`},
		{"format", "captioner-vocab", "other", `format is "other", want "captioner-vocab"`},
		{"version", `"version": 1`, `"version": 2`, "version 2, this build reads version 1"},
		{"specials order", `"<start>", "<end>"`, `"<end>", "<start>"`, `word 1 is "<end>", want "<start>"`},
		{"too short", `["<pad>", "<start>", "<end>", "<unk>", "dog", "cat"]`, `["<pad>"]`, "1 words, fewer than the 4 special tokens"},
		{"duplicate", `"dog", "cat"`, `"dog", "dog"`, `word "dog" appears twice (ids 4 and 5)`},
		{"counts length", `[0, 0, 0, 0, 9, 7]`, `[0, 0, 0, 0, 9]`, "5 counts for 6 words"},
		{"empty word", `"cat"]`, `""]`, `word 5 ("") is empty`},
		{"space in word", `"cat"]`, `"hot dog"]`, `word 5 ("hot dog") is empty, contains whitespace`},
		{"special twice", `"cat"]`, `"<unk>"]`, `word "<unk>" appears twice`},
		{"negative count", `9, 7]`, `9, -7]`, `word "cat" has a negative count -7`},
		// The first word after the specials is checked too, and -1 is negative.
		{"first word empty", `"dog", "cat"`, `"", "cat"`, `word 4 ("") is empty`},
		{"first word spaced", `"dog", "cat"`, `"a b", "cat"`, `word 4 ("a b") is empty, contains whitespace`},
		{"count -1", `9, 7]`, `-1, 7]`, `word "dog" has a negative count -1`},
		{"min count", `"min_count": 5`, `"min_count": 0`, "min_count 0 is less than 1"},
	} {
		path := filepath.Join(t.TempDir(), "vocab.json")
		data := strings.Replace(valid, tc.old, tc.new, 1)
		if data == valid {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadVocab(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err %v, want one naming %s and containing %q", tc.name, err, path, tc.want)
		}
	}
	if v, err := ReadVocab(strings.NewReader(valid)); err != nil || v.Size() != 6 || v.ID("cat") != 5 {
		t.Errorf("valid file: %v, %v", v, err)
	}
	if _, err := LoadVocab(filepath.Join(t.TempDir(), "missing.json")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestVocabWriteJSONStable(t *testing.T) {
	// Saving the same vocabulary twice gives the same bytes (models are committed).
	var a, b bytes.Buffer
	if err := BuildVocab(vocabCaptions, 1).WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := BuildVocab(vocabCaptions, 1).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same vocabulary differ")
	}
}

// TestSentence maps generated token ids to words and joins them; an empty
// caption (the decoder ended at once) is the empty sentence.
func TestSentence(t *testing.T) {
	v := BuildVocab(vocabCaptions, 2) // <pad> <start> <end> <unk> dog on grass runs
	ids := []int32{4, 7, 5, 6, UnkID}
	if got, want := v.Words(ids), []string{"dog", "runs", "on", "grass", "<unk>"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Words(%v) = %q, want %q", ids, got, want)
	}
	if got, want := v.Sentence(ids), "Dog runs on grass <unk>."; got != want {
		t.Errorf("Sentence(%v) = %q, want %q", ids, got, want)
	}
	if got := v.Sentence(nil); got != "" {
		t.Errorf("Sentence(nil) = %q, want \"\"", got)
	}
	defer func() {
		if r := recover(); r == nil || r != "text: word id 8 outside the vocabulary 0..7" {
			t.Errorf("Sentence of an id past the vocabulary: panic %v, want the range message", r)
		}
	}()
	v.Sentence([]int32{8})
}

func TestSentenceFormatting(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"brown", "dog", "is", "running", "through", "the", "grass"}, "Brown dog is running through the grass."},
		{[]string{"a", "man"}, "A man."},
		{[]string{"dog"}, "Dog."},
		{[]string{"élan"}, "Élan."}, // the first letter, not the first byte
		{[]string{"<unk>", "runs"}, "<unk> runs."},
		{nil, ""},
	} {
		if got := Sentence(tc.words); got != tc.want {
			t.Errorf("Sentence(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestMirrorWords(t *testing.T) {
	v := BuildVocab([][]string{{"a", "dog", "on", "the", "left"}, {"his", "right", "hand"}}, 1)
	left, right := int32(v.ID("left")), int32(v.ID("right"))
	if got, want := v.MirrorWords(), map[int32]int32{left: right, right: left}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MirrorWords = %v, want %v (left %d, right %d)", got, want, left, right)
	}
	// One word of the pair unknown: nothing to swap it with.
	if got := BuildVocab([][]string{{"turn", "left"}}, 1).MirrorWords(); len(got) != 0 {
		t.Fatalf("a vocabulary without right swaps %v", got)
	}
}
