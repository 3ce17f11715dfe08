package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/internal/atomicfile"
	"github.com/captioner/captioner/internal/dirlock"
	"github.com/captioner/captioner/internal/structdiff"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/progress"
)

// Run trains on trn, evaluates on dev after every epoch, and writes the
// checkpoint, the curves and the selected model under o.Out.
func Run(ctx context.Context, dev gpu.Device, o Options, trn, dv *Split) (*Result, error) {
	lock, err := claimOut(o)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	r, err := newRun(dev, o, trn, dv)
	if err != nil {
		return nil, err
	}
	defer r.close()
	if err := r.resume(); err != nil {
		return nil, err
	}
	if err := saveVocab(o); err != nil {
		return nil, err
	}
	if r.st.Epoch > 0 {
		// Resumed: the checkpoint is what the run goes on from, and a run
		// killed after writing it may not have written the model folders and
		// curves of its epoch.
		if err := r.saveModels(r.st.BestEpoch == r.st.Epoch); err != nil {
			return nil, err
		}
		if err := writeCurves(o.Out, r.st.History, r.sampled); err != nil {
			return nil, err
		}
	}
	for !r.st.Stopped && r.st.Epoch < o.Epochs {
		start := time.Now()
		stats, err := r.epoch(ctx)
		if err != nil {
			return nil, err
		}
		if err := r.evaluate(ctx, &stats); err != nil {
			return nil, err
		}
		if math.IsNaN(stats.DevLoss) || math.IsInf(stats.DevLoss, 0) {
			return nil, fmt.Errorf("train: dev loss %v after epoch %d: the weights diverged; nothing of the epoch was saved, and %s", stats.DevLoss, stats.Epoch, divergedAdvice(r.st.Epoch))
		}
		stats.Seconds = time.Since(start).Seconds()
		note, best := r.judge(stats)
		// The checkpoint first: the epoch is done once it is written. The
		// model folders and curves come after, so that a run killed between
		// them never leaves model/ ahead of its checkpoint, which resume would
		// not know (resume writes them again).
		if err := r.checkpoint(); err != nil {
			return nil, err
		}
		if err := r.saveModels(best); err != nil {
			return nil, err
		}
		if err := r.report(stats, note); err != nil {
			return nil, err
		}
	}
	return r.result(), nil
}

// longestCaption is the most words a caption of trn or dv has.
func longestCaption(trn, dv *Split) int {
	n := 0
	for _, s := range []*Split{trn, dv} {
		for _, e := range s.Examples {
			n = max(n, len(e.Words))
		}
	}
	return n
}

// saveVocab writes the vocabulary into the model folders, once the run is
// sure to go on: a run that resume refuses leaves a finished run's model as
// it was.
func saveVocab(o Options) error {
	for _, dir := range []string{ModelDir(o.Out), LastDir(o.Out)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := o.Vocab.Save(filepath.Join(dir, pipeline.VocabFile)); err != nil {
			return err
		}
	}
	return nil
}

// run is one training run: the model, its optimiser state and weight average, the
// splits on the device, and the host state that checkpoints save. Run takes it
// through its steps, one method each.
type run struct {
	o       Options
	dev     gpu.Device
	cfg     decoder.Config
	featDim int
	ckpt    string // the checkpoint file
	st      *state
	m       *decoder.Model
	ts      *decoder.TrainState
	avg     *average // nil unless train.ema is on
	obj     objective
	sc      *selfCritical   // obj when it is self-critical (objective cider), else nil
	tf      *teacherForcing // obj when it is cross-entropy (objective xe), else nil
	// sampled: the objective rewards sampled captions, whose mean reward the
	// progress bar, the log and the curves report.
	sampled                          bool
	dv                               *Split
	devEx                            []Example     // dv's examples, cut at train.max_len
	trainFeats, devFeats, batchFeats gpu.Buf       // (train images, F) (twice the rows with train.mirror), (dev images, F), (batch, F)
	tuned                            *tunedEncoder // with train.finetune_blocks; trainFeats is then unused
}

