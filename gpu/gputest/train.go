package gputest

import (
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
)

var lstmSizes = [][2]int{{1, 1}, {3, 5}, {4, 33}, {32, 512}}

func testLSTMCellForward(t *testing.T, dev gpu.Device) {
	for _, s := range lstmSizes {
		B, H := s[0], s[1]
		t.Run(name("B%d_H%d", B, H), func(t *testing.T) {
			h := newHarness(t, dev, uint64(B*H))
			gates, cPrev := h.uniform(B*4*H, -4, 4), h.uniform(B*H, -2, 2)
			wantH, wantC, wantAct := refLSTM(gates, cPrev, B, H)
			hb, cb, ab := h.out(B*H), h.out(B*H), h.out(B*4*H)
			dev.LSTMCellForward(hb, cb, ab, h.in(gates), h.in(cPrev), B, H)
			near(t, "h", h.get(hb), wantH, tolerance(wantH, 1e-6, 1e-5))
			near(t, "c", h.get(cb), wantC, tolerance(wantC, 1e-6, 1e-5))
			near(t, "act", h.get(ab), wantAct, tolerance(wantAct, 1e-6, 1e-5))
		})
	}
}

// testLSTMCellBackward checks dgates and dcPrev against central differences of
// L = sum(wh*h) + sum(wc*c) through the device's LSTMCellForward, so dh = wh and
// dc = wc. Each perturbation changes one h and one c, and the others cancel
// exactly in the difference.
func testLSTMCellBackward(t *testing.T, dev gpu.Device) {
	for _, s := range [][2]int{{1, 1}, {2, 3}, {3, 5}, {2, 20}} {
		for _, alias := range []bool{false, true} {
			B, H := s[0], s[1]
			t.Run(name("B%d_H%d_alias%v", B, H, alias), func(t *testing.T) {
				h := newHarness(t, dev, uint64(B*H))
				gates, cPrev := h.uniform(B*4*H, -2, 2), h.uniform(B*H, -2, 2)
				wh, wc := h.uniform(B*H, -1, 1), h.uniform(B*H, -1, 1)
				loss := func(gates, cPrev []float32) float64 {
					hb, cb, ab := h.out(B*H), h.out(B*H), h.out(B*4*H)
					dev.LSTMCellForward(hb, cb, ab, h.in(gates), h.in(cPrev), B, H)
					hv, cv := h.get(hb), h.get(cb)
					var l float64
					for i := range hv {
						l += float64(wh[i])*float64(hv[i]) + float64(wc[i])*float64(cv[i])
					}
					return l
				}
				l := func() float64 { return loss(gates, cPrev) }
				wantDg, wantDc := centralDiff(gates, l), centralDiff(cPrev, l)
				hb, cb, ab := h.out(B*H), h.out(B*H), h.out(B*4*H)
				dev.LSTMCellForward(hb, cb, ab, h.in(gates), h.in(cPrev), B, H)
				act, c := h.in(h.get(ab)), h.in(h.get(cb))
				dg := h.out(B * 4 * H)
				var dcPrev gpu.Buf
				if alias {
					dcPrev = h.buf(wc)
					dev.LSTMCellBackward(dg, dcPrev, h.in(wh), dcPrev, act, c, h.in(cPrev), B, H)
				} else {
					dcPrev = h.out(B * H)
					dev.LSTMCellBackward(dg, dcPrev, h.in(wh), h.in(wc), act, c, h.in(cPrev), B, H)
				}
				near(t, "dgates", h.get(dg), wantDg, tolerance(wantDg, 2e-4, 1e-3))
				near(t, "dcPrev", h.get(dcPrev), wantDc, tolerance(wantDc, 2e-4, 1e-3))
			})
		}
	}
}

// softmaxSizes include a vocabulary-sized row and rows with large logits, which
// overflow exp unless the kernel subtracts the row maximum.
var softmaxSizes = [][2]int{{1, 1}, {3, 7}, {5, 1001}, {64, 300}}

