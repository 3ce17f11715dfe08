package text

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/captioner/captioner/internal/atomicfile"
	"io"
	"os"
	"sort"
	"strings"
)

// The special tokens have fixed ids so that a model's embedding rows and the
// decoder's stopping rule never depend on the data.
const (
	PadID   = 0 // fills batches of unequal caption length; never predicted
	StartID = 1 // fed to the decoder first
	EndID   = 2 // the decoder stops when it predicts this
	UnkID   = 3 // any word outside the vocabulary

	Pad   = "<pad>"
	Start = "<start>"
	End   = "<end>"
	Unk   = "<unk>"
)

var specials = [...]string{Pad, Start, End, Unk}

// NumSpecial is how many special tokens every vocabulary starts with (ids
// 0..3): a vocabulary of NumSpecial words has no word at all.
const NumSpecial = len(specials)

// DefaultMinCount is the seed notebook's threshold: words seen fewer times in
// the training captions become <unk>.
const DefaultMinCount = 5

// Vocab maps words to ids and back: ids 0..3 are the special tokens, then the
// words of the training captions seen at least MinCount times, by descending
// count and then alphabetically, so the same captions always give the same ids.
type Vocab struct {
	MinCount int
	words    []string // id -> word
	counts   []int    // id -> training count (0 for the special tokens)
	ids      map[string]int
}

// BuildVocab counts the tokens of captions (each a cleaned caption) and keeps
// the words seen at least minCount (>= 1) times.
func BuildVocab(captions [][]string, minCount int) *Vocab {
	if minCount < 1 {
		panic(fmt.Sprintf("text: BuildVocab minCount must be at least 1, got %d", minCount))
	}
	count := map[string]int{}
	for _, c := range captions {
		for _, w := range c {
			count[w]++
		}
	}
	var kept []string
	for w, n := range count {
		if n >= minCount && !isSpecial(w) {
			kept = append(kept, w)
		}
	}
	sort.Slice(kept, func(i, j int) bool {
		if count[kept[i]] != count[kept[j]] {
			return count[kept[i]] > count[kept[j]]
		}
		return kept[i] < kept[j]
	})
	words := append(append([]string{}, specials[:]...), kept...)
	counts := make([]int, len(words))
	for i, w := range kept {
		counts[len(specials)+i] = count[w]
	}
	v, err := newVocab(words, counts, minCount)
	if err != nil {
		panic("text: BuildVocab made an invalid vocabulary: " + err.Error())
	}
	return v
}

func isSpecial(w string) bool {
	for _, s := range specials {
		if w == s {
			return true
		}
	}
	return false
}

// newVocab checks words and counts and indexes them.
func newVocab(words []string, counts []int, minCount int) (*Vocab, error) {
	if len(words) < len(specials) {
		return nil, fmt.Errorf("%d words, fewer than the %d special tokens", len(words), len(specials))
	}
	for i, s := range specials {
		if words[i] != s {
			return nil, fmt.Errorf("word %d is %q, want %q: ids 0..3 must be %s", i, words[i], s, strings.Join(specials[:], " "))
		}
	}
	if len(counts) != len(words) {
		return nil, fmt.Errorf("%d counts for %d words", len(counts), len(words))
	}
	if minCount < 1 {
		return nil, fmt.Errorf("min_count %d is less than 1", minCount)
	}
	ids := make(map[string]int, len(words))
	for i, w := range words {
		if prev, dup := ids[w]; dup {
			return nil, fmt.Errorf("word %q appears twice (ids %d and %d)", w, prev, i)
		}
		if i >= len(specials) {
			if w == "" || strings.ContainsFunc(w, isPySpace) || isSpecial(w) {
				return nil, fmt.Errorf("word %d (%q) is empty, contains whitespace or is a special token", i, w)
			}
			if counts[i] < 0 {
				return nil, fmt.Errorf("word %q has a negative count %d", w, counts[i])
			}
		}
		ids[w] = i
	}
	return &Vocab{MinCount: minCount, words: words, counts: counts, ids: ids}, nil
}

// Size is the number of ids, special tokens included: the model's output width.
func (v *Vocab) Size() int { return len(v.words) }

// ID returns the id of word, or UnkID.
func (v *Vocab) ID(word string) int {
	if id, ok := v.ids[word]; ok {
		return id
	}
	return UnkID
}

