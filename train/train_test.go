package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/captioner/captioner/config"
	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/encoder"
	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/internal/dirlock"
	"github.com/captioner/captioner/pipeline"
	"github.com/captioner/captioner/safetensors"
	"github.com/captioner/captioner/text"
)

// synthVocab is a vocabulary of w0..wN plus the special tokens at 0..3.
type synthVocab struct{ n int }

func (v synthVocab) Size() int { return v.n + 4 }

// Save writes the words, one a line: the run writes its vocabulary beside
// its models.
func (v synthVocab) Save(path string) error {
	words := make([]string, v.Size())
	for i := range words {
		words[i] = v.Word(i)
	}
	return os.WriteFile(path, []byte(strings.Join(words, "\n")+"\n"), 0o644)
}
func (v synthVocab) Word(id int) string {
	if id < 4 {
		return [...]string{"<pad>", "<start>", "<end>", "<unk>"}[id]
	}
	return fmt.Sprintf("w%d", id-4)
}

func (v synthVocab) Words(ids []int32) []string {
	ws := make([]string, len(ids))
	for i, id := range ids {
		ws[i] = v.Word(int(id))
	}
	return ws
}

func (v synthVocab) ID(word string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(word, "w"))
	if !strings.HasPrefix(word, "w") || err != nil || n < 0 || n >= v.n {
		return text.UnkID
	}
	return n + 4
}

// synthSplit makes images of 6 classes whose features are a noisy class code;
// each class has its own 3..6-word caption, each image 2 captions (the second
// one word shorter), so a model that reads the image can reach BLEU 1.
func synthSplit(images int, seed uint64, v synthVocab) *Split {
	const F, classes = 12, 6
	rng := rand.New(rand.NewPCG(seed, 3))
	proto := rand.New(rand.NewPCG(99, 99)) // the same class captions in every split
	caps := make([][]int32, classes)
	for c := range caps {
		for range 3 + c%4 {
			caps[c] = append(caps[c], int32(4+proto.IntN(v.n)))
		}
	}
	s := &Split{Feats: make([]float32, images*F)}
	for i := 0; i < images; i++ {
		c := i % classes
		for f := 0; f < F; f++ {
			s.Feats[i*F+f] = float32(rng.NormFloat64() * 0.3)
		}
		s.Feats[i*F+c] += 2
		var refs [][]string
		for _, words := range [][]int32{caps[c], caps[c][:len(caps[c])-1]} {
			s.Examples = append(s.Examples, Example{Image: i, Words: words})
			var ws []string
			for _, id := range words {
				ws = append(ws, v.Word(int(id)))
			}
			refs = append(refs, ws)
		}
		s.Refs = append(s.Refs, refs)
	}
	return s
}

// exactMatch stands in for BLEU on the synthetic task: the fraction of
// hypotheses equal to one of their references, in all four slots.
func exactMatch(hyps [][]string, refs [][][]string) ([4]float64, [4]int) {
	n := 0
	for i, h := range hyps {
		for _, r := range refs[i] {
			if slices.Equal(h, r) {
				n++
				break
			}
		}
	}
	f := float64(n) / float64(len(hyps))
	return [4]float64{f, f, f, f}, [4]int{n, n, n, n}
}

func synthOptions(out string, epochs int) Options {
	v := synthVocab{n: 14}
	return Options{
		Train: config.Train{Seed: 5, Out: out, Epochs: epochs, BatchSize: 16, LR: 0.01, LRDecay: 0.9,
			Clip: 5, Patience: 100, MaxLen: 10, EMA: 0.9, Embed: 16, Hidden: 16, Mid: 16, Dropout: 0.1, EvalBeam: 1},
		Vocab:  v,
		Decode: decoder.DecodeOptions{Start: text.StartID, End: text.EndID, MaxLen: 10, Beam: 1, Alpha: 0},
		BLEU:   exactMatch,
	}
}

