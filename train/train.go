// Package train fits the merge-LSTM decoder to captioned image features:
// teacher-forced mini-batches with Adam(W), gradient clipping and dropout, a dev
// evaluation (loss and BLEU) after every epoch, early stopping on dev BLEU-4,
// atomic checksummed checkpoints that a killed run resumes from, and loss/BLEU
// curves as CSV and PNG.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/progress"
	"github.com/captioner/captioner/text"
)

// Split is one dataset split ready for training.
type Split struct {
	Feats    []float32    // (Images, decoder.Config.InputDim()) image features: pooled, or grids for attention
	Examples []Example    // one per (image, caption)
	Refs     [][][]string // per image, its reference captions as words (for BLEU)
}

// Images is the number of images in the split.
func (s *Split) Images() int { return len(s.Refs) }

// Vocab is what training needs from the vocabulary (*text.Vocab); the special
// tokens have text's fixed ids.
type Vocab interface {
	Size() int
	Word(id int) string
}

// Options configure a run.
type Options struct {
	config.Train
	Vocab Vocab
	// Decode is the decoding used for the per-epoch dev BLEU; its Beam is
	// replaced by Train.EvalBeam.
	Decode decoder.DecodeOptions
	// BLEU returns corpus BLEU-1..4 of hypotheses against references.
	BLEU func(hyps [][]string, refs [][][]string) [4]float64
	// Log receives the progress bars and one line per epoch.
	Log io.Writer
	// Regions is the number of grid regions per image in the features of an
	// attention decoder (49 for 7x7).
	Regions int
}

// EpochStats is one row of the training curves.
type EpochStats struct {
	Epoch        int        `json:"epoch"` // 1-based
	LR           float64    `json:"lr"`
	TrainLoss    float64    `json:"train_loss"`
	DevLoss      float64    `json:"dev_loss"`
	BLEU         [4]float64 `json:"bleu"`
	TokensPerSec float64    `json:"tokens_per_s"`
	// TrainReward is the mean CIDEr-D of the captions sampled for training
	// (objective cider only).
	TrainReward float64 `json:"train_reward,omitempty"`
	Seconds     float64 `json:"seconds"`
}

// Result summarises a finished run.
type Result struct {
	History   []EpochStats
	Best      EpochStats // the epoch whose model is in ModelDir
	Seconds   float64    // training wall time, all resumed runs included
	ModelDir  string
	StoppedBy string // "patience" or "epochs"
}

// ModelDir is where the selected (best dev BLEU-4) model is written inside out.
func ModelDir(out string) string { return filepath.Join(out, "model") }

// ModelConfig is the decoder configuration the options ask for. Self-critical
// training runs the decoder without dropout (its gradient pass must score the
// captions with the network that sampled them; it drops image features itself)
// and without the attention penalty, whose gradient the rewards would not weigh.
// featDim is the number of feature values per image.
func (o Options) ModelConfig(featDim int) decoder.Config {
	c := decoder.Config{Arch: o.Arch, Cleaning: text.Cleaning(o.Cleaning), FeatDim: featDim, Embed: o.Embed, Hidden: o.Hidden, Mid: o.Mid,
		Vocab: o.Vocab.Size(), Dropout: float32(o.Dropout)}
	if o.Arch == decoder.ArchAttention {
		c.Mid, c.FeatDim, c.Regions, c.Att, c.AttPenalty = 0, featDim/max(o.Regions, 1), o.Regions, o.Att, float32(o.AttPenalty)
	}
	if o.Objective == "cider" {
		c.Dropout, c.AttPenalty = 0, 0
	}
	return c.WithDefaults()
}

// objectiveName is a train.objective value with the empty one (options built in
// code, checkpoints from before objectives existed) meaning the default, xe.
func objectiveName(s string) string {
	if s == "" {
		return "xe"
	}
	return s
}

// dropoutSeed gives every optimiser step its own dropout masks, determined by
// the run's seed alone.
func dropoutSeed(seed int64, step int) uint64 {
	return uint64(seed)*0x9E3779B97F4A7C15 + uint64(step)*0xBF58476D1CE4E5B9
}

// truncate caps each caption at maxLen words.
func truncate(ex []Example, maxLen int) []Example {
	out := make([]Example, len(ex))
	for i, e := range ex {
		out[i] = Example{Image: e.Image, Words: e.Words[:min(len(e.Words), maxLen)]}
	}
	return out
}

