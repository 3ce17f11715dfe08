package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/viper"

	"github.com/captioner/captioner/text"
)

// MaxTrainBatch caps train.batch_size: a batch of 20,000 captions ran the
// process out of memory, and the runtime dies of that without a word.
const MaxTrainBatch = 1024

// Train holds the training hyperparameters (captioner train). The trainer owns
// this file: add fields with a one-line reason each.
type Train struct {
	// Seed makes a run reproducible: the same seed gives the same run.
	Seed int64 `mapstructure:"seed"`
	// Dataset is the caption file format: flickr8k (token file + split lists),
	// karpathy (dataset_*.json, for Flickr30k and COCO) or csv (a spreadsheet's
	// rows of photo and caption, text.LoadCSV). A train.data ending in .json is
	// read as karpathy, and one in .csv or .tsv as csv, whatever this says:
	// flickr8k's is a folder.
	Dataset string `mapstructure:"dataset"`
	// Data is the dataset folder (flickr8k), JSON file (karpathy) or CSV file
	// (csv); empty means <assets>/data/flickr8k.
	Data string `mapstructure:"data"`
	// Features is the folder of cached image features from `captioner extract`;
	// empty means <out>/features.
	Features string `mapstructure:"features"`
	// Out is where checkpoints, curves and the selected model are written.
	Out string `mapstructure:"out"`
	// Resume continues from <out>/checkpoint.safetensors instead of starting over.
	Resume bool `mapstructure:"resume"`
	// Epochs caps the number of passes over the training captions.
	Epochs int `mapstructure:"epochs"`
	// BatchSize is the number of captions per optimiser step.
	BatchSize int `mapstructure:"batch_size"`
	// LR is Adam's learning rate.
	LR float64 `mapstructure:"lr"`
	// LRDecay multiplies the learning rate after every epoch (1 keeps it constant).
	LRDecay float64 `mapstructure:"lr_decay"`
	// WeightDecay is AdamW's decoupled weight decay (0 is plain Adam).
	WeightDecay float64 `mapstructure:"weight_decay"`
	// Clip caps the global gradient norm (0 disables clipping).
	Clip float64 `mapstructure:"clip"`
	// Patience stops training after this many epochs without a better dev BLEU-4.
	Patience int `mapstructure:"patience"`
	// MinCount is the vocabulary threshold: words seen fewer times become <unk>.
	MinCount int `mapstructure:"min_count"`
	// MaxLen truncates training captions to this many words (long outliers
	// would otherwise set a batch's length).
	MaxLen int `mapstructure:"max_len"`
	// Arch is the decoder: merge (the seed's, on pooled features) or attention
	// (Show, Attend and Tell over the 7x7 grid; needs captioner extract --grid).
	Arch string `mapstructure:"arch"`
	// Cleaning is how captions become tokens: standard (coco-caption, every
	// word kept) or seed (the seed notebook's, drops "a"). The model records it.
	Cleaning string `mapstructure:"cleaning"`
	// Att is the attention MLP's size (attention only).
	Att int `mapstructure:"att"`
	// AttPenalty is lambda of the doubly stochastic attention penalty (attention only).
	AttPenalty float64 `mapstructure:"att_penalty"`
	// Embed, Hidden and Mid are the decoder's layer sizes (Mid: merge only).
	Embed  int `mapstructure:"embed"`
	Hidden int `mapstructure:"hidden"`
	Mid    int `mapstructure:"mid"`
	// Dropout is the drop probability on image features and embeddings (on image
	// features only with the cider objective, one mask per step for sampling and
	// scoring).
	Dropout float64 `mapstructure:"dropout"`
	// FeatureDropout is the drop probability on the regions' features in the
	// attention decoder's cross-entropy training, whose train.dropout covers
	// the deep output only (merge's covers its pooled features, cider's the
	// image features): a fresh mask per caption and step.
	FeatureDropout float64 `mapstructure:"feature_dropout"`
	// FinetuneBlocks trains the encoder's last N inverted-residual blocks and
	// its head convolution with the decoder (0: the encoder stays frozen); the
	// activations below them are computed once and cached beside the features.
	FinetuneBlocks int `mapstructure:"finetune_blocks"`
	// FinetuneLR is Adam's learning rate for the fine-tuned encoder layers:
	// lower than the decoder's, since they start trained.
	FinetuneLR float64 `mapstructure:"finetune_lr"`
	// EMA is the decay of the weight average that evaluation and the saved model
	// use (0 disables it and uses the raw weights).
	EMA float64 `mapstructure:"ema"`
	// EvalBeam is the beam width of the per-epoch dev BLEU (1: greedy, fastest).
	EvalBeam int `mapstructure:"eval_beam"`
	// Objective is what a step optimises: xe (cross-entropy of the reference
	// captions, teacher forcing) or cider (self-critical sequence training: sample
	// captions, reward them by CIDEr-D against the image's references, and make
	// the above-average ones more likely). cider fine-tunes a model trained with
	// xe: name it in Init.
	Objective string `mapstructure:"objective"`
	// Init is a model folder whose weights (and vocabulary) the run starts from;
	// empty starts from random weights.
	Init string `mapstructure:"init"`
	// Teacher is a model folder whose captions of the train images (beam
	// search as the decode settings say, unguided) are one more cross-entropy
	// target per image, beside its references: sequence-level knowledge
	// distillation (Kim & Rush 2016), objective xe only. Empty: the references
	// alone. They are not references: the dev BLEU reads the dataset's only.
	Teacher string `mapstructure:"teacher"`
	// Mirror trains on each photo flipped left to right half of the time (the
	// words "left" and "right" swapped in its captions), from the mirrored
	// features of extract --mirror: a data augmentation, drawn anew for each
	// caption at each step. Not with FinetuneBlocks (it reads cached features).
	Mirror bool `mapstructure:"mirror"`
	// Samples is the number of captions sampled per image with the cider
	// objective; each is judged against the mean reward of the others.
	Samples int `mapstructure:"samples"`
	// XEWeight mixes the references' cross-entropy into the cider objective
	// (Paulus et al. 2018's mixed objective): each step also raises the
	// log-likelihood of one reference caption per image, weighted by this
	// against the samples' advantages, so the fine-tuning keeps to the
	// references' language. 0: the policy gradient alone. The logged train loss
	// and tokens/s then count the references' tokens beside the samples'.
	XEWeight float64 `mapstructure:"xe_weight"`
	// HalfWeights writes the selected model's weights (model/decoder.safetensors)
	// in float16: half the size, captions alike (the shipped attention model is
	// stored so). The checkpoint keeps float32.
	HalfWeights bool `mapstructure:"half_weights"`
}

