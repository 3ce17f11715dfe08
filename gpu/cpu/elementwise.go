package cpu

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/captioner/captioner/gpu"
)

// BiasAct writes out (rows, cols) = act(x + bias); bias may be nil, out may be x.
func (d *Device) BiasAct(out, x, bias gpu.Buf, rows, cols int, act gpu.Act) {
	xs := d.need(x, rows*cols, "BiasAct x (rows, cols)")
	var b []float32
	if bias != nil {
		b = d.need(bias, cols, "BiasAct bias (cols)")
	}
	d.biasAct(d.need(out, rows*cols, "BiasAct out (rows, cols)"), xs, b, rows, cols, act)
}

// biasAct is BiasAct on checked slices, parallel over rows.
func (d *Device) biasAct(out, x, bias []float32, rows, cols int, act gpu.Act) {
	if act < gpu.ActNone || act > gpu.ActSigmoid {
		panic(fmt.Sprintf("gpu/cpu: unknown activation %d", act))
	}
	if bias == nil && act == gpu.ActNone {
		copy(out, x)
		return
	}
	d.parallel(rows, max(1, grain/max(cols, 1)), func(lo, hi int) {
		biasActRows(out[lo*cols:hi*cols], x[lo*cols:hi*cols], bias, hi-lo, cols, act)
	})
}

// BiasActBackward writes dx = dout * act'(y) and adds the column sums of dx into
// dbias when it is not nil. dx may be dout.
func (d *Device) BiasActBackward(dx, dbias, dout, y gpu.Buf, rows, cols int, act gpu.Act) {
	n := rows * cols
	g := d.need(dout, n, "BiasActBackward dout (rows, cols)")
	ys := d.need(y, n, "BiasActBackward y (rows, cols)")
	dxs := d.need(dx, n, "BiasActBackward dx (rows, cols)")
	var db []float32
	if dbias != nil {
		db = d.need(dbias, cols, "BiasActBackward dbias (cols)")
	}
	d.parallel(n, grain, func(lo, hi int) {
		g, ys, dxs := g[lo:hi], ys[lo:hi], dxs[lo:hi]
		switch act {
		case gpu.ActNone:
			copy(dxs, g)
		case gpu.ActReLU:
			for i, v := range ys {
				if v > 0 {
					dxs[i] = g[i]
				} else {
					dxs[i] = 0
				}
			}
		case gpu.ActReLU6:
			for i, v := range ys {
				if v > 0 && v < 6 {
					dxs[i] = g[i]
				} else {
					dxs[i] = 0
				}
			}
		case gpu.ActTanh:
			for i, v := range ys {
				dxs[i] = g[i] * (1 - v*v)
			}
		case gpu.ActSigmoid:
			for i, v := range ys {
				dxs[i] = g[i] * v * (1 - v)
			}
		default:
			panic(fmt.Sprintf("gpu/cpu: BiasActBackward of unknown activation %d", act))
		}
	})
	if db != nil {
		d.addColSums(db, dxs, rows, cols)
	}
}

// addColSums adds the column sums of x (rows, cols) into sum (cols), summing in
// float64, parallel over column ranges so no two workers share a sum; each
// worker walks its range of every row, contiguously.
func (d *Device) addColSums(sum, x []float32, rows, cols int) {
	if len(d.acc) < cols {
		d.acc = make([]float64, cols)
	}
	acc := d.acc[:cols]
	d.parallel(cols, max(1, grain/max(rows, 1)), func(lo, hi int) {
		addColSumsRange(sum, acc, x, rows, cols, lo, hi)
	})
}

// binary checks that out, a, b have one length and returns their memory.
func (d *Device) binary(op string, out, a, b gpu.Buf) (o, x, y []float32) {
	x = d.f(a)
	return d.need(out, len(x), op+" out"), x, d.need(b, len(x), op+" b")
}

