package train

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/safetensors"
)

// testState is a checkpoint's host state with every field set.
func testState() *state {
	// A checkpoint holds its config with defaults filled in, as loading returns it.
	cfg := decoder.Config{FeatDim: 4, Embed: 3, Hidden: 2, Mid: 2, Vocab: 6, Dropout: 0.25}.WithDefaults()
	return &state{Config: cfg, Seed: 7, Objective: "xe", Epoch: 3, Step: 42, BestEpoch: 2, BestBLEU4: 0.1202,
		BadEpochs: 1, TrainedFor: 12.5, History: []EpochStats{
			{Epoch: 1, LR: 0.01, TrainLoss: 3.5, DevLoss: 3.25, BLEU: [4]float64{0.5, 0.25, 0.125, 0.0625}, TokensPerSec: 100, Seconds: 4},
			{Epoch: 2, LR: 0.009, TrainLoss: 3, DevLoss: 3.125, BLEU: [4]float64{0.6, 0.3, 0.2, 0.1202}, TokensPerSec: 110, Seconds: 4.25},
			{Epoch: 3, LR: 0.0081, TrainLoss: 2.75, DevLoss: 3.2, BLEU: [4]float64{0.55, 0.28, 0.15, 0.1}, TokensPerSec: 105, Seconds: 4.25},
		}}
}

// testGroups are random tensor groups for st's model, the weight average included
// when ema is set.
func testGroups(st *state, ema bool) map[string][]float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	groups := map[string][]float32{}
	prefixes := []string{groupParams, groupAdamM, groupAdamV}
	if ema {
		prefixes = append(prefixes, groupEMA)
	}
	for _, p := range prefixes {
		g := make([]float32, st.Config.NumParams())
		for i := range g {
			g[i] = rng.Float32()*2 - 1
		}
		groups[p] = g
	}
	return groups
}

func TestCheckpointRoundTrips(t *testing.T) {
	for _, ema := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), CheckpointFile)
		st := testState()
		groups := testGroups(st, ema)
		if err := saveCheckpoint(path, st, groups); err != nil {
			t.Fatal(err)
		}
		gotSt, gotGroups, err := loadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotSt, st) {
			t.Errorf("ema %v: state came back as %+v, saved %+v", ema, gotSt, st)
		}
		if !reflect.DeepEqual(gotGroups, groups) {
			t.Errorf("ema %v: tensor groups differ after the round trip (%d groups saved, %d loaded)", ema, len(groups), len(gotGroups))
		}
	}
	if _, _, err := loadCheckpoint(filepath.Join(t.TempDir(), CheckpointFile)); err != errNoCheckpoint {
		t.Errorf("loading a missing checkpoint: got %v, want errNoCheckpoint", err)
	}
}

// TestCorruptCheckpointFieldIsRefused flips one byte of the saved training state
// (best BLEU-4 0.1202 becomes 0.9202, still valid JSON) and one byte of the
// parameters: both are refused with the same message.
func TestCorruptCheckpointFieldIsRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		at   func(b []byte) int // index of the byte to change
	}{
		{"training state", func(b []byte) int { return bytes.Index(b, []byte(`best_bleu4\":0.1202`)) + len(`best_bleu4\":0.`) }},
		{"parameters", func(b []byte) int { return len(b) - 3 }},
	} {
		path := filepath.Join(t.TempDir(), CheckpointFile)
		st := testState()
		if err := saveCheckpoint(path, st, testGroups(st, true)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := safetensors.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		recorded := f.Metadata[safetensors.ChecksumKey]
		i := c.at(b)
		if c.name == "training state" && b[i] != '1' {
			t.Fatalf("best_bleu4 is not where the test expects it in the file header")
		}
		b[i] ^= 0x08 // '1' -> '9' in the state; one bit of the last parameter
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err = loadCheckpoint(path)
		want := regexp.MustCompile(`^train: checkpoint ` + regexp.QuoteMeta(path) + ` is corrupt: its data hashes to [0-9a-f]{12}…, the file records ` + recorded[:12] + `…; delete it, then run again with --resume to start over$`)
		if err == nil || !want.MatchString(err.Error()) {
			t.Errorf("%s: one byte changed: got %v, want an error matching %s", c.name, err, want)
		}
	}
}

// TestCheckpointBeforeStateChecksumResumes: a checkpoint whose recorded hash covers
// its tensors alone (as written before the state was covered) still loads.
func TestCheckpointBeforeStateChecksumResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), CheckpointFile)
	st := testState()
	groups := testGroups(st, false)
	var ts []safetensors.Tensor
	for _, p := range []string{groupParams, groupAdamM, groupAdamV} {
		ts = append(ts, st.Config.SafeTensors(p, groups[p])...)
	}
	js := `{"config":{"feat_dim":4,"embed":3,"hidden":2,"mid":2,"vocab":6,"dropout":0.25},"seed":7,"epoch":3,"step":42,"best_epoch":2,"best_bleu4":0.1202}`
	// The digest as the old code recorded it, written out: computed here by
	// tensorChecksum, a change to it would pass unseen and refuse every
	// real old checkpoint as corrupt.
	const oldDigest = "9b4e698d6a23d992e4ccdddaa37703ca7d034c953dec5d691568091df1c0456e"
	if err := safetensors.WriteFile(path, ts, map[string]string{"state": js, safetensors.ChecksumKey: oldDigest}); err != nil {
		t.Fatal(err)
	}
	got, gotGroups, err := loadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 3 || got.Step != 42 || got.BestBLEU4 != 0.1202 || got.Objective != "" || !reflect.DeepEqual(gotGroups, groups) {
		t.Errorf("old checkpoint loaded as %+v with %d groups", got, len(gotGroups))
	}
}

// A checkpoint without the optimiser's moments is refused by name: resumed,
// the run would go on with Adam's state at zero without a word. Only the
// weight average (EMA) may be missing, from a run without it.
func TestCheckpointWithoutMomentsIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), CheckpointFile)
	st := testState()
	groups := testGroups(st, false)
	ts := st.Config.SafeTensors(groupParams, groups[groupParams])
	js := `{"config":{"feat_dim":4,"embed":3,"hidden":2,"mid":2,"vocab":6,"dropout":0.25},"seed":7,"epoch":3,"step":42,"best_epoch":2,"best_bleu4":0.1202}`
	if err := safetensors.WriteFile(path, ts, map[string]string{"state": js, safetensors.ChecksumKey: tensorChecksum(ts)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCheckpoint(path); err == nil || !strings.Contains(err.Error(), "no tensor "+groupAdamM) {
		t.Errorf("a checkpoint of parameters alone: %v, want it refused for want of %s*", err, groupAdamM)
	}
}