// Run trains on trn, evaluates on dev after every epoch, and writes the
// checkpoint, the curves and the selected model under o.Out.
func Run(ctx context.Context, dev gpu.Device, o Options, trn, dv *Split) (*Result, error) {
	if trn.Images() == 0 || dv.Images() == 0 || len(trn.Examples) == 0 || len(dv.Examples) == 0 {
		return nil, fmt.Errorf("train: empty split (%d train images, %d dev images); check the dataset and feature paths", trn.Images(), dv.Images())
	}
	featDim := len(trn.Feats) / trn.Images()
	if featDim*trn.Images() != len(trn.Feats) || featDim*dv.Images() != len(dv.Feats) {
		return nil, fmt.Errorf("train: feature matrices (%d and %d values) do not divide into %d and %d images", len(trn.Feats), len(dv.Feats), trn.Images(), dv.Images())
	}
	cfg := o.ModelConfig(featDim)
	if err := os.MkdirAll(ModelDir(o.Out), 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	ckpt := filepath.Join(o.Out, CheckpointFile)

	st := &state{Config: cfg, Seed: o.Seed, Objective: objectiveName(o.Objective)}
	m, err := decoder.New(dev, cfg, uint64(o.Seed))
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if o.Init != "" { // a resumed run overwrites these with the checkpoint's
		flat, err := checkInit(dev, o.Init, cfg)
		if err != nil {
			return nil, err
		}
		if err := m.SetFlat(flat); err != nil {
			return nil, err
		}
	}
	ts := m.NewTrainState(o.BatchSize, max(o.MaxLen, o.Decode.MaxLen)+1)
	defer ts.Close()
	// ema (NumParams) is the exponential moving average of the parameters, which
	// evaluation and the saved model use when train.ema is on: it smooths the
	// step-to-step noise of the weights, which single epochs' models carry.
	var ema, backup gpu.Buf
	if o.EMA > 0 {
		ema, backup = dev.Alloc(cfg.NumParams()), dev.Alloc(cfg.NumParams())
		defer dev.Free(ema)
		defer dev.Free(backup)
		dev.Copy(ema, m.Flat())
	}
	if o.Resume {
		saved, groups, err := loadCheckpoint(ckpt)
		switch {
		case errors.Is(err, errNoCheckpoint):
			fmt.Fprintf(o.Log, "no checkpoint in %s: starting a new run\n", o.Out)
		case err != nil:
			return nil, err
		case !reflect.DeepEqual(saved.Config, cfg) || saved.Seed != o.Seed || objectiveName(saved.Objective) != objectiveName(o.Objective):
			return nil, fmt.Errorf("train: checkpoint %s was made with %+v seed %d objective %s, this run asks for %+v seed %d objective %s; use the same settings or another --out",
				ckpt, saved.Config, saved.Seed, objectiveName(saved.Objective), cfg, o.Seed, objectiveName(o.Objective))
		default:
			st = saved
			// Early stopping is judged against this run's patience, so resuming
			// with a larger train.patience continues a run that stopped.
			st.Stopped = st.BadEpochs >= o.Patience
			if err := m.SetFlat(groups[groupParams]); err != nil {
				return nil, err
			}
			if err := ts.SetMoments(groups[groupAdamM], groups[groupAdamV], st.Step); err != nil {
				return nil, err
			}
			if ema != nil {
				if avg, ok := groups[groupEMA]; ok {
					dev.Upload(ema, avg)
				} else {
					dev.Copy(ema, m.Flat())
					fmt.Fprintf(o.Log, "the checkpoint has no weight average: starting one from its parameters\n")
				}
			}
			fmt.Fprintf(o.Log, "resuming after epoch %d (step %d, best dev BLEU-4 %.4f at epoch %d)\n", st.Epoch, st.Step, st.BestBLEU4, st.BestEpoch)
		}
	} else if _, err := os.Stat(ckpt); err == nil {
		return nil, fmt.Errorf("train: %s already holds a checkpoint; pass --resume to continue it, or choose another --out", o.Out)
	}

	trainEx, devEx := truncate(trn.Examples, o.MaxLen), truncate(dv.Examples, o.MaxLen)
	trainFeats := dev.Alloc(len(trn.Feats))
	defer dev.Free(trainFeats)
	dev.Upload(trainFeats, trn.Feats)
	devFeats := dev.Alloc(len(dv.Feats))
	defer dev.Free(devFeats)
	dev.Upload(devFeats, dv.Feats)
	batchFeats := dev.Alloc(o.BatchSize * featDim)
	defer dev.Free(batchFeats)
	var obj objective = &teacherForcing{ex: trainEx, feats: trainFeats, batchFeats: batchFeats, featDim: featDim, o: o}
	// sampled: the objective rewards sampled captions, whose mean reward the
	// progress bar, the log and the curves report.
	sampled := o.Objective == "cider"
	if sampled {
		sc := newSelfCritical(dev, trn, trainFeats, batchFeats, featDim, o)
		defer sc.close(dev)
		obj = sc
	}

	for !st.Stopped && st.Epoch < o.Epochs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		epoch := st.Epoch + 1
		lr := o.LR * math.Pow(o.LRDecay, float64(st.Epoch))
		adam := decoder.Adam{LR: float32(lr), Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: float32(o.WeightDecay)}
		bar := progress.New(o.Log, fmt.Sprintf("epoch %d/%d", epoch, o.Epochs), obj.units(), obj.unit())
		var lossSum, rewardSum float64
		var lossTok, captions int
		smooth := math.NaN() // loss (or reward) shown on the bar, smoothed over ~50 steps
		for _, idx := range obj.batches(epoch) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			ts.ZeroGrad()
			step, err := obj.forward(ctx, ts, idx)
			if err != nil {
				return nil, err
			}
			ts.Backward()
			if _, err := ts.ClipGradNorm(o.Clip); err != nil {
				return nil, err
			}
			ts.Update(adam)
			if ema != nil { // ema = d*ema + (1-d)*params
				// The decay ramps up over the first steps (TensorFlow's
				// ExponentialMovingAverage with num_updates), so the average is not
				// dominated by the random initial weights for thousands of steps.
				n := float64(ts.Steps())
				d := float32(min(o.EMA, (1+n)/(10+n)))
				dev.Scale(ema, d)
				dev.Axpy(ema, m.Flat(), 1-d)
			}
			lossSum += step.loss * float64(step.tokens)
			lossTok += step.tokens
			rewardSum += step.reward
			captions += step.units
			shown, name := step.loss, "loss"
			if sampled {
				shown, name = step.reward/float64(step.units), "CIDEr-D"
			}
			if math.IsNaN(smooth) {
				smooth = shown
			}
			smooth = 0.98*smooth + 0.02*shown
			bar.SetStatus("%s %.3f", name, smooth)
			bar.Add(step.units)
		}
		// Tokens per second of training alone (the dev evaluation below excluded);
		// self-critical steps include the sampling and scoring.
		tokRate := float64(lossTok) / time.Since(start).Seconds()
		bar.Finish()
		if math.IsNaN(lossSum) || math.IsInf(lossSum, 0) {
			return nil, fmt.Errorf("train: loss diverged (%v) in epoch %d; lower train.lr or train.clip", lossSum, epoch)
		}

		if ema != nil { // evaluate and save the averaged weights
			dev.Copy(backup, m.Flat())
			m.CopyFrom(ema)
		}
		devLoss, err := evalLoss(ctx, ts, devFeats, batchFeats, devEx, featDim, o)
		if err != nil {
			return nil, err
		}
		bleu, err := evalBLEU(ctx, m, devFeats, dv, o)
		if err != nil {
			return nil, err
		}
		st.Epoch, st.Step = epoch, ts.Steps()
		stats := EpochStats{Epoch: epoch, LR: lr, TrainLoss: lossSum / float64(lossTok), DevLoss: devLoss, BLEU: bleu,
			TokensPerSec: tokRate, Seconds: time.Since(start).Seconds()}
		if sampled {
			stats.TrainReward = rewardSum / float64(captions)
		}
		st.History = append(st.History, stats)
		st.TrainedFor += stats.Seconds
		mark := ""
		if bleu[3] > st.BestBLEU4 || st.BestEpoch == 0 {
			st.BestBLEU4, st.BestEpoch, st.BadEpochs = bleu[3], epoch, 0
			if err := m.Save(ModelDir(o.Out)); err != nil {
				return nil, err
			}
			mark = " (best, saved)"
		} else if st.BadEpochs++; st.BadEpochs >= o.Patience {
			st.Stopped = true
			mark = fmt.Sprintf(" (no better dev BLEU-4 for %d epochs: stopping)", o.Patience)
		}
		if ema != nil {
			m.CopyFrom(backup)
		}
		reward := ""
		if sampled {
			reward = fmt.Sprintf(", train CIDEr-D of samples %.4f", stats.TrainReward)
		}
		fmt.Fprintf(o.Log, "epoch %d: train loss %.4f%s, dev loss %.4f, dev BLEU-1..4 %.4f %.4f %.4f %.4f, %.0f tok/s, %.0fs%s\n",
			epoch, stats.TrainLoss, reward, devLoss, bleu[0], bleu[1], bleu[2], bleu[3], stats.TokensPerSec, stats.Seconds, mark)
		if err := writeCurves(o.Out, st.History, sampled); err != nil {
			return nil, err
		}
		groups := map[string][]float32{}
		if groups[groupParams], err = m.FlatHost(); err != nil {
			return nil, err
		}
		if groups[groupAdamM], groups[groupAdamV], _, err = ts.Moments(); err != nil {
			return nil, err
		}
		if ema != nil {
			groups[groupEMA] = make([]float32, cfg.NumParams())
			if err := dev.Download(groups[groupEMA], ema); err != nil {
				return nil, err
			}
		}
		if err := saveCheckpoint(ckpt, st, groups); err != nil {
			return nil, err
		}
	}
	res := &Result{History: st.History, Seconds: st.TrainedFor, ModelDir: ModelDir(o.Out), StoppedBy: "epochs"}
	if st.Stopped {
		res.StoppedBy = "patience"
	}
	if st.BestEpoch > 0 {
		res.Best = st.History[st.BestEpoch-1]
	}
	return res, nil
}