func logits(h *harness, rows, cols int) []float32 {
	x := h.uniform(rows*cols, -5, 5)
	for j := 0; j < cols; j++ {
		x[j] += 1000 // row 0 is large
	}
	return x
}

func testSoftmax(t *testing.T, dev gpu.Device) {
	for _, s := range softmaxSizes {
		for _, inplace := range []bool{false, true} {
			rows, cols := s[0], s[1]
			t.Run(name("%dx%d_inplace%v", rows, cols, inplace), func(t *testing.T) {
				h := newHarness(t, dev, uint64(rows*cols))
				x := logits(h, rows, cols)
				wantLog := refLogSoftmax(x, rows, cols)
				want := make([]float64, len(wantLog))
				for i, v := range wantLog {
					want[i] = math.Exp(v)
				}
				run := func(f func(out, x gpu.Buf, rows, cols int)) gpu.Buf {
					if inplace {
						o := h.buf(x)
						f(o, o, rows, cols)
						return o
					}
					o := h.out(rows * cols)
					f(o, h.in(x), rows, cols)
					return o
				}
				near(t, "Softmax", h.get(run(dev.Softmax)), want, tolerance(want, 1e-7, 1e-5))
				near(t, "LogSoftmax", h.get(run(dev.LogSoftmax)), wantLog, tolerance(wantLog, 1e-5, 1e-6))
			})
		}
	}
}

// testSoftmaxBackward checks dx against central differences of the device's
// Softmax: dx_i = d/dx_i Σ dy ⊙ softmax(x), rows of attention-map width (49)
// among them.
func testSoftmaxBackward(t *testing.T, dev gpu.Device) {
	for _, s := range [][2]int{{1, 1}, {3, 7}, {4, 49}} {
		for _, inplace := range []bool{false, true} {
			rows, cols := s[0], s[1]
			t.Run(name("%dx%d_inplace%v", rows, cols, inplace), func(t *testing.T) {
				h := newHarness(t, dev, uint64(rows*cols)+7)
				x := h.uniform(rows*cols, -2, 2)
				dy := h.uniform(rows*cols, -1, 1)
				softmax := func() []float32 {
					y := h.out(rows * cols)
					dev.Softmax(y, h.in(x), rows, cols)
					return h.get(y)
				}
				want := centralDiff(x, func() float64 {
					var l float64
					for i, v := range softmax() {
						l += float64(dy[i]) * float64(v)
					}
					return l
				})
				y := h.in(softmax())
				var dx gpu.Buf
				if inplace {
					dx = h.buf(dy)
					dev.SoftmaxBackward(dx, dx, y, rows, cols)
				} else {
					dx = h.out(rows * cols)
					dev.SoftmaxBackward(dx, h.in(dy), y, rows, cols)
				}
				near(t, "dx", h.get(dx), want, tolerance(want, 1e-4, 1e-3))
			})
		}
	}
}

// targetsFor returns one target per row, with row 1 (if any) padding (-1).
func targetsFor(h *harness, rows, cols int) []int32 {
	t := make([]int32, rows)
	for r := range t {
		t[r] = int32(h.rng.IntN(cols))
	}
	if rows > 1 {
		t[1] = -1
	}
	return t
}

