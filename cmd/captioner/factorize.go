package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/train"
)

func init() {
	cmd := &cobra.Command{
		Use:   "factorize --rank R --out DIR MODEL",
		Short: "Write an attention model whose context weight is factorized to rank R, for cheaper decoding",
		Long: `Writes a copy of an attention caption model whose LSTM input weight for the
attended context (4*hidden x feat_dim, the largest matrix of a decoding step)
is replaced by its best rank-R approximation, kept as two factors (truncated
SVD): each decoding step then does R*(4*hidden+feat_dim) multiply-adds for it
instead of 4*hidden*feat_dim. The rest of the model is copied as it is. A
factorized model captions and serves like any other, trains (train --init
DIR keeps the factors, and trains them), and averages with the models trained
from it (captioner average; factorizations made apart do not line up: average
their full models, then factorize). Score it with
captioner eval --model DIR: models/flickr8k-attention/MODEL.md lists what
ranks cost the shipped model's captions.`,
		Example: `  captioner factorize --rank 128 --out runs/attention-r128 runs/attention/model
  captioner eval --model runs/attention-r128`,
		Args: cobra.ExactArgs(1),
		RunE: runFactorize,
	}
	intFlag(cmd.Flags(), "rank", 128, "rank of the context weight's factors: 1 up to where they would cost what the weight does, below 4·hidden·feat_dim/(4·hidden + feat_dim)")
	cmd.Flags().String("out", "", "folder of the factorized model (required; new or empty)")
	cmd.Flags().Bool("half", false, "store the weights in float16 (half the file; see decoder.SaveHalf)")
	rootCmd.AddCommand(cmd)
}

func runFactorize(cmd *cobra.Command, args []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	dir := args[0]
	out, _ := cmd.Flags().GetString("out")
	if err := freshOut(out, "factorized"); err != nil {
		return err
	}
	if err := isModelFolder(dir); err != nil {
		return err
	}
	// The vocabulary, and fine-tuned encoder layers and the record of the
	// run that trained it when the model has them, go with the decoder
	// unchanged: read before anything is written.
	carry := map[string][]byte{}
	for _, name := range []string{pipeline.VocabFile, encoder.TunedFile, train.TrainingFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != pipeline.VocabFile {
			continue
		}
		if err != nil {
			return fmt.Errorf("model %s: %w", dir, err)
		}
		carry[name] = b
	}
	rank, _ := cmd.Flags().GetInt("rank")
	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := decoder.Load(dev, dir)
	if err != nil {
		return err
	}
	defer m.Close()
	f, err := decoder.Factorize(m, rank)
	if err != nil {
		return fmt.Errorf("model %s: %w", dir, err)
	}
	defer f.Close()
	if err := saveDecoder(cmd, f, out); err != nil {
		return err
	}
	for name, b := range carry {
		if err := atomicfile.WriteFile(filepath.Join(out, name), b); err != nil {
			return err
		}
	}
	c := m.Cfg
	G, F := 4*c.Hidden, c.FeatDim
	fmt.Fprintf(cmd.OutOrStdout(), "factorized %s at rank %d into %s: the context weight's %d multiply-adds a decoding step become %d\n",
		dir, rank, out, G*F, rank*(G+F))
	return nil
}