// evalLoss is the mean per-token loss over examples without dropout, batched in
// length order.
func evalLoss(ctx context.Context, ts *decoder.TrainState, feats, batchFeats gpu.Buf, ex []Example, featDim int, o Options) (float64, error) {
	var sum float64
	var ntok int
	for _, idx := range epochOrder(ex, o.BatchSize, o.Seed, 0) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		bt := makeBatch(ex, idx, text.StartID, text.EndID, text.PadID)
		bf := batchFeats.Slice(0, bt.B*featDim)
		ts.Model().Device().EmbeddingForward(bf, feats, bt.Images, featDim)
		loss, n, err := ts.Forward(bf, bt.IDs, bt.Targets, bt.B, bt.T, false, 0)
		if err != nil {
			return 0, err
		}
		sum += loss * float64(n)
		ntok += n
	}
	return sum / float64(ntok), nil
}

// evalBatch is how many dev images are decoded at once.
const evalBatch = 100

// Captions decodes every image of a (N, InputDim) feature buffer in batches and
// returns the best hypothesis of each as words.
func Captions(ctx context.Context, m *decoder.Model, feats gpu.Buf, n int, o decoder.DecodeOptions, v Vocab) ([][]string, []float64, error) {
	F := m.Cfg.InputDim()
	words := make([][]string, 0, n)
	scores := make([]float64, 0, n)
	for lo := 0; lo < n; lo += evalBatch {
		b := min(evalBatch, n-lo)
		hyps, err := m.Generate(ctx, feats.Slice(lo*F, b*F), b, o)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range hyps {
			ws := make([]string, len(h[0].Tokens))
			for i, id := range h[0].Tokens {
				ws[i] = v.Word(int(id))
			}
			words = append(words, ws)
			scores = append(scores, h[0].Score)
		}
	}
	return words, scores, nil
}

func evalBLEU(ctx context.Context, m *decoder.Model, feats gpu.Buf, dv *Split, o Options) ([4]float64, error) {
	d := o.Decode
	d.Beam = o.EvalBeam
	hyps, _, err := Captions(ctx, m, feats, dv.Images(), d, o.Vocab)
	if err != nil {
		return [4]float64{}, err
	}
	return o.BLEU(hyps, dv.Refs), nil
}
