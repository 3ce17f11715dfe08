package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/captioner/captioner/assets"
	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/features"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/imgproc"
	"github.com/captioner/captioner/internal/listing"
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
` + "`captioner extract`" + ` (run it first). Everything goes to --out, which one run at a
time holds, and which a new run needs empty, so that nothing in it is overwritten
(--resume continues its checkpoint, or starts afresh in a folder that has none):
  checkpoint.safetensors  resumable state (atomic, checksummed) after every epoch
  model/                  the epoch with the best dev BLEU-4 so far (dev loss while no
                          dev 4-gram matches, on a small dataset): decoder weights,
                          config.json, vocab.json — a model folder for --model
  last/                   the same for the last epoch, whatever its score (the end of a
                          self-critical run, to average with its start: captioner average)
  curves.csv              loss and BLEU per epoch
  curves.png, curves.svg  the same as charts
Stops after train.epochs, or after train.patience epochs without a better dev
BLEU-4 (or dev loss). After a crash or kill, run the same command with --resume:
changed settings are refused, named, except train.epochs, train.patience and the
optimiser's rates (lr, lr_decay, weight_decay, finetune_lr, clip), which it logs.
A step whose gradients are not finite (a diverging loss) is not taken: the run
stops, the last epoch's checkpoint intact, to be resumed at a lower train.lr.

--finetune-blocks N also trains the encoder's last N inverted-residual blocks and
its head convolution, at --finetune-lr. The activations below them are computed
once (from the images, about one encoder pass per image) and cached beside the
features, keyed by content like them; an epoch then runs only the top. The model
folder gets the tuned layers (model/encoder.safetensors), which caption, serve and
eval use; encoder-checkpoint-<epoch>.safetensors beside the checkpoint holds the
top's training state for --resume.

--teacher DIR distils a model into the run (sequence-level knowledge
distillation, Kim & Rush 2016; --objective xe): at the start (and again on
--resume) the model in DIR captions every train image from extract's cached
features, by beam search as the decode settings say (decode.beam, max_len, alpha,
no_repeat), unguided, and each caption becomes one more cross-entropy target of
its image beside the references. They are training targets only: the dev BLEU
reads the references alone. The teacher must caption with the run's cleaning and
have a frozen encoder.

--mirror (train.mirror) trains on each photo flipped left to right for half of
its captions, drawn anew at every step, the words "left" and "right" swapped in
them: a data augmentation that reads the mirrored photos' features, which
` + "`captioner extract --mirror --split train`" + ` (with --grid for --arch attention)
caches beside the photos'. It works with both objectives.

--feature-dropout P (train.feature_dropout) drops a fraction P of the regions'
features in the attention decoder's cross-entropy training, a fresh mask per
caption and step (train.dropout covers its deep output only): it regularizes the
decoder's reading of the photo, as train.dropout does in self-critical training.

