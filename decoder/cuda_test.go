//go:build cgo

package decoder

import (
	"math"
	"slices"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cudaemu"
)

// TestCUDAKernelsMatchCPU runs a training pass (loss and every gradient) and
// greedy, beam and constrained decoding of both architectures through the CUDA kernels
// (gpu/kernels, here executed by the host emulator so that no GPU is needed)
// and through the CPU backend: the decoder's kernel calls, with their offset
// views, strided batches and rank-1 products, must compute the same on both.
func TestCUDAKernelsMatchCPU(t *testing.T) { bothArchs(t, testCUDAMatchesCPU) }

func testCUDAMatchesCPU(t *testing.T, c Config) {
	emu, err := cudaemu.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	cpuDev := openCPU(t)
	bt := tinyBatch(c, 4)
	type result struct {
		loss  float64
		grads []float32
		hyps  [][]Hypothesis
	}
	var res [2]result
	afterAnimal := 0 // captions that go on after a guided animal
	for i, dev := range []gpu.Device{cpuDev, emu} {
		m, _ := randomModel(t, dev, c, 9, 0.9)
		res[i].loss, _, res[i].grads = runDevice(t, dev, m, bt, true, 21)
		for _, k := range []int{1, 3} {
			o := DecodeOptions{Start: 1, End: 2, MaxLen: 6, Beam: k, NBest: k}
			res[i].hyps = append(res[i].hyps, generate(t, m, bt.feats, o)...)
			// Constrained search also gathers single log-probabilities.
			cons := make([][]Constraint, bt.B)
			cons[0], cons[bt.B-1] = []Constraint{{5}}, []Constraint{{8, 7}, {4}}
			res[i].hyps = append(res[i].hyps, generateConstrained(t, m, bt.feats, nil, o, cons, nil)...)
			// Heads reads a row of log-probabilities after a guided animal
			// (5 or 8) on the host.
			ho := o
			ho.Placement = Placement{Places: []int32{6}, Reusable: []bool{4: true, 7: true}}
			ho.Heads = Heads{Animals: []bool{5: true, 8: true}, Leads: []bool{4: true}, Places: []int32{6}, Copulas: []int32{7}}
			headed := generateConstrained(t, m, bt.feats, nil, ho, cons, nil)
			res[i].hyps = append(res[i].hyps, headed...)
			for _, hs := range headed {
				for _, h := range hs {
					if j := slices.IndexFunc(h.Tokens, func(w int32) bool { return w == 5 || w == 8 }); j >= 0 && j < len(h.Tokens)-1 {
						afterAnimal++
					}
				}
			}
		}
	}
	if afterAnimal == 0 {
		t.Error("no guided caption goes on after a guided animal: the test reads no row on the host")
	}
	t.Logf("loss: CPU %.7f, CUDA kernels %.7f; %s", res[0].loss, res[1].loss, emu.Name())
	if d := math.Abs(res[0].loss - res[1].loss); d > 1e-5 {
		t.Errorf("loss: CPU %.7f, CUDA kernels %.7f", res[0].loss, res[1].loss)
	}
	for _, tn := range c.Tensors() {
		maxDiff := 0.0
		for i := tn.Off; i < tn.Off+tn.Len; i++ {
			maxDiff = math.Max(maxDiff, math.Abs(float64(res[0].grads[i]-res[1].grads[i])))
		}
		if maxDiff > 1e-5 {
			t.Errorf("%s: CUDA kernels' gradient differs from the CPU's by %.2g", tn.Name, maxDiff)
		}
	}
	for b := range res[0].hyps {
		if len(res[0].hyps[b]) != len(res[1].hyps[b]) {
			t.Fatalf("search %d: %d hypotheses on the CPU, %d with the CUDA kernels", b, len(res[0].hyps[b]), len(res[1].hyps[b]))
		}
		for i := range res[0].hyps[b] {
			if !sameHyp(res[0].hyps[b][i], res[1].hyps[b][i]) {
				t.Errorf("decoding %d hypothesis %d: CPU %v, CUDA kernels %v", b, i, res[0].hyps[b][i], res[1].hyps[b][i])
			}
		}
	}
}