func trainDefaults(v *viper.Viper) {
	v.SetDefault("train.seed", 1)
	v.SetDefault("train.dataset", "flickr8k")
	v.SetDefault("train.data", "")
	v.SetDefault("train.features", "")
	v.SetDefault("train.out", "runs/flickr8k")
	v.SetDefault("train.resume", false)
	v.SetDefault("train.epochs", 30)
	v.SetDefault("train.batch_size", 64)
	v.SetDefault("train.lr", 1e-3)
	v.SetDefault("train.lr_decay", 0.9)
	v.SetDefault("train.weight_decay", 0)
	v.SetDefault("train.clip", 5)
	v.SetDefault("train.patience", 4)
	v.SetDefault("train.min_count", 5)
	v.SetDefault("train.max_len", 30)
	v.SetDefault("train.arch", "merge")
	v.SetDefault("train.cleaning", "standard")
	v.SetDefault("train.att", 512)
	v.SetDefault("train.att_penalty", 1)
	v.SetDefault("train.embed", 256)
	v.SetDefault("train.hidden", 256)
	v.SetDefault("train.mid", 256)
	v.SetDefault("train.dropout", 0.5)
	v.SetDefault("train.feature_dropout", 0)
	v.SetDefault("train.mirror", false)
	v.SetDefault("train.finetune_blocks", 0)
	v.SetDefault("train.finetune_lr", 1e-4)
	v.SetDefault("train.eval_beam", 3)
	v.SetDefault("train.ema", 0.999)
	v.SetDefault("train.objective", "xe")
	v.SetDefault("train.init", "")
	v.SetDefault("train.teacher", "")
	v.SetDefault("train.samples", 5)
	v.SetDefault("train.xe_weight", 0)
	v.SetDefault("train.half_weights", false)
}

