package main

import (
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/internal/testassets"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

// TestShippedVocabIsTrains checks each shipped model's vocabulary, its words
// and their counts, against the one train builds from the Flickr8k train
// split with the model's cleaning and min count 5: the models' word ids are
// what the public dataset gives, so a user's run of the same command starts
// from the same vocabulary.
func TestShippedVocabIsTrains(t *testing.T) {
	assets := testassets.Dir(t, "the test builds the vocabulary from the Flickr8k captions")
	for _, model := range []string{shippedModel, filepath.Join("..", "..", "models", "flickr8k-merge-lstm")} {
		cfg, err := decoder.ReadConfig(filepath.Join(model, decoder.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := text.LoadFlickr8k(filepath.Join(assets, "data", "flickr8k"))
		if err != nil {
			t.Fatal(err)
		}
		trainImgs, _, err := cleanSplits(ds, cfg.Cleaning, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		want := text.BuildVocab(text.Captions(trainImgs), text.DefaultMinCount)
		path := filepath.Join(model, pipeline.VocabFile)
		got, err := text.LoadVocab(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s is not the vocabulary of the Flickr8k train split (cleaning %s, min count %d)", path, cfg.Cleaning, text.DefaultMinCount)
		}
	}
}

// TestVocabTooSmall: a vocabulary of one word (5 ids) holds a beam of 2 at
// most, and is refused for train.eval_beam 3 naming the settings to change.
func TestVocabTooSmall(t *testing.T) {
	v := text.BuildVocab([][]string{{"dog", "runs"}, {"dog"}}, 2) // "dog" alone
	want := "train: a vocabulary of 5 words (min count 2, the 4 special tokens included) is too small for train.eval_beam 3, or to caption with: a beam may be at most half of it; lower train.min_count, or train on more captions"
	if err := vocabTooSmall(v, 3, "min count 2"); err == nil || err.Error() != want {
		t.Errorf("eval beam 3: %v, want %q", err, want)
	}
	if err := vocabTooSmall(v, 2, "min count 2"); err != nil {
		t.Errorf("eval beam 2: %v, want none", err)
	}
}
