package numdiff

import "testing"

func TestRelL2(t *testing.T) {
	for _, c := range []struct {
		a, b []float32
		want float64
	}{
		{[]float32{3, 4}, []float32{3, 4}, 0},
		{[]float32{3, 4}, []float32{0, 4}, 0.75}, // |(3, 0)| / |(0, 4)|
		{[]float32{6, 8}, []float32{3, 4}, 1},
		{[]float32{1}, []float32{0}, 1e15}, // a zero reference: the floor of 1e-30 on |b|²
	} {
		if got := RelL2(c.a, c.b); got != c.want {
			t.Errorf("RelL2(%v, %v) = %g, want %g", c.a, c.b, got, c.want)
		}
	}
}
