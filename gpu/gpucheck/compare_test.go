package gpucheck

import (
	"math"
	"reflect"
	"testing"

	"github.com/captioner/captioner/pipeline"
)

// TestCompare: compare passes the same outputs, and names every photo whose
// features differ beyond FeatureTolerance (and not one within it) and every
// model and photo whose greedy or beam caption differs, the GPU's and the
// CPU's each where they belong.
func TestCompare(t *testing.T) {
	results := func(captions ...string) []pipeline.Result {
		out := make([]pipeline.Result, len(captions))
		for i, c := range captions {
			out[i] = pipeline.Result{Caption: c, Score: -float64(c[0]) / 100}
		}
		return out
	}
	// scaled is x made a relative L2 distance d away from itself.
	scaled := func(x []float32, d float64) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = v * float32(1+d)
		}
		return out
	}
	feats := [][]float32{{3, 4}, {1, 2}, {5, 0}}
	paths := []string{"/p/a.jpg", "/p/b.jpg", "/p/c.jpg"}
	models := []pipeline.Info{{Model: "att", Arch: "attention"}, {Model: "mer", Arch: "merge"}}
	c := captioned{models: models, feats: feats,
		greedy: [][]pipeline.Result{results("A", "B", "C"), results("D", "E", "F")},
		beam:   [][]pipeline.Result{results("a", "b", "c"), results("d", "e", "f")}}

	rows, diffs := compare(c, c, paths)
	if diffs != nil || len(rows) != 6 || !rows[5].Same || rows[5] != (PhotoParity{Model: "mer", Arch: "merge", Photo: "c.jpg", GreedyCPU: "F", GreedyGPU: "F", BeamCPU: "f", BeamGPU: "f",
		GreedyScoreCPU: -0.70, GreedyScoreGPU: -0.70, BeamScoreCPU: -1.02, BeamScoreGPU: -1.02, Same: true}) {
		t.Fatalf("the same outputs: rows %+v, diffs %q", rows, diffs)
	}

	g := c
	g.feats = [][]float32{scaled(feats[0], 2*FeatureTolerance), scaled(feats[1], FeatureTolerance/2), feats[2]}
	g.greedy = [][]pipeline.Result{results("A", "B", "C"), results("D", "X", "F")}
	g.beam = [][]pipeline.Result{results("a", "b", "y"), results("d", "e", "f")}
	rows, diffs = compare(g, c, paths)
	want := []string{
		"a.jpg: features differ by 0.002 (relative L2), tolerance 0.001",
		`att, c.jpg: captions differ: greedy cpu "C" (-0.6700) gpu "C" (-0.6700); beam cpu "c" (-0.9900) gpu "y" (-1.2100)`,
		`mer, b.jpg: captions differ: greedy cpu "E" (-0.6900) gpu "X" (-0.8800); beam cpu "e" (-1.0100) gpu "e" (-1.0100)`,
	}
	if !reflect.DeepEqual(diffs, want) {
		t.Errorf("diffs\n%q\nwant\n%q", diffs, want)
	}
	var same []bool
	for _, r := range rows {
		same = append(same, r.Same)
	}
	if !reflect.DeepEqual(same, []bool{true, true, false, true, false, true}) {
		t.Errorf("same captions per row %v", same)
	}
	if d := rows[3].FeatureRelL2; math.Abs(d-2*FeatureTolerance) > 1e-6 || rows[4].GreedyGPU != "X" || rows[4].GreedyCPU != "E" {
		t.Errorf("mer, a.jpg: rel L2 %g, want %g; mer b.jpg greedy cpu %q gpu %q", d, 2*FeatureTolerance, rows[4].GreedyCPU, rows[4].GreedyGPU)
	}
}
