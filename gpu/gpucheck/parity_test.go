package gpucheck

import (
	"fmt"
	"path/filepath"

	"github.com/captioner/captioner/internal/numdiff"
	"github.com/captioner/captioner/pipeline"
)

// TestParity's judgement, untagged so that it is tested without a GPU
// (TestCompare): a judge that passed everything would pass the first GPU run.

// FeatureTolerance is the largest relative L2 distance allowed between an
// image's features on the GPU and on the CPU, both float32: what the loaded
// models read, the pooled vector and/or the 7x7 grid. Measured differences
// come from summation order and FMA contraction; 1e-3 is far below what moves
// a caption (bfloat16 moves features by 3-4%).
const FeatureTolerance = 1e-3

// captioned is what one device made of the photos: their features (one
// encoding for all the models) and each loaded model's captions.
type captioned struct {
	device string
	models []pipeline.Info
	feats  [][]float32
	greedy [][]pipeline.Result // per model, per photo
	beam   [][]pipeline.Result
}

// PhotoParity is one photo's comparison for one model in TestParity's JSON.
// The scores (length-normalised log-probabilities) tell a near tie, where
// summation order alone may pick the other caption, from a real difference.
type PhotoParity struct {
	Model          string  `json:"model"`
	Arch           string  `json:"arch"`
	Photo          string  `json:"photo"`
	FeatureRelL2   float64 `json:"feature_rel_l2"`
	GreedyCPU      string  `json:"greedy_cpu"`
	GreedyGPU      string  `json:"greedy_gpu"`
	BeamCPU        string  `json:"beam3_cpu"`
	BeamGPU        string  `json:"beam3_gpu"`
	GreedyScoreCPU float64 `json:"greedy_score_cpu"`
	GreedyScoreGPU float64 `json:"greedy_score_gpu"`
	BeamScoreCPU   float64 `json:"beam3_score_cpu"`
	BeamScoreGPU   float64 `json:"beam3_score_gpu"`
	Same           bool    `json:"same_captions"`
}

// compare compares the GPU's run g with the CPU's c on the photos at paths:
// a row per model and photo, and what differs, each photo's features beyond
// FeatureTolerance and each model's captions, one line each.
func compare(g, c captioned, paths []string) (rows []PhotoParity, diffs []string) {
	for i, p := range paths {
		if d := numdiff.RelL2(g.feats[i], c.feats[i]); d > FeatureTolerance {
			diffs = append(diffs, fmt.Sprintf("%s: features differ by %.3g (relative L2), tolerance %g", filepath.Base(p), d, FeatureTolerance))
		}
	}
	for k, m := range g.models {
		for i, p := range paths {
			r := PhotoParity{Model: m.Model, Arch: m.Arch, Photo: filepath.Base(p), FeatureRelL2: numdiff.RelL2(g.feats[i], c.feats[i]),
				GreedyCPU: c.greedy[k][i].Caption, GreedyGPU: g.greedy[k][i].Caption, BeamCPU: c.beam[k][i].Caption, BeamGPU: g.beam[k][i].Caption,
				GreedyScoreCPU: c.greedy[k][i].Score, GreedyScoreGPU: g.greedy[k][i].Score, BeamScoreCPU: c.beam[k][i].Score, BeamScoreGPU: g.beam[k][i].Score}
			r.Same = r.GreedyCPU == r.GreedyGPU && r.BeamCPU == r.BeamGPU
			rows = append(rows, r)
			if !r.Same {
				diffs = append(diffs, fmt.Sprintf("%s, %s: captions differ: greedy cpu %q (%.4f) gpu %q (%.4f); beam cpu %q (%.4f) gpu %q (%.4f)", r.Model, r.Photo,
					r.GreedyCPU, r.GreedyScoreCPU, r.GreedyGPU, r.GreedyScoreGPU, r.BeamCPU, r.BeamScoreCPU, r.BeamGPU, r.BeamScoreGPU))
			}
		}
	}
	return rows, diffs
}