// newRun checks the splits, makes the model (from train.init when set) and its
// training state, and uploads the features.
func newRun(dev gpu.Device, o Options, trn, dv *Split) (*run, error) {
	if trn.Images() == 0 || dv.Images() == 0 || len(trn.Examples) == 0 || len(dv.Examples) == 0 {
		return nil, fmt.Errorf("train: empty split (%d train images, %d dev images); check the dataset and feature paths", trn.Images(), dv.Images())
	}
	featDim := len(trn.Feats) / trn.Images()
	if featDim*trn.Images() != len(trn.Feats) || featDim*dv.Images() != len(dv.Feats) {
		return nil, fmt.Errorf("train: feature matrices (%d and %d values) do not divide into %d and %d images", len(trn.Feats), len(dv.Feats), trn.Images(), dv.Images())
	}
	if errs := o.Conflicts(); len(errs) > 0 {
		return nil, fmt.Errorf("train: %w", errors.Join(errs...))
	}
	switch {
	case o.Mirror && len(trn.Mirrored) != len(trn.Feats):
		return nil, fmt.Errorf("train: train.mirror needs the mirrored photos' features laid out as the photos' (%d values), the split has %d values; load them from extract --mirror's store", len(trn.Feats), len(trn.Mirrored))
	case !o.Mirror && len(trn.Mirrored) > 0:
		return nil, fmt.Errorf("train: the split has mirrored photos' features but train.mirror is off; set train.mirror, or leave Split.Mirrored empty")
	}
	var first int
	if o.FinetuneBlocks > 0 {
		if o.Encoder == nil {
			return nil, fmt.Errorf("train: train.finetune_blocks %d without the encoder's weights", o.FinetuneBlocks)
		}
		c := o.Encoder.Config
		var err error
		if first, err = c.FirstTuned(o.FinetuneBlocks); err != nil {
			return nil, fmt.Errorf("train.finetune_blocks: %w", err)
		}
		// The decoder reads the top's output, not the splits' cut activations.
		featDim = c.Head
		if o.Arch == decoder.ArchAttention {
			featDim *= c.GridSize() * c.GridSize()
		}
	}
	cfg := o.ModelConfig(featDim)
	var initFlat []float32
	if o.Init != "" { // the run keeps its initial model's factorized context weight, if any
		var err error
		if initFlat, cfg, err = checkInit(dev, o.Init, cfg); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(ModelDir(o.Out), 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	r := &run{o: o, dev: dev, cfg: cfg, featDim: featDim, ckpt: filepath.Join(o.Out, CheckpointFile),
		st: &state{Config: cfg, Seed: o.Seed, Objective: objectiveName(o.Objective), FinetuneBlocks: o.FinetuneBlocks, Mirror: o.Mirror,
			Examples: examplesDigest(trn.Examples), DevCaptions: devDigest(dv), Settings: settingsOf(o, trn, dv), Rates: ratesOf(o)},
		sampled: o.Objective == "cider", dv: dv, devEx: truncate(dv.Examples, o.MaxLen)}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	var err error
	if r.m, err = decoder.New(dev, cfg, uint64(o.Seed)); err != nil {
		return nil, err
	}
	if initFlat != nil { // a resumed run overwrites these with the checkpoint's
		if err := r.m.SetFlat(initFlat); err != nil {
			return nil, err
		}
	}
	// Steps as long as the longest caption, cut at train.max_len, or a
	// sampled one: buffers sized by train.max_len alone ran out of memory at
	// 5000 for captions of 30 words.
	r.ts = r.m.NewTrainState(o.BatchSize+extraRows(o), max(min(o.MaxLen, longestCaption(trn, dv)), o.Decode.MaxLen)+1)
	if o.EMA > 0 {
		r.avg = newAverage(dev, o.EMA, r.m.Flat())
	}
	r.batchFeats = dev.Alloc((o.BatchSize + extraRows(o)) * featDim)
	if o.FinetuneBlocks > 0 {
		if r.tuned, err = newTunedEncoder(dev, o.Encoder, first, o.BatchSize, o.Arch != decoder.ArchAttention, trn, dv); err != nil {
			return nil, err
		}
		r.ts.KeepInputGrad()
		if o.EMA > 0 {
			r.tuned.avg = newAverage(dev, o.EMA, r.tuned.top.Flat())
		}
		r.devFeats = dev.Alloc(dv.Images() * featDim) // encodeDev fills it before each evaluation
		tf := newTeacherForcing(dev, trn.Examples, nil, r.batchFeats, featDim, o)
		tf.tuned = r.tuned
		r.obj, r.tf = tf, tf
		fmt.Fprintf(o.Log, "fine-tuning %s at rate %g\n", r.tuned.top.Describe(), o.FinetuneLR)
		ok = true
		return r, nil
	}
	// With train.mirror the mirrored photos' rows follow the originals'.
	var mirror *mirroring
	if o.Mirror {
		mirror = &mirroring{offset: int32(trn.Images()), words: trn.MirrorWords, seed: o.Seed}
	}
	r.trainFeats, r.devFeats = dev.Alloc(len(trn.Feats)+len(trn.Mirrored)), dev.Alloc(len(dv.Feats))
	dev.Upload(r.trainFeats.Slice(0, len(trn.Feats)), trn.Feats)
	if len(trn.Mirrored) > 0 {
		dev.Upload(r.trainFeats.Slice(len(trn.Feats), len(trn.Mirrored)), trn.Mirrored)
	}
	dev.Upload(r.devFeats, dv.Feats)
	if r.sampled {
		r.sc = newSelfCritical(dev, trn, r.trainFeats, r.batchFeats, featDim, o, mirror)
		r.obj = r.sc
	} else {
		r.tf = newTeacherForcing(dev, trn.Examples, r.trainFeats, r.batchFeats, featDim, o)
		r.tf.mirror = mirror
		r.obj = r.tf
	}
	ok = true
	return r, nil
}

// close frees what newRun made, however far it got.
func (r *run) close() {
	if r.sc != nil {
		r.sc.close(r.dev)
	}
	if r.tf != nil {
		r.tf.close(r.dev)
	}
	if r.tuned != nil {
		r.tuned.close()
	}
	gpu.FreeAll(r.dev, r.batchFeats, r.devFeats, r.trainFeats)
	if r.avg != nil {
		r.avg.close()
	}
	if r.ts != nil {
		r.ts.Close()
	}
	if r.m != nil {
		r.m.Close()
	}
}

// claimOut makes o.Out and takes its lock (dirlock) for the run: two runs
// writing one folder overwrote each other's checkpoint and model, and one
// result was lost without a word. The folder must then be free for the run
// (outIsFree); closing the returned file releases the lock.
func claimOut(o Options) (*os.File, error) {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	lock, err := dirlock.Lock(o.Out)
	if errors.Is(err, dirlock.ErrHeld) {
		return nil, fmt.Errorf("train: %s is in use by another training run; wait for it to end, or choose another --out", o.Out)
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := outIsFree(o); err != nil {
		lock.Close()
		return nil, err
	}
	return lock, nil
}

// outIsFree checks, under the lock, that o.Out may take the run. A run that
// finds no checkpoint there, new or --resume, starts afresh, so it needs the
// folder empty but for what a run stopped before its first checkpoint wrote
// (scaffolding): a run folder whose checkpoint was deleted, or a model
// folder, is not overwritten (--resume into the shipped model's folder had
// rewritten its curves and filled it with a run). The temporaries of files
// a killed run was writing (atomicfile's, 18 MB for a checkpoint) are removed
// first.
func outIsFree(o Options) error {
	for _, dir := range []string{o.Out, ModelDir(o.Out), LastDir(o.Out)} {
		if err := atomicfile.RemoveStale(dir); err != nil {
			return fmt.Errorf("train: removing a killed run's temporary files: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(o.Out, CheckpointFile)); !errors.Is(err, fs.ErrNotExist) {
		return nil // resume's to continue, or to refuse without --resume
	}
	// A fine-tuning run killed between its first encoder checkpoint and its
	// checkpoint left the first: no run's, it would keep every run out.
	if err := removeEncoderCheckpoints(o.Out, 0); err != nil {
		return err
	}
	entries, err := os.ReadDir(o.Out)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != dirlock.File && !scaffolding(o.Out, e) {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("train: %s holds %s but no checkpoint, and a new run would overwrite what is there; choose an empty or new --out (a run stopped before its first checkpoint starts afresh with --resume)",
			o.Out, strings.Join(names[:min(len(names), 5)], ", "))
	}
	return nil
}

// scaffolding reports whether entry e of a run folder is what a run writes
// before its first checkpoint: model/ or last/ holding its vocabulary alone.
// A run stopped then is started again by the same command.
func scaffolding(out string, e os.DirEntry) bool {
	if !e.IsDir() || e.Name() != filepath.Base(ModelDir(out)) && e.Name() != filepath.Base(LastDir(out)) {
		return false
	}
	inside, err := os.ReadDir(filepath.Join(out, e.Name()))
	return err == nil && !slices.ContainsFunc(inside, func(f os.DirEntry) bool { return f.Name() != pipeline.VocabFile })
}

// resume continues the checkpoint in o.Out when o.Resume is set: the host state,
// the parameters, Adam's moments and step count and the weight average come back
// as saved, so the run goes on as if it had never stopped. Without o.Resume it
// refuses to overwrite a checkpoint.
func (r *run) resume() error {
	o := r.o
	if !o.Resume {
		if _, err := os.Stat(r.ckpt); err == nil {
			return fmt.Errorf("train: %s already holds a checkpoint; pass --resume to continue it, or choose another --out", o.Out)
		}
		return nil
	}
	saved, groups, err := loadCheckpoint(r.ckpt)
	switch {
	case errors.Is(err, errNoCheckpoint):
		fmt.Fprintf(o.Log, "no checkpoint in %s: starting a new run\n", o.Out)
		return nil
	case err != nil:
		return err
	}
	if diffs := checkpointDifferences(saved, r.cfg, o); len(diffs) > 0 {
		return fmt.Errorf("train: checkpoint %s was made with another network or run than this one asks for: %s (the checkpoint's -> this run's); use the same settings or another --out",
			r.ckpt, structdiff.Join(diffs))
	}
	if saved.Examples != "" && saved.Examples != r.st.Examples {
		return fmt.Errorf("train: checkpoint %s was made on other training captions than this run's (another dataset, cleaning or train.teacher, or a teacher decoding with other decode settings); use the same ones or another --out", r.ckpt)
	}
	if saved.DevCaptions != "" && saved.DevCaptions != r.st.DevCaptions {
		return fmt.Errorf("train: checkpoint %s was made with other dev captions than this run's, and its best epoch was judged on those; use the same dev split, or another --out", r.ckpt)
	}
	if saved.Settings != nil {
		if changed := changes(saved.Settings, r.st.Settings); len(changed) > 0 {
			return fmt.Errorf("train: checkpoint %s was made with other settings than this run asks for: %s (the checkpoint's -> this run's); resume with the checkpoint's (only train.epochs, train.patience and the optimiser's train.lr, lr_decay, weight_decay, finetune_lr and clip may change), or choose another --out",
				r.ckpt, strings.Join(changed, "; "))
		}
	}
	if r.tuned != nil {
		if err := r.tuned.resume(encoderCheckpoint(o.Out, saved.Epoch), saved.Epoch); err != nil {
			return err
		}
	}
	// Early stopping is judged against this run's patience, so resuming with a
	// larger train.patience continues a run that stopped.
	saved.Stopped = saved.BadEpochs >= o.Patience
	if err := r.m.SetFlat(groups[groupParams]); err != nil {
		return err
	}
	if err := r.ts.SetMoments(groups[groupAdamM], groups[groupAdamV], saved.Step); err != nil {
		return err
	}
	if r.avg != nil {
		if avg, ok := groups[groupEMA]; ok {
			r.avg.set(avg)
		} else {
			r.avg.restart(r.m.Flat())
			fmt.Fprintf(o.Log, "the checkpoint has no weight average: starting one from its parameters\n")
		}
	}
	if saved.Settings == nil {
		fmt.Fprintf(o.Log, "the checkpoint predates recorded settings: this run's are not checked against its\n")
	}
	if saved.Rates != nil {
		for _, c := range changes(saved.Rates, r.st.Rates) {
			fmt.Fprintf(o.Log, "resuming with %s (the checkpoint's run had the first)\n", c)
		}
	}
	// This run's, which the checks above found the same or the checkpoint
	// lacked (one from before they were kept): later checkpoints guard them.
	saved.Settings, saved.Rates, saved.Examples, saved.DevCaptions = r.st.Settings, r.st.Rates, r.st.Examples, r.st.DevCaptions
	r.st = saved
	best := fmt.Sprintf("dev BLEU-4 %.4f", saved.BestBLEU4)
	if saved.bestByLoss() {
		best = fmt.Sprintf("dev loss %.4f", saved.History[saved.BestEpoch-1].DevLoss)
	}
	fmt.Fprintf(o.Log, "resuming after epoch %d (step %d, best %s at epoch %d)\n", saved.Epoch, saved.Step, best, saved.BestEpoch)
	return nil
}

// checkpointDifferences lists the settings a resume must keep that the
// checkpoint's run had otherwise than this one: the network and its training
// regularisation (by their config.json names), the seed, the objective, the
// fine-tuned encoder blocks and mirroring.
func checkpointDifferences(saved *state, cfg decoder.Config, o Options) []structdiff.Field {
	diffs := structdiff.Fields(saved.Config, cfg)
	for _, f := range []structdiff.Field{
		{Key: "seed", Was: saved.Seed, Now: o.Seed},
		{Key: "objective", Was: objectiveName(saved.Objective), Now: objectiveName(o.Objective)},
		{Key: "finetune_blocks", Was: saved.FinetuneBlocks, Now: o.FinetuneBlocks},
		{Key: "mirror", Was: saved.Mirror, Now: o.Mirror},
	} {
		if f.Was != f.Now {
			diffs = append(diffs, f)
		}
	}
	return diffs
}

// epoch trains the epoch after the state's last one and returns its training
// figures: learning rate, loss, speed and (objective cider) reward.
func (r *run) epoch(ctx context.Context) (EpochStats, error) {
	if err := ctx.Err(); err != nil {
		return EpochStats{}, err
	}
	o, ts := r.o, r.ts
	start := time.Now()
	epoch := r.st.Epoch + 1
	decay := math.Pow(o.LRDecay, float64(r.st.Epoch))
	lr := o.LR * decay
	var encLR float64 // the tuned encoder layers'
	if r.tuned != nil {
		encLR = o.FinetuneLR * decay
	}
	adam := decoder.Adam{LR: float32(lr), Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: float32(o.WeightDecay)}
	bar := progress.New(o.Log, fmt.Sprintf("epoch %d/%d", epoch, o.Epochs), r.obj.units(), r.obj.unit())
	var lossSum, rewardSum float64
	var lossTok, captions int
	for _, idx := range r.obj.batches(epoch) {
		if err := ctx.Err(); err != nil {
			return EpochStats{}, err
		}
		var step stepStats
		forward := func() (err error) {
			step, err = r.obj.forward(ctx, ts, idx)
			return err
		}
		var err error
		if r.tuned != nil {
			err = r.tuned.step(ts, o.Clip, adam, float32(encLR), forward)
		} else {
			err = ts.Step(o.Clip, adam, forward)
		}
		if errors.Is(err, gpu.ErrDiverged) {
			return EpochStats{}, fmt.Errorf("train: epoch %d, step %d: %w; the step was not taken, and %s", epoch, ts.Steps()+1, err, divergedAdvice(r.st.Epoch))
		}
		if err != nil {
			return EpochStats{}, err
		}
		if r.avg != nil {
			r.avg.update(r.m.Flat(), ts.Steps())
		}
		if r.tuned != nil && r.tuned.avg != nil {
			r.tuned.avg.update(r.tuned.top.Flat(), ts.Steps())
		}
		lossSum += step.loss * float64(step.tokens)
		lossTok += step.tokens
		rewardSum += step.reward
		captions += step.units
		// The epoch's mean so far, which its summary line ends on.
		if r.sampled {
			bar.SetStatus("CIDEr-D %.3f", rewardSum/float64(captions))
		} else {
			bar.SetStatus("loss %.3f", lossSum/float64(lossTok))
		}
		bar.Add(step.units)
	}
	// Tokens per second of training alone (the dev evaluation excluded);
	// self-critical steps include the sampling and scoring.
	tokRate := float64(lossTok) / time.Since(start).Seconds()
	bar.Finish()
	if math.IsNaN(lossSum) || math.IsInf(lossSum, 0) {
		return EpochStats{}, fmt.Errorf("train: loss diverged (%v) in epoch %d; %s", lossSum, epoch, divergedAdvice(r.st.Epoch))
	}
	stats := EpochStats{Epoch: epoch, LR: lr, EncoderLR: encLR, TrainLoss: lossSum / float64(lossTok), TokensPerSec: tokRate}
	if r.sampled {
		stats.TrainReward = rewardSum / float64(captions)
	}
	return stats, nil
}

// evaluate scores the weights the run would keep (the average when train.ema is
// on) on dev into stats: the mean loss per token, and BLEU-1..4 of
// train.eval_beam decoding with its matched 4-grams. The trained parameters
// are back in place when it returns.
func (r *run) evaluate(ctx context.Context, stats *EpochStats) error {
	if r.tuned != nil {
		r.tuned.swapIn()
		r.tuned.encodeDev(r.devFeats)
		r.tuned.swapOut()
	}
	if r.avg != nil {
		r.avg.swapIn(r.m)
		defer r.avg.swapOut(r.m)
	}
	var err error
	if stats.DevLoss, err = evalLoss(ctx, r.ts, r.devFeats, r.batchFeats, r.devEx, r.featDim, r.o); err != nil {
		return err
	}
	var matched [4]int
	if stats.BLEU, matched, err = evalBLEU(ctx, r.m, r.devFeats, r.dv, r.o); err != nil {
		return err
	}
	stats.DevFourGrams = &matched[3]
	return nil
}

// judge records an evaluated epoch in the state (state.record) and says
// whether it is the best so far, and the note for its log line.
func (r *run) judge(stats EpochStats) (note string, best bool) {
	if r.st.record(stats, r.o.Patience) {
		return " (best, saved)", true
	}
	if r.st.Stopped {
		what := "dev BLEU-4"
		if r.st.bestByLoss() {
			what = "dev loss (no dev 4-gram has matched)"
		}
		return fmt.Sprintf(" (no better %s for %d epochs: stopping)", what, r.o.Patience), false
	}
	return "", false
}

// saveModels writes the weights evaluate scores as the model when best, and
// always as last/.
func (r *run) saveModels(best bool) error {
	if best {
		if err := r.saveEvaluated(ModelDir(r.o.Out)); err != nil {
			return err
		}
	}
	return r.saveEvaluated(LastDir(r.o.Out))
}

// saveEvaluated writes the weights evaluate scores (the average when
// train.ema is on), and the tuned encoder layers, into dir. The scores eval
// --save-scores wrote there are of the weights replaced: they go first, so
// that no moment has them beside the new ones (serve had reported an
// earlier epoch's scores for a resumed run's model).
func (r *run) saveEvaluated(dir string) error {
	// But only once the weights can be written: a refused save had left
	// the old weights without their scores.
	if _, err := os.Stat(dir); err == nil { // else a folder the save makes
		for _, f := range []string{decoder.ConfigFile, decoder.WeightsFile, TrainingFile} {
			if err := atomicfile.CanWrite(filepath.Join(dir, f)); err != nil {
				return fmt.Errorf("train: %w", err)
			}
		}
	}
	// The record of the weights replaced goes with their scores: a run
	// killed between the weights and the new record leaves none, not a
	// wrong one.
	for _, f := range []string{pipeline.ScoresFile, TrainingFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("train: %w", err)
		}
	}
	if r.avg != nil {
		r.avg.swapIn(r.m)
		defer r.avg.swapOut(r.m)
	}
	save := r.m.Save
	if r.o.Train.HalfWeights {
		save = r.m.SaveHalf
	}
	if err := save(dir); err != nil {
		return err
	}
	if err := r.writeTraining(dir); err != nil {
		return err
	}
	if r.tuned != nil {
		r.tuned.swapIn()
		defer r.tuned.swapOut()
		return r.tuned.save(dir)
	}
	// A frozen encoder's decoder beside an earlier run's tuned layers would
	// caption through layers it was not trained on.
	if err := os.Remove(filepath.Join(dir, encoder.TunedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// TrainingFile is what a saved model records of the run that made it.
const TrainingFile = "training.json"

// writeTraining writes dir's TrainingFile: when, the epoch saved with its
// figures, and Options.Provenance (the run's settings and data), so that a
// model copied out of its run still says what made it.
func (r *run) writeTraining(dir string) error {
	rec := map[string]any{"saved": time.Now().UTC().Format(time.RFC3339), "epoch": r.st.History[len(r.st.History)-1]}
	maps.Copy(rec, r.o.Provenance)
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("train: %s: %w", TrainingFile, err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, TrainingFile), append(b, '\n'))
}

// record appends an epoch to the history and judges it: the first epoch, and
// one better than the best so far, becomes the best and clears the count of
// epochs without progress; patience such epochs in a row stop the run. It
// reports whether the epoch is the new best.
func (st *state) record(stats EpochStats, patience int) bool {
	st.Epoch = stats.Epoch
	st.History = append(st.History, stats)
	st.TrainedFor += stats.Seconds
	if st.BestEpoch == 0 || better(stats, st.History[st.BestEpoch-1]) {
		st.BestBLEU4, st.BestEpoch, st.BadEpochs = stats.BLEU[3], stats.Epoch, 0
		return true
	}
	st.BadEpochs++
	st.Stopped = st.BadEpochs >= patience
	return false
}

// MatchedFourGrams says whether any 4-gram of the epoch's dev captions matched
// a reference. Without the count (a checkpoint from before it), by its BLEU-4:
// the smoothing leaves values like 1e-23 or 1e-5 there, and one matched 4-gram
// in a small dev set scores about 0.05; the cut at 1e-6 missed values near
// 1e-5, which ranked a small dataset's epochs by noise.
func (e EpochStats) MatchedFourGrams() bool {
	if e.DevFourGrams != nil {
		return *e.DevFourGrams > 0
	}
	return e.BLEU[3] >= 1e-6
}

// better says whether epoch a beats b: by dev BLEU-4, except that an epoch
// with no 4-gram matched (a small dataset's dev split, early epochs) loses to
// one with some, and two such are ranked by dev loss.
func better(a, b EpochStats) bool {
	am, bm := a.MatchedFourGrams(), b.MatchedFourGrams()
	switch {
	case am != bm:
		return am
	case am:
		return a.BLEU[3] > b.BLEU[3]
	}
	return a.DevLoss < b.DevLoss
}

// bestByLoss says whether dev loss chose the best epoch (better): no dev
// 4-gram matched in it, nor in any epoch so far.
func (st *state) bestByLoss() bool {
	return st.BestEpoch > 0 && !st.History[st.BestEpoch-1].MatchedFourGrams()
}

// report writes the epoch's log line and the curves so far.
func (r *run) report(stats EpochStats, note string) error {
	reward := ""
	if r.sampled {
		reward = fmt.Sprintf(", train CIDEr-D of samples %.4f", stats.TrainReward)
	}
	b := stats.BLEU
	fmt.Fprintf(r.o.Log, "epoch %d: train loss %.4f%s, dev loss %.4f, dev BLEU-1..4 %.4f %.4f %.4f %.4f, %.0f tok/s, %.0fs%s\n",
		stats.Epoch, stats.TrainLoss, reward, stats.DevLoss, b[0], b[1], b[2], b[3], stats.TokensPerSec, stats.Seconds, note)
	return writeCurves(r.o.Out, r.st.History, r.sampled)
}

// checkpoint saves the state, the parameters, Adam's moments and step count, and
// the weight average: everything resume needs to continue from here exactly.
func (r *run) checkpoint() error {
	groups := map[string][]float32{}
	var err error
	if groups[groupParams], err = r.m.FlatHost(); err != nil {
		return err
	}
	if groups[groupAdamM], groups[groupAdamV], r.st.Step, err = r.ts.Moments(); err != nil {
		return err
	}
	if r.avg != nil {
		if groups[groupEMA], err = r.avg.host(); err != nil {
			return err
		}
	}
	if r.tuned == nil {
		return saveCheckpoint(r.ckpt, r.st, groups)
	}
	if err := r.tuned.saveCheckpoint(encoderCheckpoint(r.o.Out, r.st.Epoch), r.st.Epoch); err != nil {
		return err
	}
	if err := saveCheckpoint(r.ckpt, r.st, groups); err != nil {
		return err
	}
	// Every earlier epoch's, not only the one before: a run killed right
	// after its checkpoint had left that one behind for good.
	return removeEncoderCheckpoints(r.o.Out, r.st.Epoch)
}

// removeEncoderCheckpoints removes the encoder checkpoints in out but
// keep's (none when keep is 0). The folder is listed, not globbed: a
// --out with [ or * in it was read as a pattern, and matched another run's.
func removeEncoderCheckpoints(out string, keep int) error {
	entries, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, e := range entries {
		if isEncoderCheckpoint(e.Name()) && e.Name() != filepath.Base(encoderCheckpoint(out, keep)) {
			if err := os.Remove(filepath.Join(out, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("train: %w", err)
			}
		}
	}
	return nil
}

// result summarises the run from its state.
func (r *run) result() *Result {
	res := &Result{History: r.st.History, Seconds: r.st.TrainedFor, ModelDir: ModelDir(r.o.Out), StoppedBy: "epochs"}
	if r.st.Stopped {
		res.StoppedBy = "patience"
	}
	if r.st.BestEpoch > 0 {
		res.Best = r.st.History[r.st.BestEpoch-1]
	}
	return res
}

// divergedAdvice says, after done epochs, what a diverged run left and what to
// do: with none done there is no checkpoint to resume (a first epoch that
// diverges at once points at the data, e.g. features that are not finite).
func divergedAdvice(done int) string {
	if done == 0 {
		return "no epoch had finished, so there is no checkpoint: lower train.lr (or set train.clip) and run again; if the first steps diverge whatever the rate, check the features and the dataset"
	}
	return fmt.Sprintf("the checkpoint of epoch %d is intact: lower train.lr (or set train.clip) and run again with --resume", done)
}