func testCrossEntropy(t *testing.T, dev gpu.Device) {
	for _, s := range softmaxSizes {
		for _, mode := range []string{"grad", "nograd", "alias"} {
			rows, cols := s[0], s[1]
			t.Run(name("%dx%d_%s", rows, cols, mode), func(t *testing.T) {
				h := newHarness(t, dev, uint64(rows*cols))
				x := logits(h, rows, cols)
				targets := targetsFor(h, rows, cols)
				const scale = 0.25
				lsm := refLogSoftmax(x, rows, cols)
				wantLoss, wantGrad := make([]float64, rows), make([]float64, rows*cols)
				for r, tg := range targets {
					if tg < 0 {
						continue
					}
					wantLoss[r] = -lsm[r*cols+int(tg)]
					for j := 0; j < cols; j++ {
						wantGrad[r*cols+j] = math.Exp(lsm[r*cols+j]) * scale
					}
					wantGrad[r*cols+int(tg)] -= scale
				}
				loss := h.out(rows)
				switch mode {
				case "grad":
					dl := h.out(rows * cols)
					dev.CrossEntropy(loss, dl, h.in(x), targets, rows, cols, scale)
					near(t, "dlogits", h.get(dl), wantGrad, tolerance(wantGrad, 1e-7, 1e-5))
				case "nograd":
					dev.CrossEntropy(loss, nil, h.in(x), targets, rows, cols, scale)
				case "alias":
					lg := h.buf(x)
					dev.CrossEntropy(loss, lg, lg, targets, rows, cols, scale)
					near(t, "dlogits in logits", h.get(lg), wantGrad, tolerance(wantGrad, 1e-7, 1e-5))
				}
				near(t, "loss", h.get(loss), wantLoss, tolerance(wantLoss, 1e-5, 1e-6))
			})
		}
	}
}

// testCrossEntropyGradient checks dlogits against central differences of
// gradScale * sum(loss) through the device's own loss.
func testCrossEntropyGradient(t *testing.T, dev gpu.Device) {
	const rows, cols, scale = 4, 9, 0.5
	h := newHarness(t, dev, 77)
	x := h.uniform(rows*cols, -3, 3)
	targets := targetsFor(h, rows, cols)
	loss := func() float64 {
		l := h.out(rows)
		dev.CrossEntropy(l, nil, h.in(x), targets, rows, cols, scale)
		var s float64
		for _, v := range h.get(l) {
			s += scale * float64(v)
		}
		return s
	}
	want := centralDiff(x, loss)
	dl := h.out(rows * cols)
	dev.CrossEntropy(h.out(rows), dl, h.in(x), targets, rows, cols, scale)
	near(t, "dlogits", h.get(dl), want, tolerance(want, 1e-4, 1e-3))
}

func testEmbedding(t *testing.T, dev gpu.Device) {
	for _, s := range [][2]int{{1, 1}, {11, 7}, {5000, 256}} {
		vocab, dim := s[0], s[1]
		t.Run(name("vocab%d_dim%d", vocab, dim), func(t *testing.T) {
			h := newHarness(t, dev, uint64(vocab*dim))
			table := h.uniform(vocab*dim, -1, 1)
			ids := make([]int32, 2*vocab+3) // every id, with repeats
			for i := range ids {
				ids[i] = int32((i * 7) % vocab)
			}
			dout := h.uniform(len(ids)*dim, -1, 1)
			wantOut := make([]float64, len(ids)*dim)
			wantDt := to64(table) // backward adds into the existing gradient
			for i, id := range ids {
				for j := 0; j < dim; j++ {
					wantOut[i*dim+j] = float64(table[int(id)*dim+j])
					wantDt[int(id)*dim+j] += float64(dout[i*dim+j])
				}
			}
			out := h.out(len(ids) * dim)
			dev.EmbeddingForward(out, h.in(table), ids, dim)
			near(t, "out", h.get(out), wantOut, make([]float64, len(wantOut)))
			dt := h.buf(table)
			dev.EmbeddingBackward(dt, h.in(dout), ids, dim)
			near(t, "dtable", h.get(dt), wantDt, tolerance(wantDt, 1e-6, 1e-6))
		})
	}
}

