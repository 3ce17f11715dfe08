package train

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/f16"
)

// newTestRun makes a run on the small synthetic task, closed with the test.
func newTestRun(t *testing.T, dev gpu.Device, o Options) *run {
	t.Helper()
	if o.Log == nil {
		o.Log = &bytes.Buffer{}
	}
	v := o.Vocab.(synthVocab)
	r, err := newRun(dev, o, synthSplit(48, 1, v), synthSplit(12, 2, v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

// host downloads a device buffer.
func host(t *testing.T, dev gpu.Device, b gpu.Buf) []float32 {
	t.Helper()
	h := make([]float32, b.Len())
	if err := dev.Download(h, b); err != nil {
		t.Fatal(err)
	}
	return h
}

// trainEpoch takes r through one full epoch's steps, as Run does.
func trainEpoch(t *testing.T, r *run) EpochStats {
	t.Helper()
	stats, err := r.epoch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.evaluate(context.Background(), &stats); err != nil {
		t.Fatal(err)
	}
	_, best := r.judge(stats)
	if err := r.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := r.saveModels(best); err != nil {
		t.Fatal(err)
	}
	return stats
}

func TestAverageUpdateAndSwap(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	params := dev.Alloc(3)
	defer dev.Free(params)
	dev.Upload(params, []float32{1, 1, 1})
	a := newAverage(dev, 0.9, params)
	defer a.close()
	dev.Upload(params, []float32{3, 3, 3})
	// Step 0: d = min(0.9, 1/10) = 0.1, so avg = 0.1*1 + 0.9*3 = 2.8.
	a.update(params, 0)
	// Step 1000: d = min(0.9, 1001/1010) = 0.9, so avg = 0.9*2.8 + 0.1*3 = 2.82.
	a.update(params, 1000)
	got, err := a.host()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if d := v - 2.82; d > 1e-6 || d < -1e-6 {
			t.Fatalf("average %v, want 2.82 each", got)
		}
	}

	m, err := decoder.New(dev, decoder.Config{FeatDim: 4, Embed: 3, Hidden: 2, Mid: 2, Vocab: 6}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	trained := host(t, dev, m.Flat())
	avg := newAverage(dev, 0.9, m.Flat())
	defer avg.close()
	want := make([]float32, len(trained))
	for i := range want {
		want[i] = float32(i)
	}
	avg.set(want)
	avg.swapIn(m)
	if got := host(t, dev, m.Flat()); !slices.Equal(got, want) {
		t.Error("swapIn did not put the average into the model")
	}
	avg.swapOut(m)
	if got := host(t, dev, m.Flat()); !slices.Equal(got, trained) {
		t.Error("swapOut did not give the model its trained parameters back")
	}
}

// TestSelectKeepsTheBest walks state.record through a run's dev BLEU-4 scores.
func TestSelectKeepsTheBest(t *testing.T) {
	st := &state{}
	for i, c := range []struct {
		bleu4     float64
		best      bool
		bestBLEU4 float64
		bestEpoch int
		bad       int
		stopped   bool
	}{
		{0, true, 0, 1, 0, false},         // the first epoch is the best whatever it scores
		{0.3, true, 0.3, 2, 0, false},     // better
		{0.2, false, 0.3, 2, 1, false},    // worse: refused
		{0.3, false, 0.3, 2, 2, false},    // equal: refused
		{0.35, true, 0.35, 5, 0, false},   // better again: the count starts over
		{0.1, false, 0.35, 5, 1, false},   // worse
		{0.349, false, 0.35, 5, 2, false}, // worse
		{0.2, false, 0.35, 5, 3, true},    // patience 3 reached
	} {
		epoch := i + 1
		best := st.record(EpochStats{Epoch: epoch, BLEU: [4]float64{0.9, 0.8, 0.7, c.bleu4}, Seconds: 2}, 3)
		if best != c.best || st.BestBLEU4 != c.bestBLEU4 || st.BestEpoch != c.bestEpoch || st.BadEpochs != c.bad || st.Stopped != c.stopped || st.Epoch != epoch {
			t.Errorf("epoch %d with BLEU-4 %g: best %v, state best %g at epoch %d, %d bad, stopped %v, epoch %d; want best %v, %g at %d, %d bad, stopped %v",
				epoch, c.bleu4, best, st.BestBLEU4, st.BestEpoch, st.BadEpochs, st.Stopped, st.Epoch, c.best, c.bestBLEU4, c.bestEpoch, c.bad, c.stopped)
		}
	}
	if len(st.History) != 8 || st.TrainedFor != 16 {
		t.Errorf("history of %d epochs, %g s; want 8 and 16", len(st.History), st.TrainedFor)
	}
}

// TestSelectWithoutFourGrams: while no dev 4-gram matches (a small dataset)
// BLEU-4 is smoothing noise, and dev loss ranks the epochs; the first epoch
// with a match beats them all, and after it BLEU-4 ranks again. An epoch of a
// checkpoint from before the count (nil) is judged by its BLEU-4's size.
func TestSelectWithoutFourGrams(t *testing.T) {
	count := func(n int) *int { return &n }
	st := &state{}
	for i, c := range []struct {
		bleu4, loss float64
		matched     *int
		best        bool
		bestEpoch   int
	}{
		{1.1e-23, 4.0, nil, true, 1},
		{4.1e-12, 4.1, nil, false, 1},     // a higher BLEU-4 of noise, a worse loss: refused
		{3e-20, 3.7, count(0), true, 3},   // a lower BLEU-4 of noise, a better loss
		{8.9e-6, 3.8, count(0), false, 3}, // a higher BLEU-4 of noise that a cut at 1e-6 took for a match
		{7.9e-6, 3.6, count(0), true, 5},  // a lower one, a better loss
		{0.02, 3.9, count(2), true, 6},    // a 4-gram matched: better than any loss
		{5e-7, 3.0, count(0), false, 6},   // no match again: refused however good its loss
		{0.03, 3.95, count(3), true, 8},
		{0.025, 3.5, nil, false, 8}, // from an old checkpoint: a match by its size, and worse
	} {
		epoch := i + 1
		best := st.record(EpochStats{Epoch: epoch, BLEU: [4]float64{0.4, 0.2, 0.1, c.bleu4}, DevFourGrams: c.matched, DevLoss: c.loss}, 10)
		if best != c.best || st.BestEpoch != c.bestEpoch {
			t.Errorf("epoch %d (BLEU-4 %g, loss %g): best %v, best epoch %d; want %v, %d", epoch, c.bleu4, c.loss, best, st.BestEpoch, c.best, c.bestEpoch)
		}
		if byLoss := c.bestEpoch < 6; st.bestByLoss() != byLoss {
			t.Errorf("epoch %d: bestByLoss %v, want %v", epoch, st.bestByLoss(), byLoss)
		}
	}
}

// TestSaveModelsSavesTheAverage: a best epoch writes the weights evaluate
// scored (the average), a worse one leaves the saved model alone, and the
// trained parameters stay in place.
func TestSaveModelsSavesTheAverage(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	r := newTestRun(t, dev, synthOptions(t.TempDir(), 3))
	if _, err := r.epoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	trained := host(t, dev, r.m.Flat())
	avg, err := r.avg.host()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(avg, trained) {
		t.Fatal("after an epoch the average equals the parameters; the test would prove nothing")
	}
	saved := func(dir string) []float32 {
		m, err := decoder.Load(dev, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		flat, err := m.FlatHost()
		if err != nil {
			t.Fatal(err)
		}
		return flat
	}
	// As Run does, but for the checkpoint.
	selectModel := func(stats EpochStats) (string, error) {
		note, best := r.judge(stats)
		return note, r.saveModels(best)
	}
	note, err := selectModel(EpochStats{Epoch: 1, BLEU: [4]float64{0, 0, 0, 0.5}})
	if err != nil || note != " (best, saved)" {
		t.Fatalf("best epoch: note %q, %v", note, err)
	}
	if !slices.Equal(saved(ModelDir(r.o.Out)), avg) {
		t.Error("the saved model is not the weight average")
	}
	// The last epoch's model (Run writes it after every epoch) is the average too.
	if err := r.saveEvaluated(LastDir(r.o.Out)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(saved(LastDir(r.o.Out)), avg) {
		t.Error("the last epoch's model is not the weight average")
	}
	if !slices.Equal(host(t, dev, r.m.Flat()), trained) {
		t.Error("selection left the average in the model")
	}
	r.avg.set(trained)
	note, err = selectModel(EpochStats{Epoch: 2, BLEU: [4]float64{0, 0, 0, 0.4}})
	if err != nil || note != "" {
		t.Fatalf("worse epoch: note %q, %v", note, err)
	}
	if !slices.Equal(saved(ModelDir(r.o.Out)), avg) {
		t.Error("a worse epoch overwrote the saved model")
	}
	r.o.Patience = 2
	if note, _ := selectModel(EpochStats{Epoch: 3, BLEU: [4]float64{0, 0, 0, 0.4}}); note != " (no better dev BLEU-4 for 2 epochs: stopping)" {
		t.Errorf("second worse epoch with patience 2: note %q", note)
	}
	// train.half_weights: the next best epoch is saved as the average's float16.
	r.o.Train.HalfWeights = true
	if _, err := selectModel(EpochStats{Epoch: 4, BLEU: [4]float64{0, 0, 0, 0.6}}); err != nil {
		t.Fatal(err)
	}
	got := saved(ModelDir(r.o.Out))
	for i, w := range trained { // the average now holds the trained weights
		if want := f16.ToFloat32(f16.FromFloat32(w)); got[i] != want {
			t.Fatalf("half weights: weight %d saved as %v, want %v (float16 of %v)", i, got[i], want, w)
		}
	}
}

// TestEpochTrains: an epoch takes one optimiser step per batch at the decayed
// learning rate, and the next one fits the data better.
func TestEpochTrains(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	r := newTestRun(t, dev, synthOptions(t.TempDir(), 3))
	first := trainEpoch(t, r)
	if steps := len(r.obj.batches(1)); r.ts.Steps() != steps || r.st.Step != steps {
		t.Errorf("after epoch 1: %d optimiser steps (state %d), want one per batch: %d", r.ts.Steps(), r.st.Step, steps)
	}
	second := trainEpoch(t, r)
	if first.Epoch != 1 || second.Epoch != 2 || first.LR != r.o.LR || second.LR != r.o.LR*r.o.LRDecay {
		t.Errorf("epochs %d, %d at learning rates %g, %g; want 1, 2 at 0.01, 0.009", first.Epoch, second.Epoch, first.LR, second.LR)
	}
	if !(second.TrainLoss < first.TrainLoss) || !(second.DevLoss < first.DevLoss) || first.TokensPerSec <= 0 {
		t.Errorf("losses: train %.4f -> %.4f, dev %.4f -> %.4f (%.0f tok/s); want both to fall", first.TrainLoss, second.TrainLoss, first.DevLoss, second.DevLoss, first.TokensPerSec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.epoch(ctx); err != context.Canceled {
		t.Errorf("epoch with a cancelled context: %v", err)
	}
}

// TestEvaluateScoresTheAverage: evaluate scores the weight average, exactly as a
// model holding those weights without an average scores, and leaves the trained
// parameters in place.
func TestEvaluateScoresTheAverage(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	r := newTestRun(t, dev, synthOptions(t.TempDir(), 3))
	trainEpoch(t, r)
	trained := host(t, dev, r.m.Flat())
	avg, err := r.avg.host()
	if err != nil {
		t.Fatal(err)
	}
	var got EpochStats
	if err := r.evaluate(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(host(t, dev, r.m.Flat()), trained) {
		t.Error("evaluate left the average in the model")
	}

	o := synthOptions(t.TempDir(), 3)
	o.EMA = 0
	plain := newTestRun(t, dev, o)
	if err := plain.m.SetFlat(avg); err != nil {
		t.Fatal(err)
	}
	var want EpochStats
	if err := plain.evaluate(context.Background(), &want); err != nil {
		t.Fatal(err)
	}
	if got.DevLoss != want.DevLoss || got.BLEU != want.BLEU || *got.DevFourGrams != *want.DevFourGrams {
		t.Errorf("evaluate: dev loss %v BLEU %v, %d 4-grams; the average's own: %v %v, %d", got.DevLoss, got.BLEU, *got.DevFourGrams, want.DevLoss, want.BLEU, *want.DevFourGrams)
	}
	if err := plain.m.SetFlat(trained); err != nil {
		t.Fatal(err)
	}
	var own EpochStats
	if err := plain.evaluate(context.Background(), &own); err != nil || own.DevLoss == got.DevLoss {
		t.Errorf("the trained parameters score %v (%v), the same as the average: the test cannot tell them apart", own.DevLoss, err)
	}
}

// TestResumeRestoresTheRun: a new run resumed from a checkpoint has the state,
// parameters, Adam's moments and step count and weight average of the run that
// wrote it, exactly.
func TestResumeRestoresTheRun(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 3)
	a := newTestRun(t, dev, o)
	if err := a.resume(); err != nil {
		t.Fatal(err)
	}
	trainEpoch(t, a)
	trainEpoch(t, a)

	o.Resume = true
	var log bytes.Buffer
	o.Log = &log
	b := newTestRun(t, dev, o)
	if err := b.resume(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.st, a.st) {
		t.Errorf("state after resume %+v, the run saved %+v", b.st, a.st)
	}
	if !slices.Equal(host(t, dev, b.m.Flat()), host(t, dev, a.m.Flat())) {
		t.Error("parameters differ after resume")
	}
	am1, am2, as, _ := a.ts.Moments()
	bm1, bm2, bs, _ := b.ts.Moments()
	if !slices.Equal(am1, bm1) || !slices.Equal(am2, bm2) || as != bs || bs != a.ts.Steps() {
		t.Errorf("Adam state differs after resume (step %d, saved %d)", bs, as)
	}
	aa, _ := a.avg.host()
	ba, _ := b.avg.host()
	if !slices.Equal(aa, ba) {
		t.Error("weight average differs after resume")
	}
	// Two epochs of the synthetic run match no caption exactly (BLEU 0): dev
	// loss chose the best, and the log says so.
	if a.st.BestBLEU4 != 0 {
		t.Fatalf("best dev score %g after two epochs; the log check below expects none", a.st.BestBLEU4)
	}
	if want := fmt.Sprintf("resuming after epoch 2 (step %d, best dev loss %.4f at epoch %d)\n", a.ts.Steps(), a.st.History[a.st.BestEpoch-1].DevLoss, a.st.BestEpoch); log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
	// The next epoch of the resumed run is the one the first run would train.
	if sa, sb := trainEpoch(t, a), trainEpoch(t, b); sa.TrainLoss != sb.TrainLoss || sa.DevLoss != sb.DevLoss || sb.Epoch != 3 {
		t.Errorf("epoch 3: original train loss %v dev %v, resumed %v %v (epoch %d)", sa.TrainLoss, sa.DevLoss, sb.TrainLoss, sb.DevLoss, sb.Epoch)
	}

	// Other settings, or no --resume, are refused.
	o.Seed = 6
	c := newTestRun(t, dev, o)
	want := "train: checkpoint " + filepath.Join(o.Out, CheckpointFile) + " was made with another network or run than this one asks for: seed 5 -> 6 (the checkpoint's -> this run's); use the same settings or another --out"
	if err := c.resume(); err == nil || err.Error() != want {
		t.Errorf("resume with another seed: %v, want %s", err, want)
	}
	// Another network too, by the config.json names of what differs.
	o.Seed, o.Hidden = 5, 8
	if err := newTestRun(t, dev, o).resume(); err == nil || !strings.Contains(err.Error(), " asks for: hidden 16 -> 8 (the checkpoint's -> this run's);") {
		t.Errorf("resume with another hidden size: %v", err)
	}
	o.Hidden = 16
	// Nor does a run that mirrors photos where the checkpoint's did not.
	o.Seed, o.Mirror = 5, true
	v := o.Vocab.(synthVocab)
	trn := synthSplit(48, 1, v)
	mirrorSplit(trn, v)
	m, err := newRun(dev, o, trn, synthSplit(12, 2, v))
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if err := m.resume(); err == nil || !strings.HasSuffix(err.Error(), ": mirror false -> true (the checkpoint's -> this run's); use the same settings or another --out") {
		t.Errorf("resume with train.mirror: %v", err)
	}
	o.Mirror = false
	o.Seed, o.Resume = 5, false
	d := newTestRun(t, dev, o)
	if err := d.resume(); err == nil || err.Error() != "train: "+o.Out+" already holds a checkpoint; pass --resume to continue it, or choose another --out" {
		t.Errorf("a new run into a folder with a checkpoint: %v", err)
	}
	// --resume where there is nothing to resume starts afresh.
	o.Out, o.Resume = t.TempDir(), true
	log.Reset()
	e := newTestRun(t, dev, o)
	if err := e.resume(); err != nil || log.String() != "no checkpoint in "+o.Out+": starting a new run\n" || e.st.Epoch != 0 {
		t.Errorf("resume without a checkpoint: %v, log %q", err, log.String())
	}
}

// TestCheckpointStepSavesTheRun: the checkpoint step writes what the run holds.
func TestCheckpointStepSavesTheRun(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	r := newTestRun(t, dev, synthOptions(t.TempDir(), 3))
	trainEpoch(t, r)
	st, groups, err := loadCheckpoint(r.ckpt)
	if err != nil {
		t.Fatal(err)
	}
	m1, m2, step, _ := r.ts.Moments()
	avg, _ := r.avg.host()
	if !reflect.DeepEqual(st, r.st) || st.Step != step || st.Epoch != 1 || len(st.History) != 1 {
		t.Errorf("checkpoint state %+v, the run's %+v", st, r.st)
	}
	for name, want := range map[string][]float32{"parameters": host(t, dev, r.m.Flat()), "Adam m": m1, "Adam v": m2, "average": avg} {
		got := groups[map[string]string{"parameters": groupParams, "Adam m": groupAdamM, "Adam v": groupAdamV, "average": groupEMA}[name]]
		if !slices.Equal(got, want) {
			t.Errorf("checkpoint %s differ from the run's", name)
		}
	}
	if _, err := os.Stat(filepath.Join(r.o.Out, CurvesCSV)); err == nil {
		t.Error("the checkpoint step wrote the curves; that is report's job")
	}
}

// TestEpochOrderShufflesEachEpoch: an epoch's batches cover every caption
// once in batches of at most batch_size; the order is the same for the same
// (seed, epoch), so a resumed run repeats it, and another for the next epoch
// or another seed.
func TestEpochOrderShufflesEachEpoch(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 3)
	r := newTestRun(t, dev, o)
	n := len(r.tf.ex)
	for epoch := 1; epoch <= 3; epoch++ {
		seen := make([]int, n)
		for _, b := range r.obj.batches(epoch) {
			if len(b) == 0 || len(b) > o.BatchSize {
				t.Errorf("epoch %d: a batch of %d captions, batch_size %d", epoch, len(b), o.BatchSize)
			}
			for _, i := range b {
				seen[i]++
			}
		}
		for i, c := range seen {
			if c != 1 {
				t.Errorf("epoch %d: caption %d trained on %d times, want once", epoch, i, c)
			}
		}
		if want := (n + o.BatchSize - 1) / o.BatchSize; len(r.obj.batches(epoch)) != want {
			t.Errorf("epoch %d: %d batches of %d captions, want %d", epoch, len(r.obj.batches(epoch)), n, want)
		}
	}
	if !reflect.DeepEqual(r.obj.batches(2), r.obj.batches(2)) {
		t.Error("epoch 2's batches differ between two calls: a resumed run would train on another order")
	}
	if reflect.DeepEqual(r.obj.batches(1), r.obj.batches(2)) {
		t.Error("epochs 1 and 2 train on the same batches in the same order: the data is not reshuffled each epoch")
	}
	o.Seed++
	if reflect.DeepEqual(newTestRun(t, dev, o).obj.batches(1), r.obj.batches(1)) {
		t.Error("seeds 5 and 6 give epoch 1 the same batches")
	}
}

// TestRunAveragesWithTheStepsRamp: each optimiser step folds the parameters
// into the weight average with the decay of the steps taken so far,
// min(ema, (1+steps)/(10+steps)), so the early average ramps from the
// initial weights towards train.ema's smoothing.
func TestRunAveragesWithTheStepsRamp(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 3)
	o.BatchSize = 96 // all 96 captions of newTestRun's split: one step per epoch
	r := newTestRun(t, dev, o)
	if n := len(r.obj.batches(1)); n != 1 {
		t.Fatalf("%d batches per epoch, the test wants 1", n)
	}
	prev := host(t, dev, r.m.Flat()) // the average starts at the initial weights
	for step := 1; step <= 2; step++ {
		if _, err := r.epoch(context.Background()); err != nil {
			t.Fatal(err)
		}
		params := host(t, dev, r.m.Flat())
		got, err := r.avg.host()
		if err != nil {
			t.Fatal(err)
		}
		d := min(o.EMA, float64(1+step)/float64(10+step))
		bad := 0
		for i := range got {
			want := d*float64(prev[i]) + (1-d)*float64(params[i])
			if diff := float64(got[i]) - want; diff > 1e-5 || diff < -1e-5 {
				bad++
			}
		}
		if bad > 0 {
			t.Fatalf("after step %d: %d of %d averaged weights are not %.4f·average + %.4f·parameters", step, bad, len(got), d, 1-d)
		}
		prev = got
	}
}

// TestEncoderCheckpointsByName: the encoder checkpoints a run removes are its
// own folder's, by exact name, even where --out has characters a glob reads
// as a pattern ("exp[1]" matched a folder "exp1", another run's).
func TestEncoderCheckpointsByName(t *testing.T) {
	for name, want := range map[string]bool{
		"encoder-checkpoint-3.safetensors": true, "encoder-checkpoint-12.safetensors": true,
		"encoder-checkpoint-03.safetensors": false, "encoder-checkpoint-3.safetensors.tmp1": false,
		"encoder-checkpoint-.safetensors": false, "checkpoint.safetensors": false, "encoder.safetensors": false,
	} {
		if got := isEncoderCheckpoint(name); got != want {
			t.Errorf("isEncoderCheckpoint(%q) = %v, want %v", name, got, want)
		}
	}
	root := t.TempDir()
	mine, other := filepath.Join(root, "exp[1]"), filepath.Join(root, "exp1")
	for _, f := range []string{filepath.Join(mine, "encoder-checkpoint-1.safetensors"), filepath.Join(mine, "encoder-checkpoint-2.safetensors"),
		filepath.Join(mine, "notes.txt"), filepath.Join(other, "encoder-checkpoint-1.safetensors")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeEncoderCheckpoints(mine, 2); err != nil {
		t.Fatal(err)
	}
	for f, kept := range map[string]bool{filepath.Join(mine, "encoder-checkpoint-1.safetensors"): false, filepath.Join(mine, "encoder-checkpoint-2.safetensors"): true,
		filepath.Join(mine, "notes.txt"): true, filepath.Join(other, "encoder-checkpoint-1.safetensors"): true} {
		if _, err := os.Stat(f); (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", f, err == nil, kept)
		}
	}
}

// TestResumeGuardsWhatAnOlderCheckpointLacked: a checkpoint from before the
// dev captions' digest was kept resumes, and the run's next checkpoint has
// it, so a later resume with other dev captions is refused.
func TestResumeGuardsWhatAnOlderCheckpointLacked(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 3)
	a := newTestRun(t, dev, o)
	a.st.DevCaptions = "" // as saved before it was kept
	trainEpoch(t, a)
	o.Resume = true
	b := newTestRun(t, dev, o)
	if err := b.resume(); err != nil {
		t.Fatal(err)
	}
	if b.st.DevCaptions == "" || b.st.DevCaptions != devDigest(b.dv) {
		t.Errorf("resumed state's dev captions digest %q, want this run's", b.st.DevCaptions)
	}
}

// epochOrder sorts by length within chunks of bucketChunk batches of the
// epoch's permutation, not across the whole epoch: each batch's captions come
// from one chunk, and a chunk's batches, put back in order, ascend in length.
func TestEpochOrderBucketsWithinChunks(t *testing.T) {
	const batch, n = 2, 4 * 2 * bucketChunk
	r := rand.New(rand.NewPCG(3, 4))
	examples := make([]Example, n)
	for i := range examples {
		examples[i].Words = make([]int32, 1+r.IntN(30))
	}
	const seed, epoch = 5, 2
	// The epoch's permutation, as epochOrder draws it first.
	perm := rand.New(rand.NewPCG(seed, epoch+1)).Perm(n)
	chunkOf := make([]int, n)
	for at, i := range perm {
		chunkOf[i] = at / (batch * bucketChunk)
	}
	byChunk := map[int][][]int{}
	for _, b := range epochOrder(examples, batch, seed, epoch) {
		c := chunkOf[b[0]]
		for _, i := range b {
			if chunkOf[i] != c {
				t.Fatalf("batch %v mixes chunks %d and %d", b, c, chunkOf[i])
			}
		}
		byChunk[c] = append(byChunk[c], b)
	}
	if len(byChunk) != 4 {
		t.Fatalf("%d chunks, want 4", len(byChunk))
	}
	for c, bs := range byChunk {
		length := func(b []int, k int) int { return len(examples[b[min(k, len(b)-1)]].Words) }
		slices.SortFunc(bs, func(a, b []int) int { return cmp.Or(length(a, 0)-length(b, 0), length(a, 1)-length(b, 1)) })
		var lens []int
		for _, b := range bs {
			for _, i := range b {
				lens = append(lens, len(examples[i].Words))
			}
		}
		if !slices.IsSorted(lens) {
			t.Errorf("chunk %d: its batches' lengths %v do not ascend", c, lens)
		}
	}
}
