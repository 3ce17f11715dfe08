package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/train"
)

// TestFactorizeWritesAModel runs the command on a small attention model: the
// new folder holds a loadable model of the asked rank with the same
// vocabulary, and bad requests fail before anything is written.
func TestFactorizeWritesAModel(t *testing.T) {
	dir, _ := tinyModel(t, 1, "a", "dog", "runs")
	// The record of the run that trained it goes with it.
	record := []byte(`{"epoch": {"epoch": 3}}` + "\n")
	if err := os.WriteFile(filepath.Join(dir, train.TrainingFile), record, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "low")
	got, err := run(t, "factorize", "--device", "cpu", "--rank", "2", "--half=false", "--out", out, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "factorized " + dir + " at rank 2 into " + out + ": the context weight's 96 multiply-adds a decoding step become 44\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if m := loadDecoder(t, out); m.Cfg.CtxRank != 2 {
		t.Errorf("ctx_rank %d, want 2", m.Cfg.CtxRank)
	}
	a, errA := os.ReadFile(filepath.Join(dir, pipeline.VocabFile))
	b, errB := os.ReadFile(filepath.Join(out, pipeline.VocabFile))
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Errorf("vocabulary not copied: %v %v", errA, errB)
	}
	if got, err := os.ReadFile(filepath.Join(out, train.TrainingFile)); err != nil || string(got) != string(record) {
		t.Errorf("%s not copied: %v %q", train.TrainingFile, err, got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rank", "2", "--out", "", dir}, "--out: name the folder to write the factorized model into"},
		{[]string{"--rank", "2", "--out", dir, dir}, "--out " + dir + " is not empty: write the factorized model into a new folder (an input's files, or another model's, would be overwritten or left beside it)"},
		{[]string{"--rank", "6", "--out", filepath.Join(t.TempDir(), "x"), dir}, "model " + dir + ": decoder: rank 6 is outside 1..4: the context weight is 16x6 (96 multiply-adds a step), and factors of rank 5 or more cost as many"},
	} {
		_, err := run(t, append([]string{"factorize", "--device", "cpu", "--half=false"}, tc.args...)...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("factorize %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