// testEmbeddingBackward checks the scatter-add against central differences of
// L = sum(g * EmbeddingForward(table, ids)) with repeated ids.
func testEmbeddingBackward(t *testing.T, dev gpu.Device) {
	const vocab, dim = 6, 5
	h := newHarness(t, dev, 5)
	table := h.uniform(vocab*dim, -1, 1)
	ids := []int32{3, 0, 3, 5, 3}
	g := h.uniform(len(ids)*dim, -1, 1)
	loss := func() float64 {
		out := h.out(len(ids) * dim)
		dev.EmbeddingForward(out, h.in(table), ids, dim)
		var l float64
		for i, v := range h.get(out) {
			l += float64(g[i]) * float64(v)
		}
		return l
	}
	want := centralDiff(table, loss)
	dt := h.buf(make([]float32, vocab*dim))
	dev.EmbeddingBackward(dt, h.in(g), ids, dim)
	near(t, "dtable", h.get(dt), want, tolerance(want, 1e-4, 1e-3))
}

func testDropout(t *testing.T, dev gpu.Device) {
	for _, n := range []int{1, 1000, 100003} {
		for _, p := range []float32{0, 0.1, 0.5} {
			t.Run(name("n%d_p%v", n, p), func(t *testing.T) {
				h := newHarness(t, dev, uint64(n))
				const seed = 0xDEADBEEF12345
				x := h.uniform(n, -2, 2)
				wantMask, wantOut := make([]float64, n), make([]float64, n)
				dropped := 0
				for i := range x {
					m := 1 / (1 - p)
					if gpu.DropoutUniform(seed, i) < p {
						m = 0
						dropped++
					}
					wantMask[i], wantOut[i] = float64(m), float64(x[i]*m)
				}
				if sd := math.Sqrt(float64(n) * float64(p*(1-p))); math.Abs(float64(dropped)-float64(p)*float64(n)) > 5*sd+1 {
					t.Errorf("DropoutUniform dropped %d of %d at p=%v", dropped, n, p)
				}
				mask, out := h.out(n), h.out(n)
				dev.Dropout(out, mask, h.in(x), p, seed)
				exact := make([]float64, n)
				near(t, "mask", h.get(mask), wantMask, exact)
				near(t, "out", h.get(out), wantOut, exact)
				inplace, mask2 := h.buf(x), h.out(n)
				dev.Dropout(inplace, mask2, inplace, p, seed)
				near(t, "out=x", h.get(inplace), wantOut, exact)

				// Backward is Mul(dx, dout, mask): compare with central differences of
				// L = sum(g * Dropout(x)) under the same seed (elementwise, so all
				// elements are perturbed at once).
				g := h.uniform(n, -1, 1)
				fwd := func(d float32) []float32 {
					xs := make([]float32, n)
					for i := range xs {
						xs[i] = x[i] + d
					}
					o := h.out(n)
					dev.Dropout(o, h.out(n), h.in(xs), p, seed)
					return h.get(o)
				}
				op, om := fwd(fdStep), fwd(-fdStep)
				wantDx := make([]float64, n)
				for i := range wantDx {
					wantDx[i] = float64(g[i]) * (float64(op[i]) - float64(om[i])) / (2 * fdStep)
				}
				dx := h.out(n)
				dev.Mul(dx, h.in(g), mask)
				near(t, "dx", h.get(dx), wantDx, tolerance(wantDx, 1e-4, 1e-3))
			})
		}
	}
}

func testAdamW(t *testing.T, dev gpu.Device) {
	for _, n := range []int{1, 37, 100003} {
		for _, wd := range []float32{0, 0.01} {
			t.Run(name("n%d_wd%v", n, wd), func(t *testing.T) {
				h := newHarness(t, dev, uint64(n))
				const lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
				param := h.uniform(n, -1, 1)
				pb, mb, vb := h.buf(param), h.buf(make([]float32, n)), h.buf(make([]float32, n))
				p, m, v := to64(param), make([]float64, n), make([]float64, n)
				for step := 1; step <= 3; step++ {
					grad := h.uniform(n, -1, 1)
					for i, g32 := range grad {
						g := float64(g32)
						m[i] = b1*m[i] + (1-b1)*g
						v[i] = b2*v[i] + (1-b2)*g*g
						mhat := m[i] / (1 - math.Pow(b1, float64(step)))
						vhat := v[i] / (1 - math.Pow(b2, float64(step)))
						p[i] -= lr * (mhat/(math.Sqrt(vhat)+eps) + float64(wd)*p[i])
					}
					dev.AdamW(pb, h.in(grad), mb, vb, lr, b1, b2, eps, wd, step)
				}
				near(t, "param", h.get(pb), p, tolerance(p, 1e-6, 1e-5))
				near(t, "m", h.get(mb), m, tolerance(m, 1e-7, 1e-5))
				near(t, "v", h.get(vb), v, tolerance(v, 1e-8, 1e-5))
			})
		}
	}
}

