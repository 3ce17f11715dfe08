package train

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu/cpu"
	"github.com/captioner/captioner/text"
)

func TestMirroringApply(t *testing.T) {
	m := &mirroring{offset: 100, words: map[int32]int32{7: 8, 8: 7}, seed: 5}
	ex := []Example{{Image: 3, Words: []int32{7, 9, 8}}, {Image: 4, Words: []int32{9}}}
	var idx []int
	for range 500 {
		idx = append(idx, 0, 1)
	}
	bt := makeBatch(ex, idx, text.StartID, text.EndID, text.PadID)
	plain := makeBatch(ex, idx, text.StartID, text.EndID, text.PadID)
	m.apply(&bt, 12)
	flips := m.flips(12, bt.B)
	nflip := 0
	for b, f := range flips {
		col := func(bt Batch, rows []int32) []int32 {
			c := make([]int32, bt.T)
			for t := range c {
				c[t] = rows[t*bt.B+b]
			}
			return c
		}
		ids, targets := col(bt, bt.IDs), col(bt, bt.Targets)
		if !f {
			if bt.Images[b] != plain.Images[b] || !slices.Equal(ids, col(plain, plain.IDs)) || !slices.Equal(targets, col(plain, plain.Targets)) {
				t.Fatalf("caption %d is not flipped but changed: image %d, ids %v, targets %v", b, bt.Images[b], ids, targets)
			}
			continue
		}
		nflip++
		wantIDs, wantTargets := []int32{text.StartID, 9, text.PadID, text.PadID}, []int32{9, text.EndID, -1, -1}
		wantImage := int32(104)
		if idx[b] == 0 {
			wantIDs, wantTargets, wantImage = []int32{text.StartID, 8, 9, 7}, []int32{8, 9, 7, text.EndID}, 103
		}
		if bt.Images[b] != wantImage || !slices.Equal(ids, wantIDs) || !slices.Equal(targets, wantTargets) {
			t.Fatalf("flipped caption %d: image %d, ids %v, targets %v; want %d, %v, %v", b, bt.Images[b], ids, targets, wantImage, wantIDs, wantTargets)
		}
	}
	if nflip < 430 || nflip > 570 {
		t.Errorf("%d of 1000 captions flipped; want about half", nflip)
	}
	if !slices.Equal(m.flips(12, 1000), flips) || slices.Equal(m.flips(13, 1000), flips) {
		t.Error("the flips of a step must depend on (seed, step) alone and change from step to step")
	}
}

// mirrorSplit gives s (a synthSplit) its mirrored photos: their features carry
// the class code in the other half of the feature vector (a flipped photo's
// features are not the photo's), and every word swaps with a neighbour (w0 <->
// w1, ...), so that a mirrored photo's captions share no word with the photo's.
func mirrorSplit(s *Split, v synthVocab) {
	const F, classes = 12, 6
	s.Mirrored = make([]float32, len(s.Feats))
	for i := 0; i < s.Images(); i++ {
		for f := 0; f < F; f++ {
			s.Mirrored[i*F+f] = s.Feats[i*F+(f+classes)%F]
		}
	}
	s.MirrorWords = map[int32]int32{}
	for w := int32(4); w+1 < int32(v.Size()); w += 2 {
		s.MirrorWords[w], s.MirrorWords[w+1] = w+1, w
	}
}

// mirroredDev is the dev split of s's mirrored photos: their features, and
// references with the words swapped.
func mirroredDev(s *Split, v synthVocab) *Split {
	m := &Split{Feats: s.Mirrored}
	for _, e := range s.Examples {
		w := make([]int32, len(e.Words))
		for i, id := range e.Words {
			w[i] = s.MirrorWords[id]
		}
		m.Examples = append(m.Examples, Example{Image: e.Image, Words: w})
	}
	for _, refs := range s.Refs {
		var mr [][]string
		for _, r := range refs {
			var words []string
			for _, word := range r {
				words = append(words, v.Word(int(s.MirrorWords[int32(v.ID(word))])))
			}
			mr = append(mr, words)
		}
		m.Refs = append(m.Refs, mr)
	}
	return m
}

