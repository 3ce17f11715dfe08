package gputest

import (
	"math"
	"testing"

	"github.com/captioner/captioner/gpu"
)

func testGlobalAvgPool(t *testing.T, dev gpu.Device) {
	for _, s := range [][3]int{{1, 1, 1}, {2, 49, 17}, {3, 5, 1280}, {32, 49, 33}} {
		n, hw, c := s[0], s[1], s[2]
		t.Run(name("n%d_hw%d_c%d", n, hw, c), func(t *testing.T) {
			h := newHarness(t, dev, uint64(n*hw*c))
			x := h.uniform(n*hw*c, -3, 3)
			want := make([]float64, n*c)
			for i := 0; i < n; i++ {
				for p := 0; p < hw; p++ {
					for j := 0; j < c; j++ {
						want[i*c+j] += float64(x[(i*hw+p)*c+j]) / float64(hw)
					}
				}
			}
			out := h.out(n * c)
			dev.GlobalAvgPool(out, h.in(x), n, hw, c)
			near(t, "out", h.get(out), want, tolerance(want, 1e-6, 1e-5))
		})
	}
}

// matSizes are (rows, cols) for the row-wise kernels.
var matSizes = [][2]int{{1, 1}, {3, 7}, {33, 17}, {300, 257}}

func testBiasAct(t *testing.T, dev gpu.Device) {
	for _, s := range matSizes {
		for _, act := range allActs {
			for _, variant := range []string{"bias", "nobias", "inplace"} {
				rows, cols := s[0], s[1]
				t.Run(name("%dx%d_%s_%s", rows, cols, actName(act), variant), func(t *testing.T) {
					h := newHarness(t, dev, uint64(rows*cols)+uint64(act))
					x := h.uniform(rows*cols, -8, 8)
					bias := h.uniform(cols, -1, 1)
					want := make([]float64, rows*cols)
					for i := range want {
						v := float64(x[i])
						if variant != "nobias" {
							v += float64(bias[i%cols])
						}
						want[i] = act64(act, v)
					}
					var out gpu.Buf
					switch variant {
					case "bias":
						out = h.out(rows * cols)
						dev.BiasAct(out, h.in(x), h.in(bias), rows, cols, act)
					case "nobias":
						out = h.out(rows * cols)
						dev.BiasAct(out, h.in(x), nil, rows, cols, act)
					case "inplace":
						out = h.buf(x)
						dev.BiasAct(out, out, h.in(bias), rows, cols, act)
					}
					near(t, "out", h.get(out), want, tolerance(want, 1e-6, 2e-6))
				})
			}
		}
	}
}

// fdStep is the finite-difference step. With float32 forward passes the rounding
// error of a difference is about 1e-7/fdStep and the truncation error fdStep^2.
const fdStep = 1e-2

// centralDiff returns dloss/dx[i] for every i by central differences, perturbing
// x in place (loss reads x) and restoring it.
func centralDiff(x []float32, loss func() float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	return centralDiffAt(x, idx, loss)
}

// centralDiffAt is centralDiff at the elements idx of x only.
func centralDiffAt(x []float32, idx []int, loss func() float64) []float64 {
	g := make([]float64, len(idx))
	for k, i := range idx {
		v := x[i]
		x[i] = v + fdStep
		lp := loss()
		x[i] = v - fdStep
		lm := loss()
		x[i] = v
		g[k] = (lp - lm) / (2 * fdStep)
	}
	return g
}

