package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/metrics"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/text"
	"github.com/captioner/captioner/train"
)

func init() {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the caption decoder on cached image features (resumable)",
		Long: `Trains the caption decoder on a dataset's train split with teacher forcing,
evaluating dev-split loss and BLEU after every epoch: --arch merge (the seed's, on
pooled features) or --arch attention (Show, Attend and Tell over the 7x7 grid, which
needs ` + "`captioner extract --grid`" + `). Captions are tokenised by --cleaning
(standard keeps every word, "a" too; seed is the seed notebook's). Features come from
` + "`captioner extract`" + ` (run it first). Everything goes to --out:
  checkpoint.safetensors  resumable state (atomic, checksummed) after every epoch
  model/                  the epoch with the best dev BLEU-4 so far: decoder weights,
                          config.json, vocab.json — a model folder for --model
  curves.csv              loss and BLEU per epoch
  curves.png, curves.svg  the same as charts
Stops after train.epochs, or after train.patience epochs without a better dev
BLEU-4. After a crash or kill, run the same command with --resume.

--objective cider fine-tunes a trained model (--init, whose vocabulary is kept)
with self-critical sequence training: it samples train.samples captions per
image, rewards each by CIDEr-D against the image's references, and makes the
better-than-average ones more likely. It typically follows cross-entropy
training with a lower rate, e.g.
  captioner train --init models/flickr8k-attention --arch attention --hidden 512 --objective cider --lr 5e-5 --out runs/scst`,
		Args: cobra.NoArgs,
		RunE: runTrain,
	}
	f := cmd.Flags()
	f.String("out", "", "output folder: checkpoint, curves, model/ (default train.out)")
	f.String("data", "", "dataset folder (flickr8k) or JSON file (karpathy); default <assets>/data/flickr8k")
	f.String("dataset", "", "dataset format: flickr8k or karpathy (default train.dataset)")
	f.String("features", "", "feature cache root of captioner extract (default: extract's)")
	f.Bool("resume", false, "continue from <out>/checkpoint.safetensors")
	f.Int("epochs", 30, "maximum epochs")
	f.Int("batch-size", 64, "captions per step")
	f.Float64("lr", 1e-3, "Adam learning rate")
	f.Int("hidden", 256, "LSTM and image-branch size")
	f.Int64("seed", 1, "random seed: the same seed gives the same run")
	f.String("init", "", "model folder to start from (weights and vocabulary)")
	f.String("objective", "xe", "xe (cross-entropy, teacher forcing) or cider (self-critical, needs --init)")
	f.String("arch", "merge", "decoder: merge (pooled features) or attention (7x7 grid; needs captioner extract --grid)")
	f.String("cleaning", "standard", "caption tokens: standard (coco-caption, keeps \"a\") or seed (the seed notebook's)")
	bindOnRun(cmd, map[string]string{"arch": "train.arch", "cleaning": "train.cleaning", "init": "train.init", "objective": "train.objective", "out": "train.out", "data": "train.data", "dataset": "train.dataset",
		"features": "train.features", "resume": "train.resume", "epochs": "train.epochs",
		"batch-size": "train.batch_size", "lr": "train.lr", "hidden": "train.hidden", "seed": "train.seed"})
	rootCmd.AddCommand(cmd)
}

