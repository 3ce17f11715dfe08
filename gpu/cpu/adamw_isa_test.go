//go:build cgo

package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamWEveryISA runs each of AdamW's C loops this CPU has (the suite in
// gputest runs only the widest) against a float64 AdamW, at lengths around
// the AVX2 (8) and AVX-512 (16) widths so that each loop and the plain tail
// after it are used.
func TestAdamWEveryISA(t *testing.T) {
	const lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.01
	for isa := 0; isa <= vecISA; isa++ {
		for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 37, 1000} {
			t.Run(fmt.Sprintf("isa%d_n%d", isa, n), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(n), uint64(isa)))
				uniform := func() float32 { return rng.Float32()*2 - 1 }
				p32, m32, v32 := make([]float32, n), make([]float32, n), make([]float32, n)
				p, m, v := make([]float64, n), make([]float64, n), make([]float64, n)
				for i := range p32 {
					p32[i] = uniform()
					p[i] = float64(p32[i])
				}
				for step := 1; step <= 3; step++ {
					g32 := make([]float32, n)
					bc1, bc2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
					for i := range g32 {
						g32[i] = uniform()
						g := float64(g32[i])
						m[i] = b1*m[i] + (1-b1)*g
						v[i] = b2*v[i] + (1-b2)*g*g
						p[i] -= lr * (m[i]/bc1/(math.Sqrt(v[i]/bc2)+eps) + wd*p[i])
					}
					adamwISA(isa, p32, g32, m32, v32, lr, b1, b2, eps, wd, float32(bc1), float32(bc2))
				}
				for i := range p {
					// gputest's AdamW tolerances: float32 rounding over three steps.
					for _, c := range []struct {
						name           string
						got, want, abs float64
					}{{"param", float64(p32[i]), p[i], 1e-6}, {"m", float64(m32[i]), m[i], 1e-7}, {"v", float64(v32[i]), v[i], 1e-8}} {
						if math.Abs(c.got-c.want) > c.abs+1e-5*math.Abs(c.want) {
							t.Fatalf("%s[%d] = %.9g, want %.9g", c.name, i, c.got, c.want)
						}
					}
				}
			})
		}
	}
}