// testBiasActBackward checks dx and dbias against central differences of the
// device's BiasAct. The activation is elementwise, so perturbing every input at
// once still gives each element's own derivative.
func testBiasActBackward(t *testing.T, dev gpu.Device) {
	for _, s := range matSizes {
		for _, act := range trainActs {
			for _, inplace := range []bool{false, true} {
				rows, cols := s[0], s[1]
				t.Run(name("%dx%d_%s_inplace%v", rows, cols, actName(act), inplace), func(t *testing.T) {
					h := newHarness(t, dev, uint64(rows*cols)+uint64(act))
					hi := 3.0
					if act == gpu.ActReLU6 {
						hi = 9 // past ReLU6's upper kink
					}
					x := h.uniform(rows*cols, -3, hi)
					bias := h.uniform(cols, -0.5, 0.5)
					for i := range x { // keep ReLU's and ReLU6's inputs away from their kinks
						v := float64(x[i] + bias[i%cols])
						if math.Abs(v) < 0.05 || math.Abs(v-6) < 0.05 {
							x[i] += 0.1
						}
					}
					dout := h.uniform(rows*cols, -1, 1)
					dbias0 := h.uniform(cols, -1, 1)
					forward := func(dx, db float32) []float64 {
						xs, bs := make([]float32, len(x)), make([]float32, len(bias))
						for i := range x {
							xs[i] = x[i] + dx
						}
						for i := range bias {
							bs[i] = bias[i] + db
						}
						y := h.out(rows * cols)
						dev.BiasAct(y, h.in(xs), h.in(bs), rows, cols, act)
						return to64(h.get(y))
					}
					yp, ym := forward(fdStep, 0), forward(-fdStep, 0)
					bp, bm := forward(0, fdStep), forward(0, -fdStep)
					wantDx := make([]float64, len(x))
					wantDb := to64(dbias0)
					for i := range x {
						wantDx[i] = float64(dout[i]) * (yp[i] - ym[i]) / (2 * fdStep)
						wantDb[i%cols] += float64(dout[i]) * (bp[i] - bm[i]) / (2 * fdStep)
					}
					y := h.out(rows * cols)
					dev.BiasAct(y, h.in(x), h.in(bias), rows, cols, act)
					yv := h.get(y)
					dbias := h.buf(dbias0)
					var dx gpu.Buf
					if inplace {
						dx = h.buf(dout)
						dev.BiasActBackward(dx, dbias, dx, h.in(yv), rows, cols, act)
					} else {
						dx = h.out(rows * cols)
						dev.BiasActBackward(dx, dbias, h.in(dout), h.in(yv), rows, cols, act)
					}
					near(t, "dx", h.get(dx), wantDx, tolerance(wantDx, 1e-4, 1e-3))
					near(t, "dbias", h.get(dbias), wantDb, tolerance(wantDb, 1e-4*float64(rows), 1e-3))
					// Without dbias only dx is written.
					dx2 := h.out(rows * cols)
					dev.BiasActBackward(dx2, nil, h.in(dout), h.in(yv), rows, cols, act)
					near(t, "dx without dbias", h.get(dx2), wantDx, tolerance(wantDx, 1e-4, 1e-3))
				})
			}
		}
	}
}

// testElementwise covers Add, Mul, Axpy and Scale with every aliasing the
// interface allows, at sizes below and above any parallel threshold.
func testElementwise(t *testing.T, dev gpu.Device) {
	for _, n := range []int{1, 7, 100003} {
		t.Run(name("n%d", n), func(t *testing.T) {
			h := newHarness(t, dev, uint64(n))
			a, b := h.uniform(n, -2, 2), h.uniform(n, -2, 2)
			sum, prod, axpy, scaled := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range a {
				sum[i] = float64(a[i] + b[i]) // float32 ops are exact-rounded: compare exactly
				prod[i] = float64(a[i] * b[i])
				axpy[i] = float64(b[i] + float32(-1.5)*a[i])
				scaled[i] = float64(a[i] * 0.375)
			}
			exact := make([]float64, n)
			fma := make([]float64, n) // Axpy may fuse the multiply-add: allow an ulp of its terms
			for i := range fma {
				fma[i] = 2.4e-7 * (math.Abs(float64(b[i])) + 1.5*math.Abs(float64(a[i])))
			}
			for _, c := range []struct {
				what string
				run  func() gpu.Buf
				want []float64
				tol  []float64
			}{
				{"Add", func() gpu.Buf { o := h.out(n); dev.Add(o, h.in(a), h.in(b)); return o }, sum, exact},
				{"Add out=a", func() gpu.Buf { o := h.buf(a); dev.Add(o, o, h.in(b)); return o }, sum, exact},
				{"Add out=b", func() gpu.Buf { o := h.buf(b); dev.Add(o, h.in(a), o); return o }, sum, exact},
				{"Mul", func() gpu.Buf { o := h.out(n); dev.Mul(o, h.in(a), h.in(b)); return o }, prod, exact},
				{"Mul out=a", func() gpu.Buf { o := h.buf(a); dev.Mul(o, o, h.in(b)); return o }, prod, exact},
				{"Mul out=b", func() gpu.Buf { o := h.buf(b); dev.Mul(o, h.in(a), o); return o }, prod, exact},
				{"Axpy", func() gpu.Buf { y := h.buf(b); dev.Axpy(y, h.in(a), -1.5); return y }, axpy, fma},
				{"Scale", func() gpu.Buf { x := h.buf(a); dev.Scale(x, 0.375); return x }, scaled, exact},
			} {
				near(t, c.what, h.get(c.run()), c.want, c.tol)
			}
		})
	}
}

func testSumSquares(t *testing.T, dev gpu.Device) {
	for _, n := range []int{1, 7, 100003} {
		h := newHarness(t, dev, uint64(n))
		x := h.uniform(n, -3, 3)
		var want float64
		for _, v := range x {
			want += float64(v) * float64(v)
		}
		got, err := dev.SumSquares(h.in(x))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-10*want {
			t.Errorf("SumSquares of %d elements = %.15g, want %.15g", n, got, want)
		}
	}
}