func TestTrainingLearnsSyntheticCaptions(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	out := t.TempDir()
	o := synthOptions(out, 12)
	var log bytes.Buffer
	o.Log = &log
	v := o.Vocab.(synthVocab)
	res, err := Run(context.Background(), dev, o, synthSplit(120, 1, v), synthSplit(30, 2, v))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	first, last := res.History[0], res.History[len(res.History)-1]
	t.Logf("epoch 1: train loss %.3f dev loss %.3f match %.2f; epoch %d: train %.3f dev %.3f match %.2f",
		first.TrainLoss, first.DevLoss, first.BLEU[3], last.Epoch, last.TrainLoss, last.DevLoss, last.BLEU[3])
	if last.DevLoss > first.DevLoss/3 {
		t.Errorf("dev loss fell only from %.3f to %.3f", first.DevLoss, last.DevLoss)
	}
	// The shorter reference is a prefix of the longer one, so greedy decoding
	// matches one of them exactly once the model has learnt the classes.
	if res.Best.BLEU[3] < 0.9 {
		t.Errorf("best dev exact-match %.2f, want >= 0.9", res.Best.BLEU[3])
	}
	for _, f := range []string{CheckpointFile, CurvesCSV, CurvesPNG, CurvesSVG, "model/" + decoder.WeightsFile, "model/" + decoder.ConfigFile,
		"last/" + decoder.WeightsFile, "last/" + decoder.ConfigFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	// Each epoch's bar ends on the loss its summary line gives (the epoch's mean).
	for _, h := range res.History {
		bar := fmt.Sprintf("epoch %d/%d 100%%", h.Epoch, o.Epochs)
		at := strings.LastIndex(log.String(), bar)
		if at < 0 {
			t.Fatalf("no finished bar %q in the log", bar)
		}
		end, _, _ := strings.Cut(log.String()[at:], "\n")
		if want := fmt.Sprintf("loss %.3f", h.TrainLoss); !strings.HasSuffix(end, want) {
			t.Errorf("epoch %d: the bar ends %q, want it to end on the summary's %s", h.Epoch, end, want)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(out, CurvesCSV))
	if n := strings.Count(string(csv), "\n"); n != len(res.History)+1 {
		t.Errorf("curves.csv has %d lines for %d epochs", n, len(res.History))
	}
	// A second run without --resume must refuse to overwrite the checkpoint.
	if _, err := Run(context.Background(), dev, o, synthSplit(12, 1, v), synthSplit(6, 2, v)); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("rerun into the same folder: got %v, want an error telling to pass --resume", err)
	}
}

// finishedRun trains a synthetic run of one epoch on images train images into a
// fresh folder (o.Out) and returns what a test needs to run there again.
func finishedRun(t *testing.T, images int) (dev gpu.Device, o Options, trn, dv *Split) {
	t.Helper()
	dev = cpu.New(1)
	t.Cleanup(func() { dev.Close() })
	o = synthOptions(t.TempDir(), 1)
	o.Log = &bytes.Buffer{}
	v := o.Vocab.(synthVocab)
	trn, dv = synthSplit(images, 1, v), synthSplit(6, 2, v)
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	return dev, o, trn, dv
}

func TestCorruptCheckpointIsRejected(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	path := filepath.Join(o.Out, CheckpointFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0x40 // flip one bit of the last parameter
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Resume = true
	_, err = Run(context.Background(), dev, o, trn, dv)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("resume from a corrupted checkpoint: got %v, want a corrupt-checkpoint error", err)
	}
}

// TestHelperTrain is the child process of TestResumeAfterKill.
func TestHelperTrain(t *testing.T) {
	out := os.Getenv("CAPTIONER_TRAIN_HELPER_OUT")
	if out == "" {
		t.Skip("run by TestResumeAfterKill only")
	}
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(out, 6)
	o.Log = os.Stderr
	o.Resume = os.Getenv("CAPTIONER_TRAIN_HELPER_RESUME") == "1"
	v := o.Vocab.(synthVocab)
	if _, err := Run(context.Background(), dev, o, synthSplit(400, 1, v), synthSplit(30, 2, v)); err != nil {
		t.Fatal(err)
	}
}

func checkpointEpoch(t *testing.T, path string) (int, []float32) {
	st, groups, err := loadCheckpoint(path)
	if err != nil {
		return 0, nil
	}
	return st.Epoch, groups[groupParams]
}

// TestResumeAfterKill trains in a child process, kills it with SIGKILL after
// its second checkpoint, resumes in another child, and checks that the final
// parameters equal those of an uninterrupted run with the same seed, bit for bit.
func TestResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns training processes")
	}
	run := func(out string, resume bool) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTrain$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CAPTIONER_TRAIN_HELPER_OUT="+out)
		if resume {
			cmd.Env = append(cmd.Env, "CAPTIONER_TRAIN_HELPER_RESUME=1")
		}
		return cmd
	}
	full, killed := t.TempDir(), t.TempDir()
	if b, err := run(full, false).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, b)
	}
	_, want := checkpointEpoch(t, filepath.Join(full, CheckpointFile))

	child := run(killed, false)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if ep, _ := checkpointEpoch(t, filepath.Join(killed, CheckpointFile)); ep >= 2 {
			break
		}
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("the child wrote no second checkpoint within 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	ep, _ := checkpointEpoch(t, filepath.Join(killed, CheckpointFile))
	if ep >= 6 {
		t.Fatalf("the child finished before it was killed (epoch %d); the test did not interrupt anything", ep)
	}
	t.Logf("killed after epoch %d checkpoint", ep)
	if b, err := run(killed, true).CombinedOutput(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, b)
	} else if !strings.Contains(string(b), "resuming after epoch") {
		t.Fatalf("the second run did not resume:\n%s", b)
	}
	gotEpoch, got := checkpointEpoch(t, filepath.Join(killed, CheckpointFile))
	if gotEpoch != 6 || !slices.Equal(got, want) {
		diff := 0
		for i := range got {
			if got[i] != want[i] {
				diff++
			}
		}
		t.Fatalf("resumed run ended at epoch %d with %d of %d parameters different from the uninterrupted run", gotEpoch, diff, len(want))
	}
	// The weight average (EMA) was restored too, so both runs selected the same model.
	a, _ := safetensors.ReadFile(filepath.Join(full, "model", decoder.WeightsFile))
	b, _ := safetensors.ReadFile(filepath.Join(killed, "model", decoder.WeightsFile))
	if a == nil || b == nil || safetensors.Checksum(a.Tensors, nil) != safetensors.Checksum(b.Tensors, nil) {
		t.Error("the selected models differ between the resumed and the uninterrupted run")
	}
}