func testArgmax(t *testing.T, dev gpu.Device) {
	for _, s := range [][2]int{{1, 1}, {4, 7}, {3, 1001}, {5, 300}} {
		rows, cols := s[0], s[1]
		h := newHarness(t, dev, uint64(rows*cols))
		x := rankingRows(h, rows, cols)
		if rows > 2 && cols > 3 { // tie between columns 1 and 3 at the maximum
			x[2*cols+1], x[2*cols+3] = 2, 2
		}
		out := make([]int32, rows)
		if err := dev.Argmax(out, h.in(x), rows, cols); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < rows; r++ {
			if want := refTopK(x[r*cols:(r+1)*cols], 1)[0]; int(out[r]) != want {
				t.Errorf("%dx%d row %d: Argmax = %d, want %d", rows, cols, r, out[r], want)
			}
		}
	}
}

func testTopK(t *testing.T, dev gpu.Device) {
	// 40x2600: a vocabulary at greedy batch 40, enough rows to be split over threads.
	for _, c := range [][3]int{{1, 1, 1}, {3, 7, 1}, {3, 7, 3}, {3, 7, 7}, {4, 1001, 5}, {2, 40, 33}, {3, 100, 20}, {40, 2600, 1}, {40, 2600, 3}} {
		rows, cols, k := c[0], c[1], c[2]
		h := newHarness(t, dev, uint64(rows*cols+k))
		x := rankingRows(h, rows, cols)
		idx, val := make([]int32, rows*k), make([]float32, rows*k)
		for i := range idx { // what a kernel that reads before it writes would find
			idx[i], val[i] = -1, float32(math.Inf(1))
		}
		if err := dev.TopK(idx, val, h.in(x), rows, cols, k); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < rows; r++ {
			row := x[r*cols : (r+1)*cols]
			for i, want := range refTopK(row, k) {
				if got := val[r*k+i]; int(idx[r*k+i]) != want || !same(got, row[want]) {
					t.Errorf("%dx%d k=%d row %d rank %d: got index %d value %v, want %d value %v",
						rows, cols, k, r, i, idx[r*k+i], got, want, row[want])
				}
			}
		}
	}
}

// rankingRows returns (rows, cols) uniform values in [-1, 1) with, as far as there
// are rows: row 0 full of ties, row 1 ascending (every element enters the top
// k), row 2 random, row 3 with NaN at every 5th column from the first and -Inf
// at every 7th from the second (a NaN taken before k are held must not block
// the numbers after it), row 4 all NaN, row 5 NaN in its first 16 columns (a
// block of them at rank k must not keep the numbers of later blocks out).
func rankingRows(h *harness, rows, cols int) []float32 {
	x := h.uniform(rows*cols, -1, 1)
	nan, negInf := float32(math.NaN()), float32(math.Inf(-1))
	for j := 0; j < cols; j++ {
		x[j] = float32(j%3) * 0.25
		if rows > 1 {
			x[cols+j] = float32(j)
		}
		if rows > 3 {
			switch {
			case j%5 == 0:
				x[3*cols+j] = nan
			case j%7 == 1:
				x[3*cols+j] = negInf
			}
		}
		if rows > 4 {
			x[4*cols+j] = nan
		}
		if rows > 5 && j < 16 {
			x[5*cols+j] = nan
		}
	}
	return x
}