func runTrain(cmd *cobra.Command, _ []string) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	tc := cfg.Train
	log := cmd.ErrOrStderr()
	ds, err := loadDataset(cfg.Assets, tc.Dataset, tc.Data)
	if err != nil {
		return err
	}
	if tc.Init != "" { // the initial model's vocabulary, hence its cleaning
		ic, err := decoder.ReadConfig(filepath.Join(tc.Init, decoder.ConfigFile))
		if err != nil {
			return fmt.Errorf("train.init: %w", err)
		}
		tc.Cleaning = string(ic.Cleaning)
	}
	ds.Reclean(text.Cleaning(tc.Cleaning))
	trainImgs, err := ds.Split(text.SplitTrain)
	if err != nil {
		return err
	}
	devImgs, err := ds.Split(text.SplitDev)
	if err != nil {
		return err
	}
	vocab := text.BuildVocab(text.Captions(trainImgs), tc.MinCount)
	vocabFrom := fmt.Sprintf("min count %d", tc.MinCount)
	if tc.Init != "" { // the initial weights' word ids must keep their meaning
		if vocab, err = text.LoadVocab(filepath.Join(tc.Init, pipeline.VocabFile)); err != nil {
			return fmt.Errorf("train.init: %w", err)
		}
		vocabFrom = "from " + tc.Init
	}
	fmt.Fprintf(log, "%s: %d train images, %d dev images, vocabulary %d words (%s)\n",
		ds.Name, len(trainImgs), len(devImgs), vocab.Size(), vocabFrom)

	store, err := openFeatures(cfg.Assets, tc.Features)
	if err != nil {
		return err
	}
	defer store.Close()
	trn, err := split(store, trainImgs, vocab, tc.Arch)
	if err != nil {
		return err
	}
	dv, err := split(store, devImgs, vocab, tc.Arch)
	if err != nil {
		return err
	}
	modelDir := train.ModelDir(tc.Out)
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		return err
	}
	if err := vocab.Save(filepath.Join(modelDir, pipeline.VocabFile)); err != nil {
		return err
	}
	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.Close()
	fmt.Fprintf(log, "training on %s, writing to %s\n", dev.Name(), tc.Out)

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The dev evaluation decodes at train.eval_beam, best caption only (the
	// self-critical objective samples with the same options at beam 1).
	plan, err := pipeline.NewDecoding(cfg.Decode, config.MaxBeam).Plan(pipeline.Options{Beam: tc.EvalBeam, Alternatives: 1})
	if err != nil {
		return fmt.Errorf("train.eval_beam: %w", err)
	}
	o := train.Options{Train: tc, Vocab: vocab, Log: log, BLEU: metrics.BLEU, Regions: store.Manifest().Regions(), Decode: plan.DecodeOptions}
	res, err := train.Run(ctx, dev, o, trn, dv)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: the last finished epoch's checkpoint is in %s; run the same command with --resume to continue", tc.Out)
	}
	if err != nil {
		return err
	}
	b := res.Best
	fmt.Fprintf(cmd.OutOrStdout(), "stopped by %s after %d epochs (%.0fs); best epoch %d: dev BLEU-1..4 %.4f %.4f %.4f %.4f, dev loss %.4f; model in %s\n",
		res.StoppedBy, len(res.History), res.Seconds, b.Epoch, b.BLEU[0], b.BLEU[1], b.BLEU[2], b.BLEU[3], b.DevLoss, res.ModelDir)
	return nil
}

// loadDataset reads the configured caption dataset.
func loadDataset(assetsDir, format, path string) (*text.Dataset, error) {
	if format == "karpathy" {
		if path == "" {
			return nil, fmt.Errorf("train.dataset karpathy needs train.data (--data) naming the dataset_*.json file")
		}
		return text.LoadKarpathyJSON(path, "")
	}
	if path == "" {
		store, err := assets.Open(assetsDir)
		if err != nil {
			return nil, err
		}
		path = filepath.Join(store.Dir, filepath.FromSlash(assets.Flickr8kDir))
	}
	return text.LoadFlickr8k(path)
}

// openFeatures opens the feature store of the default encoder in assetsDir
// under root (extract's default root when empty).
func openFeatures(assetsDir, root string) (*features.Store, error) {
	w, err := encoder.LoadDefault(assetsDir)
	if err != nil {
		return nil, err
	}
	return openFeaturesOf(w, root)
}

// openFeaturesOf opens the feature store of encoder weights w under root, for
// a caller that needs the weights too.
func openFeaturesOf(w *encoder.Weights, root string) (*features.Store, error) {
	var err error
	if root == "" {
		if root, err = features.DefaultRoot(); err != nil {
			return nil, err
		}
	}
	s, err := features.Open(features.Dir(root, w.Config.ID()))
	if err != nil {
		return nil, fmt.Errorf("%w; run `captioner extract` first", err)
	}
	return s, nil
}

// decoderInputs reads from store what a decoder of arch takes for names: the
// 7x7 grids for attention, the pooled vectors for merge.
func decoderInputs(store *features.Store, names []string, arch string) ([]float32, error) {
	if arch == decoder.ArchAttention {
		return store.LoadGrid(names)
	}
	return store.LoadPooled(names)
}

// split turns dataset images into training examples with the features a
// decoder of arch reads.
func split(store *features.Store, imgs []text.Image, vocab *text.Vocab, arch string) (*train.Split, error) {
	names := make([]string, len(imgs))
	s := &train.Split{}
	for i, im := range imgs {
		names[i] = im.Name
		s.Refs = append(s.Refs, im.Captions)
		for _, c := range im.Captions {
			ids := vocab.Encode(c)
			words := make([]int32, len(ids))
			for j, id := range ids {
				words[j] = int32(id)
			}
			s.Examples = append(s.Examples, train.Example{Image: i, Words: words})
		}
	}
	var err error
	s.Feats, err = decoderInputs(store, names, arch)
	return s, err
}
