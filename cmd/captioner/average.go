package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
)

func init() {
	cmd := &cobra.Command{
		Use:   "average --out DIR MODEL MODEL...",
		Short: "Average the weights of caption models fine-tuned from one model into a new model",
		Long: `Writes a caption model whose every weight is the weighted mean of the given
model folders' ("model soup"; for a model and its fine-tuned self, an
interpolation between them). Models fine-tuned from one model, for example
a cross-entropy model and its self-critical fine-tuning, average into a model
often better than each: the shipped flickr8k-attention is one (its MODEL.md).
The models must be one network (architecture, sizes) with one vocabulary; the
new folder gets the first model's config and vocabulary. Factorized models
(captioner factorize) average factor by factor: a factorized model with the
models trained from it, whose factors line up (others are refused). Score it
with captioner eval --model DIR.`,
		Example: `  captioner average --out runs/soup runs/attention-xe/model runs/scst/last
  captioner average --weights 4,1 --half --out runs/soup runs/attention-xe/model runs/scst/last`,
		Args: atLeast(2, "model folders"),
		RunE: runAverage,
	}
	cmd.Flags().String("out", "", "folder of the averaged model (required)")
	cmd.Flags().String("weights", "", "one positive weight per model, comma-separated (default: all equal)")
	cmd.Flags().Bool("half", false, "store the weights in float16 (half the file; see decoder.SaveHalf)")
	rootCmd.AddCommand(cmd)
}

func runAverage(cmd *cobra.Command, dirs []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	out, _ := cmd.Flags().GetString("out")
	if err := freshOut(out, "averaged"); err != nil {
		return err
	}
	weights, err := parseWeights(cmd, len(dirs))
	if err != nil {
		return err
	}
	if err := frozenEncoders(dirs); err != nil {
		return err
	}
	vocab, err := sameVocab(dirs)
	if err != nil {
		return err
	}
	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := decoder.Average(dev, dirs, weights)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := saveDecoder(cmd, m, out); err != nil {
		return err
	}
	if err := vocab.Save(filepath.Join(out, pipeline.VocabFile)); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "averaged %d models (weights %v) into %s\n", len(dirs), weights, out)
	return nil
}

// saveDecoder writes m into out, in float16 when --half asks for it.
func saveDecoder(cmd *cobra.Command, m *decoder.Model, out string) error {
	if half, _ := cmd.Flags().GetBool("half"); half {
		return m.SaveHalf(out)
	}
	return m.Save(out)
}

// parseWeights reads --weights: one positive number per model, or all 1.
func parseWeights(cmd *cobra.Command, n int) ([]float64, error) {
	s, _ := cmd.Flags().GetString("weights")
	w := make([]float64, n)
	if s == "" {
		for i := range w {
			w[i] = 1
		}
		return w, nil
	}
	fields := strings.Split(s, ",")
	if len(fields) != n {
		return nil, fmt.Errorf("--weights %q: %d weights for %d models; give one per model", s, len(fields), n)
	}
	for i, f := range fields {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("--weights %q: %q is not a number", s, f)
		}
		if !(x > 0) || math.IsInf(x, 1) {
			return nil, fmt.Errorf("--weights %q: %q is not a positive number", s, f)
		}
		w[i] = x
	}
	return w, nil
}

// sameVocab returns the models' vocabulary, which must be one: a token id
// must mean the same word in every model whose weights are averaged.
func sameVocab(dirs []string) (*text.Vocab, error) {
	var first *text.Vocab
	for _, dir := range dirs {
		if err := isModelFolder(dir); err != nil {
			return nil, err
		}
		v, err := text.LoadVocab(filepath.Join(dir, pipeline.VocabFile))
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = v
			continue
		}
		if v.Size() != first.Size() {
			return nil, fmt.Errorf("model %s has a vocabulary of %d ids, %s of %d: average models fine-tuned from one model, which keep its vocabulary", dir, v.Size(), dirs[0], first.Size())
		}
		for id := range v.Size() {
			if v.Word(id) != first.Word(id) {
				return nil, fmt.Errorf("model %s has another vocabulary than %s (id %d: %q against %q): average models fine-tuned from one model, which keep its vocabulary", dir, dirs[0], id, v.Word(id), first.Word(id))
			}
		}
	}
	return first, nil
}

// frozenEncoders refuses models with fine-tuned encoder layers, which
// averaging the decoders would drop (the averaged decoder would read the
// ImageNet encoder's features).
func frozenEncoders(dirs []string) error {
	for _, dir := range dirs {
		if fileExists(filepath.Join(dir, encoder.TunedFile)) {
			return fmt.Errorf("model %s has fine-tuned encoder layers (%s), which averaging would drop: average models trained with a frozen encoder (train.finetune_blocks 0)", dir, encoder.TunedFile)
		}
	}
	return nil
}

// freshOut refuses an --out that is not a new or empty folder: the model
// written there would overwrite an input, or sit beside another model's
// files (its scores.json, MODEL.md or fine-tuned encoder layers, which
// serve and eval would take for the new model's).
func freshOut(out, what string) error {
	if out == "" {
		return fmt.Errorf("--out: name the folder to write the %s model into", what)
	}
	if st, err := os.Stat(out); err == nil && !st.IsDir() {
		return fmt.Errorf("--out %s is a file: name a new folder to write the %s model into", out, what)
	}
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return fmt.Errorf("--out %s is not empty: write the %s model into a new folder (an input's files, or another model's, would be overwritten or left beside it)", out, what)
	}
	return nil
}

// isModelFolder says what is wrong with dir as a model folder argument when it
// does not exist or is a file: "open DIR/vocab.json: not a directory" did not.
func isModelFolder(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("model %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("model %s is a file, not a model folder: name the folder that holds %s, %s and %s", dir, decoder.ConfigFile, decoder.WeightsFile, pipeline.VocabFile)
	}
	return pipeline.CheckModelFolder(dir) // a run's folder for its model/, say
}