// Conflicts lists the training options that do not go together. Besides
// the configuration's validation, the trainer asks too, for runs built in code;
// an empty Objective is xe there.
func (c Train) Conflicts() []error { return c.conflicts(false) }

// conflicts is Conflicts; with archOpen the architecture may yet come from
// train.init's model (train takes it when train.arch is not set), so the
// checks against it are left to the trainer's Conflicts, which sees the run's.
func (c Train) conflicts(archOpen bool) []error {
	var errs []error
	obj := c.Objective
	if obj == "" {
		obj = "xe"
	}
	if c.FeatureDropout > 0 && c.FeatureDropout < 1 && (c.Arch != "attention" && !archOpen || obj != "xe" || c.FinetuneBlocks > 0) {
		errs = append(errs, fmt.Errorf("train.feature_dropout: %g with train.arch %s, train.objective %s, train.finetune_blocks %d; it drops the cached regions' features of attention's cross-entropy training only (train.dropout drops merge's features and cider's): set it to 0", c.FeatureDropout, c.Arch, obj, c.FinetuneBlocks))
	}
	if c.XEWeight < 0 {
		errs = append(errs, fmt.Errorf("train.xe_weight: %g is negative; 0 trains on the rewards alone", c.XEWeight))
	}
	if c.XEWeight > 0 && obj != "cider" {
		errs = append(errs, fmt.Errorf("train.xe_weight: %g with train.objective %s; it mixes cross-entropy into the cider objective: set train.objective cider, or train.xe_weight 0", c.XEWeight, obj))
	}
	if c.Mirror && c.FinetuneBlocks > 0 {
		errs = append(errs, fmt.Errorf("train.mirror with train.finetune_blocks %d; mirrored photos come from extract --mirror's cached features, which a fine-tuned encoder does not read: set one of them off", c.FinetuneBlocks))
	}
	return errs
}

// inferDataset sets Dataset to karpathy when Data names a JSON file, and to
// csv when it names a CSV or TSV one, the only things those formats read, so
// that --data my.json needs no --dataset.
func (c *Train) inferDataset() {
	switch strings.ToLower(filepath.Ext(c.Data)) {
	case ".json":
		c.Dataset = "karpathy"
	case ".csv", ".tsv":
		c.Dataset = "csv"
	}
}

