package encoder

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/captioner/captioner/gpu"
	"github.com/captioner/captioner/gpu/cpu"
)

// tunedSynthetic saves the synthetic weights' layers from block first, each
// scaled by scale, as a model folder's TunedFile, and loads them back.
func tunedSynthetic(t *testing.T, w *Weights, first int, scale float32) *Weights {
	t.Helper()
	ts := map[string][]float32{}
	for _, p := range w.Config.TopParams(first) {
		v := slices.Clone(w.Tensors[p.Name])
		for i := range v {
			v[i] *= scale
		}
		ts[p.Name] = v
	}
	path := filepath.Join(t.TempDir(), TunedFile)
	if err := SaveTuned(path, w.Config, first, ts); err != nil {
		t.Fatal(err)
	}
	tw, got, err := WithTuned(w, path)
	if err != nil {
		t.Fatal(err)
	}
	if got != first || tw.Config.Tuned == "" || !strings.HasPrefix(tw.Config.ID(), w.Config.ID()+"-tuned-") {
		t.Fatalf("WithTuned: first %d, config %+v", got, tw.Config)
	}
	for _, p := range w.Config.Params() {
		if want := ts[p.Name]; want != nil && !slices.Equal(tw.Tensors[p.Name], want) || want == nil && !slices.Equal(tw.Tensors[p.Name], w.Tensors[p.Name]) {
			t.Fatalf("WithTuned: %s is not the tuned file's (or the base's)", p.Name)
		}
	}
	return tw
}

// TestBranchedIsEveryEncoder: the branched encoder's tuned features are those
// of encoders of the tuned weights and its original features those of the
// original encoder, on a chain (partly per-layer: the cut follows a residual
// block) and on the per-layer kernels.
func TestBranchedIsEveryEncoder(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	first := 3 // block 2, before the cut, is residual
	tw, tw2 := tunedSynthetic(t, w, first, 1.1), tunedSynthetic(t, w, first, 0.9)
	n := 3
	images := randomImages(smallConfig, n, 4)
	each := make([][]float32, n)
	l := len(images) / n
	for i := range each {
		each[i] = images[i*l : (i+1)*l]
	}
	for _, dev := range []gpu.Device{cpu.New(2), perLayer{cpu.New(2)}} {
		var want [3][2][]float32 // [original, tuned, tuned 2][grid, pooled]
		for i, weights := range []*Weights{w, tw, tw2} {
			e, err := New(dev, weights, n, "float32")
			if err != nil {
				t.Fatal(err)
			}
			want[i][0], want[i][1], _ = encodeAll(t, e, images, n)
			e.Close()
		}
		b, err := NewBranched(dev, w, []*Weights{tw, tw2}, first, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.EncodeEach(each); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what string
			buf  gpu.Buf
			want []float32
		}{{"original grid", b.Grid(), want[0][0]}, {"original pooled", b.Pooled(), want[0][1]},
			{"tuned grid", b.TunedGrid(0), want[1][0]}, {"tuned pooled", b.TunedPooled(0), want[1][1]},
			{"second tuned grid", b.TunedGrid(1), want[2][0]}, {"second tuned pooled", b.TunedPooled(1), want[2][1]}} {
			got := make([]float32, c.buf.Len())
			if err := dev.Download(got, c.buf); err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(got, c.want); d > 1e-5 || len(got) != len(c.want) {
				t.Errorf("%s: %s differs from the encoder's by %.2g", dev.Name(), c.what, d)
			}
		}
		if oc, tc := b.Config(), b.TunedConfig(1); tc.ID() != tw2.Config.ID() || oc.ID() != w.Config.ID() {
			t.Errorf("configs: original %s, second tuned %s", oc.ID(), tc.ID())
		}
		b.Close()
		dev.Close()
	}
}

// TestWithTunedErrors: a tuned file of other base weights, or one missing a
// layer, is refused with what to do.
func TestWithTunedErrors(t *testing.T) {
	_, w := importSynthetic(t, smallConfig, 7)
	ts := map[string][]float32{}
	for _, p := range w.Config.TopParams(2) {
		ts[p.Name] = w.Tensors[p.Name]
	}
	other := *w
	other.Config.SourceSHA = "ffffffffffffffff"
	path := filepath.Join(t.TempDir(), TunedFile)
	if err := SaveTuned(path, other.Config, 2, ts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := WithTuned(w, path); err == nil || !strings.Contains(err.Error(), "use the MobileNetV2 weights it was trained from") {
		t.Errorf("tuned from other weights: %v", err)
	}
	short := maps.Clone(ts)
	delete(short, "head.bias")
	if err := SaveTuned(path, w.Config, 2, short); err == nil || !strings.Contains(err.Error(), "tensor head.bias has 0 values") {
		t.Errorf("saving without head.bias: %v", err)
	}
}