// TestResumeWithLargerPatienceContinues: early stopping is judged against the
// resumed run's patience, so a run stopped with patience 1 continues when
// resumed with a larger one.
func TestResumeWithLargerPatienceContinues(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	out := t.TempDir()
	o := synthOptions(out, 10)
	o.Log = &bytes.Buffer{}
	o.Patience = 1
	// A dev BLEU-4 that never improves: the second epoch is one without progress.
	o.BLEU = func([][]string, [][][]string) ([4]float64, [4]int) {
		return [4]float64{0.5, 0.5, 0.5, 0.5}, [4]int{9, 9, 9, 9}
	}
	v := o.Vocab.(synthVocab)
	trn, dv := synthSplit(60, 1, v), synthSplit(12, 2, v)
	res, err := Run(context.Background(), dev, o, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoppedBy != "patience" || len(res.History) >= 10 {
		t.Fatalf("patience 1 did not stop the run early: %s after %d epochs", res.StoppedBy, len(res.History))
	}
	stopped := len(res.History)
	o.Resume, o.Patience = true, 100
	res, err = Run(context.Background(), dev, o, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.History) != 10 || res.StoppedBy != "epochs" {
		t.Errorf("resumed with patience 100 after stopping at epoch %d: %s after %d epochs, want all 10", stopped, res.StoppedBy, len(res.History))
	}
}

// selfCriticalFrom fine-tunes the model of start with the cider objective under
// options sc and checks that the CIDEr-D of its own samples clearly rises.
func selfCriticalFrom(t *testing.T, dev gpu.Device, sc Options, start *Result, trn, dv *Split) *Result {
	t.Helper()
	sc.Objective, sc.Init, sc.Samples, sc.LR, sc.EMA = "cider", start.ModelDir, 4, 0.005, 0
	res, err := Run(context.Background(), dev, sc, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.History[0], res.History[len(res.History)-1]
	t.Logf("cross-entropy model: dev match %.2f; self-critical: sample CIDEr-D %.3f -> %.3f, best dev match %.2f",
		start.Best.BLEU[3], first.TrainReward, last.TrainReward, res.Best.BLEU[3])
	if !(last.TrainReward > first.TrainReward*1.2) {
		t.Errorf("sample CIDEr-D went from %.3f to %.3f; want a clear rise", first.TrainReward, last.TrainReward)
	}
	return res
}

// TestSelfCriticalRaisesReward fine-tunes a briefly trained model with the cider
// objective: the CIDEr-D of its own samples must rise, and the selected model
// must caption the dev split at least as well as the one it started from.
func TestSelfCriticalRaisesReward(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	var log bytes.Buffer
	xe := synthOptions(t.TempDir(), 2)
	xe.Log = &log
	v := xe.Vocab.(synthVocab)
	trn, dv := synthSplit(120, 1, v), synthSplit(30, 2, v)
	start, err := Run(context.Background(), dev, xe, trn, dv)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}

	sc := synthOptions(t.TempDir(), 6)
	sc.Log = &log
	res := selfCriticalFrom(t, dev, sc, start, trn, dv)
	if res.Best.BLEU[3] < start.Best.BLEU[3] {
		t.Errorf("best dev match %.2f, below the starting model's %.2f", res.Best.BLEU[3], start.Best.BLEU[3])
	}
	csv, _ := os.ReadFile(filepath.Join(sc.Out, CurvesCSV))
	if !strings.Contains(string(csv), "train_reward") {
		t.Errorf("curves.csv lacks the train_reward column:\n%s", csv)
	}

	// A model of another architecture cannot be the starting point.
	bad := synthOptions(t.TempDir(), 1)
	bad.Log, bad.Objective, bad.Init, bad.Samples, bad.Hidden = &log, "cider", start.ModelDir, 4, 8
	want := "train.init: " + start.ModelDir + " is another network than this run asks for: hidden 16 -> 8 (the model's -> this run's); captioner train takes train.arch, embed, hidden, mid and att from the model where they are not set: unset those that differ, or set them as its config.json has them (feat_dim and regions follow the features: captioner extract, --grid for attention), or train from scratch without train.init"
	if _, err := Run(context.Background(), dev, bad, trn, dv); err == nil || err.Error() != want {
		t.Errorf("init from another architecture: got %v, want %s", err, want)
	}
}

// TestRefusedRunLeavesTheModel: a run that resume refuses (a checkpoint in
// --out without --resume) writes nothing: the finished run's vocabulary is as
// it was, where it used to be overwritten before the refusal.
func TestRefusedRunLeavesTheModel(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	vocabPath := filepath.Join(ModelDir(o.Out), pipeline.VocabFile)
	before, err := os.ReadFile(vocabPath)
	if err != nil {
		t.Fatalf("the run wrote no vocabulary beside its model: %v", err)
	}
	o.Vocab = synthVocab{n: 20}
	if _, err := Run(context.Background(), dev, o, trn, dv); err == nil || !strings.Contains(err.Error(), "already holds a checkpoint") {
		t.Fatalf("a second run into the same --out: %v, want it refused", err)
	}
	if after, _ := os.ReadFile(vocabPath); !bytes.Equal(before, after) {
		t.Errorf("the refused run rewrote %s", vocabPath)
	}
}

// TestResumeKeepsTheRunsSettings: resuming with another batch size or
// evaluation beam is refused, naming them; another learning rate is taken,
// and said.
func TestResumeKeepsTheRunsSettings(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	o.Resume, o.Epochs = true, 2
	other := o
	other.BatchSize, other.EvalBeam = 8, 2
	if _, err := Run(context.Background(), dev, other, trn, dv); err == nil || !strings.Contains(err.Error(), "other settings than this run asks for: train.batch_size 16 -> 8; train.eval_beam 1 -> 2 (the checkpoint's -> this run's);") {
		t.Errorf("resume with another batch size and eval beam: %v, want both named", err)
	}
	if _, err := Run(context.Background(), dev, o, synthSplit(24, 3, o.Vocab.(synthVocab)), dv); err == nil || !strings.Contains(err.Error(), "the features (train.features") {
		t.Errorf("resume on other features: %v, want it refused", err)
	}
	// Other dev captions, the photos the same: by a word the vocabulary has
	// (the dev loss's ids), and by one it lacks (BLEU's references alone).
	for _, edit := range []func(*Split){
		func(d *Split) { d.Examples[0].Words = append(slices.Clone(d.Examples[0].Words), 5) },
		func(d *Split) { d.Refs[0][0] = append(slices.Clone(d.Refs[0][0]), "zebra") },
	} {
		other := *dv
		other.Examples, other.Refs = slices.Clone(dv.Examples), slices.Clone(dv.Refs)
		other.Refs[0] = slices.Clone(dv.Refs[0])
		edit(&other)
		want := "train: checkpoint " + filepath.Join(o.Out, CheckpointFile) + " was made with other dev captions than this run's, and its best epoch was judged on those; use the same dev split, or another --out"
		if _, err := Run(context.Background(), dev, o, trn, &other); err == nil || err.Error() != want {
			t.Errorf("resume with other dev captions: %v, want %q", err, want)
		}
	}
	var log bytes.Buffer
	o.Log, o.LR = &log, 0.005
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatalf("resume with another learning rate: %v", err)
	}
	if !strings.Contains(log.String(), "resuming with train.lr 0.01 -> 0.005") {
		t.Errorf("the log does not say the learning rate changed:\n%s", log.String())
	}
}