func (c Train) validate() []error {
	var errs []error
	if err := oneOf("train.dataset", c.Dataset, "flickr8k", "karpathy", "csv"); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("train.objective", c.Objective, "xe", "cider"); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("train.arch", c.Arch, "merge", "attention"); err != nil {
		errs = append(errs, err)
	}
	if _, err := text.ParseCleaning(c.Cleaning); err != nil {
		errs = append(errs, fmt.Errorf("train.cleaning: %w", err))
	}
	if c.AttPenalty < 0 {
		errs = append(errs, fmt.Errorf("train.att_penalty: %g is negative; use 0 to disable the attention penalty", c.AttPenalty))
	}
	if c.Objective == "cider" && c.Init == "" {
		errs = append(errs, fmt.Errorf("train.init: empty with train.objective cider; self-critical training fine-tunes a trained model: name its folder (e.g. runs/attention/model)"))
	}
	// Samples are drawn by the cider objective alone: cross-entropy trains at
	// any batch size, 1 included.
	if c.Objective == "cider" && (c.Samples < 2 || c.Samples > c.BatchSize) {
		errs = append(errs, fmt.Errorf("train.samples: %d is outside 2..train.batch_size (%d); each sample's baseline is the mean of the others", c.Samples, c.BatchSize))
	}
	if c.FeatureDropout < 0 || c.FeatureDropout >= 1 {
		errs = append(errs, fmt.Errorf("train.feature_dropout: %g is outside [0, 1); 0 keeps every feature", c.FeatureDropout))
	}
	errs = append(errs, c.conflicts(c.Init != "")...)
	if c.FinetuneBlocks < 0 {
		errs = append(errs, fmt.Errorf("train.finetune_blocks: %d is negative; 0 keeps the encoder frozen", c.FinetuneBlocks))
	}
	if c.FinetuneBlocks > 0 && c.Objective == "cider" {
		errs = append(errs, fmt.Errorf("train.finetune_blocks: %d with train.objective cider; self-critical training runs on frozen features only: set train.finetune_blocks 0 (fine-tuning trains with xe)", c.FinetuneBlocks))
	}
	if c.Teacher != "" && c.Objective == "cider" {
		errs = append(errs, fmt.Errorf("train.teacher: %s with train.objective cider; a teacher's captions are cross-entropy targets: distil with train.objective xe, then fine-tune that model with cider", c.Teacher))
	}
	if c.FinetuneLR <= 0 || c.FinetuneLR > 1 {
		errs = append(errs, fmt.Errorf("train.finetune_lr: %g is outside (0, 1]; 1e-5..1e-4 suits trained encoder layers", c.FinetuneLR))
	}
	if c.Out == "" {
		errs = append(errs, fmt.Errorf("train.out: empty; name a folder for checkpoints and the trained model"))
	}
	for _, p := range []struct {
		key string
		v   int
	}{{"train.epochs", c.Epochs}, {"train.batch_size", c.BatchSize}, {"train.patience", c.Patience},
		{"train.min_count", c.MinCount}, {"train.max_len", c.MaxLen}, {"train.embed", c.Embed},
		{"train.hidden", c.Hidden}, {"train.mid", c.Mid}, {"train.att", c.Att}, {"train.eval_beam", c.EvalBeam}} {
		if err := positive(p.key, p.v); err != nil {
			errs = append(errs, err)
		}
	}
	if c.BatchSize > MaxTrainBatch {
		errs = append(errs, fmt.Errorf("train.batch_size: %d is above %d: the training buffers hold every caption of a batch, word by word (%d captions of 30 words take 5.3 GB for the shipped attention decoder's sizes, 64 take 0.4 GB); 32-256 suits captioning", c.BatchSize, MaxTrainBatch, MaxTrainBatch))
	}
	if c.LR <= 0 || c.LR > 1 {
		errs = append(errs, fmt.Errorf("train.lr: %g is outside (0, 1]; Adam usually wants 1e-4..3e-3", c.LR))
	}
	if c.LRDecay <= 0 || c.LRDecay > 1 {
		errs = append(errs, fmt.Errorf("train.lr_decay: %g is outside (0, 1]; 1 keeps the rate constant", c.LRDecay))
	}
	if c.WeightDecay < 0 {
		errs = append(errs, fmt.Errorf("train.weight_decay: %g is negative", c.WeightDecay))
	}
	if c.Clip < 0 {
		errs = append(errs, fmt.Errorf("train.clip: %g is negative; use 0 to disable clipping", c.Clip))
	}
	if c.EMA < 0 || c.EMA >= 1 {
		errs = append(errs, fmt.Errorf("train.ema: %g is outside [0, 1) (0 disables the weight average; 0.999 averages over ~1000 steps)", c.EMA))
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		errs = append(errs, fmt.Errorf("train.dropout: %g is outside [0, 1)", c.Dropout))
	}
	return errs
}
