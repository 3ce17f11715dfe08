package cpu

import (
	"fmt"

	"github.com/captioner/captioner/gpu"
)

// rowsCheck returns out and x as (rows, cols) matrices, cols >= 1.
func (d *Device) rowsCheck(op string, out, x gpu.Buf, rows, cols int) (o, xs []float32) {
	if cols < 1 {
		panic(fmt.Sprintf("gpu/cpu: %s over rows of %d columns; it needs at least 1", op, cols))
	}
	xs = d.need(x, rows*cols, op+" x (rows, cols)")
	return d.need(out, rows*cols, op+" out (rows, cols)"), xs
}

// Softmax writes out = softmax of each row of x; out may be x.
func (d *Device) Softmax(out, x gpu.Buf, rows, cols int) {
	d.softmax("Softmax", out, x, rows, cols, false)
}

// LogSoftmax writes out = log-softmax of each row of x; out may be x.
func (d *Device) LogSoftmax(out, x gpu.Buf, rows, cols int) {
	d.softmax("LogSoftmax", out, x, rows, cols, true)
}

// softmax writes the softmax, or with log its logarithm, of each row of x.
func (d *Device) softmax(op string, out, x gpu.Buf, rows, cols int, log bool) {
	o, xs := d.rowsCheck(op, out, x, rows, cols)
	d.parallel(rows, max(1, grain/(4*cols)), func(lo, hi int) {
		softmaxRows(o[lo*cols:hi*cols], xs[lo*cols:hi*cols], hi-lo, cols, log)
	})
}

// SoftmaxBackward writes dx = y * (dy - Σ_j y_j dy_j) row by row; dx may alias dy.
func (d *Device) SoftmaxBackward(dx, dy, y gpu.Buf, rows, cols int) {
	o, ys := d.rowsCheck("SoftmaxBackward", dx, y, rows, cols)
	g := d.need(dy, rows*cols, "SoftmaxBackward dy (rows, cols)")
	d.parallel(rows, max(1, grain/(2*cols)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr, gr, or := ys[r*cols:(r+1)*cols], g[r*cols:(r+1)*cols], o[r*cols:(r+1)*cols]
			var dot float64
			for j, v := range yr {
				dot += float64(v) * float64(gr[j])
			}
			for j, v := range yr {
				or[j] = v * (gr[j] - float32(dot))
			}
		}
	})
}

// CrossEntropy writes loss[r] = -log softmax(logits[r])[targets[r]] and, when
// dlogits is not nil, dlogits[r] = (softmax(logits[r]) - onehot) * gradScale;
// rows with a negative target get zeros. dlogits may alias logits.
func (d *Device) CrossEntropy(loss, dlogits, logits gpu.Buf, targets []int32, rows, cols int, gradScale float32) {
	if len(targets) != rows {
		panic(fmt.Sprintf("gpu/cpu: CrossEntropy has %d targets for %d rows", len(targets), rows))
	}
	for r, t := range targets {
		if int(t) >= cols {
			panic(fmt.Sprintf("gpu/cpu: CrossEntropy target %d of row %d is outside the %d classes", t, r, cols))
		}
	}
	_, xs := d.rowsCheck("CrossEntropy", logits, logits, rows, cols)
	ls := d.need(loss, rows, "CrossEntropy loss (rows)")
	var dl []float32
	if dlogits != nil {
		dl = d.need(dlogits, rows*cols, "CrossEntropy dlogits (rows, cols)")
	}
	d.parallel(rows, max(1, grain/(4*cols)), func(lo, hi int) {
		var dr []float32
		if dl != nil {
			dr = dl[lo*cols : hi*cols]
		}
		crossEntropyRows(ls[lo:hi], dr, xs[lo*cols:hi*cols], targets[lo:hi], hi-lo, cols, gradScale)
	})
}

// Argmax writes out[r] = the index of the largest element of row r: TopK's first.
func (d *Device) Argmax(out []int32, x gpu.Buf, rows, cols int) error {
	if len(out) != rows {
		panic(fmt.Sprintf("gpu/cpu: Argmax out has %d elements for %d rows", len(out), rows))
	}
	_, xs := d.rowsCheck("Argmax", x, x, rows, cols)
	topKRows(out, make([]float32, rows), xs, rows, cols, 1)
	return nil
}

// TopK writes the k largest elements of each row in descending order into idx and
// val (rows, k); ties go to the lowest index, NaN comes last. Rows are split
// over the threads: the scan was a tenth of a greedy step at batch 32 while it
// was Go's; in C, with its 16-column skip, splitting it measured no different
// from a serial scan (measured 2026-12-06).
func (d *Device) TopK(idx []int32, val []float32, x gpu.Buf, rows, cols, k int) error {
	if k < 1 || k > cols {
		panic(fmt.Sprintf("gpu/cpu: TopK k=%d outside [1, %d columns]", k, cols))
	}
	if len(idx) != rows*k || len(val) != rows*k {
		panic(fmt.Sprintf("gpu/cpu: TopK idx has %d and val %d elements, want rows*k = %d", len(idx), len(val), rows*k))
	}
	_, xs := d.rowsCheck("TopK", x, x, rows, cols)
	d.parallel(rows, max(1, grain/cols), func(lo, hi int) {
		topKRows(idx[lo*k:hi*k], val[lo*k:hi*k], xs[lo*cols:hi*cols], hi-lo, cols, k)
	})
	return nil
}