// TestFrozenRunRemovesStaleTunedEncoder: a run without fine-tuning whose
// model folders hold tuned encoder layers (copied in, or a run's before its
// checkpoint was replaced) removes them when it writes them, here on resuming
// (which writes last/ again), or its decoder would caption through layers it
// was not trained on. So goes the scores.json of the weights replaced (eval
// --save-scores wrote it), which serve reported for the new weights.
func TestFrozenRunRemovesStaleTunedEncoder(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	stale := []string{filepath.Join(LastDir(o.Out), encoder.TunedFile), filepath.Join(LastDir(o.Out), pipeline.ScoresFile)}
	for _, f := range stale {
		if err := os.WriteFile(f, []byte("an earlier run's"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o.Resume = true
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the run wrote its folder again (%v)", f, err)
		}
	}
	// Weights that cannot be replaced keep their scores: the run stops
	// before it removes them.
	scores, weights := stale[1], filepath.Join(LastDir(o.Out), decoder.WeightsFile)
	os.WriteFile(scores, []byte(`{"bleu4": 0.1}`), 0o644)
	if err := os.Chmod(weights, 0o444); err != nil {
		t.Fatal(err)
	}
	o.Epochs++
	if _, err := Run(context.Background(), dev, o, trn, dv); err == nil || !strings.Contains(err.Error(), "is read-only") {
		t.Errorf("a run whose weights are read-only: %v", err)
	}
	if _, err := os.Stat(scores); err != nil {
		t.Errorf("the refused save removed the weights' scores: %v", err)
	}
}

// TestNewRunNeedsAnEmptyOut: a new run, or --resume finding no checkpoint,
// refuses a folder that holds files but no checkpoint (a run whose checkpoint
// was deleted, a model folder), and a folder another run is writing; the temporaries of a run
// killed while writing its checkpoint are removed.
func TestNewRunNeedsAnEmptyOut(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	if err := os.Remove(filepath.Join(o.Out, CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), dev, o, trn, dv)
	want := "train: " + o.Out + " holds curves.csv, curves.png, curves.svg, last, model but no checkpoint, and a new run would overwrite what is there; choose an empty or new --out (a run stopped before its first checkpoint starts afresh with --resume)"
	if err == nil || err.Error() != want {
		t.Errorf("a new run into a used folder: %v, want %q", err, want)
	}
	// --resume finds no checkpoint to continue: the same refusal, where it
	// had started a new run over the folder.
	o.Resume = true
	if _, err := Run(context.Background(), dev, o, trn, dv); err == nil || err.Error() != want {
		t.Errorf("--resume into a used folder without a checkpoint: %v, want %q", err, want)
	}
	o.Resume = false
	// The refused run let go of the folder's lock.
	if l, err := dirlock.Lock(o.Out); err != nil {
		t.Errorf("after a refused run: %v", err)
	} else {
		l.Close()
	}

	o.Out = t.TempDir()
	held, err := dirlock.Lock(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), dev, o, trn, dv)
	if want := "train: " + o.Out + " is in use by another training run; wait for it to end, or choose another --out"; err == nil || err.Error() != want {
		t.Errorf("a run into a folder another holds: %v, want %q", err, want)
	}
	held.Close()

	stale := filepath.Join(o.Out, CheckpointFile+".tmp123456")
	if err := os.WriteFile(stale, []byte("half a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Resume = true // the folder holds no checkpoint: a new run
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there after the run (%v)", stale, err)
	}

	// A run stopped before its first checkpoint left only its vocabularies:
	// the same command starts it again.
	o.Out, o.Resume = t.TempDir(), false
	for _, dir := range []string{ModelDir(o.Out), LastDir(o.Out)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, pipeline.VocabFile), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A fine-tuning run killed between its first encoder checkpoint and its
	// checkpoint left the former too: no run's.
	orphan := encoderCheckpoint(o.Out, 1)
	if err := os.WriteFile(orphan, []byte("half a run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Errorf("a new run into a folder of a run stopped before its first checkpoint: %v", err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", orphan, err)
	}
}

// TestDivergingStepIsNotTaken: a learning rate that blows the weights up
// stops the run at the first step whose gradients are not finite, before
// its update, and leaves the last epoch's checkpoint as it was.
func TestDivergingStepIsNotTaken(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 48)
	ckpt := filepath.Join(o.Out, CheckpointFile)
	before, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	o.Resume, o.Epochs, o.LR, o.Clip = true, 2, 1e30, 0
	_, err = Run(context.Background(), dev, o, trn, dv)
	if !errors.Is(err, gpu.ErrDiverged) || !strings.Contains(err.Error(), "the step was not taken, and the checkpoint of epoch 1 is intact") {
		t.Fatalf("a learning rate of 1e30: %v, want the run stopped at a diverging step", err)
	}
	if after, _ := os.ReadFile(ckpt); !bytes.Equal(before, after) {
		t.Error("the diverged run changed the checkpoint")
	}
	// A new run that diverges in its first epoch has no checkpoint to resume.
	o.Resume, o.Epochs, o.Out = false, 1, t.TempDir()
	_, err = Run(context.Background(), dev, o, trn, dv)
	if !errors.Is(err, gpu.ErrDiverged) || !strings.Contains(err.Error(), "the step was not taken, and no epoch had finished, so there is no checkpoint: lower train.lr (or set train.clip) and run again; if the first steps diverge") {
		t.Errorf("a new run at a learning rate of 1e30: %v, want it told there is no checkpoint", err)
	}
}

