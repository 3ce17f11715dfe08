package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/captioner/captioner/decoder"
	"github.com/captioner/captioner/safetensors"
)

// CheckpointFile is the resumable training state inside the output folder.
const CheckpointFile = "checkpoint.safetensors"

// state is the host-side training state saved in every checkpoint.
type state struct {
	Config    decoder.Config `json:"config"`
	Seed      int64          `json:"seed"`
	Objective string         `json:"objective,omitempty"` // empty in checkpoints from before objectives: xe
	// FinetuneBlocks is train.finetune_blocks; the top's state is then in
	// EncoderCheckpointFile.
	FinetuneBlocks int `json:"finetune_blocks,omitempty"`
	// Mirror is train.mirror: a resumed run draws the same mirrored photos.
	Mirror bool `json:"mirror,omitempty"`
	// Examples is examplesDigest of the training examples (empty in
	// checkpoints from before it): the dataset, its cleaning and a teacher's
	// captions (train.teacher) must be the same to resume.
	Examples string `json:"examples,omitempty"`
	// DevCaptions is devDigest of the dev split (empty in checkpoints from
	// before it): the best epoch so far was judged on it.
	DevCaptions string `json:"dev_captions,omitempty"`
	// Settings and Rates are the run's other settings (nil in checkpoints
	// from before them): a resumed run keeps the Settings; its Rates may
	// change, and resume logs how.
	Settings   *runSettings `json:"settings,omitempty"`
	Rates      *rates       `json:"rates,omitempty"`
	Epoch      int          `json:"epoch"` // epochs completed
	Step       int          `json:"step"`  // optimiser steps taken
	BestEpoch  int          `json:"best_epoch"`
	BestBLEU4  float64      `json:"best_bleu4"`
	BadEpochs  int          `json:"bad_epochs"` // epochs since the best
	Stopped    bool         `json:"stopped"`    // early stopping triggered
	History    []EpochStats `json:"history"`
	TrainedFor float64      `json:"trained_seconds"` // wall time over all runs
}

// tensorChecksum is the checksum of checkpoints written before it covered the
// training state: tensor names, shapes and data alone. Such a checkpoint still
// resumes (its state unchecked, as when it was written); a newer one cannot pass
// it, since its recorded hash covers more.
func tensorChecksum(ts []safetensors.Tensor) string {
	h := sha256.New()
	for _, t := range ts {
		fmt.Fprintf(h, "%s%v", t.Name, t.Shape)
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Tensor groups in a checkpoint, by name prefix: the parameters, Adam's moments,
// and the weight average when train.ema is on.
const (
	groupParams = ""
	groupAdamM  = "adam.m."
	groupAdamV  = "adam.v."
	groupEMA    = "ema."
)

// saveCheckpoint writes the state and the flat tensor groups (prefix -> values)
// atomically, with a SHA-256 of both in the metadata.
func saveCheckpoint(path string, st *state, groups map[string][]float32) error {
	c := st.Config
	var ts []safetensors.Tensor
	for _, prefix := range []string{groupParams, groupAdamM, groupAdamV, groupEMA} {
		if flat, ok := groups[prefix]; ok {
			ts = append(ts, c.SafeTensors(prefix, flat)...)
		}
	}
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(path, ts, safetensors.WithChecksum(ts, map[string]string{"state": string(js)}))
}

// errNoCheckpoint says there is nothing to resume from.
var errNoCheckpoint = errors.New("no checkpoint")

// loadCheckpoint reads and verifies a checkpoint. Every group but the EMA is
// required; a checkpoint made without EMA has no groupEMA entry.
func loadCheckpoint(path string) (*state, map[string][]float32, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil, errNoCheckpoint
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("train: checkpoint %s is unreadable (%w); delete it, then run again with --resume to start over", path, err)
	}
	recorded := f.Metadata[safetensors.ChecksumKey]
	if sum := safetensors.Checksum(f.Tensors, f.Metadata); sum != recorded && tensorChecksum(f.Tensors) != recorded {
		return nil, nil, fmt.Errorf("train: checkpoint %s is corrupt: its data hashes to %.12s…, the file records %.12s…; delete it, then run again with --resume to start over", path, sum, recorded)
	}
	var st state
	if err := json.Unmarshal([]byte(f.Metadata["state"]), &st); err != nil {
		return nil, nil, fmt.Errorf("train: checkpoint %s: bad state: %w", path, err)
	}
	st.Config = st.Config.WithDefaults() // a checkpoint from before arch and cleaning
	groups := map[string][]float32{}
	for _, prefix := range []string{groupParams, groupAdamM, groupAdamV, groupEMA} {
		if _, ok := f.Tensor(prefix + st.Config.Tensors()[0].Name); !ok && prefix == groupEMA {
			continue
		}
		if groups[prefix], err = st.Config.FlatFrom(f, prefix); err != nil {
			return nil, nil, fmt.Errorf("train: checkpoint %s: %w", path, err)
		}
	}
	return &st, groups, nil
}