// Word returns the word with the given id; it panics on an id outside 0..Size-1.
func (v *Vocab) Word(id int) string {
	if id < 0 || id >= len(v.words) {
		panic(fmt.Sprintf("text: word id %d outside the vocabulary 0..%d", id, len(v.words)-1))
	}
	return v.words[id]
}

// Count is how often the word with this id occurred in the training captions
// (0 for the special tokens).
func (v *Vocab) Count(id int) int {
	v.Word(id) // range check
	return v.counts[id]
}

// Encode maps cleaned tokens to ids, unknown words to UnkID. It adds no
// <start> or <end>.
func (v *Vocab) Encode(tokens []string) []int {
	ids := make([]int, len(tokens))
	for i, w := range tokens {
		ids[i] = v.ID(w)
	}
	return ids
}

// Words maps the token ids of a generated caption (decoder.Hypothesis.Tokens,
// without <start> and <end>) to its words; it panics on an id outside the
// vocabulary, as Word does.
func (v *Vocab) Words(ids []int32) []string {
	words := make([]string, len(ids))
	for i, id := range ids {
		words[i] = v.Word(int(id))
	}
	return words
}

// mirrorPairs are the words a caption swaps when its photo is flipped left to
// right.
var mirrorPairs = [][2]string{{"left", "right"}}

// MirrorWords maps the id of each word whose meaning flips with a mirrored photo
// to the id of its counterpart ("left" <-> "right"), for the pairs whose both
// words the vocabulary has; train.mirror rewrites a mirrored photo's captions
// with it.
func (v *Vocab) MirrorWords() map[int32]int32 {
	swap := map[int32]int32{}
	for _, p := range mirrorPairs {
		a, b := v.ID(p[0]), v.ID(p[1])
		if a != UnkID && b != UnkID {
			swap[int32(a)], swap[int32(b)] = int32(b), int32(a)
		}
	}
	return swap
}

// Sentence is the caption of the token ids ids as a sentence (see Sentence).
func (v *Vocab) Sentence(ids []int32) string { return Sentence(v.Words(ids)) }

// Decode maps ids back to words for display: it skips <pad> and <start> and
// stops at the first <end>; <unk> stays visible as "<unk>".
func (v *Vocab) Decode(ids []int) []string {
	var out []string
	for _, id := range ids {
		switch id {
		case PadID, StartID:
			continue
		case EndID:
			return out
		}
		out = append(out, v.Word(id))
	}
	return out
}

// vocabFile is the JSON layout of a saved vocabulary:
//
//	{
//	  "format": "captioner-vocab",
//	  "version": 1,
//	  "min_count": 5,
//	  "words":  ["<pad>", "<start>", "<end>", "<unk>", "in", "the", ...],
//	  "counts": [0, 0, 0, 0, 18150, 17500, ...]
//	}
//
// words[i] is the word with id i; counts[i] its training count.
type vocabFile struct {
	Format   string   `json:"format"`
	Version  int      `json:"version"`
	MinCount int      `json:"min_count"`
	Words    []string `json:"words"`
	Counts   []int    `json:"counts"`
}

const (
	vocabFormat  = "captioner-vocab"
	vocabVersion = 1
)

// WriteJSON writes the vocabulary in the layout documented at vocabFile.
func (v *Vocab) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(vocabFile{vocabFormat, vocabVersion, v.MinCount, v.words, v.counts}, "", " ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadVocab reads and validates a vocabulary written by WriteJSON.
func ReadVocab(r io.Reader) (*Vocab, error) {
	var f vocabFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a vocabulary JSON file: %w", err)
	}
	if f.Format != vocabFormat {
		return nil, fmt.Errorf("format is %q, want %q", f.Format, vocabFormat)
	}
	if f.Version != vocabVersion {
		return nil, fmt.Errorf("version %d, this build reads version %d", f.Version, vocabVersion)
	}
	return newVocab(f.Words, f.Counts, f.MinCount)
}

// Save writes the vocabulary to path atomically (a temporary file renamed over
// path), so a crash never leaves half a vocabulary beside a model.
func (v *Vocab) Save(path string) error {
	var buf bytes.Buffer
	if err := v.WriteJSON(&buf); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("text: saving vocabulary: %w", err)
	}
	return nil
}

// LoadVocab reads a vocabulary saved by Save; errors name the file.
func LoadVocab(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := ReadVocab(f)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid vocabulary: %w", path, err)
	}
	return v, nil
}