// TestRunKeepsTheBestEpochsModel: model/ holds the best epoch's weights, not
// the last epoch's, across later, worse epochs (of a resumed run too), while
// last/ follows the last epoch.
func TestRunKeepsTheBestEpochsModel(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 1)
	o.Log = &bytes.Buffer{}
	scores := []float64{0.5, 0.4, 0.3}
	calls := 0
	o.BLEU = func([][]string, [][][]string) ([4]float64, [4]int) { // dev BLEU-4 falls after epoch 1
		s := scores[min(calls, len(scores)-1)]
		calls++
		return [4]float64{s, s, s, s}, [4]int{9, 9, 9, 9}
	}
	v := o.Vocab.(synthVocab)
	trn, dv := synthSplit(48, 1, v), synthSplit(12, 2, v)
	weights := func(dir string) string {
		f, err := safetensors.ReadFile(filepath.Join(dir, decoder.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return safetensors.Checksum(f.Tensors, nil)
	}
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	best := weights(ModelDir(o.Out))
	o.Resume, o.Epochs = true, 3
	res, err := Run(context.Background(), dev, o, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	if res.Best.Epoch != 1 || len(res.History) != 3 {
		t.Fatalf("best epoch %d of %d; want 1 of 3", res.Best.Epoch, len(res.History))
	}
	if got := weights(ModelDir(o.Out)); got != best {
		t.Error("model/ does not hold epoch 1's weights after two worse epochs: a worse epoch overwrote the best model")
	}
	if weights(LastDir(o.Out)) == best {
		t.Error("last/ still holds epoch 1's weights after epoch 3")
	}
}

// TestResumeWritesWhatAKilledRunHadNot: an epoch ends with its checkpoint,
// then model/, last/ and the curves; a run killed between them (here, model/
// and last/ put back to the epoch before, the curves removed) gets them from
// the checkpoint on resuming, even with no epoch left to run. Before, model/
// was written first, and a kill before the checkpoint left model/ an epoch
// ahead of it.
func TestResumeWritesWhatAKilledRunHadNot(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	weights := func(dir string) string {
		f, err := safetensors.ReadFile(filepath.Join(dir, decoder.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return safetensors.Checksum(f.Tensors, nil)
	}
	before := t.TempDir()
	for _, dir := range []string{ModelDir(o.Out), LastDir(o.Out)} {
		if err := os.CopyFS(filepath.Join(before, filepath.Base(dir)), os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
	}
	o.Resume, o.Epochs = true, 2
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil { // epoch 2, the best (the synthetic data is learnt)
		t.Fatal(err)
	}
	want := weights(ModelDir(o.Out))
	if want != weights(LastDir(o.Out)) || want == weights(filepath.Join(before, "model")) {
		t.Fatal("epoch 2 is not the best epoch, or changed nothing: the test needs it to be")
	}
	// The kill: epoch 2's checkpoint is written, its model folders and curves not.
	for _, dir := range []string{ModelDir(o.Out), LastDir(o.Out)} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(dir, os.DirFS(filepath.Join(before, filepath.Base(dir)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(o.Out, "curves.csv")); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	if weights(ModelDir(o.Out)) != want || weights(LastDir(o.Out)) != want {
		t.Error("after resuming, model/ and last/ are not epoch 2's, which the checkpoint says was trained and best")
	}
	if b, err := os.ReadFile(filepath.Join(o.Out, "curves.csv")); err != nil || strings.Count(string(b), "\n") != 3 {
		t.Errorf("curves.csv after resuming: %v\n%s; want a header and 2 epochs", err, b)
	}
}

// TestBuffersFitTheCaptions: the training buffers are as long as the longest
// caption, not train.max_len: at 5000 they ran a 2-core machine out of memory
// for captions of 30 words (here 2^40 would not fit any).
func TestBuffersFitTheCaptions(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 1)
	o.Log, o.MaxLen = &bytes.Buffer{}, 1<<40
	v := o.Vocab.(synthVocab)
	if _, err := Run(context.Background(), dev, o, synthSplit(24, 1, v), synthSplit(6, 2, v)); err != nil {
		t.Fatal(err)
	}
}

// TestNewRunRefusesAFolderWithOneEntry: one file or folder that is not a
// run's scaffolding (here the model folder of a run whose other files were
// deleted) is enough for a new run to refuse the folder.
func TestNewRunRefusesAFolderWithOneEntry(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	entries, err := os.ReadDir(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(ModelDir(o.Out)) && e.Name() != dirlock.File {
			if err := os.RemoveAll(filepath.Join(o.Out, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	model, err := os.ReadFile(filepath.Join(ModelDir(o.Out), decoder.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), dev, o, trn, dv)
	if err == nil || !strings.Contains(err.Error(), " holds model but no checkpoint") {
		t.Errorf("a new run into a folder holding a trained model alone: %v, want it refused", err)
	}
	if after, _ := os.ReadFile(filepath.Join(ModelDir(o.Out), decoder.WeightsFile)); !bytes.Equal(after, model) {
		t.Error("the refused run changed the model")
	}
}

// TestResumeRecordsTheNewRates: a run resumed with another learning rate
// records it in its checkpoint, so resuming that run again with the same rate
// changes nothing and says nothing of it.
func TestResumeRecordsTheNewRates(t *testing.T) {
	dev, o, trn, dv := finishedRun(t, 24)
	o.Resume, o.Epochs, o.LR = true, 2, 0.005
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	st, _, err := loadCheckpoint(filepath.Join(o.Out, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Rates == nil || st.Rates.LR != 0.005 {
		t.Errorf("checkpoint after resuming with train.lr 0.005 records rates %+v", st.Rates)
	}
	var log bytes.Buffer
	o.Log, o.Epochs = &log, 3
	if _, err := Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "resuming with train.lr") {
		t.Errorf("the second resume with the same rate reports a change:\n%s", log.String())
	}
}

// TestResumeChecksEverySetting: each setting a resumed run must keep is
// recorded, so changing it alone is named (and resume refuses it); the
// self-critical settings count under the cider objective only.
func TestResumeChecksEverySetting(t *testing.T) {
	v := synthVocab{n: 14}
	trn, dv := synthSplit(24, 1, v), synthSplit(6, 2, v)
	xe := synthOptions(t.TempDir(), 1)
	cider := xe
	cider.Objective, cider.Samples, cider.XEWeight = "cider", 4, 0.1
	for _, c := range []struct {
		key    string
		base   Options
		change func(*Options)
	}{
		{"batch_size", xe, func(o *Options) { o.BatchSize = 8 }},
		{"max_len", xe, func(o *Options) { o.MaxLen = 5 }},
		{"feature_dropout", xe, func(o *Options) { o.FeatureDropout = 0.2 }},
		{"eval_beam", xe, func(o *Options) { o.EvalBeam = 2 }},
		{"ema", xe, func(o *Options) { o.EMA = 0.99 }},
		{"samples", cider, func(o *Options) { o.Samples = 2 }},
		{"xe_weight", cider, func(o *Options) { o.XEWeight = 0.2 }},
	} {
		o := c.base
		c.change(&o)
		got := changes(settingsOf(c.base, trn, dv), settingsOf(o, trn, dv))
		if len(got) != 1 || !strings.HasPrefix(got[0], "train."+c.key+" ") {
			t.Errorf("changing train.%s alone: changes %q, want it named", c.key, got)
		}
	}
	o := xe
	o.Samples, o.XEWeight = 2, 0.2
	if got := changes(settingsOf(xe, trn, dv), settingsOf(o, trn, dv)); len(got) != 0 {
		t.Errorf("objective xe with other cider settings: changes %q, want none", got)
	}
}

// TestResumeOfAStoppedRunStaysStopped: resuming a run that early stopping
// ended, with the same patience, trains no further epoch.
func TestResumeOfAStoppedRunStaysStopped(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 10)
	o.Log = &bytes.Buffer{}
	o.Patience = 1
	o.BLEU = func([][]string, [][][]string) ([4]float64, [4]int) {
		return [4]float64{0.5, 0.5, 0.5, 0.5}, [4]int{9, 9, 9, 9}
	} // never better
	v := o.Vocab.(synthVocab)
	trn, dv := synthSplit(48, 1, v), synthSplit(12, 2, v)
	res, err := Run(context.Background(), dev, o, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoppedBy != "patience" || len(res.History) != 2 {
		t.Fatalf("patience 1 with no progress: %s after %d epochs, want patience after 2", res.StoppedBy, len(res.History))
	}
	o.Resume, o.Epochs = true, 20
	if res, err = Run(context.Background(), dev, o, trn, dv); err != nil {
		t.Fatal(err)
	}
	if res.StoppedBy != "patience" || len(res.History) != 2 {
		t.Errorf("resuming a run stopped by patience 1 with patience 1: %s after %d epochs, want no further epoch", res.StoppedBy, len(res.History))
	}
}