// TestMirrorTrainsOnMirroredPhotos: with train.mirror a model learns the
// mirrored photos' captions (their own features, their swapped words) beside
// the photos'; without it, it cannot caption them. Self-critical training with
// train.mirror judges a mirrored photo's samples against the swapped
// references: its reward starts as high as the model is good.
func TestMirrorTrainsOnMirroredPhotos(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	var log bytes.Buffer
	v := synthOptions("", 1).Vocab.(synthVocab)
	trn, dv := synthSplit(120, 1, v), synthSplit(30, 2, v)
	mirrorSplit(trn, v)
	mirrorSplit(dv, v)
	mdv := mirroredDev(dv, v)

	plain := synthOptions(t.TempDir(), 12)
	plain.Log = &log
	plainTrn := *trn
	plainTrn.Mirrored, plainTrn.MirrorWords = nil, nil
	off, err := Run(context.Background(), dev, plain, &plainTrn, mdv)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	mirrored := synthOptions(t.TempDir(), 24)
	mirrored.Log, mirrored.Mirror = &log, true
	on, err := Run(context.Background(), dev, mirrored, trn, mdv)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("dev exact match on the mirrored photos: %.2f trained with train.mirror, %.2f without", on.Best.BLEU[3], off.Best.BLEU[3])
	if on.Best.BLEU[3] < 0.6 || off.Best.BLEU[3] > 0.2 {
		t.Errorf("dev exact match on the mirrored photos: %.2f trained with train.mirror (want >= 0.6), %.2f without (want <= 0.2)", on.Best.BLEU[3], off.Best.BLEU[3])
	}

	// One self-critical epoch from that model, with and without train.mirror:
	// the model captions both kinds of photo, so the samples' rewards are alike
	// when mirrored photos' samples are judged against swapped references (and
	// would be about half without the swap).
	reward := func(mirror bool) float64 {
		sc := synthOptions(t.TempDir(), 1)
		sc.Log, sc.Mirror = &log, mirror
		sc.Objective, sc.Init, sc.Samples, sc.LR, sc.EMA = "cider", on.ModelDir, 4, 0.005, 0
		split := trn
		if !mirror {
			split = &plainTrn
		}
		res, err := Run(context.Background(), dev, sc, split, dv)
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		return res.History[0].TrainReward
	}
	withMirror, without := reward(true), reward(false)
	// And the mirrored photos are read: with noise in their place, the
	// samples of the flipped half score far lower.
	photos := trn.Mirrored
	trn.Mirrored = make([]float32, len(photos))
	for i := range trn.Mirrored {
		trn.Mirrored[i] = float32(i%7) * 0.1
	}
	withNoise := reward(true)
	trn.Mirrored = photos
	t.Logf("self-critical sample CIDEr-D: %.3f with train.mirror, %.3f without, %.3f with noise for the mirrored photos", withMirror, without, withNoise)
	if withMirror < 0.8*without || withNoise > 0.8*without {
		t.Errorf("self-critical sample CIDEr-D %.3f with train.mirror, %.3f without, %.3f with noise for the mirrored photos; want the first two alike and the third lower", withMirror, without, withNoise)
	}
}

// TestMirrorNeedsMirroredFeatures: train.mirror and the split's mirrored
// features come together, laid out as the photos'.
func TestMirrorNeedsMirroredFeatures(t *testing.T) {
	dev := cpu.New(1)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 1)
	v := o.Vocab.(synthVocab)
	trn, dv := synthSplit(12, 1, v), synthSplit(6, 2, v)
	o.Mirror = true
	if _, err := newRun(dev, o, trn, dv); err == nil || err.Error() != "train: train.mirror needs the mirrored photos' features laid out as the photos' (144 values), the split has 0 values; load them from extract --mirror's store" {
		t.Errorf("train.mirror without mirrored features: %v", err)
	}
	mirrorSplit(trn, v)
	trn.Mirrored = trn.Mirrored[:12]
	if _, err := newRun(dev, o, trn, dv); err == nil || !strings.HasSuffix(err.Error(), "(144 values), the split has 12 values; load them from extract --mirror's store") {
		t.Errorf("train.mirror with too few mirrored features: %v", err)
	}
	mirrorSplit(trn, v)
	o.FinetuneBlocks = 1
	if _, err := newRun(dev, o, trn, dv); err == nil || err.Error() != "train: train.mirror with train.finetune_blocks 1; mirrored photos come from extract --mirror's cached features, which a fine-tuned encoder does not read: set one of them off" {
		t.Errorf("train.mirror with fine-tuning: %v", err)
	}
	o.FinetuneBlocks, o.Mirror = 0, false
	if _, err := newRun(dev, o, trn, dv); err == nil || err.Error() != "train: the split has mirrored photos' features but train.mirror is off; set train.mirror, or leave Split.Mirrored empty" {
		t.Errorf("mirrored features without train.mirror: %v", err)
	}
	// The mirrored rows follow the photos' on the device.
	o.Mirror = true
	r, err := newRun(dev, o, trn, dv)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if got := host(t, dev, r.trainFeats); !slices.Equal(got, append(slices.Clone(trn.Feats), trn.Mirrored...)) {
		t.Error("the training features on the device are not the photos' followed by the mirrored photos'")
	}
}