// Add writes out = a + b; out may alias a or b.
func (d *Device) Add(out, a, b gpu.Buf) {
	o, x, y := d.binary("Add", out, a, b)
	d.parallel(len(o), grain, func(lo, hi int) { addInto(o[lo:hi], x[lo:hi], y[lo:hi]) })
}

// Mul writes out = a * b; out may alias a or b.
func (d *Device) Mul(out, a, b gpu.Buf) {
	o, x, y := d.binary("Mul", out, a, b)
	d.parallel(len(o), grain, func(lo, hi int) { mulInto(o[lo:hi], x[lo:hi], y[lo:hi]) })
}

// Axpy adds alpha * x into y.
func (d *Device) Axpy(y, x gpu.Buf, alpha float32) {
	xs := d.f(x)
	ys := d.need(y, len(xs), "Axpy y")
	d.parallel(len(xs), grain, func(lo, hi int) {
		xs, ys := xs[lo:hi], ys[lo:hi]
		for i, v := range xs {
			ys[i] += alpha * v
		}
	})
}

// Scale multiplies x by alpha in place.
func (d *Device) Scale(x gpu.Buf, alpha float32) {
	xs := d.f(x)
	d.parallel(len(xs), grain, func(lo, hi int) {
		xs := xs[lo:hi]
		for i := range xs {
			xs[i] *= alpha
		}
	})
}

// SumSquares returns the sum of x[i]^2 accumulated in float64. The chunks'
// sums are added in the chunks' order, not as they finish: the same x gives
// the same bits on every run (it sets gradient clipping, and a resumed
// training run repeats an uninterrupted one bit for bit).
func (d *Device) SumSquares(x gpu.Buf) (float64, error) {
	xs := d.f(x)
	type part struct {
		lo  int
		sum float64
	}
	var (
		mu    sync.Mutex
		parts []part
	)
	d.parallel(len(xs), grain, func(lo, hi int) {
		s := sumSquares(xs[lo:hi])
		mu.Lock()
		parts = append(parts, part{lo, s})
		mu.Unlock()
	})
	slices.SortFunc(parts, func(a, b part) int { return a.lo - b.lo })
	sum := 0.0
	for _, p := range parts {
		sum += p.sum
	}
	return sum, nil
}

// Dropout writes mask[i] = 0 if DropoutUniform(seed, i) < p else 1/(1-p), and
// out = x * mask; out may be x.
func (d *Device) Dropout(out, mask, x gpu.Buf, p float32, seed uint64) {
	if !(p >= 0 && p < 1) {
		panic(fmt.Sprintf("gpu/cpu: Dropout probability %v is outside [0, 1)", p))
	}
	xs := d.f(x)
	ms := d.need(mask, len(xs), "Dropout mask")
	os := d.need(out, len(xs), "Dropout out")
	keep := 1 / (1 - p)
	d.parallel(len(xs), grain, func(lo, hi int) {
		dropoutRange(os, ms, xs, lo, hi, p, keep, seed)
	})
}

// AdamW updates param from grad with moments m and v; step counts from 1.
func (d *Device) AdamW(param, grad, m, v gpu.Buf, lr, beta1, beta2, eps, weightDecay float32, step int) {
	if step < 1 {
		panic(fmt.Sprintf("gpu/cpu: AdamW step %d; steps count from 1", step))
	}
	ps := d.f(param)
	n := len(ps)
	gs := d.need(grad, n, "AdamW grad")
	ms := d.need(m, n, "AdamW m")
	vs := d.need(v, n, "AdamW v")
	// Bias corrections: mhat = m/bc1, vhat = v/bc2.
	bc1 := float32(1 - math.Pow(float64(beta1), float64(step)))
	bc2 := float32(1 - math.Pow(float64(beta2), float64(step)))
	d.parallel(n, grain/4, func(lo, hi int) {
		adamw(ps[lo:hi], gs[lo:hi], ms[lo:hi], vs[lo:hi], lr, beta1, beta2, eps, weightDecay, bc1, bc2)
	})
}
