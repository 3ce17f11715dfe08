package train

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/gpu/cpu"
)

// synthGrids turns a synthetic split into grids of 4 regions: each image's
// class code sits in one region, which one depending on the image, and the
// other regions hold noise, so a decoder must find the region to caption.
func synthGrids(s *Split, seed uint64) *Split {
	const L = 4
	F := len(s.Feats) / s.Images()
	rng := rand.New(rand.NewPCG(seed, 5))
	g := &Split{Examples: s.Examples, Refs: s.Refs, Feats: make([]float32, s.Images()*L*F)}
	for i := 0; i < s.Images(); i++ {
		for j := range g.Feats[i*L*F : (i+1)*L*F] {
			g.Feats[i*L*F+j] = float32(rng.NormFloat64() * 0.3)
		}
		at := (i / 6) % L // the 6 classes cycle faster than the regions
		copy(g.Feats[(i*L+at)*F:(i*L+at+1)*F], s.Feats[i*F:(i+1)*F])
	}
	return g
}

func TestAttentionLearnsSyntheticGrids(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	o := synthOptions(t.TempDir(), 20)
	o.Arch, o.Cleaning, o.Regions, o.Att, o.AttPenalty = decoder.ArchAttention, "standard", 4, 8, 0.5
	var log bytes.Buffer
	o.Log = &log
	v := o.Vocab.(synthVocab)
	res, err := Run(context.Background(), dev, o, synthGrids(synthSplit(120, 1, v), 1), synthGrids(synthSplit(30, 2, v), 2))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	first, last := res.History[0], res.History[len(res.History)-1]
	t.Logf("epoch 1: train loss %.3f dev loss %.3f match %.2f; epoch %d: train %.3f dev %.3f match %.2f",
		first.TrainLoss, first.DevLoss, first.BLEU[3], last.Epoch, last.TrainLoss, last.DevLoss, last.BLEU[3])
	if res.Best.BLEU[3] < 0.9 {
		t.Errorf("best dev exact-match %.2f, want >= 0.9", res.Best.BLEU[3])
	}
	m, err := decoder.Load(dev, res.ModelDir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Cfg.Arch != decoder.ArchAttention || m.Cfg.Cleaning != "standard" || m.Cfg.Regions != 4 {
		t.Errorf("saved model config %+v, want attention over 4 regions with standard cleaning", m.Cfg)
	}
}

// TestAttentionSelfCriticalRaisesReward fine-tunes an attention model trained
// with the penalty by self-critical training, which runs without it.
func TestAttentionSelfCriticalRaisesReward(t *testing.T) {
	dev := cpu.New(2)
	defer dev.Close()
	var log bytes.Buffer
	attention := func(o Options) Options {
		o.Arch, o.Cleaning, o.Regions, o.Att, o.AttPenalty = decoder.ArchAttention, "standard", 4, 8, 0.5
		o.Log = &log
		return o
	}
	xe := attention(synthOptions(t.TempDir(), 3))
	v := xe.Vocab.(synthVocab)
	trn, dv := synthGrids(synthSplit(120, 1, v), 1), synthGrids(synthSplit(30, 2, v), 2)
	start, err := Run(context.Background(), dev, xe, trn, dv)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	selfCriticalFrom(t, dev, attention(synthOptions(t.TempDir(), 6)), start, trn, dv)
}