--objective cider fine-tunes a trained model (--init, whose vocabulary is kept, and
its --arch, --hidden and other sizes unless given)
with self-critical sequence training: it samples train.samples captions per
image, rewards each by CIDEr-D against the image's references, and makes the
better-than-average ones more likely; --xe-weight (train.xe_weight) mixes in
the cross-entropy of one reference per image and step (Paulus et al. 2018's
mixed objective), which keeps the fine-tuning close to the references'
language. It typically follows cross-entropy
training with a lower rate; train.dropout then drops image features only, with
one mask for sampling and scoring (the shipped model's self-critical stage kept
the default 0.5: without it the stage overfits the train photos; its MODEL.md),
e.g. from an attention model of your own (or a factorized one, see captioner
factorize, whose factors it trains):
  captioner train --init runs/attention/model --objective cider --lr 5e-5 --out runs/scst`,
		Args: cobra.NoArgs,
		RunE: runTrain,
	}
	f := cmd.Flags()
	f.String("out", "", "output folder: checkpoint, curves, model/, last/ (default train.out)")
	datasetFlags(f)
	f.String("features", "", "feature cache root of captioner extract (default: extract's)")
	f.Bool("resume", false, "continue from <out>/checkpoint.safetensors")
	intFlag(f, "epochs", 30, "maximum epochs")
	intFlag(f, "batch-size", 64, "captions per step")
	f.Float64("lr", 1e-3, "Adam learning rate")
	intFlag(f, "hidden", 256, "LSTM and image-branch size")
	int64Flag(f, "seed", 1, "random seed: the same seed gives the same run")
	f.String("init", "", "model folder to start from (weights, vocabulary, and the architecture and sizes not given)")
	f.String("objective", "xe", "xe (cross-entropy, teacher forcing) or cider (self-critical, needs --init)")
	f.String("arch", "merge", "decoder: merge (pooled features) or attention (7x7 grid; needs captioner extract --grid)")
	f.String("cleaning", "standard", "caption tokens: standard (coco-caption, keeps \"a\") or seed (the seed notebook's); with --init, the model's")
	f.Bool("mirror", false, "train on each photo flipped left to right half the time (needs captioner extract --mirror)")
	f.Float64("feature-dropout", 0, "--arch attention, cross-entropy: drop this fraction of the regions' features, a fresh mask per caption and step")
	f.Float64("xe-weight", 0, "with --objective cider, also raise the likelihood of one reference caption per image and step, weighted so against the samples' advantages (0: rewards alone)")
	f.String("teacher", "", "model folder whose captions of the train images are extra training targets, not references (knowledge distillation)")
	intFlag(f, "finetune-blocks", 0, "also train the encoder's last N blocks and head (0: frozen encoder)")
	f.Float64("finetune-lr", 1e-4, "Adam learning rate of the fine-tuned encoder layers")
	bindOnRun(cmd, map[string]string{"finetune-blocks": "train.finetune_blocks", "finetune-lr": "train.finetune_lr", "arch": "train.arch", "cleaning": "train.cleaning", "init": "train.init", "teacher": "train.teacher", "mirror": "train.mirror", "xe-weight": "train.xe_weight", "feature-dropout": "train.feature_dropout", "objective": "train.objective", "out": "train.out", "data": "train.data", "dataset": "train.dataset",
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
	ds, err := loadDataset(cfg, log)
	if err != nil {
		return err
	}
	explicit := explicitSettings(cmd)
	if tc.Objective == "cider" && !explicit("train.lr") {
		// The shipped model's stage ran at 5e-5; a README command without --lr
		// took a small run's dev loss from 3.99 to 5.27 in one epoch.
		fmt.Fprintf(log, "warning: train.objective cider at train.lr %g, the cross-entropy default: self-critical fine-tuning usually needs a rate 20-50 times lower (the shipped model's: 5e-5); set --lr\n", tc.LR)
	}
	if tc.Init != "" {
		if err := isModelFolder(tc.Init); err != nil {
			return fmt.Errorf("train.init: %w", err)
		}
		ic, err := decoder.ReadConfig(filepath.Join(tc.Init, decoder.ConfigFile))
		if err != nil {
			return fmt.Errorf("train.init: %w", err)
		}
		if err := inheritNetwork(&tc, ic, explicit); err != nil {
			return err
		}
	}
	if err := checkTeacher(tc); err != nil { // before the features load, not after
		return err
	}
	trainImgs, devImgs, err := cleanSplits(ds, text.Cleaning(tc.Cleaning), log)
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
		if note := outsideVocab(text.Captions(trainImgs), vocab, tc.MinCount); note != "" {
			fromScratch := "; a run from scratch (--init '') would learn them"
			if tc.Objective == "cider" { // which needs a model to start from
				fromScratch = ""
			}
			fmt.Fprintf(log, "note: %s: they train as <unk>%s\n", note, fromScratch)
		}
	} else if vocab.Size() == text.NumSpecial {
		return emptyVocabError(trainImgs, tc.MinCount)
	}
	fmt.Fprintf(log, "%s: %d train images, %d dev images, vocabulary %d words (%s)\n",
		ds.Name, len(trainImgs), len(devImgs), vocab.Size(), vocabFrom)
	if err := vocabTooSmall(vocab, tc.EvalBeam, vocabFrom); err != nil {
		return err
	}

	dev, err := pipeline.OpenDevice(cfg)
	if err != nil {
		return err
	}
	defer dev.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := train.Options{Train: tc, Vocab: vocab, Log: log, BLEU: metrics.BLEUMatches,
		Provenance: map[string]any{"train": cfg.Map()["train"], "dataset": ds.Name, "source": ds.Source,
			"train_images": len(trainImgs), "dev_images": len(devImgs), "vocab": vocab.Size()}}
	var load func(names []string) ([]float32, error)
	var photos *features.Store // extract's store, without train.finetune_blocks
	if tc.FinetuneBlocks > 0 {
		var store *features.Store
		if store, o.Encoder, err = cutActivations(ctx, log, cfg, dev, append(slices.Clone(trainImgs), devImgs...)); err != nil {
			return err
		}
		defer store.Close()
		g := o.Encoder.Config.GridSize()
		o.Regions, load = g*g, store.LoadPooled
	} else {
		if err := checkFrozenInit(tc.Init); err != nil {
			return err
		}
		if photos, err = openFeatures(cfg, tc.Arch == decoder.ArchAttention); err != nil {
			return err
		}
		defer photos.Close()
		o.Regions = photos.Manifest().Regions()
		load = func(names []string) ([]float32, error) { return decoderInputs(photos, names, tc.Arch) }
	}
	// What to run for features that are not in the store: extract's
	// (train.finetune_blocks encodes the photos itself, above).
	extracted := func(err error, imgs []text.Image) error { return err }
	if photos != nil {
		extracted = func(err error, imgs []text.Image) error {
			return missingFeatures(err, imgs, photos, tc.Data, func() (pipeline.Preprocessor, error) {
				w, err := encoder.LoadDefault(cfg.Assets) // the store's encoder: its input size
				if err != nil {
					return pipeline.Preprocessor{}, err
				}
				return pipeline.NewPreprocessor(w.Config, cfg.Image), nil
			})
		}
	}
	trn, err := split(load, trainImgs, vocab)
	if err != nil {
		return extracted(err, trainImgs)
	}
	if tc.Mirror { // config validation keeps it from train.finetune_blocks: photos is open
		if trn.Mirrored, err = mirroredInputs(photos, imageNames(trainImgs), tc.Arch, tc.Data); err != nil {
			return err
		}
		trn.MirrorWords = vocab.MirrorWords()
	}
	dv, err := split(load, devImgs, vocab)
	if err != nil {
		return extracted(err, devImgs)
	}
	if photos != nil {
		if note := samePhotos(photos, trainImgs, devImgs); note != "" {
			fmt.Fprintf(log, "warning: %s\n", note)
		}
		if note := changedPhotos(photos, append(slices.Clone(trainImgs), devImgs...), tc.Data); note != "" {
			fmt.Fprintf(log, "warning: %s\n", note)
		}
	}
	if note := longCaptions(trainImgs, tc.MaxLen); note != "" {
		fmt.Fprintf(log, "note: %s\n", note)
	}
	if note := smallDev(len(devImgs), tc.Patience); note != "" {
		fmt.Fprintf(log, "warning: %s\n", note)
	}
	if tc.Teacher != "" {
		caps, err := teacherCaptions(ctx, cfg, dev, trainImgs)
		if err != nil {
			return err
		}
		unknown := distil(trn, caps, vocab)
		fmt.Fprintf(log, "teacher %s: its captions of the %d train images are training targets too (%d of their words outside the vocabulary, trained as <unk>)\n", tc.Teacher, len(caps), unknown)
	}
	fmt.Fprintf(log, "training on %s, writing to %s\n", dev.Name(), tc.Out)

	// The dev evaluation decodes at train.eval_beam, best caption only (the
	// self-critical objective samples with the same options at beam 1).
	plan, err := pipeline.NewDecoding(cfg.Decode, config.MaxBeam).Plan(pipeline.Options{Beam: tc.EvalBeam, Alternatives: 1})
	if err != nil {
		return fmt.Errorf("train.eval_beam: %w", err)
	}
	o.Decode = plan.DecodeOptions
	res, err := train.Run(ctx, dev, o, trn, dv)
	if errors.Is(err, context.Canceled) && !fileExists(filepath.Join(tc.Out, train.CheckpointFile)) {
		return fmt.Errorf("interrupted before the first epoch finished: there is no checkpoint to resume; run the same command to start again")
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: the last finished epoch's checkpoint is in %s; run the same command with --resume to continue", tc.Out)
	}
	if err != nil {
		return err
	}
	b := res.Best
	chosen := ""
	if !b.MatchedFourGrams() {
		chosen = " (by dev loss: no dev 4-gram matched)"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "stopped by %s after %d epochs (%.0fs); best epoch %d%s: dev BLEU-1..4 %.4f %.4f %.4f %.4f, dev loss %.4f; model in %s\n",
		res.StoppedBy, len(res.History), res.Seconds, b.Epoch, chosen, b.BLEU[0], b.BLEU[1], b.BLEU[2], b.BLEU[3], b.DevLoss, res.ModelDir)
	return nil
}

// loadDataset reads the configured caption dataset (train.dataset, train.data)
// and writes its loader's warnings (lines it skipped) to warn. A Karpathy-style
// or CSV file's image paths are relative to the file's folder.
func loadDataset(cfg *config.Config, warn io.Writer) (*text.Dataset, error) {
	path := cfg.Train.Data
	var ds *text.Dataset
	var err error
	switch cfg.Train.Dataset {
	case "karpathy":
		if path == "" {
			return nil, fmt.Errorf("train.dataset karpathy needs train.data (--data) naming the dataset_*.json file")
		}
		ds, err = text.LoadKarpathyJSON(path, filepath.Dir(path))
	case "csv":
		if path == "" {
			return nil, fmt.Errorf("train.dataset csv needs train.data (--data) naming the CSV file")
		}
		ds, err = text.LoadCSV(path)
	default:
		if path, err = flickr8kDir(cfg.Assets, path); err != nil {
			return nil, err
		}
		ds, err = text.LoadFlickr8k(path)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range ds.Warnings {
		fmt.Fprintf(warn, "warning: %s\n", w)
	}
	return ds, nil
}

// flickr8kDir is the Flickr8k dataset folder: data, or the assets' when empty.
func flickr8kDir(assetsDir, data string) (string, error) {
	if data != "" {
		return data, nil
	}
	store, err := assets.Open(assetsDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(store.Dir, filepath.FromSlash(assets.Flickr8kDir))
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return dir, nil // there, or an error that reading it will name
	}
	if store.Managed {
		return "", fmt.Errorf("no Flickr8k in the assets cache (%s) yet: run `captioner setup --dataset` to download it, or give a dataset of your own with --data", dir)
	}
	return "", fmt.Errorf("no Flickr8k in %s, an assets folder of your own (--assets, CAPTIONER_ASSETS, or a shared/ beside the working directory or repository), which captioner never downloads into: put Flickr8k there, or give a dataset of your own with --data", dir)
}

// openFeatures opens the feature store of the default encoder in cfg.Assets
// (openFeaturesOf).
func openFeatures(cfg *config.Config, grids bool) (*features.Store, error) {
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		return nil, err
	}
	return openFeaturesOf(cfg, &w.Config, grids)
}

// featuresID names the store of the features encoder c computes in this
// build and configuration: its weights and code version (encoder.Config.ID),
// and what else moves them: Go's image/jpeg where libjpeg-turbo is not linked
// (purecpu builds without staticjpeg: features 6-14% from libjpeg-turbo's on
// Flickr8k's JPEGs), and TF32 GEMMs (cuda.tf32). Stores made before either
// suffix keep their name.
func featuresID(cfg *config.Config, c *encoder.Config) string {
	id := c.ID()
	if imgproc.JPEGDecoder != "libjpeg-turbo" {
		id += "-gojpeg"
	}
	if cfg.CUDA.TF32 {
		id += "-tf32"
	}
	return id
}

// featureRoot is root, or when it is empty extract's default for dataset data.
func featureRoot(root, data string) (string, error) {
	if root != "" {
		return root, nil
	}
	return features.DefaultRoot(data)
}

// openFeaturesOf opens the store of the features encoder c computes
// (featuresID) under cfg.Train.Features (extract's default root for
// cfg.Train.Data when empty), for a caller that has the encoder's weights
// already. Its sizes must be c's: a manifest damaged or edited to others had
// every record read at the wrong offset, and a model trained on them.
func openFeaturesOf(cfg *config.Config, c *encoder.Config, grids bool) (*features.Store, error) {
	root, err := featureRoot(cfg.Train.Features, cfg.Train.Data)
	if err != nil {
		return nil, err
	}
	dir := features.Dir(root, featuresID(cfg, c))
	s, err := features.Open(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && features.IsStore(root):
		return nil, fmt.Errorf("features: %s is a feature store, not the folder extract --out names, which holds one store per encoder: give its parent, %s, as --features (train.features)", root, filepath.Dir(filepath.Clean(root)))
	case errors.Is(err, fs.ErrNotExist):
		return nil, missingStoreError{dir, root, grids, cfg.Train.Data}
	case err != nil:
		return nil, err
	}
	m, g := s.Manifest(), c.GridSize()
	if grid := []int{g, g, c.Head}; m.Dim != c.Head || len(m.Grid) > 0 && !slices.Equal(m.Grid, grid) {
		s.Close()
		return nil, fmt.Errorf("features: %s says its features have %d values and grid %v, but its encoder gives %d and %v: the manifest is damaged; delete the folder and run captioner extract again", dir, m.Dim, m.Grid, c.Head, grid)
	}
	return s, nil
}

// missingStoreError says how to make the feature store that is not there; it
// is an fs.ErrNotExist, so that a caller with another way (eval --from-images)
// can say so too.
type missingStoreError struct {
	dir, root string
	grids     bool   // the caller reads grids: an attention model
	data      string // train.data, the dataset whose photos to extract ("": Flickr8k's)
}

func (e missingStoreError) Error() string {
	msg := fmt.Sprintf("features: no feature store in %s: run `%s` first", e.dir, extractCommand(e.root, e.grids, e.data))
	if e.data == "" {
		// A user who left out --data had been told to extract Flickr8k's
		// photos into the folder meant for their own.
		msg += " (that is Flickr8k's photos, the dataset without --data; for your own, give this command --data)"
	}
	return msg
}

// extractCommand is the extract command that makes, or completes, the feature
// stores under root (extract --out): with --grid for a caller that reads
// grids, and --data for a dataset other than Flickr8k.
func extractCommand(root string, grids bool, data string) string {
	cmd := "captioner extract --out " + root
	if grids {
		cmd += " --grid"
	}
	if data != "" {
		cmd += " --data " + data
	}
	return cmd
}

// extractInto is the extract command that completes store, an existing
// feature store of dataset data's photos (extractCommand).
func extractInto(store *features.Store, data string) string {
	return extractCommand(filepath.Dir(store.Path()), len(store.Manifest().Grid) > 0, data)
}

// missingFeatures explains a load from store that found no features of some
// of imgs (features.MissingError). extract skips a photo that is not there or
// that it cannot decode, on every run, so those need the file replaced or the
// image taken out of the dataset; for the others extract has to run, into
// store (with --grid when it keeps grids, and --data for dataset data). It
// decodes at most missingChecked of the photos (many missing ones are a split
// never extracted), with the Preprocessor that preprocessor makes only then;
// err passes through as it is when that fails. Other errors, and nil, pass
// through.
func missingFeatures(err error, imgs []text.Image, store *features.Store, data string, preprocessor func() (pipeline.Preprocessor, error)) error {
	var me *features.MissingError
	if !errors.As(err, &me) {
		return err
	}
	pre, perr := preprocessor()
	if perr != nil {
		return err
	}
	extract := extractInto(store, data)
	paths := make(map[string]string, len(imgs))
	for _, im := range imgs {
		paths[im.Name] = im.Path
	}
	checked := me.Missing[:min(len(me.Missing), missingChecked)]
	var unreadable []string
	for _, name := range checked {
		if !decodable(paths[name], pre) {
			unreadable = append(unreadable, paths[name])
		}
	}
	if len(unreadable) == 0 {
		return fmt.Errorf("%w: run `%s`", err, extract)
	}
	of := "of them"
	if len(checked) < len(me.Missing) {
		of = fmt.Sprintf("of the first %d", len(checked))
	}
	return fmt.Errorf("%w; %d %s are not there or cannot be read as photos (%s), which extract skips: replace those files and run `%s`, or take the images out of the dataset (their lines in the token file and split lists, their rows in the CSV, or their entries in the JSON)",
		err, len(unreadable), of, listing.First(unreadable, 3), extract)
}

// missingChecked is how many images without features missingFeatures decodes.
const missingChecked = 100

// decodable says whether path is a regular file that pre reads, as extract
// needs it to be (a named pipe is not opened: it would wait for a writer).
func decodable(path string, pre pipeline.Preprocessor) bool {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return false
	}
	_, err := pre.File(path)
	return err == nil
}

func (missingStoreError) Unwrap() error { return fs.ErrNotExist }

// mirroredInputs reads what a decoder of arch takes for the mirrored photos of
// names, from the mirrored store (extract --mirror) that belongs to the
// feature store photos of dataset data. A mirrored photo is keyed by its
// original's hash, so one of a photo replaced since (photos has the new one's)
// is refused: its features are the old photo's, flipped.
func mirroredInputs(photos *features.Store, names []string, arch, data string) ([]float32, error) {
	dir := photos.Path()
	remedy := fmt.Sprintf("run `%s --mirror --split train`", extractInto(photos, data))
	store, err := features.Open(features.MirroredDir(dir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("train.mirror: no features of the mirrored photos in %s: %s first", features.MirroredDir(dir), remedy)
	case err != nil:
		return nil, fmt.Errorf("train.mirror: %w; %s first", err, remedy)
	}
	defer store.Close()
	if !store.Manifest().Mirrored {
		return nil, fmt.Errorf("train.mirror: %s holds features of photos that are not mirrored (its manifest lacks \"mirrored\": true); delete it and %s", store.Path(), remedy)
	}
	var stale []string
	for _, n := range names {
		then, ok := store.Hash(n)
		if now, _ := photos.Hash(n); ok && then != now {
			stale = append(stale, n)
		}
	}
	if len(stale) > 0 {
		return nil, fmt.Errorf("train.mirror: %d photos were replaced since their mirrored features were made (%s): %s", len(stale), listing.First(stale, 3), remedy)
	}
	feats, err := decoderInputs(store, names, arch)
	if errors.As(err, new(*features.MissingError)) {
		return nil, fmt.Errorf("train.mirror: %w: %s", err, remedy)
	}
	if err != nil {
		return nil, fmt.Errorf("train.mirror: %w; the mirrored photos' store is %s: delete it and %s", err, store.Path(), remedy)
	}
	return feats, nil
}

// decoderInputs reads from store what a decoder of arch takes for names: the
// 7x7 grids for attention, the pooled vectors for merge.
func decoderInputs(store *features.Store, names []string, arch string) ([]float32, error) {
	if arch == decoder.ArchAttention {
		return store.LoadGrid(names)
	}
	return store.LoadPooled(names)
}

// imageNames lists the file names of imgs.
func imageNames(imgs []text.Image) []string {
	names := make([]string, len(imgs))
	for i, im := range imgs {
		names[i] = im.Name
	}
	return names
}

// fewDevPhotos is how many dev photos the choice of the best epoch wants at
// least: Flickr8k's 1,000 match hundreds of 4-grams an epoch.
const fewDevPhotos = 100

// smallDev says, for a dev split of n photos, why the epoch it keeps may be
// chance's: on 10 photos one matched 4-gram made an epoch the best, the next
// four matched none, and patience stopped the run with later epochs better on
// every measure.
func smallDev(n, patience int) string {
	if n >= fewDevPhotos {
		return ""
	}
	return fmt.Sprintf("the dev split has %d photos: the best epoch is the one whose dev captions score the best BLEU-4, and on so few photos a chance 4-gram decides it (and stops the run after train.patience %d epochs without a better one); give dev %d photos or more, or raise train.patience and compare the epochs' curves (curves.csv)",
		n, patience, fewDevPhotos)
}

// cleanSplits cleans ds's captions with c, leaves out those that have no
// words (saying so on log) and returns its train and dev splits: what train
// learns from, its vocabulary included.
func cleanSplits(ds *text.Dataset, c text.Cleaning, log io.Writer) (trainImgs, devImgs []text.Image, err error) {
	ds.Reclean(c)
	if note := ds.DropWordless(); note != "" {
		fmt.Fprintf(log, "warning: %s\n", note)
	}
	if trainImgs, err = ds.Split(text.SplitTrain); err != nil {
		return nil, nil, err
	}
	devImgs, err = ds.Split(text.SplitDev)
	return trainImgs, devImgs, err
}

// split turns dataset images into training examples with the features load
// reads for their names.
func split(load func(names []string) ([]float32, error), imgs []text.Image, vocab *text.Vocab) (*train.Split, error) {
	s := &train.Split{}
	for i, im := range imgs {
		s.Refs = append(s.Refs, im.Captions)
		for _, c := range im.Captions {
			s.Examples = append(s.Examples, train.Example{Image: i, Words: wordIDs(vocab, c)})
		}
	}
	var err error
	s.Feats, err = load(imageNames(imgs))
	return s, err
}

// checkTeacher checks train.teacher (if any) against the run tc will make,
// before anything costly: a model folder with a frozen encoder (the teacher
// captions from the ImageNet encoder's cached features) whose captions are
// cleaned as the run's.
func checkTeacher(tc config.Train) error {
	if tc.Teacher == "" {
		return nil
	}
	c, err := decoder.ReadConfig(filepath.Join(tc.Teacher, decoder.ConfigFile))
	if err != nil {
		return fmt.Errorf("train.teacher: %w", err)
	}
	if fileExists(filepath.Join(tc.Teacher, encoder.TunedFile)) {
		return fmt.Errorf("train.teacher: %s has a fine-tuned encoder (%s), and the teacher captions from the ImageNet encoder's cached features: name a model with a frozen encoder", tc.Teacher, encoder.TunedFile)
	}
	if string(c.Cleaning) != tc.Cleaning {
		return fmt.Errorf("train.teacher: %s writes %s-cleaned captions and this run trains on %s-cleaned ones: name a teacher of the run's cleaning", tc.Teacher, c.Cleaning, tc.Cleaning)
	}
	return nil
}

// teacherCaptions captions imgs with the model in train.teacher (see
// checkTeacher), from the ImageNet encoder's cached features: its best
// beam-search caption as the decode settings say, unguided (guidance needs a
// Tagger, which the teacher is not given: it would teach tag nouns the photos
// may not show).
func teacherCaptions(ctx context.Context, cfg *config.Config, dev gpu.Device, imgs []text.Image) ([][]string, error) {
	dir := cfg.Train.Teacher
	tc, _ := decoder.ReadConfig(filepath.Join(dir, decoder.ConfigFile)) // checkTeacher read it
	store, err := openFeatures(cfg, tc.Arch == decoder.ArchAttention)
	if err != nil {
		return nil, fmt.Errorf("train.teacher: the teacher reads the cached features: %w", err)
	}
	defer store.Close()
	vocab, m, err := pipeline.LoadModel(dev, dir)
	if err != nil {
		return nil, fmt.Errorf("train.teacher: %w", err)
	}
	defer m.Close()
	plan, err := pipeline.NewDecoding(cfg.Decode, config.MaxBeam).Plan(pipeline.Options{Alternatives: 1})
	if err != nil {
		return nil, err
	}
	res, err := captionCached(ctx, store, pipeline.NewDecoder(m, vocab, nil), imageNames(imgs), plan)
	if err != nil {
		return nil, fmt.Errorf("train.teacher: %w", err)
	}
	caps := make([][]string, len(res))
	for i, r := range res {
		caps[i] = r.Tokens
	}
	return caps, nil
}

// distil adds caps[i], a teacher's caption of trn's image i, to trn's
// training examples (not to its references), and returns how many of their
// words the vocabulary does not know (they train as <unk>).
func distil(trn *train.Split, caps [][]string, vocab *text.Vocab) int {
	unknown := 0
	for i, c := range caps {
		words := wordIDs(vocab, c)
		for _, id := range words {
			if id == text.UnkID {
				unknown++
			}
		}
		trn.Examples = append(trn.Examples, train.Example{Image: i, Words: words})
	}
	return unknown
}

// outsideVocab says which words of captions vocab lacks, the most frequent
// first, and how often they occur ("" when it has them all), of those that
// appear at least minCount times, which a vocabulary of these captions would
// have (train.min_count): a run from a model keeps its vocabulary, and a
// dataset of one's own may well use words that the model never learned.
func outsideVocab(captions [][]string, vocab *text.Vocab, minCount int) string {
	counts := map[string]int{}
	total := 0
	for _, c := range captions {
		for _, w := range c {
			total++
			if vocab.ID(w) == text.UnkID {
				counts[w]++
			}
		}
	}
	var words []string
	outside := 0
	for w, n := range counts {
		if n >= minCount {
			words = append(words, w)
			outside += n
		}
	}
	if len(words) == 0 {
		return ""
	}
	slices.SortFunc(words, func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	return fmt.Sprintf("%d words that appear at least %d times in the train captions are not in the vocabulary of train.init's model (%s), %d of their %d words",
		len(words), minCount, listing.First(words, 5), outside, total)
}

// samePhotos names the dev photos whose content (the hash extract recorded in
// store) is a train photo's ("" when none is): the model has seen them with
// their captions, so the dev scores, and the epoch they choose, flatter it.
func samePhotos(store *features.Store, trainImgs, devImgs []text.Image) string {
	trainOf := map[string]string{} // content hash -> a train photo's name
	for _, im := range trainImgs {
		if h, ok := store.Hash(im.Name); ok {
			trainOf[h] = im.Name
		}
	}
	var pairs []string
	for _, im := range devImgs {
		if h, ok := store.Hash(im.Name); ok && trainOf[h] != "" {
			pairs = append(pairs, im.Name+" = "+trainOf[h])
		}
	}
	if len(pairs) == 0 {
		return ""
	}
	return fmt.Sprintf("%d dev photos are the same as train photos (%s): the dev scores of photos the model trains on flatter it; take each out of one split",
		len(pairs), listing.First(pairs, 3))
}

// changedPhotos names the photos of imgs replaced since extract read them,
// "" when none was: features are looked up by name, so those of a photo
// replaced since are the old photo's. A photo is read again only where its
// file's size or time differ from its stamp in store, and counts as replaced
// where its content's hash differs too (a copy, a touch or extract from
// another folder, --images, changes the time alone); at most changedChecked
// are read. Stores without stamps (made before them) tell nothing.
func changedPhotos(store *features.Store, imgs []text.Image, data string) string {
	var changed []string
	checked := 0
	for _, im := range imgs {
		stamp, ok := store.Stamp(im.Name)
		if !ok {
			continue
		}
		st, err := os.Stat(im.Path)
		if err != nil || !st.Mode().IsRegular() || features.StampOf(st) == stamp {
			continue
		}
		if checked == changedChecked {
			break
		}
		checked++
		if replaced(im.Path, store, im.Name) {
			changed = append(changed, im.Name)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	of := ""
	if checked == changedChecked {
		of = fmt.Sprintf(" (of the first %d whose file's size or time differ)", changedChecked)
	}
	return fmt.Sprintf("%d photos%s were replaced since extract read them (%s): their features are the old photos'; run `%s` to update them",
		len(changed), of, listing.First(changed, 3), extractInto(store, data))
}

// changedChecked is how many photos changedPhotos reads at most.
const changedChecked = 200

// replaced says whether the file at path holds other content than the one
// store keeps features of for name (false where it cannot tell).
func replaced(path string, store *features.Store, name string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	now, err := contentHash(f)
	then, ok := store.Hash(name)
	return err == nil && ok && now != then
}

// longCaptions says how many captions of imgs have more words than train.max_len
// ("" when none has): training cuts them there.
func longCaptions(imgs []text.Image, maxLen int) string {
	n, total, longest := 0, 0, 0
	for _, c := range text.Captions(imgs) {
		total++
		if len(c) > maxLen {
			n++
			longest = max(longest, len(c))
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d of the %d train captions have more than train.max_len (%d) words, up to %d: training reads their first %d", n, total, maxLen, longest, maxLen)
}

// wordIDs is caption c's word ids in vocab.
func wordIDs(vocab *text.Vocab, c []string) []int32 {
	ids := vocab.Encode(c)
	words := make([]int32, len(ids))
	for j, id := range ids {
		words[j] = int32(id)
	}
	return words
}

// emptyVocabError says why the train captions of imgs gave a vocabulary of
// no word at min count minCount, and what to do (the decoder's own refusal
// named neither the setting nor the data).
func emptyVocabError(imgs []text.Image, minCount int) error {
	all := text.BuildVocab(text.Captions(imgs), 1)
	if all.Size() == text.NumSpecial { // DropWordless left no image
		return fmt.Errorf("train: no train image has a caption with words once cleaned: check the dataset's captions (train.data)")
	}
	return fmt.Errorf("train.min_count: %d keeps no word of the train captions, whose most frequent, %q, appears %d times: lower train.min_count (in the configuration file, or CAPTIONER_TRAIN_MIN_COUNT)",
		minCount, all.Word(text.NumSpecial), all.Count(text.NumSpecial))
}

// vocabTooSmall refuses a vocabulary too small for the dev evaluation's beam
// (from says where the vocabulary came from): a beam may be at most half the
// vocabulary, and the run failed after its first epoch with the decoder's
// "beam width 3 is outside 1..2", naming no setting.
func vocabTooSmall(vocab *text.Vocab, evalBeam int, from string) error {
	if decoder.MaxBeam(vocab.Size()) >= evalBeam {
		return nil
	}
	return fmt.Errorf("train: a vocabulary of %d words (%s, the %d special tokens included) is too small for train.eval_beam %d, or to caption with: a beam may be at most half of it; lower train.min_count, or train on more captions",
		vocab.Size(), from, text.NumSpecial, evalBeam)
}

// inheritNetwork gives tc the network of the model a run starts from, ic:
// its vocabulary, hence its cleaning, always (a cleaning the user set to
// another is an error), and its architecture and sizes where the user left a
// setting at its default (explicit says which they set), so that train --init
// MODEL needs no --arch or --hidden repeated. A size the user gave that
// differs from the model's is train.init's error (train's checkInit).
func inheritNetwork(tc *config.Train, ic decoder.Config, explicit func(key string) bool) error {
	ic = ic.WithDefaults()
	if explicit("train.cleaning") && tc.Cleaning != string(ic.Cleaning) {
		return fmt.Errorf("train.cleaning: %s with train.init %s, whose captions were cleaned the %s way: a run from a model keeps its vocabulary, and the cleaning that made its words; unset train.cleaning, or train from scratch (--init '')",
			tc.Cleaning, tc.Init, ic.Cleaning)
	}
	tc.Cleaning = string(ic.Cleaning)
	inherit(explicit, "train.arch", &tc.Arch, ic.Arch)
	inherit(explicit, "train.embed", &tc.Embed, ic.Embed)
	inherit(explicit, "train.hidden", &tc.Hidden, ic.Hidden)
	inherit(explicit, "train.mid", &tc.Mid, ic.Mid) // merge's: 0 in an attention model's file
	inherit(explicit, "train.att", &tc.Att, ic.Att) // attention's: 0 in a merge model's
	return nil
}

// inherit sets *dst to the model's v, unless the user set key or the model has none.
func inherit[T comparable](explicit func(key string) bool, key string, dst *T, v T) {
	var none T
	if !explicit(key) && v != none {
		*dst = v
	}
}

// checkFrozenInit refuses to train on frozen ImageNet features from a model
// whose encoder was fine-tuned: its decoder reads the tuned encoder's features.
func checkFrozenInit(init string) error {
	if init == "" {
		return nil
	}
	if fileExists(filepath.Join(init, encoder.TunedFile)) {
		return fmt.Errorf("train.init: %s has a fine-tuned encoder (%s), and this run trains on the ImageNet encoder's features; continue fine-tuning with train.finetune_blocks (--finetune-blocks) at least as large as that model's", init, encoder.TunedFile)
	}
	return nil
}

// cutActivations returns the store of the activations at the input of the
// first fine-tuned block (train.finetune_blocks from the top) for names,
// computing the missing ones on dev, and the encoder weights the run tunes:
// the ImageNet weights, with the tuned layers of train.init when it has them.
// The store lives beside the feature stores, under an ID that names the
// weights and the cut, so it is computed once per weights and cut.
func cutActivations(ctx context.Context, log io.Writer, cfg *config.Config, dev gpu.Device, imgs []text.Image) (*features.Store, *encoder.Weights, error) {
	tc := cfg.Train
	w, err := encoder.LoadDefault(cfg.Assets)
	if err != nil {
		return nil, nil, err
	}
	first, err := w.Config.FirstTuned(tc.FinetuneBlocks)
	if err != nil {
		return nil, nil, fmt.Errorf("train.finetune_blocks: %w", err)
	}
	// Below the cut the weights are the ImageNet ones even when train.init
	// tuned some (from the cut or above), so the cache is theirs.
	id := fmt.Sprintf("%s-below-block-%d", featuresID(cfg, &w.Config), first)
	if tc.Init != "" {
		if path := filepath.Join(tc.Init, encoder.TunedFile); fileExists(path) {
			var initFirst int
			if w, initFirst, err = encoder.WithTuned(w, path); err != nil {
				return nil, nil, fmt.Errorf("train.init: %w", err)
			}
			if initFirst < first {
				return nil, nil, fmt.Errorf("train.finetune_blocks: %d, but %s tuned the encoder from block %d: fine-tune at least its %d blocks", tc.FinetuneBlocks, tc.Init, initFirst, len(w.Config.Blocks)-initFirst)
			}
		}
	}
	root, err := featureRoot(tc.Features, tc.Data)
	if err != nil {
		return nil, nil, err
	}
	store, err := features.Create(features.Dir(root, id), features.Manifest{Encoder: id, Dim: w.Config.CutLen(first)})
	if err != nil {
		return nil, nil, err
	}
	files := imageFiles(imgs)
	const batch = 16
	bottom, err := encoder.NewBottom(dev, w, first, batch)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	defer bottom.Close()
	cut := make([]float32, batch*w.Config.CutLen(first))
	per := w.Config.CutLen(first)
	_, failed, err := fillStore(ctx, log, "activations below block "+fmt.Sprint(first), store, files, batch,
		pipeline.NewPreprocessor(w.Config, cfg.Image), func(tensors []float32, n int, items []*features.Item) error {
			if err := bottom.Encode(tensors, n); err != nil {
				return err
			}
			if err := dev.Download(cut[:n*per], bottom.Cut()); err != nil {
				return err
			}
			for i, it := range items {
				it.Pooled = cut[i*per : (i+1)*per]
			}
			return nil
		})
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d images could not be read (the first listed above)", failed)
	}
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, w, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
