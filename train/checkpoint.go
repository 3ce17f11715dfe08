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
	Config     decoder.Config `json:"config"`
	Seed       int64          `json:"seed"`
	Epoch      int            `json:"epoch"` // epochs completed
	Step       int            `json:"step"`  // optimiser steps taken
	BestEpoch  int            `json:"best_epoch"`
	BestBLEU4  float64        `json:"best_bleu4"`
	BadEpochs  int            `json:"bad_epochs"` // epochs since the best
	Stopped    bool           `json:"stopped"`    // early stopping triggered
	History    []EpochStats   `json:"history"`
	TrainedFor float64        `json:"trained_seconds"` // wall time over all runs
}

// checksum hashes the tensors' names, shapes and data in file order.
func checksum(ts []safetensors.Tensor) string {
	h := sha256.New()
	for _, t := range ts {
		fmt.Fprintf(h, "%s%v", t.Name, t.Shape)
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// saveCheckpoint writes parameters, Adam moments and state atomically, with a
// SHA-256 of the tensors in the metadata.
func saveCheckpoint(path string, st *state, params, m1, m2 []float32) error {
	c := st.Config
	ts := c.SafeTensors("", params)
	ts = append(ts, c.SafeTensors("adam.m.", m1)...)
	ts = append(ts, c.SafeTensors("adam.v.", m2)...)
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(path, ts, map[string]string{"state": string(js), "sha256": checksum(ts)})
}

// errNoCheckpoint says there is nothing to resume from.
var errNoCheckpoint = errors.New("no checkpoint")

// loadCheckpoint reads and verifies a checkpoint.
func loadCheckpoint(path string) (*state, []float32, []float32, []float32, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, nil, errNoCheckpoint
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("train: checkpoint %s is unreadable (%w); delete it to start over", path, err)
	}
	if sum := checksum(f.Tensors); sum != f.Metadata["sha256"] {
		return nil, nil, nil, nil, fmt.Errorf("train: checkpoint %s is corrupt: its data hashes to %.12s…, the file records %.12s…; delete it to start over", path, sum, f.Metadata["sha256"])
	}
	var st state
	if err := json.Unmarshal([]byte(f.Metadata["state"]), &st); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("train: checkpoint %s: bad state: %w", path, err)
	}
	var flats [3][]float32
	for i, prefix := range []string{"", "adam.m.", "adam.v."} {
		if flats[i], err = st.Config.FlatFrom(f, prefix); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("train: checkpoint %s: %w", path, err)
		}
	}
	return &st, flats[0], flats[1], flats[2], nil
}
