//go:build cgo

package cudaemu

import (
	"math"
	"testing"
)

// TestRowsBeyondGrid covers the launch path the shared suite's sizes do not
// reach: more rows than a row-per-block grid has blocks (4096), so each block
// loops over several rows.
func TestRowsBeyondGrid(t *testing.T) {
	dev, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	const rows, cols = 4096 + 5, 2
	x := make([]float32, rows*cols)
	for r := range rows {
		x[r*cols] = float32(r % 7)
		x[r*cols+1] = float32(r % 5)
	}
	in, out := dev.Alloc(rows*cols), dev.Alloc(rows*cols)
	dev.Upload(in, x)
	dev.Softmax(out, in, rows, cols)
	got := make([]float32, rows*cols)
	if err := dev.Download(got, out); err != nil {
		t.Fatal(err)
	}
	idx := make([]int32, rows)
	if err := dev.Argmax(idx, in, rows, cols); err != nil {
		t.Fatal(err)
	}
	for r := range rows {
		a, b := float64(x[r*cols]), float64(x[r*cols+1])
		want := 1 / (1 + math.Exp(b-a))
		if math.Abs(float64(got[r*cols])-want) > 1e-6 {
			t.Fatalf("row %d: softmax %v, want %v", r, got[r*cols], want)
		}
		wantIdx := int32(0)
		if b > a {
			wantIdx = 1
		}
		if idx[r] != wantIdx {
			t.Fatalf("row %d (%v, %v): argmax %d", r, a, b, idx[r])
		}
	}
}
